"""How a fault or bad-input case ended, in the categories of the robustness table.

* ``ok``: handled as it should be: the run resumed bit for bit, or valid input worked;
* ``clear``: refused with one clear line (``memloss CMD: error: ...``) naming the problem;
* ``traceback``: a Python traceback, or the CLI's "internal error" safety net;
* ``silent``: invalid input accepted, a wrong result, or junk left behind, without a word;
* ``data-loss``: a previously complete result (a committed checkpoint, final.json, a user's
  file) was lost or changed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = ("ok", "clear", "traceback", "silent", "data-loss")
#: the categories a case may end in and still pass
GOOD = ("ok", "clear")
#: exit statuses of a run stopped by Ctrl-C (130) or SIGUSR1/SIGUSR2/SIGTERM (128 + N)
STOPPED = (130, 138, 140, 143)


@dataclass(frozen=True)
class Outcome:
    category: str
    detail: str = ""

    def __post_init__(self) -> None:
        assert self.category in CATEGORIES, self.category

    @property
    def good(self) -> bool:
        return self.category in GOOD


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if re.match(r"memloss \S+: error: ", line)]


def judge_error(code: int, err: str, expect: str | None = None) -> Outcome:
    """A command that was expected to fail: clear (one error line, exit 1, 2 or 130, the
    expected words in it), a traceback, or a silent acceptance (exit 0)."""
    if "Traceback (most recent call last)" in err or "internal error" in err:
        return Outcome("traceback", err.strip().splitlines()[-1][:300] if err.strip() else "")
    if code == 0:
        return Outcome("silent", "accepted")
    lines = error_lines(err)
    if code in (1, 2, *STOPPED) and len(lines) == 1 and len(lines[0]) < 1200:
        if expect is not None and not re.search(expect, lines[0]):
            return Outcome("clear", f"(unexpected wording) {lines[0][:300]}")
        return Outcome("clear", lines[0][:300])
    if code == 2 and "usage:" in err:  # argparse's own one-line error with the usage
        return Outcome("clear", err.strip().splitlines()[-1][:300])
    return Outcome("traceback", f"exit {code}: {err.strip()[-300:]}")
