"""The asv suites' building blocks: skips for impossible combinations, the pinned threads,
the timed closure, the interleaved ratio, the exact peak bytes, the checkout check, and the
quality tracker's determinism."""
from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time

import pytest
import torch

from benchmarks import checkout, common
from benchmarks.bench_layer import RatioToTorchNN, TimeLayer
from benchmarks.bench_memory import PeakMemory
from benchmarks.bench_quality import train_delayed_recall
from benchmarks.peak import LiveTensorBytes, peak_bytes

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("cell,scheme,path,device", [
    ("lstm", "semeniuta", "native", "cpu"),   # in-recurrence mask: no native kernel
    ("gru", "moon", "fused", "cpu"),          # moon needs a cell state
    ("lstm", "gal", "torch.nn", "cpu"),       # the baseline has no scheme
])
def test_impossible_combinations_skip(cell, scheme, path, device):
    with pytest.raises(NotImplementedError):
        common.make_layer(cell, scheme, path, 8, torch.device(device))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the skip without CUDA")
@pytest.mark.parametrize("bench,args", [
    (TimeLayer, ("lstm", "none", "fused", 8, 2, "cuda")),
    (RatioToTorchNN, ("lstm", "none", "fused", 8, 2, "cuda")),
    (PeakMemory, ("lstm", "none", "fused", "cuda")),
])
def test_cuda_benchmarks_skip_without_a_gpu(bench, args):
    with pytest.raises(NotImplementedError, match="CUDA"):
        bench().setup(*args)


def test_threads_are_pinned_to_one_unless_set(monkeypatch):
    monkeypatch.delenv(common.THREADS_ENV, raising=False)
    torch.set_num_threads(2)
    common.prepare("cpu")
    assert torch.get_num_threads() == 1
    monkeypatch.setenv(common.THREADS_ENV, "2")
    common.prepare("cpu")
    assert torch.get_num_threads() == 2
    monkeypatch.setenv(common.THREADS_ENV, "two")
    with pytest.raises(ValueError, match="MEMLOSS_BENCH_THREADS"):
        common.prepare("cpu")


def test_cpu_timings_use_process_time_and_cuda_wall_clock():
    assert TimeLayer.timer is time.process_time
    b = TimeLayer()
    b.setup("lstm", "none", "native", 8, 2, "cpu")
    assert b.timer is time.process_time
    b.time_forward_backward()


@pytest.mark.parametrize("path", ["torch.nn", "native", "fused", "reference"])
def test_fwd_bwd_closure_runs_and_clears_gradients(path):
    layer = common.make_layer("lstm", "none", path, 8, CPU)
    run = common.fwd_bwd(layer, 2, 8, CPU)
    run()
    assert all(p.grad is None for p in layer.parameters())


def test_interleaved_times_alternate_the_order():
    calls: list[str] = []
    times = common.interleaved_times({"a": lambda: calls.append("a"),
                                      "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    with pytest.raises(ValueError, match="rounds"):
        common.interleaved_times({"a": lambda: None}, 0)


def test_ratio_benchmark_returns_per_round_samples_for_asv():
    b = RatioToTorchNN()
    b.ratio_rounds = (4, 6, 0.0)  # a short run: 4 rounds, no time for more
    b.setup("lstm", "none", "native", 16, 2, "cpu")
    out = b.track_ratio_to_torch_nn()
    assert out["number"] == 1 and len(out["samples"]) == 4
    assert all(r > 0 for r in out["samples"])
    # the native path runs the same oneDNN kernel as nn.LSTM: a ratio near 1, not 0 or 10
    assert 0.2 < statistics.median(out["samples"]) < 5
    with pytest.raises(ValueError, match="non-empty list"):
        common.asv_samples([])


def test_peak_bytes_counts_what_a_call_allocates_exactly():
    x = torch.ones(1000)  # created before: not counted

    def run() -> None:
        a = torch.empty(2000)  # 8000 bytes
        b = a + 1              # 8000 more: 16000 at once
        del a, b
        c = x * 2              # 4000 after both are freed
        c.add_(1)              # in place: nothing new
        c.view(10, 100)        # a view: nothing new

    assert peak_bytes(run, CPU) == 16000
    with LiveTensorBytes() as meter:
        run()
    assert meter.current == 0
    with pytest.raises(ValueError, match="cpu or cuda"):
        peak_bytes(run, torch.device("meta"))


def test_peak_memory_benchmark_is_deterministic_and_orders_the_paths():
    b = PeakMemory()
    got = {}
    for path in ("fused", "reference"):
        b.setup("lstm", "none", path, "cpu")
        got[path] = [b.track_peak_bytes() for _ in range(2)]
    assert got["fused"][0] == got["fused"][1] and got["reference"][0] == got["reference"][1]
    # at least the [T, B, 4H] float32 gates of H=650, B=32, T=35 are alive at the peak
    assert got["fused"][0] > 35 * 32 * 4 * 650 * 4
    # autograd through every op of the loop keeps more than the fused path's buffers
    assert got["reference"][0] > got["fused"][0]


# ---- the checkout check ----

def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                    *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    """A git repository with memloss/__init__.py and memloss/models/a.py committed."""
    root = tmp_path / "repo"
    (root / "memloss" / "models").mkdir(parents=True)
    (root / "memloss" / "__init__.py").write_text("x = 1\n")
    (root / "memloss" / "models" / "a.py").write_text("y = 2\n")
    (root / "README.md").write_text("not code\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "c1")
    return root


def test_blob_hash_is_gits(repo):
    out = subprocess.run(["git", "-C", str(repo), "hash-object", "memloss/models/a.py"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert checkout.blob_hash(b"y = 2\n") == out


def test_checkout_check_passes_for_the_commit_and_names_a_difference(repo, tmp_path):
    tree = checkout.commit_blobs(repo, "HEAD")
    assert set(tree) == {"memloss/__init__.py", "memloss/models/a.py"}
    assert checkout.mismatches(repo / "memloss", tree) == []
    # an installed copy elsewhere (site-packages) with the same content passes too
    installed = shutil.copytree(repo / "memloss", tmp_path / "site" / "memloss")
    assert checkout.mismatches(installed, tree) == []
    (installed / "models" / "a.py").write_text("y = 3\n")  # another checkout's code
    (installed / "new.py").write_text("")
    assert checkout.mismatches(installed, tree) == [
        "memloss/models/a.py differs from the commit's memloss/models/a.py",
        "memloss/new.py is not in the commit"]


def test_checkout_check_accepts_a_package_dir_layout(tmp_path):
    """With setuptools package-dir, memloss.models may come from models/ in the repo."""
    tree = {"models/a.py": checkout.blob_hash(b"y = 2\n"),
            "memloss/__init__.py": checkout.blob_hash(b"x = 1\n")}
    pkg = tmp_path / "memloss"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "models" / "a.py").write_text("y = 2\n")
    assert checkout.mismatches(pkg, tree) == []


def test_assert_measuring_checkout_under_asv(repo, monkeypatch):
    import memloss

    checkout._checked.cache_clear()
    monkeypatch.delenv("ASV", raising=False)
    assert not checkout.under_asv()
    checkout.assert_measuring_checkout()  # outside asv: nothing to check
    monkeypatch.setenv("ASV", "true")
    monkeypatch.setenv("ASV_CONF_DIR", str(repo))
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    monkeypatch.setenv("ASV_COMMIT", head)
    monkeypatch.setattr(memloss, "__file__", str(repo / "memloss" / "__init__.py"))
    checkout.assert_measuring_checkout()
    (repo / "memloss" / "__init__.py").write_text("x = 'edited'\n")  # a dirty tree
    checkout._checked.cache_clear()
    with pytest.raises(checkout.WrongCheckout, match=f"not commit {head[:8]}.*__init__.py differs"):
        checkout.assert_measuring_checkout()
    # an existing environment: asv sets no variable, the process is asv's benchmark.py,
    # and the code is compared with HEAD of the checkout
    for var in ("ASV", "ASV_COMMIT"):
        monkeypatch.delenv(var)
    monkeypatch.setattr(sys, "argv", ["/x/site-packages/asv/benchmark.py", "run_server"])
    assert checkout.under_asv()
    checkout._checked.cache_clear()
    with pytest.raises(checkout.WrongCheckout, match="--set-commit-hash"):
        checkout.assert_measuring_checkout()
    monkeypatch.setenv("ASV", "true")
    monkeypatch.setenv("ASV_COMMIT", "0" * 40)
    checkout._checked.cache_clear()
    with pytest.raises(checkout.WrongCheckout, match="git ls-tree"):
        checkout.assert_measuring_checkout()
    checkout._checked.cache_clear()


@pytest.mark.slow
def test_quality_tracker_is_deterministic_and_learns():
    a = train_delayed_recall("lstm", "semeniuta:p=0.1")
    b = train_delayed_recall("lstm", "semeniuta:p=0.1")
    assert a == b
    assert a["error_rate"] < 0.5 and a["perplexity"] < 4.0  # chance: 7/8 errors, ppl 8
