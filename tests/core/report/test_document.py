"""The HTML document: self-contained, escaped, with a policy that forbids any network fetch."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from radlab.core.report import Section, figure_html, image_html, table_html
from radlab.core.report.document import render_document


def test_document_escapes_text_and_forbids_fetches():
    page = render_document("<script>x</script>", [Section("a & b", table_html(["<b>"], [["<i>", None, 0.123456]]))])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;i&gt;" in page and "&mdash;" in page and "0.1235" in page
    assert "default-src 'none'; img-src data:" in page
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page)


def test_pictures_are_inline_pngs_that_decode():
    figure = Figure(figsize=(2, 2))
    figure.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    image = np.zeros((8, 12, 3), dtype=np.uint8)
    for fragment, shape in ((figure_html(figure), None), (image_html(image, "a caption"), (8, 12, 3))):
        payload = re.search(r'src="data:image/png;base64,([^"]+)"', fragment).group(1)
        decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))
        assert decoded.ndim == 3 and (shape is None or decoded.shape == shape)
    assert "<figcaption>a caption</figcaption>" in image_html(image, "a caption")
