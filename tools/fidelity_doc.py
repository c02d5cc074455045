"""Every generated part of docs/fidelity.md, from the committed results only.

    python tools/fidelity_doc.py            # (make fidelity-doc) rewrite what is stale
    python tools/fidelity_doc.py --check    # exit 1 and one line naming what is stale

What is written, as :data:`CONFIG` (docs/results/fidelity-doc.toml) lists it: the verdict
table the document opens with (:func:`fidelity_tables.replace_block`) and its copies as CSV
and Markdown; one block per word-level table section, between ``<!-- regime: KEY -->`` and
``<!-- /regime -->`` under the section's heading (the commands that trained its rows, the
runs' commits and seeds, every row's seeds, mean, interval and per-seed values
(:func:`fidelity_tables.rows_markdown`) and the memory-loss probes of its key rows
(:func:`fidelity_probes.markdown`)); and the probes' figures. Nothing is read but the
committed CSVs: the trivial baselines come from the committed CSV that
``fidelity_tables.py --trivial-out`` writes where the data are, and a figure drawn from run
directories (validation curves) is shown, not redrawn. A PNG's bytes depend on matplotlib's
version and fonts as well as on the numbers: ``--skip-figures`` leaves the figures out.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fidelity_probes  # noqa: E402  (a sibling tool)
import fidelity_tables  # noqa: E402

from memloss.core.atomic import atomic_write_bytes  # noqa: E402
from memloss.evidence import read_results, read_trivial, verdicts_frame  # noqa: E402

__all__ = ["CONFIG", "Section", "Config", "read_config", "regime_block", "outputs", "main"]

ROOT = Path(__file__).resolve().parents[1]
#: the metadata of the generated parts, relative to the repository root
CONFIG = Path("docs/results/fidelity-doc.toml")
REGIME_END = "<!-- /regime -->"
#: a section's ``regime`` -> its name in the text and the preset constant that defines it
#: (None: each ``-cpu`` preset's own size, as for the synthetic tasks)
REGIMES = {"word": ("word-level regime", "WORD_CPU"),
           "character": ("character-level regime", "CHAR_CPU"),
           "mnist": ("permuted-MNIST regime", "MNIST_CPU"),
           "presets": ("CPU size of its `-cpu` presets", None)}


def _regime_begin(key: str) -> str:
    return f"<!-- regime: {key} -->"


@dataclasses.dataclass(frozen=True)
class Section:
    """One word-level table section of the document (a ``[[regime.section]]``)."""
    key: str
    heading: str
    commands: tuple[str, ...]
    rows: tuple[str, ...]
    what: str = ""
    probes: tuple[str, ...] = ()
    curves: str = ""
    #: which CPU regime trained the rows (a key of :data:`REGIMES`)
    regime: str = "word"
    #: the section's results CSV, where not ``[regime] results``
    results: str = ""
    curves_caption: str = ""


@dataclasses.dataclass(frozen=True)
class Config:
    """docs/results/fidelity-doc.toml; paths relative to the repository root."""
    doc: str
    verdict_results: tuple[str, ...]
    trivial: str
    verdicts_csv: str
    verdicts_markdown: str
    probes_csv: str
    figures: str
    results: str
    sections: tuple[Section, ...]


def read_config(path: Path) -> Config:
    """The metadata file; a missing key or an unknown one is one clear error."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        v, p, r = raw["verdicts"], raw["probes"], raw["regime"]
        sections = tuple(Section(**{k: tuple(x) if isinstance(x, list) else x
                                    for k, x in s.items()}) for s in r["section"])
        return Config(doc=raw["doc"], verdict_results=tuple(v["results"]), trivial=v["trivial"],
                      verdicts_csv=v["csv"], verdicts_markdown=v["markdown"],
                      probes_csv=p["csv"], figures=p["figures"], results=r["results"],
                      sections=sections)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not TOML ({e})") from None
    except KeyError as e:
        raise ValueError(f"{path} lacks the key {e}; see the keys its comments list") from None
    except TypeError as e:  # a section with an unknown or missing key
        raise ValueError(f"{path}: a [[regime.section]] is wrong: {e}") from None


def _seeds(sel: pd.DataFrame) -> str:
    counts = sorted(set(sel.groupby("row")["seed"].nunique()))
    return (f"{counts[0]} seeds" if len(counts) == 1
            else f"{counts[0]} to {counts[-1]} seeds per row")


def _commits(sel: pd.DataFrame) -> str:
    found = sorted({str(c)[:7] for c in sel.get("commit", pd.Series(dtype=str)).dropna()} - {""})
    if not found:
        return "commit not recorded"
    return ("commit " if len(found) == 1 else "commits ") + ", ".join(found)


def regime_block(section: Section, config: Config, results: pd.DataFrame, curves: dict,
                 probes: pd.DataFrame) -> str:
    """The text between a section's markers: what was run, the rows, the probes."""
    source = section.results or config.results
    sel = results[results["row"].astype(str).str.startswith(section.rows)]
    if sel.empty:
        raise ValueError(f"no row of {source} starts with {' or '.join(section.rows)} "
                         f"(section '{section.key}' of {CONFIG})")
    if section.regime not in REGIMES:
        raise ValueError(f"section '{section.key}' of {CONFIG}: unknown regime "
                         f"'{section.regime}'; one of {', '.join(REGIMES)}")
    name, constant = REGIMES[section.regime]
    run = " and ".join(f"`{c}`" for c in section.commands)
    where = f"`memloss.presets.base.{constant}`, " if constant else ""
    text = (f"**At the {name}** ({where}{_commits(sel)}, "
            f"{_seeds(sel)}; {run}{': ' + section.what if section.what else ''}; per-seed "
            f"values in `{source}`; the verdict is in the table this document opens "
            "with)" + (f"; validation curves: `{section.curves}`" if section.curves else "")
            + ":\n\n"
            f"`python tools/fidelity_tables.py --results {source} --rows "
            f"{' '.join(section.rows)}` (split `valid`: the validation score of the weights "
            "the preset scores; `valid (last)`: of the final weights (a classifier's "
            "`valid loss (last)`: their validation loss, the curve the verdict rule reads); "
            "`train`: the "
            "training-mode score of the last epoch; a diverged run has no score on any "
            "split):\n\n" + fidelity_tables.rows_markdown(results, section.rows, curves))
    if section.curves:
        image = os.path.relpath(section.curves, Path(config.doc).parent)
        text += f"\n![{section.curves_caption}]({image})\n"
    parts = []
    for name in section.probes:
        group = probes[probes["cpu"] & (probes["paper"] + ", " + probes["table"] == name)]
        if group.empty:
            raise ValueError(f"{config.probes_csv} has no CPU-size probes of '{name}' "
                             f"(section '{section.key}' of {CONFIG})")
        parts.append(fidelity_probes.markdown(group))
    if parts:
        text += ("\nThe memory-loss probes on the key rows (`python tools/fidelity_probes.py "
                 f"--from-csv {config.probes_csv} --figures {config.figures}`; the runs' "
                 "probes: `python tools/fidelity_probes.py SWEEP... --csv ...`):\n\n"
                 + "\n".join(parts))
    return "\n" + text + "\n"


def _replace_regime(text: str, section: Section, block: str, doc: str) -> str:
    begin = _regime_begin(section.key)
    start = text.find(begin)
    end = text.find(REGIME_END, start)
    after = text.find("<!-- regime: ", start + len(begin))
    if start < 0 or end < 0 or 0 <= after < end:
        raise ValueError(f"{doc} has no '{begin}' ... '{REGIME_END}' block; put the two "
                         f"markers under '{section.heading}'")
    line = text.rfind("\n## ", 0, start)
    if line < 0 or not text.startswith("\n" + section.heading, line):
        under = text[line + 1:text.find("\n", line + 1)] if line >= 0 else "no heading"
        raise ValueError(f"{doc}: '{begin}' lies under '{under}', not under "
                         f"'{section.heading}' ({CONFIG})")
    return text[:start + len(begin)] + block + text[end:]


def doc_blocks(config: Config, root: Path, verdicts: pd.DataFrame
               ) -> dict[str, Callable[[str], str]]:
    """Block name -> the function that rewrites that block of the document's text."""
    read = {path: read_results(root / path)
            for path in {s.results or config.results for s in config.sections}}
    probes = fidelity_probes.read_csv(root / config.probes_csv)
    table = fidelity_tables.verdicts_markdown(verdicts)
    blocks: dict[str, Callable[[str], str]] = {
        "verdicts block": lambda text: fidelity_tables.replace_block(text, table)}
    for s in config.sections:
        block = regime_block(s, config, *read[s.results or config.results], probes)
        blocks[f"regime block '{s.key}'"] = (
            lambda text, s=s, block=block: _replace_regime(text, s, block, config.doc))
    return blocks


def outputs(root: Path, figures: bool = True) -> tuple[dict[str, bytes], list[str]]:
    """What the committed results give: repository path -> bytes of every generated file,
    and the names of the document's blocks whose text differs from the committed one."""
    config = read_config(root / CONFIG)
    results, curves = read_results(*(root / p for p in config.verdict_results))
    verdicts = verdicts_frame(results, curves, read_trivial(root / config.trivial))
    doc = (root / config.doc).read_text(encoding="utf-8")
    keys = {s.key for s in config.sections}
    for found in re.findall(r"<!-- regime: (.*?) -->", doc):
        if found not in keys:
            raise ValueError(f"{config.doc} has a block '{_regime_begin(found)}' that {CONFIG} "
                             "does not list; add its [[regime.section]] or remove the markers")
    text, stale = doc, []
    for name, rewrite in doc_blocks(config, root, verdicts).items():
        if rewrite(doc) != doc:
            stale.append(name)
        text = rewrite(text)
    files = {config.doc: text.encode(),
             config.verdicts_csv: verdicts.to_csv(index=False).encode(),
             config.verdicts_markdown: fidelity_tables.verdicts_markdown(verdicts).encode()}
    if figures:
        with tempfile.TemporaryDirectory() as tmp:
            frame = fidelity_probes.read_csv(root / config.probes_csv)
            for png in fidelity_probes.figures(frame, Path(tmp)):
                files[f"{config.figures}/{png.name}"] = png.read_bytes()
    return files, stale


def _differs(path: Path, data: bytes) -> bool:
    return not path.is_file() or path.read_bytes() != data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 naming what differs from what the "
                             "committed results give")
    parser.add_argument("--skip-figures", action="store_true",
                        help="leave the probes' figures out (their PNG bytes depend on "
                             "matplotlib's version and fonts)")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help=f"the repository (default: {ROOT}); {CONFIG} lists the files")
    args = parser.parse_args(argv)
    try:
        files, stale_blocks = outputs(args.root, figures=not args.skip_figures)
        stale = [p for p, data in files.items() if _differs(args.root / p, data)]
        if args.check:
            if not stale:
                return 0
            doc = read_config(args.root / CONFIG).doc
            named = [f"{doc} ({', '.join(stale_blocks)})" if p == doc else p for p in stale]
            png = ("; a PNG's bytes also depend on matplotlib's version (--skip-figures "
                   "checks the rest)" if any(p.endswith(".png") for p in stale) else "")
            sys.stderr.write(f"stale: {'; '.join(named)}: the committed results give other "
                             f"bytes; run `python tools/fidelity_doc.py` (make fidelity-doc)"
                             f"{png}\n")
            return 1
        for p in stale:
            (args.root / p).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(args.root / p, files[p])
            sys.stdout.write(f"wrote {p}\n")
    except (ValueError, OSError) as e:
        parser.error(str(e).splitlines()[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
