import os
import subprocess
import sys
import sysconfig

from radlab.core.infer.bundle import build_bundle
from radlab.core.task import get_task
from radlab.tasks.mura.predict import predict_csv


def test_bundle_runs_the_codalab_command_without_radlab_installed(tiny_run, tiny_mura, tmp_path):
    bundle = tmp_path / "bundle"
    build_bundle(get_task("mura"), tiny_run, bundle)
    assert (bundle / "src" / "model" / "model.safetensors").is_file()
    assert (bundle / "src" / "vendor" / "radlab" / "tasks" / "mura" / "predict.py").is_file()

    # -S skips site-packages' .pth files (where the editable radlab lives); the libraries come from
    # PYTHONPATH, radlab only from the bundle.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    probe = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import radlab; print(radlab.__file__)",
            str(bundle / "src" / "vendor"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert probe.stdout.startswith(str(bundle))

    result = subprocess.run(
        [
            sys.executable,
            "-S",
            str(bundle / "src" / "predict.py"),
            "MURA-v1.1/valid_image_paths.csv",
            "predictions.csv",
        ],
        cwd=tiny_mura,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    predict_csv(tiny_mura / "MURA-v1.1/valid_image_paths.csv", tmp_path / "expected.csv", tiny_run, tiny_mura)
    assert (tiny_mura / "predictions.csv").read_text() == (tmp_path / "expected.csv").read_text()
    (tiny_mura / "predictions.csv").unlink()


def test_bundle_usage_error(tiny_run, tmp_path):
    build_bundle(get_task("mura"), tiny_run, tmp_path / "b")
    result = subprocess.run([sys.executable, str(tmp_path / "b/src/predict.py")], capture_output=True, text=True)
    assert result.returncode == 2 and "usage:" in result.stderr


def test_a_bundle_refuses_to_write_over_its_input(tiny_run, tmp_path, capsys):
    """The bundle's predict.py keeps the CLI's output checks: `predict.py in.csv in.csv` used to replace the
    input with the predictions."""
    from radlab.core.infer.bundle import bundle_main

    (tmp_path / "in.csv").write_text("MURA-v1.1/valid/XR_HAND/patient1/study1_positive/image1.png\n")
    before = (tmp_path / "in.csv").read_text()
    assert bundle_main("radlab.tasks.mura", [str(tmp_path / "in.csv")] * 2, tiny_run) == 2
    assert "would overwrite the input" in capsys.readouterr().err and (tmp_path / "in.csv").read_text() == before
