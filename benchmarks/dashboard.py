"""``asv publish``, then make the dashboard open without the internet.

    .venv/bin/python -m benchmarks.dashboard [--config asv.conf.json] [--no-publish]

asv's ``index.html`` loads jQuery, flot and its plugins, stupidtable, blueimp-md5 and
Bootstrap from three CDNs, so offline the page only shows asv's "failed to load" notice.
This command fetches those libraries' npm packages from the npm registry (each tarball
checked against the sha512 integrity the registry published for it, and cached under
``~/.cache/memloss/npm``, so a second publish needs no network), copies the files the
page uses with each package's licence into ``<html_dir>/vendor/`` (listed in
``vendor/NOTICE.md``) and points every CDN tag at the copy. A CDN tag it does not know
(a newer asv) is an error, not a silent gap. Serve the result with ``asv preview`` (asv's
page loads its data with XHR, which browsers refuse on ``file://``).
Not an asv benchmark module (asv collects nothing here).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Package", "PACKAGES", "CDN", "fetch_package", "vendor", "main"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Package:
    """An npm package version: what to copy out of it and the licence files to keep."""

    name: str
    version: str
    integrity: str  # the registry's dist.integrity (sha512 of the tarball)
    licence: str  # the package.json "license" field
    files: tuple[str, ...]  # paths inside the tarball's package/ folder
    licence_files: tuple[str, ...]

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def tarball(self) -> str:
        return f"{self.name}/-/{self.name}-{self.version}.tgz"


PACKAGES = {p.name: p for p in (
    Package("jquery", "3.3.1",
            "sha512-Ubldcmxp5np52/ENotGxlLe6aGMvmF4R8S6tZjsP6Knsaxd/xp3Zrh50cG93lR6nPXyUFwzN3ZSOQI0wRJNdGg==",
            "MIT", ("dist/jquery.min.js",), ("LICENSE.txt", "external/sizzle/LICENSE.txt")),
    Package("flot", "0.8.3",
            "sha512-xg2otcTJDvS+ERK+my4wxG/ASq90QURXtoM4LhacCq0jQW2jbyjdttbRNqU2cPykrpMvJ6b2uSp6SAgYAzj9tQ==",
            "MIT", ("jquery.flot.js", "jquery.flot.time.js", "jquery.flot.selection.js",
                    "jquery.flot.categories.js"), ("LICENSE.txt",)),
    # no LICENSE file in the package: its package.json and the script's header say MIT
    Package("flot-orderbars", "1.0.0",
            "sha512-Jv51fvzevUjNXEeozpwEKfPjhiZhfiJddv0WHjduUTCmSF+7T5K7C9c9Y1wIVmUhDBv5fLMjgbwKecT0GIKPZA==",
            "MIT", ("js/jquery.flot.orderBars.js",), ("package.json",)),
    # asv asks cdnjs for stupidtable 1.0.1; the npm registry has only 1.1.3 (same API)
    Package("stupid-table-plugin", "1.1.3",
            "sha512-2Vk7XouQPxUQPRe9w0Fu7ZZ8kHLK7rDoLMsCgtKxRNJ7f4dSOGvW9CkHsq5wD6QsaEnWoyLBYH3xOEsrK3yWBg==",
            "MIT", ("stupidtable.min.js",), ("LICENSE",)),
    Package("blueimp-md5", "2.19.0",
            "sha512-DRQrD6gJyy8FbiE4s+bDoXS9hiW3Vbx5uCdwvcCf3zLHL+Iv7LtGHLpr+GZV8rHG8tK766FGYBwRbu8pELTt+w==",
            "MIT", ("js/md5.min.js",), ("LICENSE.txt",)),
    Package("bootstrap", "3.1.1",
            "sha512-TAzqS8E/ISpVHP29gYhy+1NSV+FJwApDVQhDfgLYsIuUDJiqJzH2DfORN5tiu+Ie2iBLrzEG34t4Rf465cigqg==",
            "MIT", ("dist/js/bootstrap.min.js", "dist/css/bootstrap.min.css",
                    "dist/fonts/glyphicons-halflings-regular.eot",
                    "dist/fonts/glyphicons-halflings-regular.svg",
                    "dist/fonts/glyphicons-halflings-regular.ttf",
                    "dist/fonts/glyphicons-halflings-regular.woff"), ("LICENSE",)),
)}

#: CDN address in asv's index.html (a regex) -> (package, file in the package)
CDN = {
    r"https://code\.jquery\.com/jquery-3\.3\.1\.min\.js": ("jquery", "dist/jquery.min.js"),
    r"https://cdnjs\.cloudflare\.com/ajax/libs/flot/0\.8\.3/jquery\.flot\.min\.js":
        ("flot", "jquery.flot.js"),
    r"https://cdnjs\.cloudflare\.com/ajax/libs/flot/0\.8\.3/jquery\.flot\.time\.min\.js":
        ("flot", "jquery.flot.time.js"),
    r"https://cdnjs\.cloudflare\.com/ajax/libs/flot/0\.8\.3/jquery\.flot\.selection\.min\.js":
        ("flot", "jquery.flot.selection.js"),
    r"https://cdnjs\.cloudflare\.com/ajax/libs/flot/0\.8\.3/jquery\.flot\.categories\.min\.js":
        ("flot", "jquery.flot.categories.js"),
    r"https://cdn\.jsdelivr\.net/npm/flot-orderbars@1\.0\.0/js/jquery\.flot\.orderBars\.js":
        ("flot-orderbars", "js/jquery.flot.orderBars.js"),
    r"https://cdnjs\.cloudflare\.com/ajax/libs/stupidtable/1\.0\.1/stupidtable\.min\.js":
        ("stupid-table-plugin", "stupidtable.min.js"),
    r"https://cdnjs\.cloudflare\.com/ajax/libs/blueimp-md5/2\.19\.0/js/md5\.min\.js":
        ("blueimp-md5", "js/md5.min.js"),
    r"https://cdn\.jsdelivr\.net/npm/bootstrap@3\.1\.1/dist/js/bootstrap\.min\.js":
        ("bootstrap", "dist/js/bootstrap.min.js"),
    r"https://cdn\.jsdelivr\.net/npm/bootstrap@3\.1\.1/dist/css/bootstrap\.min\.css":
        ("bootstrap", "dist/css/bootstrap.min.css"),
}
# a <script src> or <link href> that leaves the site (the page's <a href> links may)
_EXTERNAL = re.compile(r"<(script|link)\b[^>]*?\b(src|href)=\"(https?:)?//[^\"]*\"[^>]*>", re.I | re.S)


def _registry() -> str:
    return (os.environ.get("npm_config_registry") or os.environ.get("NPM_CONFIG_REGISTRY")
            or "https://registry.npmjs.org/").rstrip("/") + "/"


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "memloss" / "npm"


def _check(data: bytes, pkg: Package) -> bool:
    algo, _, digest = pkg.integrity.partition("-")
    return base64.b64encode(hashlib.new(algo, data).digest()).decode() == digest


def fetch_package(pkg: Package, cache: Path | None = None) -> bytes:
    """The package's tarball: from the cache, else from the npm registry; either way
    checked against ``pkg.integrity``."""
    cache = Path(cache) if cache is not None else _cache_dir()
    path = cache / f"{pkg.folder}.tgz"
    if path.is_file():
        data = path.read_bytes()
        if _check(data, pkg):
            return data
        log.warning("cached %s does not match its integrity; fetching it again", path)
    url = _registry() + pkg.tarball
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
    except OSError as e:
        raise RuntimeError(f"cannot fetch {pkg.name}@{pkg.version} from {url} ({e}); connect "
                           f"to the npm registry once, or put the tarball at {path}") from None
    if not _check(data, pkg):
        raise RuntimeError(f"{url} does not match the integrity the registry published for "
                           f"{pkg.name}@{pkg.version}: refusing to use it")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


def _extract(pkg: Package, data: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for rel in pkg.files + pkg.licence_files:
            try:
                member = tar.extractfile(f"package/{rel}")
            except KeyError:
                member = None
            if member is None:
                raise RuntimeError(f"{pkg.name}@{pkg.version} has no file {rel}")
            out = dest / pkg.folder / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(member.read())


def _rewrite(html: str, page: Path) -> str:
    """The page with every known CDN tag pointing at ``vendor/``."""

    def local(tag: re.Match) -> str:
        text = tag.group(0)
        for pattern, (name, rel) in CDN.items():
            if re.search(f'"{pattern}"', text):
                text = re.sub(f'"{pattern}"', f'"vendor/{PACKAGES[name].folder}/{rel}"', text)
                # the SRI hashes are those of the CDN's (minified) files, not of these
                return re.sub(r'\s(integrity|crossorigin|referrerpolicy)="[^"]*"', "", text)
        raise RuntimeError(f"{page} loads {tag.group(0)[:120]}..., which benchmarks.dashboard "
                           "does not vendor (a newer asv?): add it to CDN and PACKAGES")

    return _EXTERNAL.sub(local, html)


def vendor(html_dir: Path, cache: Path | None = None) -> list[Package]:
    """Vendor the libraries the published pages in ``html_dir`` load from CDNs; return
    the packages copied."""
    html_dir = Path(html_dir)
    pages = sorted(html_dir.glob("*.html"))
    if not (html_dir / "index.html").is_file():
        raise RuntimeError(f"{html_dir} has no index.html: run `asv publish` first")
    used: set[str] = set()
    rewritten = {}
    for page in pages:
        text = _rewrite(page.read_text(encoding="utf-8"), page)
        rewritten[page] = text
        # pages vendored by an earlier run keep their packages too
        used |= {n for n, p in PACKAGES.items() if f'"vendor/{p.folder}/' in text}
    dest = html_dir / "vendor"
    shutil.rmtree(dest, ignore_errors=True)
    packages = [PACKAGES[n] for n in sorted(used)]
    for pkg in packages:
        _extract(pkg, fetch_package(pkg, cache), dest)
    if packages:
        lines = ["# Third-party files of this dashboard", "",
                 "Copied from the npm registry by `python -m benchmarks.dashboard`; each "
                 "tarball matched the integrity below.", "",
                 "| package | licence | licence file | tarball integrity |", "|---|---|---|---|"]
        lines += [f"| {p.name}@{p.version} | {p.licence} | "
                  f"{', '.join(f'{p.folder}/{f}' for f in p.licence_files)} | `{p.integrity}` |"
                  for p in packages]
        (dest / "NOTICE.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for page, text in rewritten.items():
        page.write_text(text, encoding="utf-8")
    return packages


def _html_dir(config: Path) -> Path:
    try:
        conf = json.loads(config.read_text())
    except (OSError, ValueError) as e:
        raise RuntimeError(f"cannot read the asv config {config}: {e}") from None
    return (config.parent / conf.get("html_dir", "html")).resolve()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=Path("asv.conf.json"))
    ap.add_argument("--no-publish", action="store_true",
                    help="only vendor the pages of an earlier `asv publish`")
    ap.add_argument("--cache", type=Path, help="npm tarball cache (default ~/.cache/memloss/npm)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        html_dir = _html_dir(args.config)
        if not args.no_publish:
            subprocess.run([sys.executable, "-m", "asv", "publish", "--config", str(args.config)],
                           check=True)
        packages = vendor(html_dir, args.cache)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("vendored %s into %s/vendor; serve it offline with `asv preview`",
             ", ".join(f"{p.name}@{p.version}" for p in packages), html_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
