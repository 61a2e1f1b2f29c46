import platform
import subprocess
from pathlib import Path

import pytest

import radlab
from radlab.core.provenance.environment import INSTRUCTION_SETS, _cpuinfo, describe_environment
from radlab.core.provenance.revision import code_revision

X86 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse sse2 avx2 fma\n\nprocessor\t: 1\nflags\t: other\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd sve\nCPU part\t: 0xd0c\n"


@pytest.mark.parametrize(
    ("text", "model", "flags"),
    [
        (X86, "AMD EPYC", {"fpu", "sse", "sse2", "avx2", "fma"}),
        (ARM, None, {"fp", "asimd", "sve"}),
        ("", None, set()),
    ],
)
def test_cpuinfo_reads_the_first_processors_model_and_flags(tmp_path, text, model, flags):
    (tmp_path / "cpuinfo").write_text(text)
    assert _cpuinfo(tmp_path / "cpuinfo") == (model, flags)


def test_a_missing_cpuinfo_is_no_error(tmp_path):
    assert _cpuinfo(tmp_path / "none") == (None, set())


def test_the_environment_names_the_software_and_machine_it_runs_on():
    import torch

    found = describe_environment()
    assert found["torch"]["version"] == torch.__version__ and found["torch"]["cuda"] == torch.version.cuda
    assert found["torch"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert found["torch"]["threads"] == torch.get_num_threads()
    assert found["packages"]["lightning"] and found["python"]["version"].count(".") == 2
    assert all(flag.startswith(INSTRUCTION_SETS) for flag in found["cpu"]["instruction_sets"])
    assert "sse2" in found["cpu"]["instruction_sets"] or platform.machine() != "x86_64"
    assert len(found["devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_the_code_revision_is_the_checkouts_commit():
    source = Path(radlab.__file__).resolve().parent
    head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("radlab is not installed from a git checkout here")
    found = code_revision()
    assert found["revision"] == head.stdout.strip() and found["source"] == "git" and found["dirty"] in (True, False)
