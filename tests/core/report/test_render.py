"""A report opens in headless Chromium offline: no console error, no network request, not a blank page.

Debian's chromium (installed by .ci/run) is driven through Playwright's Python API with no browser
download. Without a chromium these tests skip with the reason, unless RADLAB_BROWSER_TESTS=required
(set by CI), where a missing browser fails them.
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radlab.core.report import report_run as write_run_report
from radlab.core.task import task_names

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("RADLAB_BROWSER_TESTS") == "required":
            pytest.fail("chromium is required here (RADLAB_BROWSER_TESTS=required) but is not installed")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return found


@dataclass
class Rendered:
    console_errors: list[str]
    requests: list[str]
    screenshot: np.ndarray
    title: str


def render(page_path: Path) -> Rendered:
    """Open a local HTML file in headless Chromium; collect errors and requests, take a full-page screenshot."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            shot = page.screenshot(full_page=True)
            title = page.title()
        finally:
            browser.close()
    return Rendered(errors, requests, np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")), title)


@pytest.mark.parametrize("name", task_names())
def test_report_renders_offline_with_no_error_and_is_not_blank(name, tiny, tmp_path):
    _chromium()
    run = tiny.run(name)
    page_path = write_run_report(run, tmp_path / "report.html")
    rendered = render(page_path)
    assert rendered.console_errors == []
    page_url = page_path.resolve().as_uri()
    assert [url for url in rendered.requests if url != page_url and not url.startswith("data:")] == []
    assert rendered.title.startswith("radlab ")
    shot = rendered.screenshot
    assert shot.shape[0] > 900  # a long page: tables, curves and galleries
    not_white = (shot < 235).any(axis=2).mean()
    assert not_white > 0.05, f"only {not_white:.1%} of the page is drawn on"
    assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 500  # plots and pictures, not just text
