"""Markdown tables for docs/fidelity.md from sweep directories.

    python tools/fidelity_tables.py runs/semeniuta-t2 [more sweep or run dirs ...]

For every paper table the runs reproduce and every split the paper reports: one row per
table row with the seeds, the mean, the 95% interval of the mean and the per-seed values
(seed order), beside the paper's number; then Kendall's tau-b between the paper's and the
measured ordering (the same numbers ``memloss collect`` writes to ``.summary`` and
``.agreement``) and the measured ordering, best first. A row whose runs diverged (a
non-finite loss, gradient or weights, recorded in the sweep's ``.sweep/errors/NAME.json``:
:func:`memloss.evidence.diverged_runs`) says "diverged (k of n seeds)" and where, and ranks
last (:mod:`memloss.evidence`, rule step 0). Rows without a finished or diverged run are
left out; the table says how many rows it covers.

Every language-model or classification table is followed by the trivial baseline of its
data (:mod:`memloss.tasks.baselines`: the unigram model, the majority class) on each split,
and by the commits its runs were trained on.

``--curves FILE.png`` also draws the validation metric over training steps of every run,
one colour per table row (thin lines: seeds; thick: their mean), for the papers' figures,
which compare curves rather than numbers.

``--verdicts`` prints, instead of the tables, one row per finding of the papers
(:data:`memloss.presets.findings.FINDINGS`) with its verdict by the rule of
:mod:`memloss.evidence` (reproduced, contradicted, not tested and why) and the evidence;
``--verdicts-csv FILE`` also writes that table as CSV, ``--doc FILE.md`` into a document
between its markers (:data:`DOC_BEGIN`, :data:`DOC_END`). ``--findings`` prints the findings
list (no runs needed). ``--results-out FILE.csv`` writes what the verdicts need (one value
per run and split, one row per diverged run, and ``FILE.curves.csv``: the validation
curves), so that
``--results FILE.csv [FILE.csv ...] --verdicts`` regenerates them without the run
directories (the trivial baselines then come from the presets' task settings and the data, or from
``--trivial FILE.csv``, which ``--trivial-out FILE.csv`` writes, where the data are absent).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from memloss.collect import find_runs
from memloss.core.atomic import atomic_write_text
from memloss.evidence import (DivergedRun, curve_quantity, diverged_runs, diverged_where,
                              preset_trivial, read_results, read_trivial, seed_span,
                              trivial_baselines, verdict_table, verdicts_frame, write_results,
                              write_trivial)
from memloss.presets import PRESETS
from memloss.presets.findings import FINDINGS
from memloss.reports.paper_tables import _interval, paper_measurements, rank_agreement, summarize
from memloss.reports.runs import RunRecord, read_run
from memloss.reports.wording import axis_label, counted, metric, x_axis

__all__ = ["markdown", "curves", "rows_markdown", "verdicts_markdown", "findings_markdown",
           "replace_block", "collect", "DOC_BEGIN", "DOC_END", "main"]


def _g(v: float) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _diverged_cell(k: int, n: int) -> str:
    return f"diverged ({k} of {n} seeds)"


def _seeds_cell(seeds: Sequence[int]) -> str:
    """How many seeds, and which where they are not 0, 1, ..., n-1 (a sample of other
    seeds, such as a confirmatory one)."""
    got = set(int(s) for s in seeds)
    return (str(len(got)) if got == set(range(len(got)))
            else f"{len(got)} (seeds {seed_span(got)})")


def _per_seed(finite: dict[int, float], down: dict[int, str]) -> str:
    """Per-seed values in seed order, "diverged" for a diverged seed."""
    return ", ".join("diverged" if s in down else _g(finite[s])
                     for s in sorted(set(finite) | set(down)))


def markdown(long: pd.DataFrame, trivial: dict | None = None,
             diverged: Sequence[DivergedRun] = ()) -> str:
    """The tables, one per (paper, table, size, split), as Markdown text. ``trivial``:
    (preset row, cpu, split) -> the trivial baseline of that row's data
    (:func:`memloss.evidence.trivial_baselines`), shown under each table. ``diverged``: runs
    that diverged (:func:`memloss.evidence.diverged_runs`); their rows say "diverged (k of n
    seeds)" and where, and rank last."""
    summary = summarize(long)
    agreement = rank_agreement(summary)
    # (paper, table, cpu, split) -> preset -> seed -> where it diverged
    down: dict[tuple, dict[str, dict[int, str]]] = {}
    for d in diverged:
        preset = PRESETS.get(d.preset_name)
        for split in preset.reported:
            key = (preset.paper, preset.table, bool(d.cpu), split)
            down.setdefault(key, {}).setdefault(preset.name, {})[int(d.seed)] = d.at
    summary = summary[summary["seeds"] > 0]
    keys = list(dict.fromkeys([*(tuple(k) for k in summary[["paper", "table", "cpu", "split"]]
                                 .itertuples(index=False, name=None)), *down]))
    parts: list[str] = []
    for paper, table, cpu, split in keys:
        group = summary[(summary["paper"] == paper) & (summary["table"] == table)
                        & (summary["cpu"] == cpu) & (summary["split"] == split)]
        failed = down.get((paper, table, bool(cpu), split), {})
        name = (str(group["metric"].iloc[0]) if not group.empty
                else PRESETS.get(next(iter(failed))).metric)
        runs = long[(long["paper"] == paper) & (long["table"] == table) & (long["cpu"] == cpu)
                    & (long["split"] == split)]
        only_down = [p for p in failed if p not in set(group["preset"])]
        lines = [f"**{paper}, {table}{' (CPU size)' if cpu else ''}, {split} {name}** "
                 f"({len(group) + len(only_down)} rows)", "",
                 "| row | seeds | mean | 95% interval | per seed | paper |",
                 "|---|---|---|---|---|---|"]
        last: list[str] = []  # the rows with diverged seeds, ranked last
        for r in group.itertuples():
            seeds = runs[runs["preset"] == r.preset].sort_values("seed")
            at = failed.get(r.preset, {})
            finite = {int(s): float(v) for s, v in zip(seeds["seed"], seeds["value"])}
            if at:
                n = len(set(finite) | set(at))
                lines.append(f"| {r.row} | {n} | {_diverged_cell(len(at), n)} | - | "
                             f"{_per_seed(finite, at)} ({_cell(diverged_where(at))}) | "
                             f"{r.bound}{r.reported:g} |")
                last.append(f"{r.row} {_diverged_cell(len(at), n)}")
                continue
            per_seed = ", ".join(_g(v) for v in seeds["value"])
            interval = "-" if math.isnan(r.ci_low) else f"[{_g(r.ci_low)}, {_g(r.ci_high)}]"
            lines.append(f"| {r.row} | {r.seeds} | {_g(r.mean)} | {interval} | {per_seed} | "
                         f"{r.bound}{r.reported:g} |")
        for preset_name in only_down:
            preset, at = PRESETS.get(preset_name), failed[preset_name]
            lines.append(f"| {preset.row} | {len(at)} | {_diverged_cell(len(at), len(at))} | - "
                         f"| {_per_seed({}, at)} ({_cell(diverged_where(at))}) | "
                         f"{preset.bounds.get(split, '')}{preset.reported[split]:g} |")
            last.append(f"{preset.row} {_diverged_cell(len(at), len(at))}")
        tau = agreement[(agreement["paper"] == paper) & (agreement["table"] == table)
                        & (agreement["cpu"] == cpu) & (agreement["split"] == split)]
        lines.append("")
        if not tau.empty and tau["rows"].iloc[0] >= 2:
            t = tau.iloc[0]
            lines.append(f"Kendall's tau-b, paper against measured ordering: {_g(t.kendall_tau)} "
                         f"over {t.rows} rows (p = {_g(t.p_value)})"
                         + ("; the rows that diverged in every seed are not in it" if only_down
                            else "") + ".")
        order = group[~group["preset"].isin(list(failed))].sort_values(
            "mean", ascending=metric(name).lower_is_better)
        lines.append("Measured ordering, best first (a diverged run last): "
                     if failed else "Measured ordering, best first: ")
        lines[-1] += "; ".join([*(f"{r.row} {_g(r.mean)}" for r in order.itertuples()),
                                *last]) + "."
        if trivial:
            base_split = str(split).replace("_mc", "")
            rows_here = {PRESETS.get(p).cpu_of or p for p in [*group["preset"], *only_down]
                         if p in PRESETS}
            values = sorted({trivial[k] for k in trivial
                             if k[1] == bool(cpu) and k[2] == base_split and k[0] in rows_here})
            if values:
                lines.append(f"Trivial baseline of the same data ({base_split}): "
                             + ", ".join(_g(v) for v in values) + ".")
        commits = sorted(set(runs["commit"]) - {""}) if "commit" in runs else []
        lines.append("Commits: " + (", ".join(c[:12] for c in commits) if commits
                                    else "not recorded (runs before commits were recorded)")
                     + ".")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def curves(runs: Sequence[RunRecord], out: Path) -> None:
    """Validation metric over steps, per table row (mean over seeds, and each seed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[str, list[tuple[list[int], list[float]]]] = {}
    name = ""
    for run in runs:
        preset = (run.config.get("info") or {}).get("preset") or {}
        name = name or str(preset.get("metric", ""))
        points = [(int(m["step"]), float(m[f"valid_{name}"])) for m in run.metrics
                  if f"valid_{name}" in m and "step" in m]
        if points:
            steps, values = zip(*sorted(points))
            rows.setdefault(str(preset.get("row", run.name)), []).append((list(steps),
                                                                         list(values)))
    if not rows:
        raise SystemExit("no run has validation scores over steps to draw")
    fig, ax = plt.subplots(figsize=(11, 4.5))
    palette = plt.get_cmap("tab20" if len(rows) > 10 else "tab10")
    for i, (row, lines) in enumerate(sorted(rows.items())):
        colour = palette(i)
        for steps, values in lines:
            ax.plot(steps, values, color=colour, alpha=0.35, linewidth=0.8)
        common = sorted(set.intersection(*(set(s) for s, _ in lines)))
        mean = [sum(v[s.index(x)] for s, v in lines) / len(lines) for x in common]
        ax.plot(common, mean, color=colour, linewidth=2.0, label=f"{row} ({counted(len(lines), 'seed')})")
    ax.set_xlabel(x_axis("step"))
    ax.set_ylabel(f"validation {axis_label(name)}")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def rows_markdown(results: pd.DataFrame, prefixes: Sequence[str],
                  curves: dict | None = None) -> str:
    """Every row of ``results`` (:func:`memloss.evidence.read_results`) whose preset starts
    with one of ``prefixes``, every split it has: seeds, mean, the 95% interval of the mean,
    the per-seed values (seed order; the seeds named where they are not 0 to n-1) and the
    paper's number; with ``curves``, each row's
    last validation value too (what the final weights reach), in the quantity of the curves
    (:func:`memloss.evidence.curve_quantity`: the metric, or a classifier's loss).
    Rows with and without a paper number alike (a baseline the paper does not print). A row
    with diverged seeds says "diverged (k of n seeds)" and where instead of a mean, on
    every split it has a value for and every split the paper reports (a diverged run
    scores on none)."""
    sel = results[results["row"].astype(str).str.startswith(tuple(prefixes))]
    down_sel = sel[sel["status"] == "diverged"] if "status" in sel else sel.iloc[:0]
    at_col = down_sel["diverged_at"] if "diverged_at" in down_sel else [""] * len(down_sel)
    down: dict[str, dict[int, str]] = {}
    for r, seed, at in zip(down_sel["row"], down_sel["seed"], at_col):
        down.setdefault(str(r), {})[int(seed)] = str(at)
    sel = sel.drop(down_sel.index)
    lines = ["| row | preset | split | seeds | mean | 95% interval | per seed | paper |",
             "|---|---|---|---|---|---|---|---|"]
    order = {"train": 0, "valid": 1, "valid_last": 2, "test": 3, "test_mc": 4}
    frames = [sel[["row", "cpu", "split", "seed", "value"]]]
    if curves:
        last = [{"row": r, "cpu": c, "split": "valid_last", "seed": s, "value": v[-1]}
                for (r, c, s), v in curves.items() if str(r).startswith(tuple(prefixes)) and v]
        frames.append(pd.DataFrame(last, columns=["row", "cpu", "split", "seed", "value"]))
    data = pd.concat(frames, ignore_index=True)
    entries: list[tuple[str, int, str]] = []
    for (row, split), g in data.groupby(["row", "split"]):
        g = g.sort_values("seed")
        v = g["value"].to_numpy(float)
        preset = PRESETS.get(str(row))
        paper = preset.reported.get(split)
        label = split
        if split == "valid_last":  # the curve the verdict rule reads: a classifier's loss
            quantity = curve_quantity(preset.metric)[0]
            label = "valid (last)" if quantity == preset.metric else f"valid {quantity} (last)"
        at = down.get(str(row), {})
        if at:
            finite = {int(s): float(x) for s, x in zip(g["seed"], v)}
            n = len(set(finite) | set(at))
            text = (f"| {_cell(preset.row)} | `{row}` | {label} | "
                    f"{_seeds_cell(set(finite) | set(at))} | {_diverged_cell(len(at), n)} | - | "
                    f"{_per_seed(finite, at)} ({_cell(diverged_where(at))}) | {_g(paper)} |")
        else:
            mean, sd, low, high = _interval(v)
            interval = f"[{_g(low)}, {_g(high)}]" if sd > 0 else "-"  # nan > 0: one seed
            text = (f"| {_cell(preset.row)} | `{row}` | {label} | {_seeds_cell(g['seed'])} | "
                    f"{_g(mean)} | "
                    f"{interval} | {', '.join(_g(x) for x in v)} | {_g(paper)} |")
        entries.append((str(row), order.get(split, 9), text))
    shown = {(str(r), str(s)) for r, s in zip(data["row"], data["split"])}
    for row in sorted(down):
        preset, at = PRESETS.get(row), down[row]
        splits = [s for s in order if s in preset.reported] or ["-"]
        for split in [s for s in splits if (row, s) not in shown]:
            entries.append((row, order.get(split, 9),
                            f"| {_cell(preset.row)} | `{row}` | {split} | {_seeds_cell(at)} | "
                            f"{_diverged_cell(len(at), len(at))} | - | {_per_seed({}, at)} "
                            f"({_cell(diverged_where(at))}) | {_g(preset.reported.get(split))} |"))
    lines += [text for _, _, text in sorted(entries, key=lambda e: (e[0], e[1]))]
    return "\n".join(lines) + "\n"


def _trivial_values(text: str) -> str:
    """``"row:split value; ..."`` -> the distinct ``split value`` pairs, in order."""
    seen: dict[str, None] = {}
    for part in filter(None, (p.strip() for p in str(text).split(";"))):
        ref, _, value = part.rpartition(" ")
        seen[f"{ref.rpartition(':')[2]} {value}"] = None
    return "; ".join(seen)


def verdicts_markdown(table: pd.DataFrame) -> str:
    """The verdict table (:func:`memloss.evidence.verdict_table`) as Markdown: one row per
    finding with the evidence (means, intervals, seeds), the trivial baseline the rows were
    held to (the unigram model or the majority class, per split) and the runs' commits."""
    lines = ["| paper | where | finding | size | verdict | reason / evidence | trivial baseline "
             "| commits |", "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        why = r.reason if r.verdict != "reproduced" else r.evidence
        if r.verdict == "contradicted":
            why = f"{r.reason} (all comparisons: {r.evidence})"
        lines.append(f"| {r.paper} | {r.where} | {_cell(r.claim)} | {r.size} | **{r.verdict}** "
                     f"| {_cell(why)} | {_cell(_trivial_values(r.trivial)) or '-'} "
                     f"| {r.commits or '-'} |")
    return "\n".join(lines) + "\n"


#: the markers around the generated verdict table in a document (``--doc``)
DOC_BEGIN = "<!-- verdicts: written by tools/fidelity_tables.py --doc; do not edit by hand -->"
DOC_END = "<!-- /verdicts -->"


def replace_block(text: str, block: str) -> str:
    """``text`` with the part between :data:`DOC_BEGIN` and :data:`DOC_END` replaced by
    ``block``; a document without both markers is an error."""
    start, end = text.find(DOC_BEGIN), text.find(DOC_END)
    if start < 0 or end < start:
        raise ValueError(f"no '{DOC_BEGIN}' ... '{DOC_END}' block to replace; put the two "
                         "markers where the verdict table goes")
    return text[:start + len(DOC_BEGIN)] + "\n\n" + block + "\n" + text[end:]


def findings_markdown() -> str:
    """Every finding: id, paper, where, the paper's words, the comparison memloss makes."""
    lines = ["| id | paper | where | the paper's words | measured as (split) |",
             "|---|---|---|---|---|"]
    for f in FINDINGS.values():
        lines.append(f"| `{f.id}` | {f.paper.split(',')[0]} | {f.where} | \"{_cell(f.quote)}\" "
                     f"| {_cell(f.claim)} ({f.split}) |")
    return "\n".join(lines) + "\n"


def collect(dirs: Sequence[str | Path]) -> tuple[list[RunRecord], list[DivergedRun]]:
    """The run directories at or below ``dirs`` and the runs their sweeps record as
    diverged (:func:`memloss.evidence.diverged_runs`); a sweep directory whose every run
    diverged (no run directory kept) is one of them."""
    paths: list[Path] = []
    diverged: list[DivergedRun] = []
    for d in dirs:
        found = diverged_runs([d]) if Path(d).exists() else []
        try:
            paths += find_runs([d])
        except ValueError:
            if not found:
                raise
        diverged += found
    return [read_run(p) for p in dict.fromkeys(paths)], list(dict.fromkeys(diverged))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", help="sweep or run directories")
    parser.add_argument("--curves", type=Path, help="also draw validation curves into this PNG")
    parser.add_argument("--verdicts", action="store_true",
                        help="print the verdict of every finding (memloss.evidence) instead")
    parser.add_argument("--verdicts-csv", type=Path, help="also write the verdicts as CSV")
    parser.add_argument("--findings", action="store_true",
                        help="print the findings list (no runs needed)")
    parser.add_argument("--results", type=Path, nargs="+",
                        help="with --verdicts: read the results written by --results-out "
                             "(one or more files) instead of run directories")
    parser.add_argument("--doc", type=Path,
                        help="with --results and --verdicts: also write the verdict table into this Markdown "
                             "file, between its markers (docs/fidelity.md)")
    parser.add_argument("--rows", nargs="+", metavar="PREFIX",
                        help="with --results: print every row whose preset starts with a "
                             "PREFIX (seeds, mean, interval, per seed, paper) instead")
    parser.add_argument("--trivial", type=Path,
                        help="with --results: the trivial baselines from this CSV (written by "
                             "--trivial-out) instead of computing them from the data")
    parser.add_argument("--trivial-out", type=Path,
                        help="with --results: also write the trivial baselines used to this CSV")
    parser.add_argument("--results-out", type=Path,
                        help="write the runs' results and validation curves (CSV) for --results")
    args = parser.parse_args(argv)
    if args.findings:
        sys.stdout.write(findings_markdown())
        return 0
    alone = [o for o, v in (("--rows", args.rows), ("--trivial", args.trivial),
                            ("--trivial-out", args.trivial_out), ("--doc", args.doc)) if v]
    if alone and args.results is None:
        parser.error(f"{alone[0]} goes with --results FILE.csv (the committed results), not "
                     "with run directories")
    if args.doc and not (args.verdicts or args.verdicts_csv):
        parser.error("--doc writes the verdict table: give --verdicts too")
    if args.results is not None:
        if args.dirs or not (args.verdicts or args.verdicts_csv or args.rows):
            parser.error("--results FILE.csv goes with --verdicts or --rows and no run "
                         "directories")
        try:
            results, valid_curves = read_results(*args.results)
            if args.rows:
                sys.stdout.write(rows_markdown(results, args.rows, valid_curves))
                return 0
            trivial: dict = {}
            if args.trivial is not None:
                trivial = read_trivial(args.trivial)
            else:
                for cpu in set(results["cpu"]):
                    trivial.update(preset_trivial(results[results["cpu"] == cpu]["row"],
                                                  bool(cpu)))
            if args.trivial_out is not None:
                write_trivial(trivial, args.trivial_out)
            table = verdicts_frame(results, valid_curves, trivial)
            if args.verdicts_csv:
                table.to_csv(args.verdicts_csv, index=False)
            if args.doc:
                doc = replace_block(args.doc.read_text(encoding="utf-8"), verdicts_markdown(table))
                atomic_write_text(args.doc, doc)
        except (ValueError, OSError) as e:
            parser.error(str(e))
        sys.stdout.write(verdicts_markdown(table))
        return 0
    if not args.dirs:
        parser.error("give sweep or run directories (or --findings, or --results FILE.csv)")
    try:  # a missing or unreadable run, an unwritable PNG: one line, exit 2
        runs, diverged = collect(args.dirs)
        if args.results_out is not None:
            write_results(runs, args.results_out, diverged)
        if args.verdicts or args.verdicts_csv:
            table = verdict_table(runs, diverged=diverged)
            if args.verdicts_csv:
                table.to_csv(args.verdicts_csv, index=False)
            sys.stdout.write(verdicts_markdown(table))
        else:
            sys.stdout.write(markdown(paper_measurements(runs), trivial_baselines(runs),
                                      diverged))
        if args.curves is not None:
            curves(runs, args.curves)
    except (ValueError, OSError) as e:
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
