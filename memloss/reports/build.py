"""Build a report from run directories and write it: OUT.html, OUT.pdf and the folder
OUT-data/ (the raw tables as CSV files), completely or not at all.

memloss replaces only what it wrote: OUT-data/.memloss-report.json (the manifest) records
the sha256 of OUT.html, OUT.pdf and every file of OUT-data/, and the checkpoint of each run
the report was made of. A target that exists and is not in the manifest as it is (a user's
file, or one changed since) stops the write with one line naming it; nothing is deleted."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from memloss.core.atomic import file_digest

from .describe import SectionBuilder, describe_runs, headline as describe_headline
from .document import Headline, Report, Section
from .html import render_html
from .pdf import render_pdf
from .runs import RunRecord, read_runs

__all__ = ["report_from_runs", "report_from_records", "write_report", "output_paths",
           "REPORT_MANIFEST", "foreign_files"]

#: the manifest of what ``write_report`` wrote, inside OUT-data/
REPORT_MANIFEST = ".memloss-report.json"

log = logging.getLogger(__name__)


def report_from_runs(paths: Sequence["str | os.PathLike[str]"], *, title: str = "memloss report",
                     subtitle: str = "", lead: Sequence[Section] = (),
                     headline: Headline | None = None, skip: Sequence[str] = (),
                     extra: Sequence[tuple[str, SectionBuilder]] = ()) -> Report:
    """Read, label and describe the runs; see :func:`report_from_records`."""
    return report_from_records(read_runs(paths), title=title, subtitle=subtitle, lead=lead,
                               headline=headline, skip=skip, extra=extra)


def report_from_records(runs: Sequence[RunRecord], *, title: str = "memloss report",
                        subtitle: str = "", lead: Sequence[Section] = (),
                        headline: Headline | None = None, skip: Sequence[str] = (),
                        extra: Sequence[tuple[str, SectionBuilder]] = ()) -> Report:
    """The report of run directories already read (:func:`~memloss.reports.read_runs`):
    ``headline`` first (default: :func:`memloss.reports.describe.headline`), then the
    ``lead`` sections (e.g. the demo's account of what was run), then the standard body
    and appendix (:func:`~memloss.reports.describe.describe_runs` with ``skip`` and
    ``extra``)."""
    if headline is None:
        headline = describe_headline(runs)
    return Report(title, tuple(lead) + tuple(describe_runs(runs, skip=skip, extra=extra)),
                  subtitle, headline)


def output_paths(out: "str | os.PathLike[str]") -> tuple[Path, Path]:
    """``OUT`` -> ``(OUT.html, OUT.pdf)``; a trailing ``.html`` or ``.pdf`` is dropped."""
    out = Path(out)
    if out.suffix.lower() in (".html", ".pdf"):
        out = out.with_suffix("")
    if not out.name or out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file stem such as {out / 'report'}")
    return out.with_name(out.name + ".html"), out.with_name(out.name + ".pdf")


def data_dir(html_path: Path) -> Path:
    """The folder of CSV files beside ``OUT.html``: ``OUT-data``."""
    return html_path.with_name(html_path.stem + "-data")


def _fsynced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _manifest(folder: Path) -> dict | None:
    try:
        obj = json.loads((folder / REPORT_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("files"), dict) else None


def foreign_files(html_path: Path, pdf_path: Path, folder: Path) -> list[str]:
    """The existing targets memloss did not write as they are: OUT.html, OUT.pdf and files
    under OUT-data/ that the manifest does not list with their current sha256."""
    manifest = _manifest(folder) if folder.is_dir() else None
    known: Mapping[str, Any] = (manifest or {}).get("files", {})
    out = []
    for target in (html_path, pdf_path):
        if target.exists() and (not target.is_file()
                                or known.get(target.name) != file_digest(target)):
            out.append(str(target))
    if folder.is_dir():
        for p in sorted(folder.rglob("*")):
            rel = p.relative_to(folder).as_posix()
            if rel == REPORT_MANIFEST or (p.is_dir() and not p.is_symlink()):
                continue
            if p.is_symlink() or not p.is_file() or known.get(f"{folder.name}/{rel}") != file_digest(p):
                out.append(str(p))
    return out


def _refuse_foreign(html_path: Path, pdf_path: Path, folder: Path) -> None:
    foreign = foreign_files(html_path, pdf_path, folder)
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise ValueError(f"{', '.join(foreign[:3])}{more}: not written by memloss report (or "
                         "changed since), and memloss replaces only its own files; move them "
                         "or choose another --out")


def write_report(report: Report, out: "str | os.PathLike[str]", *,
                 sources: Sequence[Mapping[str, Any]] = ()) -> tuple[Path, Path]:
    """Render the report and write OUT.html, OUT.pdf and OUT-data/, completely or not at
    all: everything is rendered and written to temporary files beside the targets first;
    then each is renamed into place, and if a rename fails the ones already replaced are
    put back, so a failure never leaves a new HTML beside a stale PDF. Only files an earlier
    report wrote (its manifest says so) are replaced (:func:`foreign_files`); ``sources``
    (each run and the checkpoint it was read at) go into the manifest."""
    html_path, pdf_path = output_paths(out)
    folder = data_dir(html_path)
    _refuse_foreign(html_path, pdf_path, folder)
    html = render_html(report, data_folder=folder.name)
    pdf = render_pdf(report, data_folder=folder.name)
    tables = {a.name: a.frame.to_csv(index=False, float_format="%.6g").encode("utf-8")
              for a in report.attachments}
    parent = html_path.parent
    parent.mkdir(parents=True, exist_ok=True)
    for target in (html_path, pdf_path):
        if target.is_dir():
            raise ValueError(f"cannot write {target}: it is a directory; give another --out")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"cannot write {folder}: it is a file; give another --out")
    stage = Path(tempfile.mkdtemp(prefix=f".{html_path.stem}.", suffix=".tmp", dir=parent))
    try:
        _fsynced(stage / "html", html.encode("utf-8"))
        _fsynced(stage / "pdf", pdf)
        (stage / "data").mkdir()
        for name, data in tables.items():
            _fsynced(stage / "data" / name, data)
        files = {html_path.name: file_digest(stage / "html"), pdf_path.name: file_digest(stage / "pdf"),
                 **{f"{folder.name}/{n}": file_digest(stage / "data" / n) for n in tables}}
        _fsynced(stage / "data" / REPORT_MANIFEST, (json.dumps(
            {"format": 1, "files": files, "runs": [dict(s) for s in sources]}, indent=2)
            + "\n").encode("utf-8"))
        _refuse_foreign(html_path, pdf_path, folder)  # again: someone may have added a file
        _commit(stage, [(stage / "html", html_path), (stage / "pdf", pdf_path),
                        (stage / "data", folder)])
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log.info("wrote %s, %s and %s/", html_path, pdf_path, folder)
    return html_path, pdf_path


def _commit(stage: Path, moves: list[tuple[Path, Path]]) -> None:
    """Rename each staged file over its target; on failure restore the targets replaced so
    far from their saved copies (kept in ``stage``) and re-raise."""
    saved: list[tuple[Path, Path | None]] = []
    try:
        for i, (src, dst) in enumerate(moves):
            backup = None
            if dst.exists():
                backup = stage / f"old-{i}"
                os.replace(dst, backup)
            saved.append((dst, backup))
            os.replace(src, dst)
    except BaseException:
        for dst, backup in reversed(saved):
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst, ignore_errors=True)
            else:
                dst.unlink(missing_ok=True)
            if backup is not None:
                os.replace(backup, dst)
        raise
