"""The bad-input, run-file and concurrency cases of the robustness table, as functions
``case(tmp) -> Outcome`` grouped by the table's rows. ``tests/faults/test_*.py`` run them in
CI; ``tools/fault_campaign.py`` runs them (with the slow crash campaign) and prints the table.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .harness import (HANG_SECONDS, HUNG, TINY, as_child, file_hashes, in_child, output_to,
                      start, wait_or_kill)
from .outcomes import Outcome, judge_error

Case = Callable[[Path], Outcome]


@dataclass(frozen=True)
class Entry:
    group: str
    name: str
    run: Case
    slow: bool = False  # over ~5 s (real processes): marked slow in the test suite


CASES: list[Entry] = []


def case(group: str, name: str, slow: bool = False) -> Callable[[Case], Case]:
    def deco(fn: Case) -> Case:
        CASES.append(Entry(group, name, fn, slow))
        return fn

    return deco


# --- helpers --------------------------------------------------------------------------------
def run_cli(*argv: str) -> tuple[int, str]:
    """``memloss ARGV`` in this process: its exit code and stderr (an exception escaping
    ``main`` is printed as the traceback it would be)."""
    from memloss.cli import main

    err = io.StringIO()
    logging.disable(logging.INFO)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 2
            except BaseException:  # noqa: BLE001
                traceback.print_exc(file=err)
                code = 71
    finally:
        logging.disable(logging.NOTSET)
    return code, err.getvalue()


def expect_cli_error(argv: list[Any], expect: str, keep: Path | None = None) -> Outcome:
    """The command must fail with one clear line matching ``expect`` and change no file
    under ``keep``."""
    before = file_hashes(keep) if keep is not None else None
    code, err = run_cli(*argv)
    out = judge_error(code, err, expect)
    if keep is not None and file_hashes(keep) != before:
        return Outcome("data-loss", f"files under {keep.name} changed: {out.detail}")
    return out


def expect_api_error(fn: Callable[[], Any], expect: str) -> Outcome:
    """``fn()`` must raise a ValueError with one line matching ``expect`` (at most 400
    characters: hostile values are echoed cut short)."""
    try:
        fn()
    except ValueError as e:
        text = str(e)
        if "\n" in text or len(text) > 400:
            return Outcome("silent", f"message of {len(text)} characters: {text[:120]}")
        if not __import__("re").search(expect, text):
            return Outcome("clear", f"(unexpected wording) {text[:300]}")
        return Outcome("clear", text[:300])
    except Exception as e:  # noqa: BLE001
        return Outcome("traceback", f"{type(e).__name__}: {str(e)[:200]}")
    return Outcome("silent", "accepted")


_TEMPLATE: dict[str, Path] = {}


def trained(tmp: Path, name: str = "run") -> Path:
    """A copy of a finished tiny run (trained once per process)."""
    if "run" not in _TEMPLATE or not _TEMPLATE["run"].exists():
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="memloss-faults-"))
        code, err = run_cli("train", *TINY, "--out", root / "run")
        assert code == 0, err
        _TEMPLATE["run"] = root / "run"
    dst = tmp / name
    shutil.copytree(_TEMPLATE["run"], dst)
    return dst


def ckpt_file(run: Path, name: str) -> Path:
    from memloss.core import runfiles as rf

    ckpt = rf.read_checkpoint(run)
    assert ckpt is not None
    return ckpt.path(name)


def forge_weights(run: Path, change: Callable[[dict], dict], name: str = "model.safetensors") -> None:
    """Rewrite a checkpoint's weights through ``change`` and record the new digest in the
    manifest, as a hand (or a buggy tool) could: only the content checks can catch it."""
    from memloss.core import runfiles as rf

    path = ckpt_file(run, name)
    tensors = change(rf.load_weights(path, finite=False))
    meta = rf.weights_metadata(path)
    path.unlink()
    rf.write_weights(path, tensors, meta)
    manifest = json.loads((run / rf.CHECKPOINT).read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                               "bytes": path.stat().st_size}
    (run / rf.CHECKPOINT).write_text(json.dumps(manifest))


def holding_lock(run: Path) -> int:
    """Fork a process that holds ``run``'s lock until killed; return its pid."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        from memloss.core.runfiles import RunLock

        try:
            lock = RunLock(run, "test holder").acquire()  # kept: a dropped lock is released
            os.write(w, b"1")
            time.sleep(60)
            lock.release()
        finally:
            os._exit(0)
    os.close(w)
    os.read(r, 1)
    os.close(r)
    return pid


def reap(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def finishes_like_reference(run: Path, argv: list[Any]) -> Outcome:
    """The command must succeed and leave a run whose results equal a straight run's."""
    from .harness import snapshot

    code, err = run_cli(*argv)
    if code != 0:
        return judge_error(code, err)
    fresh_run = run.parent / "straight"
    code2, err2 = run_cli("train", *TINY, "--out", fresh_run)
    assert code2 == 0, err2
    same = snapshot(run) == snapshot(fresh_run)
    return Outcome("ok", "same result as a straight run") if same else \
        Outcome("silent", "result differs from a straight run")


# --- point 2: one writer --------------------------------------------------------------------
@case("two writers on one run", "resume while another process holds the lock")
def _lock_resume(tmp: Path) -> Outcome:
    run = trained(tmp)
    pid = holding_lock(run)
    try:
        return expect_cli_error(["train", "--resume", run, "--set", "epochs=3"],
                                f"being written by process {pid}", keep=run)
    finally:
        reap(pid)


@case("two writers on one run", "eval while another process holds the lock")
def _lock_eval(tmp: Path) -> Outcome:
    run = trained(tmp)
    pid = holding_lock(run)
    try:
        return expect_cli_error(["eval", run], f"being written by process {pid}", keep=run)
    finally:
        reap(pid)


@case("two writers on one run", "new run into a folder another process holds")
def _lock_start(tmp: Path) -> Outcome:
    run = tmp / "run"
    run.mkdir()
    pid = holding_lock(run)
    try:
        return expect_cli_error(["train", *TINY, "--out", run], f"being written by process {pid}")
    finally:
        reap(pid)


@case("two writers on one run", "lock of a SIGKILLed holder is free again")
def _lock_released(tmp: Path) -> Outcome:
    run = trained(tmp)
    reap(holding_lock(run))
    code, err = run_cli("train", "--resume", run, "--set", "epochs=3")
    return Outcome("ok", "resumed") if code == 0 else judge_error(code, err)


def _race(tmp: Path, make: Callable[[int], Callable[[], int]]) -> list:
    """Start two children at once; return their results."""
    pids = []
    for i in range(2):
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                output_to(tmp / f"race{i}.err")
                as_child()
                code = make(i)()
            finally:
                os._exit(code)
        pids.append(pid)
    out = []
    for i, pid in enumerate(pids):
        status = wait_or_kill(pid, HANG_SECONDS)
        if status is None:
            out.append((HUNG, f"Traceback (most recent call last): none: child {i} hung and "
                              f"was killed after {HANG_SECONDS:g} s"))
            continue
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        out.append((code, (tmp / f"race{i}.err").read_text()))
    return out


def _judge_race(results: list, run: Path, lines: int) -> Outcome:
    from memloss.core import runfiles as rf

    winners = [r for r in results if r[0] == 0]
    losers = [judge_error(*r, "being written by|already holds a run") for r in results
              if r[0] != 0]
    if len(winners) != 1 and not (len(winners) == 2 and not losers):
        bad = [o for o in losers if o.category != "clear"]
        return bad[0] if bad else Outcome("data-loss", f"{len(winners)} writers succeeded")
    for o in losers:
        if o.category != "clear":
            return o
    try:
        from memloss.runs import load_run

        load_run(run)
        got = len(rf.read_jsonl(run / rf.METRICS))
    except ValueError as e:
        return Outcome("data-loss", f"the run does not load after the race: {e}")
    if got != lines:
        return Outcome("data-loss", f"{got} metrics lines, expected {lines}")
    return Outcome("ok", "one writer won; " + (losers[0].detail if losers else "the second "
                                                "started after the first finished"))


@case("two writers on one run", "two `train --out` at once")
def _race_start(tmp: Path) -> Outcome:
    run = tmp / "run"
    return _judge_race(_race(tmp, lambda i: start(run)), run, 4)


@case("two writers on one run", "two `train --resume` at once")
def _race_resume(tmp: Path) -> Outcome:
    run = trained(tmp)
    from .harness import cli

    return _judge_race(_race(tmp, lambda i: cli("train", "--resume", str(run), "--set",
                                                  "epochs=3")), run, 6)


# --- point 3: --out guard -------------------------------------------------------------------
def _user_folder(tmp: Path, files: dict[str, str]) -> Path:
    out = tmp / "mine"
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    return out


@case("--out guard", "folder with a user's files")
def _out_user_files(tmp: Path) -> Outcome:
    out = _user_folder(tmp, {"notes.txt": "mine", "model.safetensors": "my weights"})
    return expect_cli_error(["train", *TINY, "--out", out], "not empty and holds no memloss run",
                            keep=out)


@case("--out guard", "folder with a user's metrics.jsonl")
def _out_user_metrics(tmp: Path) -> Outcome:
    out = _user_folder(tmp, {"metrics.jsonl": '{"epoch": 1, "step": 1}\n'})
    return expect_cli_error(["train", *TINY, "--out", out], "not empty", keep=out)


@case("--out guard", "folder with a stale diagnostics/")
def _out_stale_diagnostics(tmp: Path) -> Outcome:
    out = _user_folder(tmp, {"diagnostics/state-decay.csv": "a,b\n1,2\n"})
    return expect_cli_error(["train", *TINY, "--out", out], "not empty", keep=out)


@case("--out guard", "--out is a regular file")
def _out_file(tmp: Path) -> Outcome:
    f = tmp / "file"
    f.write_text("x")
    return expect_cli_error(["train", *TINY, "--out", f], "is a file", keep=tmp)


@case("--out guard", "--out under a regular file")
def _out_under_file(tmp: Path) -> Outcome:
    f = tmp / "file"
    f.write_text("x")
    return expect_cli_error(["train", *TINY, "--out", f / "sub" / "run"], "is a file, not a folder",
                            keep=tmp)


@case("--out guard", "folder holding a finished run")
def _out_finished(tmp: Path) -> Outcome:
    run = trained(tmp)
    return expect_cli_error(["train", *TINY, "--out", run], "already holds a run", keep=run)


@case("--out guard", "interrupted start of another config")
def _out_other_start(tmp: Path) -> Outcome:
    run = trained(tmp)
    for p in list(run.iterdir()):
        if p.name not in ("config.json",):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return expect_cli_error(["train", *TINY, "--set", "seed=5", "--out", run],
                            "start of another run", keep=run)


@case("--out guard", "interrupted start of the same config is started again")
def _out_same_start(tmp: Path) -> Outcome:
    run = trained(tmp)
    for p in list(run.iterdir()):
        if p.name not in ("config.json", "metrics.jsonl"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return finishes_like_reference(run, ["train", *TINY, "--out", run])


@case("--out guard", "empty existing folder")
def _out_empty(tmp: Path) -> Outcome:
    (tmp / "run").mkdir()
    return finishes_like_reference(tmp / "run", ["train", *TINY, "--out", tmp / "run"])


_DIVERGE = ["adding", "--set", "task.length=6", "--set", "task.train_size=128", "--set",
            "task.valid_size=16", "--set", "task.test_size=16", "--set", "hidden_size=8",
            "--set", "batch_size=32", "--set", "eval_batch_size=64", "--set", "epochs=3",
            "--set", "eval_every=1", "--set", "progress=false", "--set", "lr=1e4"]


# --- point 5: failures before the first checkpoint leave nothing behind -----------------------
def tiny(sets: list[str]) -> list[str]:
    """The tiny run's arguments with ``sets`` replacing its own settings of those keys."""
    keys = {s.split("=", 1)[0] for s in sets}
    out: list[str] = []
    i = 0
    while i < len(TINY):
        if TINY[i] == "--set" and TINY[i + 1].split("=", 1)[0] in keys:
            i += 2
            continue
        out.append(TINY[i])
        i += 1
    return out + [a for s in sets for a in ("--set", s)]


def _fails_cleanly(tmp: Path, sets: list[str], expect: str) -> Outcome:
    out = tmp / "run"
    argv = ["train", *tiny(sets), "--out", out]
    first = expect_cli_error(argv, expect)
    if first.category != "clear":
        return first
    if out.exists() and any(out.iterdir()):
        return Outcome("silent", f"a half-run was left behind: {sorted(os.listdir(out))}")
    again = expect_cli_error(["train", "--resume", out], "does not exist")
    if again.category != "clear":
        return again
    code, err = run_cli("train", *TINY, "--out", out)  # the retry with a good config
    if code != 0:
        return Outcome("data-loss", f"the retry is blocked: {judge_error(code, err).detail}")
    return Outcome("clear", first.detail)


@case("errors before the first checkpoint", "NaN at step 1")
def _nan_step1(tmp: Path) -> Outcome:
    out = tmp / "run"
    first = expect_cli_error(["train", *_DIVERGE[:-1], "lr=1e30", "--out", out],
                             "non-finite .*before the first")
    if first.category == "clear" and out.exists():
        return Outcome("silent", "a half-run was left behind")
    return first


@case("errors before the first checkpoint", "path=native with an in-recurrence scheme")
def _native_in_recurrence(tmp: Path) -> Outcome:
    return _fails_cleanly(tmp, ["path=native"], "path='native' cannot run")


@case("errors before the first checkpoint", "absurd hidden_size")
def _absurd_hidden(tmp: Path) -> Outcome:
    return _fails_cleanly(tmp, ["hidden_size=10000000"], "not enough memory")


@case("errors before the first checkpoint", "absurd task size (allocator failure)")
def _absurd_task(tmp: Path) -> Outcome:
    return _fails_cleanly(tmp, ["task.train_size=1000000000000"], "not enough memory")


@case("errors before the first checkpoint", "corrupt MNIST files")
def _corrupt_mnist(tmp: Path) -> Outcome:
    root = tmp / "mnist"
    src = Path(__file__).resolve().parents[1] / "fixtures" / "mnist"
    shutil.copytree(src, root)
    victim = sorted(root.glob("train-images*"))[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    out = tmp / "run"
    first = expect_cli_error(["train", "seq-mnist", "--set", f"task.root={root}", "--set",
                              "hidden_size=8", "--set", "progress=false", "--out", out],
                             "truncated|corrupt")
    if first.category == "clear" and out.exists():
        return Outcome("silent", "a half-run was left behind")
    return first


# --- point 6: NaN recovery ------------------------------------------------------------------
@case("NaN recovery", "resume after a NaN stop with a lower lr and clip")
def _nan_recovery(tmp: Path) -> Outcome:
    from memloss.core import runfiles as rf

    run = tmp / "run"
    first = expect_cli_error(["train", *_DIVERGE, "--out", run], "last good checkpoint")
    if first.category != "clear":
        return first
    same = expect_cli_error(["train", "--resume", run], "non-finite")  # same lr: same NaN
    if same.category != "clear":
        return same
    code, err = run_cli("train", "--resume", run, "--set", "lr=0.01", "--set", "clip=1.0")
    if code != 0:
        return Outcome("data-loss", f"recovery refused: {judge_error(code, err).detail}")
    changed = rf.read_json(run / rf.CONFIG)["resumed"][-1]["changed"]
    if changed.get("lr") != [1e4, 0.01] or changed.get("clip") != [None, 1.0]:
        return Outcome("silent", f"the change is not recorded: {changed}")
    return Outcome("ok", f"resumed with lr 1e4 -> 0.01, clip 1.0 (recorded: {changed})")


# --- point 4: verified weights; eval keeps good results --------------------------------------
@case("verified weights", "eval --weights last on NaN weights (digest updated)")
def _eval_nan_weights(tmp: Path) -> Outcome:
    run = trained(tmp)
    forge_weights(run, lambda w: {k: v.fill_(float("nan")) if k == "head.weight" else v
                                  for k, v in w.items()})
    keep = tmp / "final-before.json"
    shutil.copy(run / "final.json", keep)
    out = expect_cli_error(["eval", run, "--weights", "last"], "non-finite weights")
    if (run / "final.json").read_bytes() != keep.read_bytes():
        return Outcome("data-loss", "final.json changed")
    return out


@case("verified weights", "eval on a weights file with one flipped byte")
def _eval_flipped(tmp: Path) -> Outcome:
    run = trained(tmp)
    path = ckpt_file(run, "model.safetensors")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40
    path.unlink()
    path.write_bytes(bytes(data))
    return expect_cli_error(["eval", run, "--weights", "last"], "does not match the digest",
                            keep=run)


@case("verified weights", "eval giving a non-finite result keeps final.json")
def _eval_inf_result(tmp: Path) -> Outcome:
    run = tmp / "adding"  # regression: huge outputs give an infinite squared error
    code, err = run_cli("train", *_DIVERGE[:-1], "lr=0.01", "--out", run)
    assert code == 0, err
    forge_weights(run, lambda w: {k: v * 3e38 if k.startswith("head") else v for k, v in w.items()})
    return expect_cli_error(["eval", run, "--weights", "last"], "non-finite|non-finite weights",
                            keep=run)


@case("verified weights", "eval --batch-size 0")
def _eval_bs0(tmp: Path) -> Outcome:
    run = trained(tmp)
    return expect_cli_error(["eval", run, "--batch-size", "0"], "batch_size", keep=run)


# --- point 7: tracebacks --------------------------------------------------------------------
@case("device and interrupts", "train --set device=cuda without CUDA")
def _cuda_train(tmp: Path) -> Outcome:
    if torch.cuda.is_available():
        return Outcome("ok", "CUDA present: not applicable")
    return expect_cli_error(["train", *TINY, "--set", "device=cuda", "--out", tmp / "r"],
                            "CUDA is not available")


@case("device and interrupts", "probe --device cuda without CUDA")
def _cuda_probe(tmp: Path) -> Outcome:
    if torch.cuda.is_available():
        return Outcome("ok", "CUDA present: not applicable")
    run = trained(tmp)
    return expect_cli_error(["probe", run, "--probe", "state-decay", "--device", "cuda"],
                            "CUDA is not available", keep=run)


@case("device and interrupts", "train --set device=cuda:abc")
def _cuda_bad_name(tmp: Path) -> Outcome:
    return expect_cli_error(["train", *TINY, "--set", "device=cuda:abc", "--out", tmp / "r"],
                            "device must be")


@case("device and interrupts", "Ctrl-C during training: exit 130, then resume")
def _ctrl_c(tmp: Path) -> Outcome:
    """SIGINT a child mid-run: it must exit 130 with one line, and the run must continue
    bit for bit."""
    from .crash import _after, reference_for

    ref = reference_for(tmp)
    run = tmp / "run"
    pid_done = {}

    def interrupt_soon() -> int:
        import threading

        def later() -> None:
            time.sleep(ref.seconds * 0.5)
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=later, daemon=True).start()
        return start(run)()

    from .harness import Plan

    first = in_child(interrupt_soon, Plan(), tmp / "sigint.log")
    pid_done["code"] = first.code
    if first.code == 0:
        return Outcome("ok", "finished before the interrupt")
    judged = judge_error(first.code, first.err, "interrupted")
    if judged.category != "clear" or first.code != 130:
        return judged if judged.category != "clear" else Outcome("traceback", f"exit {first.code}")
    out = _after(run, ref, len(first.ops) + 1, tmp, first)
    return Outcome(out.category, f"{judged.detail[:120]} -> {out.detail}")


# --- point 8: strict values -----------------------------------------------------------------
def _scheme_case(text: str, expect: str) -> Case:
    def run(tmp: Path) -> Outcome:
        from memloss.models import parse_scheme

        return expect_api_error(lambda: parse_scheme(text), expect)
    return run


for _text, _expect, _name in [
        ("semeniuta:p=0.2,p=0.3", "given twice", "duplicate scheme key"),
        ("none+", "empty part", "`none+`"),
        ("semeniuta:p=0.2_5", "must be a number", "`p=0.2_5`"),
        ("x" * 100_000, "100002 characters", "100 kB scheme name (echoed cut short)"),
        ("zaremba:p=nan", "must be a number", "`p=nan`"),
        ("semeniuta:p=0.25,,sampling=step", "empty parameter", "stray comma"),
        ("none+none", "appears twice", "a scheme stacked on itself")]:
    case("strict values", _name)(_scheme_case(_text, _expect))


@case("strict values", "make_scheme('gal', tied='false')")
def _tied_string(tmp: Path) -> Outcome:
    from memloss.models.schemes import make_scheme

    return expect_api_error(lambda: make_scheme("gal", tied="false"), "true or false")


def _set_case(sets: list[str], expect: str, target: str = "temporal-order") -> Case:
    def run(tmp: Path) -> Outcome:
        argv = ["train", target, *[a for s in sets for a in ("--set", s)], "--out", tmp / "r"]
        out = expect_cli_error(argv, expect)
        if out.category == "clear" and (tmp / "r").exists():
            return Outcome("silent", "files written before the error")
        return out
    return run


for _sets, _expect, _name in [
        (["min_lr=5", "schedule=plateau", "lr_decay=0.5"], "min_lr=5 is above lr", "min_lr > lr"),
        (["forget_bias=1e30"], "forget_bias must be", "forget_bias=1e30"),
        (["forget_bias=inf"], "forget_bias=.inf.: must be a number|forget_bias must be",
         "forget_bias=inf"),
        (["init_range=1e30"], "init_range must be", "init_range=1e30"),
        (["init_range=inf"], "init_range", "init_range=inf"),
        (["embedding_dim=16"], "embedding_dim=16 applies to token input",
         "embedding_dim with float input"),
        (["seed=18446744073709551616"], "seed must be an integer", "seed 2^64"),
        (["hooks=bogus"], "unknown callback 'bogus'; valid choices: ", "--set hooks=bogus"),
        (["lr=1_0"], "must be a number such as", "--set lr=1_0"),
        (["lr=0.5", "lr=0.6"], "given twice", "--set lr twice"),
        (["epochs=2.5"], "must be an integer", "--set epochs=2.5"),
        (["eval_modes=deterministic,,mc"], "names separated by commas", "empty mode name")]:
    case("strict values", _name)(_set_case(_sets, _expect))


@case("strict values", "probe --seed 2^64")
def _probe_seed(tmp: Path) -> Outcome:
    run = trained(tmp)
    return expect_cli_error(["probe", run, "--probe", "state-decay", "--seed",
                             str(2**64)], "seed must be an integer", keep=run)


@case("strict values", "word2vec file with a NaN row")
def _w2v_nan(tmp: Path) -> Outcome:
    from memloss.tasks.data.word2vec import read_word2vec

    path = tmp / "v.txt"
    path.write_text("2 3\nthe 0.1 0.2 0.3\ncat nan 0.1 0.2\n")
    return expect_api_error(lambda: read_word2vec(path), "line 3 holds a value that is NaN")


@case("strict values", "word2vec binary file with an inf row")
def _w2v_inf(tmp: Path) -> Outcome:
    import numpy as np

    from memloss.tasks.data.word2vec import read_word2vec

    path = tmp / "v.bin"
    rows = np.array([[0.1, 0.2], [np.inf, 0.0]], dtype="<f4")
    path.write_bytes(b"2 2\n" + b"the " + rows[0].tobytes() + b"\ncat " + rows[1].tobytes() + b"\n")
    return expect_api_error(lambda: read_word2vec(path, binary=True), "vector 2 holds")


@case("strict values", "IDX header whose sizes wrap around int64")
def _idx_wrap(tmp: Path) -> Outcome:
    import numpy as np

    from memloss.tasks.data.idx import read_idx

    path = tmp / "wrap-idx3-ubyte"
    # 2^32-1 cubed wraps around in int64 arithmetic; the data is 8 bytes
    dims = np.array([2**32 - 1, 2**32 - 1, 2**32 - 1], dtype=">u4")
    path.write_bytes(bytes([0, 0, 0x08, 3]) + dims.tobytes() + b"\x00" * 8)
    return expect_api_error(lambda: read_idx(path), "truncated")


@case("strict values", "edited train.scheme in config.json, then --resume")
def _edited_scheme(tmp: Path) -> Outcome:
    run = trained(tmp)
    cfg = json.loads((run / "config.json").read_text())
    cfg["train"]["net"]["scheme"] = "zaremba:p=0.5"
    (run / "config.json").write_text(json.dumps(cfg))
    return expect_cli_error(["train", "--resume", run, "--set", "epochs=3"],
                            "was edited after the checkpoint", keep=run)


@case("strict values", "edited net.scheme in config.json, then eval")
def _edited_net_scheme(tmp: Path) -> Outcome:
    run = trained(tmp)
    cfg = json.loads((run / "config.json").read_text())
    cfg["net"]["scheme"] = "zaremba:p=0.5"
    (run / "config.json").write_text(json.dumps(cfg))
    return expect_cli_error(["eval", run], "edited", keep=run)


# --- point 7: model-level calls -------------------------------------------------------------
def _model_case(path: str, what: str) -> Case:
    def run(tmp: Path) -> Outcome:
        from memloss.models import Recurrent

        scheme = "none" if path == "native" else "semeniuta:p=0.25"
        r = Recurrent("lstm", 4, 8, scheme=scheme, path=path)
        x = torch.zeros(3, 2, 4)
        calls = {
            "T=0 input": (lambda: r(torch.zeros(0, 2, 4)), "no time steps"),
            "float64 input": (lambda: r(x.double()), "input is torch.float64"),
            "float64 hx": (lambda: r(x, (torch.zeros(1, 2, 8).double(),) * 2), "hx is torch.float64"),
            "masks= a tensor": (lambda: r(x, masks=torch.ones(3)), "masks must be a dict"),
        }
        fn, expect = calls[what]
        return expect_api_error(fn, expect)
    return run


for _path in ("reference", "native", "fused"):
    for _what in ("T=0 input", "float64 input", "float64 hx", "masks= a tensor"):
        case("model calls", f"{_what}, path={_path}")(_model_case(_path, _what))


@case("model calls", "Net with T=0 token input")
def _net_t0(tmp: Path) -> Outcome:
    from memloss.models import Net, NetConfig

    net = Net(NetConfig(vocab_size=10, hidden_size=8, output_size=3))
    return expect_api_error(lambda: net(torch.zeros(2, 0, dtype=torch.long)), "no time steps")


# --- point 9: leftovers and downloads -------------------------------------------------------
def _serve(body: Callable[[Any], None], length: int | None):
    """A one-file HTTP server on 127.0.0.1 (a thread); returns (url, shutdown)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            with contextlib.suppress(OSError):
                body(self.wfile)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/f", server.shutdown


def _download_case(body: Callable[[Any], None], length: int | None, expect: str) -> Case:
    def run(tmp: Path) -> Outcome:
        from memloss.tasks.data.store import Dataset, RemoteFile, fetch

        url, stop = _serve(body, length)
        try:
            ds = Dataset("test-set", "a test file", (RemoteFile("f.bin", (url,), size=1000),))
            out = expect_api_error(lambda: fetch(ds, tmp / "data", timeout=5), expect)
        finally:
            stop()
        left = [p.name for p in (tmp / "data").iterdir()] if (tmp / "data").exists() else []
        if left:
            return Outcome("silent", f"left behind: {left}")
        return out
    return run


def _endless(w: Any) -> None:
    for _ in range(10_000):  # 640 MB if nothing stops it
        w.write(b"\x00" * 65536)


case("downloads", "endless stream, no Content-Length")(
    _download_case(_endless, None, "goes on past the catalogued size"))
case("downloads", "Content-Length above the catalogued size")(
    _download_case(lambda w: w.write(b"\x00" * 5000), 5000, "announces 5000 bytes"))
case("downloads", "truncated transfer")(
    _download_case(lambda w: w.write(b"\x00" * 10), 1000, "truncated"))


@case("leftovers", "stale .part of a killed download is removed")
def _stale_part(tmp: Path) -> Outcome:
    from memloss.tasks.data.store import Dataset, RemoteFile, fetch

    root = tmp / "data"
    root.mkdir()
    part = root / ".f.bin.abc.part"
    part.write_bytes(b"half")
    os.utime(part, (time.time() - 3600, time.time() - 3600))
    url, stop = _serve(lambda w: w.write(b"\x01" * 1000), 1000)
    try:
        fetch(Dataset("t", "t", (RemoteFile("f.bin", (url,), size=1000),)), root, timeout=5)
    finally:
        stop()
    if part.exists():
        return Outcome("silent", "the .part file is still there")
    return Outcome("ok", "removed; the file downloaded and verified")


@case("leftovers", ".tmp files and stray checkpoint folders are removed on resume")
def _stale_tmp(tmp: Path) -> Outcome:
    run = trained(tmp)
    (run / ".metrics.jsonl.x1y2z3w4.tmp").write_text("partial")  # mkstemp: 8 random
    (run / ".checkpoint-000000009-0a0b0c0d.tmp").mkdir()
    (run / "checkpoint-000000009-0a0b0c0d").mkdir()
    code, err = run_cli("train", "--resume", run, "--set", "epochs=3")
    if code != 0:
        return judge_error(code, err)
    left = [p.name for p in run.iterdir() if p.name.endswith(".tmp") or "000000009" in p.name]
    return Outcome("silent", f"left: {left}") if left else Outcome("ok", "removed")


# --- corrupted and hand-edited run files ----------------------------------------------------
_RUN_FILES = ("config.json", "final.json", "metrics.jsonl", "checkpoint.json",
              "model.safetensors", "best.safetensors", "trainer_state.pt")
_JSON_EDITS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "config.json": {"a list": lambda c: [c], "train a number": lambda c: {**c, "train": 5},
                    "lr a string": lambda c: {**c, "train": {**c["train"], "lr": "fast"}},
                    "net missing": lambda c: {k: v for k, v in c.items() if k != "net"},
                    "preset reported a number": lambda c: {
                        **c, "info": {"preset": {"reported": 5}}}},
    "final.json": {"a list": lambda f: [f], "test a number": lambda f: {**f, "test": 3},
                   "a metric a string": lambda f: {**f, "test": {"deterministic": {
                       "accuracy": "high"}}},
                   "weights unknown": lambda f: {**f, "weights": "newest"}},
    "checkpoint.json": {"a list": lambda m: [m], "step negative": lambda m: {**m, "step": -1},
                        "dir escapes the run": lambda m: {**m, "dir": "../../etc"},
                        "digest edited": lambda m: {**m, "files": {
                            **m["files"], "model.safetensors": {
                                **m["files"]["model.safetensors"], "sha256": "0" * 64}}},
                        "loop counter a float": lambda m: {
                            **m, "loop": {**m["loop"], "step": 4.0}}},
}


def _corrupt_bytes(path: Path, way: str) -> None:
    data = path.read_bytes()
    if path.exists():
        path.unlink()  # never edit a (possibly hard-linked) checkpoint file in place
    if way == "deleted":
        return
    path.write_bytes({"emptied": b"", "truncated": data[: len(data) // 2],
                      "one byte flipped": data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0x20])
                      + data[len(data) // 2 + 1:],
                      "garbage appended": data + b"\x00garbage{"}[way])


def _metrics_edit(run: Path, way: str) -> None:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    if way == "a line a list":
        lines[1] = "[1, 2]"
    elif way == "step missing":
        lines[1] = json.dumps({k: v for k, v in json.loads(lines[1]).items() if k != "step"})
    elif way == "a line removed":
        del lines[1]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def _after_corruption(run: Path, command: str) -> Outcome:
    """Run ``command`` on a damaged run: it must either work (and leave a run that loads) or
    stop with one clear line without changing any file."""
    from memloss.runs import load_run

    argv = {"eval": ["eval", run], "resume": ["train", "--resume", run, "--set", "epochs=3"]}
    before = file_hashes(run)
    code, err = run_cli(*argv[command])
    if code == 0:
        try:
            load_run(run)
        except ValueError as e:
            return Outcome("silent", f"succeeded but left a run that does not load: {e}")
        return Outcome("ok", "worked (the damaged file was not needed or was rebuilt)")
    out = judge_error(code, err)
    if file_hashes(run) != before:
        return Outcome("data-loss", f"files changed by a failed command: {out.detail}")
    return out


def _corruption_case(name: str, way: str, command: str) -> Case:
    def run_case(tmp: Path) -> Outcome:
        run = trained(tmp)
        path = run / name if name.endswith((".json", ".jsonl")) else ckpt_file(run, name)
        if way in _JSON_EDITS.get(name, {}):
            path.write_text(json.dumps(_JSON_EDITS[name][way](json.loads(path.read_text()))))
        elif name == "metrics.jsonl" and way in ("a line a list", "step missing",
                                                 "a line removed"):
            _metrics_edit(run, way)
        else:
            _corrupt_bytes(path, way)
        return _after_corruption(run, command)
    return run_case


for _name in _RUN_FILES:
    _ways = ["deleted", "emptied", "truncated", "one byte flipped", "garbage appended"]
    _ways += list(_JSON_EDITS.get(_name, {}))
    if _name == "metrics.jsonl":
        _ways += ["a line a list", "step missing", "a line removed"]
    for _way in _ways:
        for _command in ("eval", "resume"):
            case("corrupted run files", f"{_name} {_way}, then {_command}")(
                _corruption_case(_name, _way, _command))


from . import surfaces  # noqa: E402,F401  (registers the cases of issue 23's surfaces)
