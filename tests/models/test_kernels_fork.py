"""A forked child (a DataLoader worker, a process pool, a fault-injection harness) builds and
runs step kernels even when the parent forked while another thread held the kernels' lock
or while a background compile was pending."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import torch

from memloss.models.paths import kernels

from .variants import make_layer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")


def _child_runs_a_fused_layer() -> int:
    torch.manual_seed(0)
    layer = make_layer("lstm", 3, 4, num_layers=1, scheme="zoneout", path="fused")
    out, _ = layer(torch.randn(5, 2, 3))
    out.sum().backward()
    return 0 if torch.isfinite(out).all() else 1


def _fork_and_wait(fn, seconds: float = 60.0) -> str:
    """Run ``fn`` in a forked child; 'ok', 'failed' or 'hung' (killed after ``seconds``)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = fn()
        finally:
            os._exit(code)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "ok" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else "failed"
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"


def test_a_child_forked_while_the_lock_is_held_builds_its_kernels(monkeypatch):
    monkeypatch.setattr(kernels, "COMPILE", "never")
    kernels.clear_cache()
    held, release = threading.Event(), threading.Event()

    def hold():
        with kernels._lock:
            held.set()
            release.wait(120)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    held.wait(10)
    try:
        assert _fork_and_wait(_child_runs_a_fused_layer) == "ok"
    finally:
        release.set()
        t.join(10)


def test_a_kernel_pending_in_the_parent_runs_uncompiled_in_the_child(monkeypatch):
    monkeypatch.setattr(kernels, "COMPILE", "never")
    kernels.clear_cache()
    torch.manual_seed(0)
    layer = make_layer("lstm", 3, 4, num_layers=1, scheme="zoneout", path="fused").eval()
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        want, _ = layer(x)
    for k in kernels._cache.values():  # as if a background compile were under way
        k.pending = True
    try:
        def child() -> int:
            assert not any(k.pending for k in kernels._cache.values())
            assert kernels.wait_compiled(timeout=5)
            with torch.no_grad():
                got, _ = layer(x)
            return 0 if torch.equal(got, want) else 1

        assert _fork_and_wait(child) == "ok"
    finally:
        for k in kernels._cache.values():
            k.pending = False
        kernels.clear_cache()
