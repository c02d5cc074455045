"""Cases of the surfaces issue 23 added to the robustness table: readers racing a writer
(real ``memloss train`` and ``memloss eval``/``probe`` processes), termination signals, what
imports verify, output folders that hold a user's files, bounds before work, collect over
damaged runs and the Python API's own errors. Registered in :data:`tests.faults.cases.CASES`
(imported at the end of that module); the ones over ~5 s are marked slow."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .cases import case, expect_api_error, expect_cli_error, run_cli, trained
from .harness import TINY, file_hashes
from .outcomes import Outcome, judge_error

#: the repository root (so that a child ``python -m memloss`` imports this checkout)
ROOT = Path(__file__).resolve().parents[2]
#: a tiny run long enough for a signal to reach it mid-training (and cheap to train straight)
LONG = [a if a != "epochs=2" else "epochs=12" for a in TINY]
#: a run that trains until it is stopped: a reader started later meets it mid-training
ENDLESS = [a if a != "epochs=2" else "epochs=100000" for a in TINY]


def spawn(*argv: Any) -> subprocess.Popen:
    """``memloss ARGV`` as a real, separate process (its own interpreter)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "memloss", *map(str, argv)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return proc.returncode, err


def wait_for_checkpoint(run: Path, proc: subprocess.Popen, timeout: float = 120) -> bool:
    """Wait until ``run`` holds a committed checkpoint while ``proc`` still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if (run / "checkpoint.json").is_file():
            return True
        time.sleep(0.05)
    return False


def training(tmp: Path, argv: list[str] = LONG) -> tuple[Path, subprocess.Popen]:
    run = tmp / "run"
    proc = spawn("train", *argv, "--out", run)
    if not wait_for_checkpoint(run, proc):
        code, err = finish(proc)
        raise AssertionError(f"training never reached its first checkpoint: {code} {err[-300:]}")
    return run, proc


# --- readers and writers --------------------------------------------------------------------
def _reader_during_training(tmp: Path, argv: list[str]) -> Outcome:
    run, proc = training(tmp, ENDLESS)
    try:
        code, err = finish(spawn(*argv[:1], run, *argv[1:]))
        still = proc.poll() is None
        wrote = [p for p in ("final.json", "evaluations.jsonl", "diagnostics")
                 if (run / p).exists()]
    finally:
        proc.send_signal(signal.SIGTERM)
        finish(proc)
    if not still:
        return Outcome("silent", "training ended before the reader ran: the case proved nothing")
    out = judge_error(code, err, r"busy.*being written by process \d+.*try again")
    if wrote:
        return Outcome("data-loss", f"the reader wrote {wrote} into a run being trained")
    return out


@case("readers and writers", "`memloss eval` while `memloss train` runs: busy", slow=True)
def _eval_during_train(tmp: Path) -> Outcome:
    return _reader_during_training(tmp, ["eval"])


@case("readers and writers", "`memloss probe` while `memloss train` runs: busy", slow=True)
def _probe_during_train(tmp: Path) -> Outcome:
    return _reader_during_training(tmp, ["probe", "--probe", "state-decay"])


def _interrupted(tmp: Path) -> Path:
    """A trained run whose final.json is gone: interrupted after its last checkpoint."""
    run = trained(tmp)
    (run / "final.json").unlink()
    return run


@case("readers and writers", "eval of an interrupted run leaves it unfinished and resumable")
def _eval_interrupted(tmp: Path) -> Outcome:
    from memloss.training.resume import run_state

    run = _interrupted(tmp)
    code, err = run_cli("eval", run)
    if code != 0:
        return judge_error(code, err)
    if (run / "final.json").exists() or run_state(run) != "interrupted":
        return Outcome("silent", "eval made an interrupted run look finished")
    entry = json.loads((run / "evaluations.jsonl").read_text().splitlines()[-1])
    ref = entry.get("checkpoint", {})
    from memloss.core import runfiles as rf

    if rf.ref_problem(run, ref) is not None or not isinstance(ref.get("step"), int):
        return Outcome("silent", f"the evaluation entry names no current checkpoint: {ref}")
    code, err = run_cli("train", *TINY, "--out", run, "--resume-or-start")
    if code != 0 or not (run / "final.json").exists():
        return judge_error(code, err)
    return Outcome("ok", f"evaluations.jsonl names step {ref['step']}; resume-or-start finished it")


@case("readers and writers", "eval of a finished run records its checkpoint")
def _eval_finished(tmp: Path) -> Outcome:
    from memloss.core import runfiles as rf

    run = trained(tmp)
    before = json.loads((run / "final.json").read_text())
    code, err = run_cli("eval", run, "--mode", "mc", "--samples", "2")
    if code != 0:
        return judge_error(code, err)
    after = json.loads((run / "final.json").read_text())
    entry = json.loads((run / "evaluations.jsonl").read_text().splitlines()[-1])
    if after["test"].get("deterministic") != before["test"].get("deterministic") or \
            "mc" not in after["test"]:
        return Outcome("data-loss", "final.json lost or changed a result")
    problem = rf.ref_problem(run, entry.get("checkpoint"))
    return Outcome("ok", "entry names the current checkpoint") if problem is None else \
        Outcome("silent", problem)


@case("readers and writers", "probe outputs of older weights are not shown as the run's")
def _stale_probe(tmp: Path) -> Outcome:
    import logging

    from memloss.reports.runs import read_run

    run = trained(tmp)
    code, err = run_cli("probe", run, "--probe", "state-decay", "--weights", "last")
    if code != 0:
        return judge_error(code, err)
    meta = json.loads((run / "diagnostics" / "state-decay.json").read_text())
    if not isinstance(meta.get("checkpoint", {}).get("sha256"), str):
        return Outcome("silent", "the probe output records no checkpoint")
    code, err = run_cli("train", "--resume", run, "--set", "epochs=3")
    if code != 0:
        return judge_error(code, err)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep(logging.WARNING)
    logging.getLogger("memloss").addHandler(handler)
    try:
        rec = read_run(run)
    finally:
        logging.getLogger("memloss").removeHandler(handler)
    if "state-decay" in rec.diagnostics:
        return Outcome("silent", "a report would show step-k diagnostics as the run's own")
    if not any("left out" in r and "state-decay" in r for r in records):
        return Outcome("silent", "stale diagnostics left out without a word")
    return Outcome("ok", "left out with a warning")


# --- termination signals --------------------------------------------------------------------
def _signal_case(signum: int) -> Any:
    def run_case(tmp: Path) -> Outcome:
        from .harness import snapshot

        run, proc = training(tmp)
        proc.send_signal(signum)
        code, err = finish(proc)
        name = signal.Signals(signum).name
        if code != 128 + signum:
            return Outcome("traceback" if "Traceback" in err else "silent",
                           f"exit {code}, not {128 + signum}: {err.strip()[-200:]}")
        judged = judge_error(code, err, rf"stopped by {name}.*checkpoint \(step \d+\) is kept.*"
                                        rf"memloss train --resume")
        if judged.category != "clear" or "unexpected" in judged.detail:
            return judged
        code, err = run_cli("train", *LONG, "--out", run, "--resume-or-start")
        if code != 0:
            return judge_error(code, err)
        straight = tmp / "straight"
        code, err = run_cli("train", *LONG, "--out", straight)
        assert code == 0, err
        same = snapshot(run) == snapshot(straight)
        return Outcome("ok", f"exit {128 + signum}, resumed bit for bit") if same else \
            Outcome("silent", "the resumed run differs from a straight run")

    return run_case


case("termination signals", "SIGTERM during `memloss train`: exit 143, resumes exactly",
     slow=True)(_signal_case(signal.SIGTERM))
case("termination signals", "SIGUSR2 during `memloss train`: exit 140, resumes exactly",
     slow=True)(_signal_case(signal.SIGUSR2))


@case("termination signals", "a signal someone else handles is left to them")
def _foreign_handler(tmp: Path) -> Outcome:
    from memloss.training.signals import stop_on_termination

    seen: list[int] = []
    old = signal.signal(signal.SIGUSR2, lambda s, f: seen.append(s))
    try:
        with stop_on_termination():
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(0.01)
    except KeyboardInterrupt:
        return Outcome("silent", "memloss took over a handler another library installed")
    finally:
        signal.signal(signal.SIGUSR2, old)
    return Outcome("ok", "submitit-style handler kept") if seen else Outcome("silent", "lost")


# --- imports verify what they write ---------------------------------------------------------
_TASK = ["--task", "temporal-order", "--set", "task.length=8", "--set", "task.train_size=8",
         "--set", "task.valid_size=8", "--set", "task.test_size=16"]


def _classifier_state(dtype: Any = None) -> dict:
    import torch

    from memloss.tasks import make_task

    sizes = make_task("temporal-order", length=8, train_size=8, valid_size=8,
                      test_size=16).net_kwargs()
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(sizes["input_size"], 5, num_layers=2, batch_first=True)
    fc = torch.nn.Linear(5, sizes["output_size"])
    return {**{f"lstm.{k}": v.detach().clone() for k, v in lstm.state_dict().items()},
            **{f"fc.{k}": v.detach().clone() for k, v in fc.state_dict().items()}}


def _import_case(change: Any, expect: str, *, raw: bytes | None = None) -> Any:
    def run_case(tmp: Path) -> Outcome:
        import torch

        src = tmp / "model.pt"
        if raw is not None:
            src.write_bytes(raw)
        else:
            torch.save(change(_classifier_state()), src)
        out = expect_cli_error(["import", src, *_TASK, "--out", tmp / "run"], expect)
        if (tmp / "run" / "config.json").exists():
            return Outcome("silent", f"a run was written: {out.detail}")
        return out

    return run_case


def _drop(key: str) -> Any:
    return lambda s: {k: v for k, v in s.items() if k != key}


def _edit(key: str, fn: Any) -> Any:
    return lambda s: {**s, key: fn(s[key])}


for _name, _change, _expect in [
    ("a missing recurrent bias", _drop("lstm.bias_hh_l1"), r"lstm\.bias_hh_l1.* missing"),
    ("a missing second-layer weight", _drop("lstm.weight_ih_l1"), r"lstm\.weight_ih_l1"),
    ("NaN in a weight", _edit("lstm.weight_hh_l0", lambda t: t.index_fill(0, __import__(
        "torch").tensor([0]), float("nan"))), r"lstm\.weight_hh_l0.*NaN"),
    ("inf in the head", _edit("fc.weight", lambda t: t.fill_(float("inf"))),
     r"fc\.weight.*infinite"),
    ("int64 weights", _edit("lstm.weight_ih_l1", lambda t: t.long()), r"lstm\.weight_ih_l1.*int64"),
    ("a wrong shape in layer 1", _edit("lstm.weight_hh_l1", lambda t: t[:, :4]),
     r"lstm\.weight_hh_l1.*shape"),
    ("a wrong head bias shape", _edit("fc.bias", lambda t: t[:1]), r"fc\.bias.*shape"),
]:
    case("imports verify", _name)(_import_case(_change, _expect))

case("imports verify", "random bytes are not called pickled objects")(_import_case(
    None, r"neither a safetensors file nor a torch\.save file", raw=os.urandom(4096)))


@case("imports verify", "import --out into a folder with a user's file")
def _import_out_user(tmp: Path) -> Outcome:
    import torch

    src = tmp / "model.pt"
    torch.save(_classifier_state(), src)
    out = tmp / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    return expect_cli_error(["import", src, *_TASK, "--out", out], r"not empty", keep=out)


@case("imports verify", "a complete state dict imports and scores")
def _import_ok(tmp: Path) -> Outcome:
    import torch

    src = tmp / "model.pt"
    torch.save(_classifier_state(), src)
    code, err = run_cli("import", src, *_TASK, "--out", tmp / "run")
    if code != 0:
        return judge_error(code, err)
    code, err = run_cli("eval", tmp / "run")
    return Outcome("ok", "imported and scored") if code == 0 else judge_error(code, err)


# --- output folders never delete what memloss did not write ---------------------------------
@case("output folders", "train --out D keeps a user's .config.json.tmp")
def _user_tmp_named_like_ours(tmp: Path) -> Outcome:
    out = tmp / "d"
    out.mkdir()
    (out / ".config.json.tmp").write_text("my notes")
    return expect_cli_error(["train", *TINY, "--out", out], r"not empty.*\.config\.json\.tmp",
                            keep=out)


@case("output folders", "resume keeps a user's .tmp file inside the run")
def _user_tmp_in_run(tmp: Path) -> Outcome:
    run = trained(tmp)
    (run / ".notes.tmp").write_text("mine")
    (run / ".final.json.tmp").write_text("mine too")
    code, err = run_cli("train", "--resume", run, "--set", "epochs=3")
    if code != 0:
        return judge_error(code, err)
    kept = (run / ".notes.tmp").exists() and (run / ".final.json.tmp").exists()
    return Outcome("ok", "kept") if kept else Outcome("data-loss", "a user's file was deleted")


@case("output folders", "report --out D/r keeps a user's file in D/r-data/")
def _report_user_data(tmp: Path) -> Outcome:
    run = trained(tmp)
    data = tmp / "r-data"
    data.mkdir()
    (data / "mine.csv").write_text("a,b\n1,2\n")
    return expect_cli_error(["report", run, "--out", tmp / "r"], r"mine\.csv.*not written by "
                            r"memloss report", keep=data)


@case("output folders", "report --out over a user's r.html", slow=True)
def _report_user_html(tmp: Path) -> Outcome:
    run = trained(tmp)
    (tmp / "r.html").write_text("<p>my page</p>")
    out = expect_cli_error(["report", run, "--out", tmp / "r"],
                           r"r\.html.*not written by memloss report")
    if (tmp / "r.html").read_text() != "<p>my page</p>":
        return Outcome("data-loss", "the user's r.html was replaced")
    return out


@case("output folders", "a report replaces its own earlier report", slow=True)
def _report_twice(tmp: Path) -> Outcome:
    run = trained(tmp)
    for _ in range(2):
        code, err = run_cli("report", run, "--out", tmp / "r")
        if code != 0:
            return judge_error(code, err)
    manifest = json.loads((tmp / "r-data" / ".memloss-report.json").read_text())
    refs = [r.get("checkpoint") for r in manifest.get("runs", [])]
    if not refs or not all(isinstance(r, dict) and r.get("sha256") for r in refs):
        return Outcome("silent", "the report data records no checkpoint")
    return Outcome("ok", "replaced; the manifest names each run's checkpoint")


# --- bounds before any work or write --------------------------------------------------------
def _no_out(tmp: Path, argv: list[Any], expect: str) -> Outcome:
    out = expect_cli_error(argv, expect)
    if (tmp / "run").exists():
        return Outcome("silent", f"{tmp / 'run'} was created: {out.detail}")
    return out


_NO_HIDDEN = [a for i, a in enumerate(TINY) if a != "hidden_size=8" and not (
    a == "--set" and i + 1 < len(TINY) and TINY[i + 1] == "hidden_size=8")]


@case("bounds", "train --set threads=100000")
def _threads(tmp: Path) -> Outcome:
    return _no_out(tmp, ["train", *TINY, "--set", "threads=100000", "--out", tmp / "run"],
                   r"threads=100000 exceeds the \d+ core")


@case("bounds", "train --set num_layers=1000000")
def _layers(tmp: Path) -> Outcome:
    return _no_out(tmp, ["train", *TINY, "--set", "num_layers=1000000", "--out", tmp / "run"],
                   r"num_layers.*<= 1000")


@case("bounds", "train --set hidden_size=1e9")
def _hidden(tmp: Path) -> Outcome:
    return _no_out(tmp, ["train", *_NO_HIDDEN, "--set", "hidden_size=1000000000", "--out",
                         tmp / "run"], r"not enough memory: the net has [\d,]+ parameters")


@case("bounds", "sweep --seeds 100000000 --dry-run answers at once")
def _seeds(tmp: Path) -> Outcome:
    start = time.monotonic()
    out = expect_cli_error(["sweep", "memloss-cpu", "--seeds", "100000000", "--dry-run"],
                           r"100,000,000 runs, more than the limit")
    took = time.monotonic() - start
    return out if took < 5 else Outcome("silent", f"took {took:.0f} s: {out.detail}")


@case("bounds", "sweep --dry-run refuses what the sweep refuses")
def _dry_run(tmp: Path) -> Outcome:
    grid = tmp / "grid.toml"
    grid.write_text('task = "temporal-order"\n[set]\nnum_layers = [1, 1000000]\n')
    return expect_cli_error(["sweep", grid, "--dry-run"], r"run .*num_layers.*<= 1000")


@case("bounds", "sweep --dry-run refuses a grid option the sweep's workers set")
def _dry_run_extra(tmp: Path) -> Outcome:
    grid = tmp / "grid.toml"
    grid.write_text('task = "temporal-order"\n[set]\nprogress = true\n')
    return expect_cli_error(["sweep", grid, "--dry-run"], r"run .*'progress' is given twice")


@case("bounds", "eval --samples 1e9")
def _samples(tmp: Path) -> Outcome:
    run = trained(tmp)
    return expect_cli_error(["eval", run, "--mode", "mc", "--samples", "1000000000"],
                            r"samples.*<= 100000", keep=run)


@case("bounds", "Net(NetConfig(num_layers=10**6)) and hidden_size=10**9 in the API")
def _api_sizes(tmp: Path) -> Outcome:
    from memloss.models import Net, NetConfig

    first = expect_api_error(lambda: NetConfig(num_layers=10**6, input_size=3), r"<= 1000")
    if first.category != "clear":
        return first
    start = time.monotonic()
    try:
        Net(NetConfig(hidden_size=10**9, input_size=3))
    except MemoryError as e:
        took = time.monotonic() - start
        return Outcome("clear", str(e)[:200]) if took < 1 else Outcome("silent", f"{took:.1f} s")
    return Outcome("silent", "accepted")


# --- the Python API's own one-line errors ---------------------------------------------------
def _api_case(make: Any, expect: str) -> Any:
    def run_case(tmp: Path) -> Outcome:
        return expect_api_error(make, expect)

    return run_case


def _lstm(**kw: Any) -> Any:
    import memloss.nn as mnn

    return mnn.LSTM(3, 4, **kw)


def _zeros(*shape: int, **kw: Any) -> Any:
    import torch

    return torch.zeros(*shape, **kw)


def _tokens(values: list[int], dtype: Any = None) -> Any:
    import torch

    from memloss.models import Net, NetConfig

    ids = torch.tensor([values]) if dtype is None else torch.tensor([values], dtype=dtype)
    return Net(NetConfig(vocab_size=5, hidden_size=4))(ids)


for _name, _make, _expect in [
    ("LSTM(device='bogus')", lambda: _lstm(device="bogus"), r"device='bogus' is not a device"),
    ("LSTM(dtype=torch.int64)", lambda: _lstm(dtype=__import__("torch").int64),
     r"not a floating-point dtype"),
    ("forward(generator=123)", lambda: _lstm(scheme="gal:p=0.5").train()(
        _zeros(2, 1, 3), generator=123), r"generator=123 is not a torch\.Generator"),
    ("forward(stochastic='no')", lambda: _lstm(scheme="gal:p=0.5")(
        _zeros(2, 1, 3), stochastic="no"), r"stochastic must be true or false"),
    ("forward on a meta tensor", lambda: _lstm()(_zeros(2, 1, 3, device="meta")),
     r"meta tensor"),
    ("Net on a token id out of range", lambda: _tokens([7, 1]), r"token id 7 is outside"),
    ("Net on a negative token id", lambda: _tokens([-1, 1]), r"token id -1 is outside"),
    ("Net on int16 token ids", lambda: _tokens([1, 1], __import__("torch").int16),
     r"int64.*got torch\.int16"),
]:
    case("python API", _name)(_api_case(_make, _expect))


@case("python API", "LSTM(device='cuda') on a CPU build")
def _cuda_api(tmp: Path) -> Outcome:
    import torch

    if torch.cuda.is_available():
        return Outcome("ok", "CUDA is available here: nothing to refuse")
    return expect_api_error(lambda: _lstm(device="cuda"), r"CUDA is not available")


# --- collect keeps going --------------------------------------------------------------------
def _sweep_of_three(tmp: Path) -> Path:
    sweep = tmp / "sweep"
    sweep.mkdir()
    for name in ("a", "b", "c"):
        trained(sweep, name)
    return sweep


def _collect_case(damage: Any, expect: str) -> Any:
    def run_case(tmp: Path) -> Outcome:
        import pandas as pd

        sweep = _sweep_of_three(tmp)
        damage(sweep / "b")
        code, err = run_cli("collect", sweep, "--out", tmp / "t.csv")
        if "Traceback" in err or "internal error" in err:
            return Outcome("traceback", err.strip()[-200:])
        if code != 3:
            return Outcome("silent", f"exit {code}, not 3 (some left out): {err.strip()[-200:]}")
        lines = [ln for ln in err.splitlines() if ln.startswith("memloss collect: left out")]
        if len(lines) != 1 or "/b:" not in lines[0] or not re.search(expect, lines[0]):
            return Outcome("silent", f"left-out lines: {lines}")
        runs = set(pd.read_csv(tmp / "t.csv")["run"])
        if runs != {"a", "c"}:
            return Outcome("silent", f"collected {sorted(runs)}")
        return Outcome("clear", lines[0][:200])

    return run_case


for _name, _damage, _expect in [
    ("final.json = []", lambda r: (r / "final.json").write_text("[]"),
     r"final\.json: the top level"),
    ("truncated config.json", lambda r: (r / "config.json").write_text('{"train": {'),
     r"config\.json is not valid JSON"),
    ("a corrupt probe table", lambda r: ((r / "diagnostics").mkdir(), (
        r / "diagnostics" / "x.csv").write_bytes(b"\xff\xfe\x00garbage")), r"x\.csv"),
]:
    case("collect keeps going", f"one run of three with {_name}")(_collect_case(_damage, _expect))


@case("collect keeps going", "report refuses final.json = []")
def _report_list_final(tmp: Path) -> Outcome:
    run = trained(tmp)
    (run / "final.json").write_text("[]")
    return expect_cli_error(["report", run, "--out", tmp / "r"], r"final\.json: the top level")


@case("collect keeps going", "a run another process is training is busy, not failed",
      slow=True)
def _collect_busy(tmp: Path) -> Outcome:
    import pandas as pd

    sweep = tmp / "sweep"
    sweep.mkdir()
    trained(sweep, "a")
    run, proc = training(sweep, ENDLESS)
    try:
        code, err = run_cli("collect", sweep, "--out", tmp / "t.csv")
    finally:
        proc.send_signal(signal.SIGTERM)
        finish(proc)
    if code != 0:
        return judge_error(code, err)
    frame = pd.read_csv(tmp / "t.csv").set_index("run")
    status = frame["status"].to_dict()
    return Outcome("ok", f"{status}") if status == {"a": "finished", "run": "busy"} else \
        Outcome("silent", f"statuses {status}")


@case("collect keeps going", "two `memloss sweep` on one folder: no false failures", slow=True)
def _two_sweeps(tmp: Path) -> Outcome:
    grid = tmp / "grid.toml"
    sets = {TINY[i + 1].split("=")[0]: TINY[i + 1].split("=", 1)[1]
            for i, a in enumerate(TINY) if a == "--set"}
    body = "\n".join(f"{k} = {v if v.replace('.', '').isdigit() else json.dumps(v)}"
                     for k, v in sets.items() if not k.startswith("task.") and k != "progress")
    task = "\n".join(f"{k.split('.', 1)[1]} = {v}" for k, v in sets.items()
                     if k.startswith("task."))
    grid.write_text(f'task = "temporal-order"\nscheme = "semeniuta:p=0.25"\nseed = [0, 1]\n'
                    f"[set]\n{body}\n[set.task]\n{task}\n")
    procs = [spawn("sweep", grid, "--out", tmp / "sweep", "--jobs", "1", "--threads", "1",
                   "--no-progress") for _ in range(2)]
    results = [finish(p, timeout=540) for p in procs]
    if any("Traceback" in err or "internal error" in err for _code, err in results):
        return Outcome("traceback", " | ".join(err.strip()[-200:] for _c, err in results))
    codes = [code for code, _err in results]
    if codes != [0, 0]:
        errors = [p.read_text()[:300] for p in (tmp / "sweep" / ".sweep" / "errors").glob("*")]
        return Outcome("silent", f"exit {codes}: {errors or [e[-200:] for _c, e in results]}")
    from memloss.training.resume import run_state

    states = [run_state(d) for d in sorted((tmp / "sweep").iterdir()) if d.name != ".sweep"]
    if states != ["finished", "finished"]:
        return Outcome("silent", f"runs {states}")
    return Outcome("ok", "both exit 0, every run finished once")


@case("termination signals", "a signal during a checkpoint write waits for it to complete")
def _held_signal(tmp: Path) -> Outcome:
    from memloss.training.signals import Terminated, held, stop_on_termination

    done = []
    try:
        with stop_on_termination():
            with held():
                os.kill(os.getpid(), signal.SIGUSR1)
                time.sleep(0.01)
                done.append("write completed")
            return Outcome("silent", "the signal was lost")
    except Terminated as e:
        if not done or e.exit_code != 138:
            return Outcome("silent", f"completed={bool(done)} exit {e.exit_code}")
        if signal.getsignal(signal.SIGUSR1) is not signal.SIG_DFL:
            return Outcome("silent", "the SIGTERM handler was not restored")
        return Outcome("ok", f"{e} after the write, exit code 138")
