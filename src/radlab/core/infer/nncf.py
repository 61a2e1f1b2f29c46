"""NNCF's post-training int8 quantisation of the fp32 ONNX file `radlab export` writes, saved as OpenVINO IR
(model.nncf.xml + model.nncf.bin) for `--engine openvino-nncf`.

On MURA's DenseNet-169 at 320 px it ran 1.48x faster under OpenVINO than ONNX Runtime's QDQ file calibrated on
the same images (benchmarks/README.md): NNCF places its quantisers for OpenVINO's own int8 kernels. The
file's metadata (the weights stamp among it) lives in the IR's runtime info under "radlab", where
`ir_metadata` finds it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

RT_INFO = "radlab"
"""The runtime-info section of an IR that holds radlab's metadata."""


def nncf_installed() -> bool:
    """Whether NNCF (and so the openvino-nncf engine's export) can be imported, without importing it."""
    return importlib.util.find_spec("nncf") is not None and importlib.util.find_spec("openvino") is not None


def quantize_nncf(
    fp32_path: str | Path, xml_path: str | Path, calibration: Iterable[np.ndarray], metadata: dict[str, str]
) -> Path:
    """NNCF's default post-training quantisation of an ONNX file, on calibration batches of float32 pixels
    (fed one image at a time). The IR's two files are staged beside their targets; the old .xml goes first,
    then the new .bin and the new .xml move in, so an interrupted write leaves no .xml (predict then says to
    export again) rather than an old .xml beside a new .bin."""
    import nncf
    import openvino as ov

    images = [np.ascontiguousarray(b[k : k + 1], dtype=np.float32) for b in calibration for k in range(len(b))]
    if not images:
        raise ValueError(f"no calibration images for {xml_path}")
    xml_path = Path(xml_path)
    logging.getLogger("nncf").setLevel(logging.WARNING)  # its INFO lines would interleave with radlab's
    model = ov.Core().read_model(str(fp32_path))
    with contextlib.redirect_stdout(io.StringIO()):  # its progress bars: stdout may be a --json report
        quantized = nncf.quantize(model, nncf.Dataset(images), subset_size=len(images), fast_bias_correction=True)
    for key, value in metadata.items():
        quantized.set_rt_info(value, [RT_INFO, key])
    with tempfile.TemporaryDirectory(dir=xml_path.parent, prefix=".nncf-") as scratch:
        staged = Path(scratch) / xml_path.name
        ov.save_model(quantized, str(staged), compress_to_fp16=False)
        xml_path.unlink(missing_ok=True)
        os.replace(staged.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(staged, xml_path)
    return xml_path


def remove_ir(xml_path: Path) -> None:
    """Remove an IR pair (the .xml first, as quantize_nncf writes it last), if there is one."""
    xml_path.unlink(missing_ok=True)
    xml_path.with_suffix(".bin").unlink(missing_ok=True)


def ir_metadata(model: Any) -> dict[str, str]:
    """The metadata `quantize_nncf` stored in an IR, from the ov.Model read from it (empty without it)."""
    info = model.get_rt_info()
    if RT_INFO not in info:
        return {}
    return {str(key): str(value.astype(str)) for key, value in dict(info[RT_INFO]).items()}
