"""The asv dashboard as a user opens it offline: ``asv publish`` of stored results, the
scripts vendored by ``benchmarks.dashboard``, the page in headless Chromium whose DNS
resolves nothing but localhost (the network is off for it), and, as the control, asv's
own page failing the same way the issue saw it fail.

Needs the Debian packages ``chromium`` + ``chromium-driver`` and the npm packages in
``~/.cache/memloss/npm`` or the npm registry within reach; skips saying which is missing.
"""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks import dashboard

from ..browser import headless_chromium

DATA = Path(__file__).parent / "data"
# the commits of the stored runs: C, C + an empty commit, C + the injected slowdown
STORED = [("base", DATA / "slowdown" / "base.json"), ("empty", DATA / "empty-commit" / "new.json"),
          ("slow", DATA / "slowdown" / "new.json")]
GRAPH = ("#bench_layer.RatioToTorchNN.track_ratio_to_torch_nn?p-cell=%27lstm%27"
         "&p-scheme=%27semeniuta%27&p-path=%27fused%27&p-hidden=256&p-batch=32&p-device=%27cpu%27")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, Path]:
    """(vendored html dir, html dir as asv publishes it) of a three-commit history."""
    root = tmp_path_factory.mktemp("asvsite")
    _git(root, "init", "-q", "-b", "main")
    results = root / "results" / "vm"
    results.mkdir(parents=True)
    shutil.copy(DATA / "benchmarks.json", root / "results" / "benchmarks.json")
    for i, (label, src) in enumerate(STORED):
        (root / "history.txt").write_text(label)
        _git(root, "add", "history.txt")
        _git(root, "commit", "-qm", label)
        data = json.loads(src.read_text())
        data["commit_hash"] = _git(root, "rev-parse", "HEAD")
        data["date"] = 1_700_000_000_000 + i * 3_600_000
        (results / f"{data['commit_hash'][:8]}-{data['env_name']}.json").write_text(json.dumps(data))
    (results / "machine.json").write_text(json.dumps({**data["params"], "version": 1}))
    conf = root / "asv.conf.json"
    conf.write_text(json.dumps({"version": 1, "project": "memloss", "repo": ".",
                                "branches": ["main"], "results_dir": "results",
                                "html_dir": "html"}))
    subprocess.run([sys.executable, "-m", "asv", "publish", "--config", str(conf)], check=True,
                   capture_output=True, cwd=root)
    plain = root / "plain"
    shutil.copytree(root / "html", plain)
    try:
        dashboard.vendor(root / "html")
    except RuntimeError as e:
        if "cannot fetch" in str(e):
            pytest.skip(f"npm packages unavailable offline and not cached: {e}")
        raise
    return root / "html", plain


@pytest.fixture(scope="module")
def browser():
    # no name resolves but localhost: every CDN is out of reach
    driver = headless_chromium("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost",
                               size="1400,1000", network_log=True)
    yield driver
    driver.quit()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve():
    """``serve(dir)`` -> the http://localhost:PORT/ address of ``dir`` (like ``asv preview``)."""
    servers = []

    def start(directory: Path) -> str:
        srv = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://localhost:{srv.server_address[1]}/"

    yield start
    for srv in servers:
        srv.shutdown()


def _wait(cond, timeout: float = 20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    return cond()


def _requests(driver) -> set[str]:
    urls = set()
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.add(msg["params"]["request"]["url"].split("?")[0])
    return urls


def test_dashboard_renders_offline(site, browser, serve, tmp_path):
    from selenium.webdriver.common.by import By

    html, _ = site
    notice = (html / "vendor" / "NOTICE.md").read_text()
    for pkg in dashboard.PACKAGES.values():
        assert f"{pkg.name}@{pkg.version}" in notice
        for f in pkg.licence_files:
            assert (html / "vendor" / pkg.folder / f).stat().st_size > 100
    url = serve(html)
    browser.get_log("performance")  # drop what came before
    browser.get(url + "index.html")
    # the summary grid: one tile per benchmark, each with its flot plot drawn
    tiles = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".benchmark-container"))
    assert len(tiles) == 5
    assert _wait(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".benchmark-plot canvas")) >= 5)
    # one benchmark's graph over the three commits
    browser.get(url + "index.html" + GRAPH)
    canvas = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#main-graph canvas.flot-base"))
    assert canvas and canvas[0].size["width"] > 400 and canvas[0].size["height"] > 200
    assert browser.current_url.startswith(url + "index.html")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], f"console errors: {errors}"
    outside = {u for u in _requests(browser) if u.startswith("http") and not u.startswith(url)}
    assert outside == set(), f"the page asked the network for {outside}"
    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20_000


def test_asv_page_without_vendoring_fails_offline(site, browser, serve):
    """The control: the same browser shows asv's own page its load-failure notice."""
    _, plain = site
    url = serve(plain)
    browser.get(url + "index.html")
    assert _wait(lambda: browser.current_url.endswith("error.html"), 30), browser.current_url


def test_vendoring_refuses_an_unknown_cdn_and_keeps_an_earlier_copy(site, tmp_path):
    html, _ = site
    copy = shutil.copytree(html, tmp_path / "html")
    dashboard.vendor(copy)  # already vendored: keeps vendor/ and its packages
    assert len(list((copy / "vendor").iterdir())) == len(dashboard.PACKAGES) + 1  # + NOTICE.md
    page = copy / "index.html"
    page.write_text(page.read_text().replace(
        "</head>", '<script src="https://cdn.example.org/new-lib.js"></script></head>'))
    with pytest.raises(RuntimeError, match="does not vendor"):
        dashboard.vendor(copy)


def test_a_tarball_that_does_not_match_its_integrity_is_refused(tmp_path, serve, monkeypatch):
    pkg = dashboard.PACKAGES["jquery"]
    registry = tmp_path / "registry"
    (registry / pkg.name / "-").mkdir(parents=True)
    (registry / pkg.tarball).write_bytes(b"a tampered tarball")
    monkeypatch.setenv("npm_config_registry", serve(registry))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"{pkg.folder}.tgz").write_bytes(b"a corrupt cached copy")
    with pytest.raises(RuntimeError, match="does not match the integrity"):
        dashboard.fetch_package(pkg, cache)
    assert (cache / f"{pkg.folder}.tgz").read_bytes() == b"a corrupt cached copy"  # not replaced
    monkeypatch.setenv("npm_config_registry", "http://localhost:9/")
    with pytest.raises(RuntimeError, match="cannot fetch jquery@3.3.1"):
        dashboard.fetch_package(pkg, cache)
