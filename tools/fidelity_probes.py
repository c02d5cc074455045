"""The memory-loss probes beside the fidelity tables: does the scheme the paper says loses
memory lose it, measured?

    python tools/fidelity_probes.py /work/sweeps/semeniuta-t2-cpu [more sweep or run dirs ...] \\
        --out /tmp/probes --csv fidelity-cpu-probes.csv --figures docs/img [--markdown FILE.md]
    python tools/fidelity_probes.py --from-csv fidelity-cpu-probes.csv --figures docs/img

For every paper table the finished runs (those with ``final.json``) belong to, the key rows
are chosen by the scheme each run was trained with (``config.json``), never by row name: one
row per scheme family (the scheme's recurrent part: ``none``, ``moon``, ``semeniuta``,
``gal``, ``zoneout``...; a row with forward dropout only is the family ``zaremba``), and
within a family the row whose recurrent part uses its paper's own sampling (the scheme's
default), then the row without forward dropout, then the highest rate (``--rows all``
probes every row). On each seed's network, with the weights the preset scores
(``final.json``'s ``weights``), three probes run at small sizes (:data:`PARAMS`), each on
the first test batch made ``--steps-factor`` times the trained length (a stream's ``bptt``
or the task's ``length``), from a zero state:

* ``state-decay``: the memory-state norm (``||c_t||`` of an LSTM) under deterministic
  inference and with the other scaling convention, relative to training mode (masks on)
  at the last step, and the fitted per-step factor of the norm;
* ``gradient-flow``: the slope of ``ln ||dL_T/dc_t||`` over ``t`` for the last-step loss
  (steeper = the last step's training signal fades faster going back);
* ``test-time-scaling``: the task's metric on those sequences per inference mode
  (deterministic, other scaling, MC average, one training-mode sample).

Output: a CSV of those numbers (one row per run and number: ``paper, table, cpu, row,
preset, family, scheme, seed, weights, quantity, mode, value``), then per table a Markdown
block (key rows: mean over seeds and range, and one sentence computed from the numbers:
which row's state fades at test, by how much) and one PNG per table under ``--figures``
(one panel per quantity, rows as groups, seeds as points, modes as colours).
``--from-csv FILE`` regenerates the Markdown and the figures without the run directories.
The probes' own files go to ``--out DIR/<sweep>/<run>/`` (never into the run directory) and
are reused when they already hold the same parameters and checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

__all__ = ["PARAMS", "QUANTITIES", "FADE", "EXPLODES", "family", "key_runs", "probe_run_numbers",
           "results_frame", "sentence", "markdown", "figure", "main"]

log = logging.getLogger("fidelity_probes")

#: a training-mode memory state that grows by more than this factor per step explodes
#: (Semeniuta et al. 2016, Eq. 18: per-sequence hidden-state dropout with inverted scaling)
EXPLODES = 1.05

#: the probe sizes (small: about 10 s of one CPU core per run of a 1 x 256 word LSTM)
PARAMS: dict[str, dict[str, Any]] = {
    "state-decay": {"samples": 4, "batch_size": 16, "split": "test"},
    "gradient-flow": {"samples": 2, "batch_size": 16, "split": "test", "power_iters": 5,
                      "jacobian_stride": 20},
    "test-time-scaling": {"samples": 4, "batch_size": 64, "max_batches": 1, "factors": (1.0,)},
}
#: a row's state fades at test when its deterministic/training-mode norm ratio is below
#: this in every seed (and grows when above its inverse in every seed)
FADE = 0.9
#: quantity -> (words, unit); the task metrics are described by the metric
QUANTITIES: dict[str, tuple[str, str]] = {
    "state_ratio": ("memory-state norm at the last step, relative to training mode", "ratio"),
    "state_factor": ("fitted per-step factor of the memory-state norm", "factor per step"),
    "grad_slope": ("slope of ln ||dL_T/ds_t|| over t, last-step loss", "per step"),
    "steps": ("steps unrolled by state-decay and gradient-flow", "steps"),
    "scaling_steps": ("longest sequence test-time-scaling scored", "steps"),
    "cpu_seconds": ("CPU time to load the run and run the three probes", "s"),
}
#: panel titles of the figures
TITLES = {"state_ratio": "state at test vs. training mode", "state_factor": "state growth per step",
          "grad_slope": "gradient fade going back"}
COLUMNS = ["paper", "table", "cpu", "row", "preset", "family", "scheme", "seed", "weights",
           "quantity", "mode", "value"]
MODES = ("deterministic", "other-scaling", "mc", "train-mode")


# ---------------------------------------------------------------- which runs

def _parts(scheme: Any) -> tuple[Any, ...]:
    return tuple(getattr(scheme, "schemes", ())) or (scheme,)


def family(spec: str) -> str:
    """The scheme family of a run: the name of its recurrent part (``none`` without one;
    ``zaremba`` when forward dropout is all it has)."""
    from memloss.models.schemes import parse_scheme

    names = [p.name for p in _parts(parse_scheme(spec))]
    rec = [n for n in names if n not in ("zaremba", "none")]
    return "+".join(rec) or ("zaremba" if "zaremba" in names else "none")


def _preference(spec: str) -> tuple:
    """Sort key of a run within its family (smallest first): its paper's own sampling, no
    forward dropout, the highest rate."""
    from memloss.models.schemes import parse_scheme

    parts = _parts(parse_scheme(spec))
    rec = [p for p in parts if p.name not in ("zaremba", "none")] or list(parts)
    own = all(getattr(p, "sampling", None) == f.default
              for p in rec if dataclasses.is_dataclass(p)
              for f in dataclasses.fields(p) if f.name == "sampling")
    forward = any(p.name == "zaremba" for p in parts) and len(parts) > 1
    rates = [float(getattr(p, f.name) or 0.0) for p in rec if dataclasses.is_dataclass(p)
             for f in dataclasses.fields(p) if re.fullmatch(r"p(_\w+)?", f.name)]
    return (not own, forward, -max(rates, default=0.0))


def _describe(path: Path) -> dict[str, Any] | None:
    """What the CSV records of a finished run, or None for an unfinished one."""
    from memloss.reports.runs import read_run

    if not (path / "final.json").is_file():
        return None
    run = read_run(path)  # a corrupt or truncated file: one line naming it (a ValueError)
    config, final = run.config, run.final
    preset = (config.get("info") or {}).get("preset") or {}
    spec = str((config.get("net") or {}).get("scheme")
               or (config.get("train", {}).get("net") or {}).get("scheme") or "none")
    return {"paper": str(preset.get("paper", "-")).split(",")[0],
            "table": str(preset.get("table", config.get("train", {}).get("task", "-"))),
            "cpu": bool(preset.get("cpu_of")), "row": str(preset.get("row", path.name)),
            "preset": str(preset.get("name", "-")), "family": family(spec), "scheme": spec,
            "seed": int(config.get("train", {}).get("seed", config.get("seed", 0))),
            "weights": str(final.get("weights", "last"))}


def key_runs(paths: Iterable[Path], rows: str = "key") -> list[tuple[Path, dict[str, Any]]]:
    """The finished runs to probe with what the CSV records of each (``rows="all"``: every
    finished run; ``"key"``: the key rows of each table, see the module's doc)."""
    found = []
    unfinished = 0
    for p in paths:
        info = _describe(p)
        if info is None:
            unfinished += 1
        else:
            found.append((p, info))
    if unfinished:
        log.warning("%d unfinished run(s) (no final.json) left out", unfinished)
    if rows == "all":
        return found
    chosen: dict[tuple, str] = {}
    for _, info in sorted(found, key=lambda f: (_preference(f[1]["scheme"]), f[1]["preset"])):
        chosen.setdefault((info["paper"], info["table"], info["cpu"], info["family"]),
                          info["preset"])
    return [(p, i) for p, i in found
            if chosen[(i["paper"], i["table"], i["cpu"], i["family"])] == i["preset"]]


# ---------------------------------------------------------------- probing

def _longer(task: Any, factor: float) -> Any:
    """The task with sequences ``factor`` times as long (a stream's ``bptt`` or the
    task's ``length``); the task as it is when it has neither."""
    from memloss.diagnostics.test_time_scaling import task_at_length, task_length

    names = {f.name for f in dataclasses.fields(task)} if dataclasses.is_dataclass(task) else set()
    if "bptt" in names:
        return dataclasses.replace(task, bptt=max(1, round(factor * task.bptt)))
    base = task_length(task)
    return task if base is None else task_at_length(task, max(1, round(factor * base)))


def _steps(task: Any) -> int | None:
    """Steps of the first test batch of ``task`` (what the step-wise probes unroll)."""
    for batch in task.batches("test", 1):
        return int(batch.inputs.shape[1])
    return None


def _cached(folder: Path, name: str, params: dict[str, Any], source: dict[str, Any],
            steps: int | None) -> dict[str, Any] | None:
    """The summary of ``folder/<name>.json`` when it was measured with the same parameters
    on the same checkpoint (and, for a step-wise probe, over ``steps`` steps)."""
    from memloss.diagnostics.base import json_safe

    try:
        meta = json.loads((folder / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    want = json_safe(params)
    same = all(meta.get("params", {}).get(k) == v for k, v in want.items())
    summary = meta.get("summary") or {}
    measured = summary.get("length", summary.get("trained_length"))
    if steps is not None and measured != steps:
        return None
    return summary if same and meta.get("checkpoint") == source.get("checkpoint") else None


def probe_run_numbers(path: Path, out: Path, steps_factor: float = 4.0, seed: int = 0
                      ) -> tuple[dict[str, dict[str, Any]], str, float]:
    """Run (or reuse from ``out``) the three probes on ``path``'s scored weights; returns
    their summaries by probe (a probe that cannot measure the net, :class:`NotApplicable`,
    e.g. one a step-by-step run would not reproduce, is left out with a warning), the name
    of the cell's memory state (``c`` of an LSTM, as state-decay reads it) and the CPU
    seconds that loading the run and the probes took (a reused probe counts what it took
    when it ran, kept in ``out/cpu_seconds.json``)."""
    from memloss.core.atomic import atomic_write_text
    from memloss.diagnostics import NotApplicable, make_probe, run_probes
    from memloss.runs import load_run, probe_source

    start = time.process_time()
    run = load_run(path, weights="final")
    source = probe_source(run)
    cost_file = out / "cpu_seconds.json"
    try:
        cost: dict[str, float] = json.loads(cost_file.read_text())
    except (OSError, ValueError):
        cost = {}
    summaries: dict[str, dict[str, Any]] = {}
    long_task = _longer(run.task, steps_factor)
    long_steps = _steps(long_task)
    load = time.process_time() - start
    for name, params in PARAMS.items():
        hit = _cached(out, name, make_probe(name, **params).params, source, long_steps)
        if hit is not None and name in cost:
            summaries[name] = hit
            continue
        began = time.process_time()
        try:
            run_probes(run.net, long_task, [name], out, params={name: params}, seed=seed,
                       source=source)
        except NotApplicable as e:
            log.warning("%s: %s left out: %s", path, name, e)
            continue
        finally:
            cost[name] = time.process_time() - began
        summaries[name] = json.loads((out / f"{name}.json").read_text())["summary"]
    cost["load"] = load
    atomic_write_text(cost_file, json.dumps(cost, indent=2, sort_keys=True) + "\n")
    memory = run.net.rnn.cell.memory
    return summaries, memory.state if memory is not None else "h", sum(cost.values())


def numbers(summaries: dict[str, dict[str, Any]], state: str) -> list[tuple[str, str, float]]:
    """``(quantity, mode, value)`` from the three probes' summaries; ``state`` names the
    memory state whose gradient is read (``c`` of an LSTM)."""
    sd, gf, ts = (summaries.get(n) or {}
                  for n in ("state-decay", "gradient-flow", "test-time-scaling"))
    out: list[tuple[str, str, float]] = []
    if sd:
        out.append(("steps", "", float(sd["length"])))
        for mode, v in sd["final_ratio_to_train_mode"].items():
            out.append(("state_ratio", mode, v))
        for mode in ("deterministic", "train-mode"):
            out.append(("state_factor", mode, sd["decay_rate"][mode]))
    if gf:
        for mode, slopes in gf["log_slope"].items():
            out.append(("grad_slope", mode, slopes.get(f"last/grad_{state}")))
    metric = str(ts.get("metric", ""))
    for split, by_mode in ts.get("table", {}).items():
        if split != "test":
            continue
        for mode, by_length in by_mode.items():
            longest = max(by_length, key=int)
            out.append((metric, mode, by_length[longest]))
        out.append(("scaling_steps", "", float(max(int(k) for k in next(iter(by_mode.values()))))))
    return [(q, m, math.nan if v is None else float(v)) for q, m, v in out]


def results_frame(runs: Sequence[tuple[Path, dict[str, Any]]], out: Path,
                  steps_factor: float = 4.0) -> pd.DataFrame:
    """Probe every run of ``runs`` (outputs under ``out/<parent>/<run>``) into the CSV's
    long frame."""
    rows = []
    for i, (path, info) in enumerate(runs, 1):
        folder = out / path.parent.name / path.name
        summaries, state, spent = probe_run_numbers(path, folder, steps_factor)
        log.info("[%d/%d] %s: %.1f s CPU", i, len(runs), path, spent)
        for q, m, v in numbers(summaries, state) + [("cpu_seconds", "", spent)]:
            rows.append({**info, "quantity": q, "mode": m, "value": v})
    return pd.DataFrame(rows, columns=COLUMNS)


def read_csv(path: Path) -> pd.DataFrame:
    """The CSV written by ``--csv``; a clear error when it is not one."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}; give a CSV written by "
                         "tools/fidelity_probes.py --csv")
    frame["mode"] = frame["mode"].fillna("")
    frame["cpu"] = frame["cpu"].astype(str).str.lower().isin(["true", "1"])
    return frame[COLUMNS]


# ---------------------------------------------------------------- words and figures

def _metric_name(frame: pd.DataFrame) -> str:
    names = sorted(set(frame["quantity"]) - set(QUANTITIES))
    return names[0] if names else ""


def _stat(frame: pd.DataFrame, quantity: str, mode: str) -> pd.DataFrame:
    """Per row: mean, min, max, seeds of one number."""
    sel = frame[(frame["quantity"] == quantity) & (frame["mode"] == mode)]
    return sel.groupby("row", sort=False)["value"].agg(["mean", "min", "max", "count"])


def _span(lo: float, hi: float) -> str:
    return f"{lo:.3g}" if f"{lo:.3g}" == f"{hi:.3g}" else f"{lo:.3g}-{hi:.3g}"


def _label(row: pd.Series) -> str:
    return f"{row['row']} (`{row['scheme']}`)"


def sentence(frame: pd.DataFrame) -> str:
    """One sentence from the numbers of one table: which key row's memory state fades (or
    grows) under deterministic inference relative to training mode, by how much, and that
    row's test metric under deterministic inference and MC averaging."""
    ratio = frame[(frame["quantity"] == "state_ratio") & (frame["mode"] == "deterministic")]
    steps = frame[frame["quantity"] == "steps"]
    per_row = steps.groupby("row")["value"].max()

    def after_(rows: Sequence[str] | None = None) -> str:
        """"after N steps" over ``rows`` (every row where None), "after N-M" if they differ."""
        v = per_row if rows is None else per_row[per_row.index.isin(rows)]
        if v.empty:
            return "at the last step"
        lo, hi = int(v.min()), int(v.max())
        return f"after {lo} steps" if lo == hi else f"after {lo}-{hi} steps"

    after = after_()
    if ratio.empty:
        return "No run of this table has state-decay numbers."
    stats = ratio.groupby("row", sort=False)["value"].agg(["mean", "min", "max"])
    fades = stats[stats["max"] < FADE].sort_values("mean")
    grows = stats[stats["min"] > 1 / FADE].sort_values("mean", ascending=False)
    rest = stats.drop(index=list(fades.index) + list(grows.index))
    scheme = ratio.groupby("row", sort=False)["scheme"].first()

    name = _metric_name(frame)
    score = {m: frame[(frame["quantity"] == name) & (frame["mode"] == m)]
             .groupby("row")["value"].mean() for m in ("deterministic", "mc")}
    seeds = ratio.groupby("row", sort=False)["seed"].nunique()

    factor = frame[(frame["quantity"] == "state_factor") & (frame["mode"] == "train-mode")] \
        .groupby("row")["value"].mean()

    def evidence(r: str, s: pd.Series) -> str:
        text = (f"{_span(s['min'], s['max'])}x over {seeds[r]} seeds" if seeds[r] > 1
                else "1 seed")
        if s["max"] < FADE and factor.get(r, 1.0) > EXPLODES:
            text += (f"; not a fade at test but the training-mode state growing "
                     f"{factor[r]:.3g}x per step")
        if r in score["deterministic"].index and r in score["mc"].index:
            text += (f"; test {name} {score['deterministic'][r]:.3g} deterministic, "
                     f"{score['mc'][r]:.3g} MC")
        return text

    def told(verb: str, stats_: pd.DataFrame) -> str:
        return " and ".join(
            f"of {r} (`{scheme[r]}`) {verb if i == 0 else ''}to {s['mean']:.2f}x".replace("  ", " ")
            + f" its training-mode norm {after_([r])} ({evidence(r, s)})"
            for i, (r, s) in enumerate(stats_.iterrows()))

    if fades.empty and grows.empty:
        return (f"No key row's memory state fades at test: {after} the deterministic norm is "
                f"{_span(stats['min'].min(), stats['max'].max())}x the training-mode norm "
                f"across rows and seeds (a row fades when below {FADE:g}x in every seed).")
    parts = ([told("fades ", fades)] if not fades.empty else []) + \
        ([told("grows ", grows)] if not grows.empty else [])
    keep = (f", while the other key rows keep {_span(rest['min'].min(), rest['max'].max())}x"
            if not rest.empty else "")
    return "Under deterministic inference the memory state " + "; and ".join(parts) + keep + "."


def _ordered(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows in the order the tables show them: no regularization, forward dropout only,
    then the recurrent schemes by family."""
    key = rows["family"].map(lambda f: (f != "none", f != "zaremba", f))
    return rows.assign(_key=key).sort_values(["_key", "row"]).drop(columns="_key")


def _slug(paper: str, table: str, cpu: bool) -> str:
    text = f"{paper.split()[0]}-{table}{'-cpu' if cpu else ''}".lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _groups(frame: pd.DataFrame) -> Iterable[tuple[tuple[str, str, bool], pd.DataFrame]]:
    for key, group in frame.groupby(["paper", "table", "cpu"], sort=True):
        yield (str(key[0]), str(key[1]), bool(key[2])), group


def markdown(frame: pd.DataFrame) -> str:
    """Per table: the key rows' probe numbers (mean and range over seeds), the sentence,
    the probe sizes and the figure's name."""
    parts = []
    for (paper, table, cpu), group in _groups(frame):
        name = _metric_name(group)
        cols = [("state_ratio", "deterministic", "‖s_T‖ det / train"),
                ("state_ratio", "other-scaling", "‖s_T‖ other scaling / train"),
                ("grad_slope", "deterministic", "grad log-slope det"),
                ("grad_slope", "train-mode", "grad log-slope train"),
                (name, "deterministic", f"{name} det"), (name, "mc", f"{name} MC"),
                (name, "train-mode", f"{name} train-mode")]
        cols = [c for c in cols if not group[(group["quantity"] == c[0])
                                             & (group["mode"] == c[1])].empty]
        stats = {(q, m): _stat(group, q, m) for q, m, _ in cols}
        rows = group.drop_duplicates("row")
        seeds = group.groupby("row", sort=False)["seed"].nunique()
        lines = [f"**{paper}, {table}{' (CPU size)' if cpu else ''}: memory-loss probes on the "
                 f"key rows** ({len(rows)} row{'' if len(rows) == 1 else 's'})", "",
                 "| row | scheme | seeds | " + " | ".join(c[2] for c in cols) + " |",
                 "|---" * (3 + len(cols)) + "|"]
        for _, r in _ordered(rows).iterrows():
            cells = []
            for q, m, _ in cols:
                s = stats[(q, m)]
                if r["row"] not in s.index:
                    cells.append("-")
                    continue
                one = s.loc[r["row"]]
                cells.append(f"{one['mean']:.3g}" + ("" if one["count"] < 2 else
                                                     f" [{_span(one['min'], one['max'])}]"))
            lines.append(f"| {r['row']} | `{r['scheme']}` | {seeds[r['row']]} | "
                         + " | ".join(cells) + " |")
        lacking = [r for r in rows["row"] if r not in stats.get(("state_ratio", "deterministic"),
                                                                  pd.DataFrame()).index]
        lines += ["", sentence(group), "", _notes(group, name, lacking)
                  + f" Figure: `img/fidelity-probes-{_slug(paper, table, cpu)}.png`."]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _notes(group: pd.DataFrame, name: str, lacking: list[str]) -> str:
    """What the numbers of one table are: weights, probe sizes, lengths."""
    def most(q: str) -> str:
        """The length probed, or each of the lengths where rows were probed on their own."""
        v = sorted({int(x) for x in group[group["quantity"] == q]["value"]})
        if len(v) < 2:
            return f"{v[0] if v else '?'} steps"
        return f"{', '.join(map(str, v[:-1]))} or {v[-1]} steps (each row its own length)"

    sd, gf, ts = (PARAMS[n] for n in ("state-decay", "gradient-flow", "test-time-scaling"))
    text = (f"Mean [range] over seeds; {', '.join(sorted(set(group['weights'])))} weights, as "
            f"the presets score them. `s` is the memory state (`c` of an LSTM), measured on "
            f"{sd['batch_size']} test sequences of {most('steps')} from a zero state "
            f"(training mode: mean of {sd['samples']} mask draws); the gradient log-slope is "
            f"that of ln ||dL_T/ds_t|| over t for the last step's loss ({gf['batch_size']} "
            f"sequences, {gf['samples']} mask draws; steeper = the signal fades faster going "
            f"back); {name or 'the metric'} on {ts['batch_size']} test sequences of "
            f"{most('scaling_steps')}, MC over {ts['samples']} masks.")
    if lacking:
        text += f" State-decay cannot step through {'; '.join(lacking)} (no state numbers)."
    return text


def figure(frame: pd.DataFrame, out: Path) -> Path:
    """One PNG for one table: a panel per quantity, rows on the x axis, seeds as points,
    inference modes as colours, a bar at each mean."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from memloss.reports.wording import metric as metric_words

    name = _metric_name(frame)
    panels = [q for q in ("state_ratio", "state_factor", "grad_slope", name)
              if q and not frame[frame["quantity"] == q].empty]
    order = _ordered(frame.drop_duplicates("row"))
    short = {r["row"]: _short(r["scheme"]) for _, r in order.iterrows()}
    rows = list(order["row"])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 1.0, 4.4),
                             squeeze=False)
    colours = dict(zip(MODES, plt.get_cmap("tab10").colors))
    for ax, q in zip(axes[0], panels):
        sel = frame[frame["quantity"] == q]
        modes = [m for m in MODES if m in set(sel["mode"])]
        width = 0.8 / max(len(modes), 1)
        for j, mode in enumerate(modes):
            for i, row in enumerate(rows):
                v = sel[(sel["mode"] == mode) & (sel["row"] == row)]["value"].dropna()
                if v.empty:
                    continue
                x = i - 0.4 + width * (j + 0.5)
                ax.scatter([x] * len(v), v, s=14, color=colours[mode], zorder=3,
                           label=mode if i == 0 else None)
                ax.hlines(v.mean(), x - width / 2.5, x + width / 2.5, color=colours[mode],
                          linewidth=2)
        if q == "state_ratio":
            ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
            ax.axhline(FADE, color="grey", linewidth=0.8, linestyle="--")
        words, unit = QUANTITIES.get(q) or (f"test {metric_words(q).words}", metric_words(q).unit)
        ax.set_ylabel(textwrap.fill(f"{words} ({unit})", 42), fontsize=8)
        ax.set_title(TITLES.get(q, f"test {q}"), fontsize=9)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([short[r] for r in rows], rotation=30, ha="right", fontsize=7)
        ax.set_xlabel("key row (scheme)", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7, frameon=False, title="inference", title_fontsize=7)
    paper, table = str(frame["paper"].iloc[0]), str(frame["table"].iloc[0])
    seeds = frame.groupby("row")["seed"].nunique()
    fig.suptitle(f"{paper}, {table}: memory-loss probes on the key rows (points: seeds, "
                 f"{_span(seeds.min(), seeds.max())} per row; bars: means)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _short(spec: str) -> str:
    """``"moon/sequence+zaremba p=0.5"``: the scheme's short name and its recurrent rates."""
    from memloss.models.schemes import parse_scheme

    scheme = parse_scheme(spec)
    parts = _parts(scheme)
    shown = [p for p in parts if p.name not in ("zaremba", "none")] or list(parts)
    rates = [f"{f.name}={getattr(p, f.name):g}" for p in shown if dataclasses.is_dataclass(p)
             for f in dataclasses.fields(p)
             if re.fullmatch(r"p(_\w+)?", f.name) and getattr(p, f.name)]
    return " ".join([scheme.short] + rates)


def figures(frame: pd.DataFrame, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [figure(group, folder / f"fidelity-probes-{_slug(*key)}.png")
            for key, group in _groups(frame)]


# ---------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", help="sweep or run directories")
    parser.add_argument("--out", type=Path, help="folder for the probes' own files "
                        "(reused when they match); required with run directories")
    parser.add_argument("--csv", type=Path, help="write the numbers here")
    parser.add_argument("--from-csv", type=Path, help="read the numbers from a CSV written by "
                        "--csv instead of probing run directories")
    parser.add_argument("--figures", type=Path, help="write one PNG per table into this folder")
    parser.add_argument("--markdown", type=Path, help="write the Markdown here (default: stdout)")
    parser.add_argument("--rows", choices=("key", "all"), default="key",
                        help="probe the key rows of each table (default) or every row")
    parser.add_argument("--steps-factor", type=float, default=4.0,
                        help="state-decay and gradient-flow unroll this many times the trained "
                             "length (default 4)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.from_csv is not None:
            if args.dirs:
                parser.error("--from-csv FILE reads the numbers from FILE; give no run "
                             "directories with it")
            frame = read_csv(args.from_csv)
        else:
            if not args.dirs:
                parser.error("give sweep or run directories (or --from-csv FILE)")
            if args.out is None:
                parser.error("--out DIR is required with run directories: the probes' files "
                             "go there, never into the runs")
            if not args.steps_factor > 0:
                parser.error(f"--steps-factor must be > 0, got {args.steps_factor}")
            # each run scores a few batches: compiling step kernels would cost more CPU
            # than it saves (and a compile thread still running at exit aborts the process)
            os.environ.setdefault("MEMLOSS_COMPILE", "never")
            import torch

            from memloss.collect import find_runs

            torch.set_num_threads(1)
            paths = find_runs(args.dirs)
            inside = [p for p in paths if args.out.resolve().is_relative_to(p.resolve())]
            if inside:
                parser.error(f"--out {args.out} lies inside the run {inside[0]}; give a folder "
                             "of your own (the runs are only read)")
            runs = key_runs(paths, args.rows)
            if not runs:
                parser.error("no finished run (with final.json) among the directories given")
            seen: dict[tuple, Path] = {}
            for path, info in runs:
                key = (info["preset"], info["seed"], info["scheme"])
                if key in seen:
                    parser.error(f"{path} and {seen[key]} are both seed {info['seed']} of "
                                 f"{info['preset']}; give each run once")
                seen[key] = path
            frame = results_frame(runs, args.out, args.steps_factor)
            if args.csv is not None:
                args.csv.parent.mkdir(parents=True, exist_ok=True)
                frame.to_csv(args.csv, index=False)
        text = markdown(frame)
        if args.markdown is not None:
            args.markdown.write_text(text)
        else:
            sys.stdout.write(text)
        if args.figures is not None:
            for p in figures(frame, args.figures):
                log.info("figure: %s", p)
    except (ValueError, OSError, KeyError) as e:
        parser.error(str(e).splitlines()[0] if str(e) else type(e).__name__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
