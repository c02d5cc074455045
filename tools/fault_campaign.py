"""The robustness campaign of issue 16: every fault and bad-input case, with the long parts
the test run leaves to ``-m slow``, tallied into one table.

    .venv/bin/python tools/fault_campaign.py [--quick] [--out TABLE.md]

Rows: SIGKILL at every file operation of a tiny run (and a torn write at every ``fsync`` of
a file being written), SIGKILL at random times, ENOSPC injected at every write, a tmpfs disk
filling up at 19 sizes (root only), then every case of ``tests/faults/cases.py`` by group,
and the hypothesis fuzzing of scheme strings and ``--set`` values. Columns: cases tried,
handled (resumed bit for bit, or valid input that worked), clear errors, tracebacks, silent
acceptances, data-loss events (see ``tests/faults/outcomes.py``). ``--quick`` strikes one
checkpoint commit instead of the whole run. Exit code 1 when any case is bad.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="strike one commit, not the run")
    parser.add_argument("--out", help="also write the table (markdown) to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("HYPOTHESIS_PROFILE", "campaign")

    from tqdm import tqdm

    from tests.faults.cases import CASES
    from tests.faults.crash import (enospc_case, full_disk_case, kill_case, reference,
                                    timed_kill_case)
    from tests.faults.harness import WRITE_OPS, fresh
    from tests.faults.outcomes import CATEGORIES, Outcome

    work = Path(tempfile.mkdtemp(prefix="memloss-campaign-"))
    t0 = time.perf_counter()
    ref = reference(work)
    ops = ref.commit_ops(2) if args.quick else ref.ops
    jobs: list[tuple[str, str, object]] = []
    jobs += [("SIGKILL at each file operation of a run", f"op {op['i']} {op['op']} {op['name']}",
              lambda op=op: kill_case(work / "k", ref, op["i"])) for op in ops]
    jobs += [("SIGKILL tearing the file being synced", f"op {op['i']} {op['name']}",
              lambda op=op: kill_case(work / "t", ref, op["i"], torn=True))
             for op in ops if op["op"] == "fsync"]
    jobs += [("SIGKILL at random times", f"seed {s}", lambda s=s: timed_kill_case(work / "r", ref, s))
             for s in range(3 if args.quick else 30)]
    jobs += [("ENOSPC injected at each write", f"op {op['i']} {op['op']} {op['name']}",
              lambda op=op: enospc_case(work / "e", ref, op["i"]))
             for op in ops if op["op"] in WRITE_OPS]
    jobs += [("small disk filling up (tmpfs)", f"{kib} KiB",
              lambda kib=kib: full_disk_case(work / "d", ref, kib))
             for kib in ((8, 40) if args.quick else range(4, 80, 4))]
    jobs += [(e.group, e.name, lambda e=e: e.run(fresh(work / "case"))) for e in CASES]

    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    bad: list[str] = []
    for group, name, fn in tqdm(jobs, desc="fault cases", unit="case"):
        try:
            outcome = fn()  # type: ignore[operator]
        except Exception as e:  # noqa: BLE001 (a harness failure is reported as such)
            outcome = Outcome("traceback", f"the case itself failed: {type(e).__name__}: {e}")
        if outcome is None:  # no tmpfs here
            rows[group]["skipped"] += 1
            continue
        rows[group][outcome.category] += 1
        if not outcome.good or "unexpected wording" in outcome.detail:
            bad.append(f"[{group}] {name}: {outcome.category}: {outcome.detail}")

    from tests.faults import test_fuzz

    for name, fn in (("scheme", test_fuzz.test_scheme_strings), ("set", test_fuzz.test_set_values)):
        group = f"fuzz: {'scheme strings' if name == 'scheme' else '--set values'} (hypothesis)"
        try:
            fn()
            failed = None
        except Exception as e:  # noqa: BLE001
            failed = f"{type(e).__name__}: {str(e)[:300]}"
        seen = test_fuzz.SEEN[name]
        rows[group]["ok"] += seen - (1 if failed else 0)
        if failed:
            rows[group]["traceback"] += 1
            bad.append(f"[{group}] {failed}")

    header = ("| cases | tried | handled | clear errors | tracebacks | silent acceptances | "
              "data-loss events |")
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    total: collections.Counter = collections.Counter()
    for group, counts in rows.items():
        tried = sum(counts[c] for c in CATEGORIES)
        total.update(counts)
        skipped = f" ({counts['skipped']} skipped: no tmpfs)" if counts["skipped"] else ""
        lines.append(f"| {group}{skipped} | {tried} | {counts['ok']} | {counts['clear']} | "
                     f"{counts['traceback']} | {counts['silent']} | {counts['data-loss']} |")
    lines.append(f"| **all** | **{sum(total[c] for c in CATEGORIES)}** | **{total['ok']}** | "
                 f"**{total['clear']}** | **{total['traceback']}** | **{total['silent']}** | "
                 f"**{total['data-loss']}** |")
    lines.append("| report cases ($ in user strings, all-or-nothing report writing) | - | "
                 "handled by the reports change (issue 13) | | | | |")
    table = "\n".join(lines)
    print(table)
    print(f"\n{len(jobs)} fault cases in {time.perf_counter() - t0:.0f} s; work folder {work}")
    for line in bad:
        print("BAD", line)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
