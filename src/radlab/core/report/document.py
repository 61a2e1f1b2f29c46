"""HTML building blocks: one file with its pictures inlined as data URIs, no script, no network request."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from radlab.core.explain.overlay import png_bytes

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f2f2f2; }
figure { display: inline-block; margin: .4rem; vertical-align: top; text-align: center; }
figcaption { font-size: .8rem; max-width: 320px; }
img { max-width: 100%; }
.gallery img { width: 240px; height: auto; }
.note { color: #555; font-size: .9rem; }
"""


@dataclass(frozen=True)
class Section:
    """A titled part of the report; `body` is trusted HTML made with the helpers below."""

    title: str
    body: str


def _data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_html(figure: Figure, caption: str = "") -> str:
    """A matplotlib figure as an inline PNG (the figure is cleared)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    figure.clf()
    return _figure(buffer.getvalue(), caption)


def image_html(image: Any, caption: str = "") -> str:
    """An (H, W[, 3]) uint8 array as an inline PNG with a caption, for galleries."""
    return _figure(png_bytes(image), caption)


def _figure(data: bytes, caption: str) -> str:
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{html.escape(caption)}" src="{_data_uri(data)}">{text}</figure>'


def _cell(value: Any) -> str:
    if value is None:
        return "&mdash;"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4g}"
    return html.escape(str(value))


def table_html(columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    """A table; floats to four significant digits, None as a dash."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def paragraph(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def gallery(items: Sequence[str]) -> str:
    return '<div class="gallery">' + "".join(items) + "</div>"


def render_document(title: str, sections: Sequence[Section]) -> str:
    """The whole page. A strict content-security policy forbids any fetch: the page must work offline."""
    toc = "".join(f'<li><a href="#s{k}">{html.escape(s.title)}</a></li>' for k, s in enumerate(sections))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">",
        '<link rel="icon" href="data:,">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><ul>{toc}</ul>",
    ]
    parts += [f'<h2 id="s{k}">{html.escape(s.title)}</h2>{s.body}' for k, s in enumerate(sections)]
    parts.append("</body></html>")
    return "\n".join(parts)
