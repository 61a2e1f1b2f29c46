# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# Sources pip may not print about: the local wheel folders of this kind of machine are optional.
export PIP_NO_WARN_SCRIPT_LOCATION := 1

.PHONY: demo test lint install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing radlab and its dependencies into $(VENV): PyTorch, Lightning, timm, ONNX Runtime, pydicom, ..."
	@echo "  about 6.5 GB on disk, 3 to 5 minutes the first time (later runs reuse $(VENV) and start at once)"
	@start=$$(date +%s); \
	$(PIP) -e . 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true; \
	echo "  installed in $$(( $$(date +%s) - start )) s"
	$(BIN)/python -c "import radlab.cli" && touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	@echo "installing the test tools into $(VENV): pytest, ruff, mypy, playwright, hypothesis (under a minute)"
	$(PIP) -e '.[dev]' 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	$(BIN)/python -c "import pytest, ruff, mypy" && touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/radlab demo

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) radlab-demo .pytest_cache .ruff_cache
