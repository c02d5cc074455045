"""The reports as a user sees them: the HTML in headless Chromium, the PDF as pages.

Needs the Debian packages ``chromium`` + ``chromium-driver`` (and the ``selenium`` Python
package) for the browser test and ``poppler-utils`` (pdftotext, pdfinfo, pdftoppm) for the
PDF test; each test is skipped with the install command when its tools are absent.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from memloss.cli import main

from ..browser import headless_chromium

SECTIONS = ["Contents", "Results", "Training", "Probe: state-decay", "Probe: test-time-scaling",
            "Configs"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Path]:
    from .conftest import write_run

    root = tmp_path_factory.mktemp("report")
    runs = [write_run(root / f"{s}-{seed}", scheme=s, seed=seed)
            for s in ("moon", "semeniuta") for seed in (0, 1)]
    assert main(["report", *map(str, runs), "--out", str(root / "out" / "report"),
                 "--title", "User view"]) == 0
    return root / "out" / "report.html", root / "out" / "report.pdf"


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium()
    yield driver
    driver.quit()


def test_html_renders_in_chromium_without_console_errors(report, browser, tmp_path):
    from selenium.webdriver.common.by import By

    html, _ = report
    browser.get(html.resolve().as_uri())
    assert browser.title == "User view"
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == [], f"console errors: {errors}"
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert headings == SECTIONS
    svgs = browser.find_elements(By.CSS_SELECTOR, "figure svg")
    assert len(svgs) == 3  # training curves, state-decay, test-time-scaling
    for svg in svgs:  # drawn at a visible size
        assert svg.size["width"] > 300 and svg.size["height"] > 100
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#results td")]
    assert "moon/sequence" in cells and "semeniuta/step" in cells
    links = browser.find_elements(By.CSS_SELECTOR, "nav a")
    assert [a.get_attribute("href").split("#")[1] for a in links] == \
        ["results", "training", "probe-state-decay", "probe-test-time-scaling", "configs"]
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed: apt-get install poppler-utils")
    return path


def test_pdf_pages_have_titles_and_render(report, tmp_path):
    _, pdf = report
    info = subprocess.run([_need("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True)
    pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))
    assert re.search(r"Title:\s+User view", info.stdout)
    assert "CreationDate" not in info.stdout
    texts = []
    for page in range(1, pages + 1):
        out = subprocess.run([_need("pdftotext"), "-layout", "-f", str(page), "-l", str(page),
                              str(pdf), "-"], capture_output=True, text=True, check=True)
        texts.append(out.stdout)
    assert texts[0].lstrip().startswith("User view") and "Contents" in texts[0]
    full = "\n".join(texts)
    for title in ("Results", "Training curves", "state-decay, schemes compared",
                  "test-time-scaling, schemes compared, over length", "Configs"):
        assert title in full, f"{title!r} is on no page"
    # every figure page starts with its section and title
    fig_pages = [t for t in texts if "schemes compared" in t.split("\n", 1)[0]]
    assert len(fig_pages) == 2
    subprocess.run([_need("pdftoppm"), "-r", "30", "-png", str(pdf), str(tmp_path / "page")],
                   check=True)
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == pages and all(p.stat().st_size > 1000 for p in pngs)


def test_two_reports_of_the_same_runs_are_byte_identical(report, tmp_path):
    """A second report, in another process with another hash seed, has the same bytes."""
    import os
    import sys

    html, pdf = report
    runs = sorted(p for p in html.parent.parent.iterdir() if (p / "config.json").exists())
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-m", "memloss", "report", *map(str, runs), "--out",
                    str(tmp_path / "again"), "--title", "User view"], check=True, env=env,
                   capture_output=True)
    assert (tmp_path / "again.html").read_bytes() == html.read_bytes()
    assert (tmp_path / "again.pdf").read_bytes() == pdf.read_bytes()


def test_cli_reports_bad_run_dirs_clearly(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "memloss report: error:" in err and "does not exist" in err
    assert not (tmp_path / "r.html").exists()
