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

SECTIONS = ["Results", "Semeniuta et al. 2016 Table 1: measured beside the paper", "Training",
            "Probe: How the state fades over time",
            "Probe: Accuracy on longer sequences under each inference mode",
            "Appendix: Data files", "Appendix: Settings"]
ANCHORS = ["results", "semeniuta-et-al-2016-table-1-measured-beside-the-paper", "training",
           "probe-how-the-state-fades-over-time",
           "probe-accuracy-on-longer-sequences-under-each-inference-mode", "data-files", "settings"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Path]:
    from .conftest import write_run

    root = tmp_path_factory.mktemp("report")
    runs = [write_run(root / f"{s}-{seed}", scheme=s, seed=seed, length="medium")
            for s in ("moon", "semeniuta") for seed in (0, 1)]
    assert main(["report", *map(str, runs), "--out", str(root / "out" / "report"),
                 "--title", "User view"]) == 0
    return root / "out" / "report.html", root / "out" / "report.pdf"


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium(size="1366,2000")
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
    # the decisive chart, the intervals beside the paper, training curves, state-decay,
    # test-time-scaling
    assert len(svgs) == 5
    for svg in svgs:  # drawn at a visible size
        assert svg.size["width"] > 300 and svg.size["height"] > 100
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#results td")]
    assert "moon/sequence" in cells and "semeniuta/step" in cells
    links = browser.find_elements(By.CSS_SELECTOR, "nav a")
    assert [a.get_attribute("href").split("#")[1] for a in links] == ANCHORS
    files = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "p.file a")]
    assert [f.rsplit("/", 2)[-2:] for f in files] == [
        ["report-data", "results.csv"], ["report-data", "probe-state-decay.csv"],
        ["report-data", "probe-test-time-scaling.csv"]]
    assert all((html.parent / "report-data" / f.rsplit("/", 1)[1]).is_file() for f in files)
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_the_finding_is_on_the_first_screen(report, browser, tmp_path):
    """At 1366x768 the headline, the decisive chart and the table beside the paper start
    on the first screen, and the headline and chart end on it (Chromium's layout)."""
    from selenium.webdriver.common.by import By

    html, _ = report
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False})
    try:
        browser.get(html.resolve().as_uri())
        assert browser.execute_script("return [window.innerWidth, window.innerHeight]") == [1366, 768]

        def box(css: str) -> dict:
            el = browser.find_element(By.CSS_SELECTOR, css)
            return browser.execute_script("return arguments[0].getBoundingClientRect().toJSON()", el)

        verdict, chart, table = box("#finding p.verdict"), box("#finding figure svg"), \
            box("#finding table")
        assert "test accuracy under deterministic inference" in \
            browser.find_element(By.CSS_SELECTOR, "#finding p.verdict").text
        assert 0 <= verdict["top"] and verdict["bottom"] <= 768
        assert chart["top"] >= verdict["bottom"] and chart["bottom"] <= 768
        assert chart["height"] > 200 and chart["width"] > 400
        assert table["top"] < 768 and table["left"] >= chart["right"] - 1  # beside the chart
        nav = box("nav.toc")  # the contents wrap: nothing runs off a 1366 px screen
        assert nav["right"] <= 1366 and nav["height"] > 0
        assert browser.execute_script(
            "return document.documentElement.scrollWidth") <= 1366
        flagged = browser.find_elements(By.CSS_SELECTOR, "#finding td.flag")
        assert flagged, "the deviating cell is marked in the first screen's table"
        shot = tmp_path / "first-screen.png"
        assert browser.save_screenshot(str(shot))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


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
    assert texts[0].lstrip().startswith("User view")
    assert "test accuracy under deterministic inference" in texts[0]  # the finding, first
    assert "Measured beside the paper" in texts[0]
    assert texts[1].lstrip().startswith("Contents")
    full = "\n".join(texts)
    for title in SECTIONS + ["Training curves", "How the state fades over time"]:
        assert title in full, f"{title!r} is on no page"
    subprocess.run([_need("pdftoppm"), "-r", "30", "-png", str(pdf), str(tmp_path / "page")],
                   check=True)
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == pages and all(p.stat().st_size > 1000 for p in pngs)


def test_pdf_is_navigable_and_readable(report):
    """pypdf: one page size (A4), an outline entry per section (the appendix nested), page
    labels i, ii, then 1, 2, ... as printed, contents entries linked to their pages, and
    table text at 8 pt or more."""
    from pypdf import PdfReader

    _, pdf = report
    reader = PdfReader(pdf)
    sizes = {(round(float(p.mediabox.width)), round(float(p.mediabox.height))) for p in reader.pages}
    assert sizes == {(595, 842)}, "every page is A4 portrait"
    outline = reader.outline
    titles = [o.title for o in outline if not isinstance(o, list)]
    assert titles == ["Finding"] + SECTIONS[:-2] + ["Appendix"]
    nested = next(o for o in outline if isinstance(o, list))
    assert [o.title for o in nested] == ["Data files", "Settings"]
    labels = reader.page_labels
    assert labels[:3] == ["i", "ii", "1"] and labels[-1] == str(len(reader.pages) - 2)
    for o in outline:
        if not isinstance(o, list):
            page = reader.get_destination_page_number(o)
            assert labels[page] in reader.pages[page].extract_text()  # the printed number
    links = [a.get_object() for a in reader.pages[1].get("/Annots", [])]
    assert len(links) == 1 + len(SECTIONS)
    targets = [reader.get_page_number(a["/Dest"][0].get_object()) if "/Dest" in a
               else reader.get_page_number(a["/A"]["/D"][0].get_object()) for a in links]
    assert targets[0] == 0 and targets[1:] == sorted(targets[1:]) and targets[1] == 2

    sizes_of: dict[str, float] = {}

    def visit(text, cm, tm, font, size):
        if text.strip():
            scale = (tm[2] * cm[0] + tm[3] * cm[2]) ** 2 + (tm[2] * cm[1] + tm[3] * cm[3]) ** 2
            sizes_of[text.strip()] = min(sizes_of.get(text.strip(), 99.0), size * scale ** 0.5)
    for page in reader.pages:  # run names appear in tables only (the figures show labels)
        page.extract_text(visitor_text=visit)
    cells = {k: v for k, v in sizes_of.items() if k in ("moon-0", "semeniuta-1", "length=medium")
             or k.startswith("Every run")}
    assert {"moon-0", "semeniuta-1"} <= set(cells) and min(cells.values()) >= 8.0 - 1e-6, cells


def test_two_reports_of_the_same_runs_are_byte_identical(report, tmp_path):
    """A second report, in another process with another hash seed, has the same bytes."""
    import os
    import sys

    html, pdf = report
    runs = sorted(p for p in html.parent.parent.iterdir() if (p / "config.json").exists())
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-m", "memloss", "report", *map(str, runs), "--out",
                    str(tmp_path / "report"), "--title", "User view"], check=True, env=env,
                   capture_output=True)
    assert (tmp_path / "report.html").read_bytes() == html.read_bytes()
    assert (tmp_path / "report.pdf").read_bytes() == pdf.read_bytes()
    for csv in (html.parent / "report-data").iterdir():
        assert (tmp_path / "report-data" / csv.name).read_bytes() == csv.read_bytes()


def test_cli_reports_bad_run_dirs_clearly(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "memloss report: error:" in err and "does not exist" in err
    assert not (tmp_path / "r.html").exists()
