"""Configs: YAML presets validated by pydantic (unknown keys are errors), overridable with `--set a.b=c`.

A task declares a pydantic schema and a folder of presets. `load_config` resolves a preset name or a YAML
file (merged over the preset named by its optional `base:` key), applies the overrides, and validates.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable, Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from radlab.core.errors import RadlabConfigError

T = TypeVar("T", bound=BaseModel)
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def was_boolean(if_true: str, if_false: str) -> BeforeValidator:
    """For a key that was a boolean and became a choice (`Annotated[Literal[...], was_boolean(a, b)]`): the
    run configs written before still load, true as `if_true`, false as `if_false`."""
    return BeforeValidator(lambda value: (if_true if value else if_false) if isinstance(value, bool) else value)


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are rejected, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Turn ["train.lr=1e-3", "model.backbone=resnet18"] into a nested dict; values are parsed as YAML."""
    nested: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise RadlabConfigError(f"--set expects key=value with a dotted key, got {item!r}")
        value = parse_value(raw)
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RadlabConfigError(f"--set {item!r}: {part!r} is set both as a value and as a section")
        node[parts[-1]] = value
    return nested


def parse_value(raw: str) -> Any:
    """A `--set` value as YAML (lists, true, null), with numbers such as 1e-3 read as numbers
    (plain YAML 1.1 would keep them as strings)."""
    if not raw.strip():
        return None
    try:
        value = safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


def flat_keys(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` as `{"a.b": 1}`: a config's leaves under the dotted keys `--set` takes."""
    found: dict[str, Any] = {}
    for name, value in tree.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        found.update(flat_keys(value, key) if isinstance(value, Mapping) else {key: value})
    return found


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge `override` into a copy of `base` (mappings merge, everything else replaces)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path | Traversable, what: str) -> dict[str, Any]:
    """Load a YAML mapping, or raise a config error naming the file."""
    try:
        data = safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RadlabConfigError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise RadlabConfigError(f"{what} {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RadlabConfigError(f"{what} {path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def preset_names(presets: Traversable) -> list[str]:
    """Names of the presets in a presets folder."""
    return sorted(p.name.rsplit(".", 1)[0] for p in presets.iterdir() if p.name.endswith((".yaml", ".yml")))


def load_config(
    schema: type[T],
    presets: Traversable,
    name_or_path: str | None = None,
    overrides: Iterable[str] = (),
    default: str = "paper",
) -> T:
    """Resolve a preset name or YAML path, apply `--set` overrides, validate against `schema`."""
    data = _resolve(presets, name_or_path or default, default)
    data = deep_merge(data, parse_overrides(overrides))
    return validate_config(schema, data, source=name_or_path or default)


def validate_config(schema: type[T], data: Mapping[str, Any], source: str = "config") -> T:
    """Validate a plain mapping, turning pydantic's report into one line per problem."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise RadlabConfigError(f"{source}: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line: `unknown key 'train.lrr'; train.lr: Input should be a valid number (got 'abc')`."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        else:
            problems.append(f"{where}: {err['msg']} (got {_short_repr(err.get('input'))})")
    return "; ".join(problems)


def _short_repr(value: Any) -> str:
    """At most a line of what was given (a huge value is not printed whole)."""
    shown = reprlib.Repr()
    shown.maxstring, shown.maxother, shown.maxlist, shown.maxdict, shown.maxlevel = 80, 80, 6, 6, 3
    return shown.repr(value)


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: configs need none, and aliases can expand into millions of nodes
    (a "billion laughs" file)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def safe_load(text: str) -> Any:
    """yaml.safe_load, aliases refused."""
    return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass


def config_to_yaml(config: BaseModel) -> str:
    """The full resolved config as YAML (JSON-compatible types only, so it can be read back safely)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _resolve(presets: Traversable, name_or_path: str, default: str) -> dict[str, Any]:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise RadlabConfigError(f"config file {candidate} does not exist")
        data = read_yaml(candidate, "config file")
        base = data.pop("base", default)
        return deep_merge(_preset(presets, str(base)), data)
    return _preset(presets, name_or_path)


def _preset(presets: Traversable, name: str) -> dict[str, Any]:
    for suffix in (".yaml", ".yml"):
        path = presets / f"{name}{suffix}"
        if path.is_file():
            data = read_yaml(path, "preset")
            base = data.pop("base", None)
            return deep_merge(_preset(presets, str(base)), data) if base else data
    known = ", ".join(preset_names(presets)) or "none"
    raise RadlabConfigError(f"unknown preset {name!r} (known: {known}; or give a path to a .yaml file)")


def with_trust_pickle(overrides: list[str] | None, trust_pickle: bool) -> list[str]:
    """`--set` overrides plus `model.trust_pickle=true` when the user passed --trust-pickle."""
    return [*(overrides or []), *(["model.trust_pickle=true"] if trust_pickle else [])]
