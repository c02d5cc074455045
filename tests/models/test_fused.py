"""The fused path beyond the generated matrix of test_equations.py: layouts (batch first, no
bias, relu, T = 1, B = 1), partial losses, inference, float32, Inductor-compiled step
kernels, and the dispatch rules."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from memloss.models import Recurrent, list_cells
from memloss.models.paths import kernels, products

from .variants import make_layer

I, H, T, B, L = 3, 4, 5, 3, 2
TOL = dict(atol=1e-11, rtol=1e-9)


def _pair(cell, scheme, dtype=torch.float64, device="cpu", **kw):
    torch.manual_seed(0)
    ref = make_layer(cell, I, H, num_layers=L, scheme=scheme, path="reference", **kw)
    fus = make_layer(cell, I, H, num_layers=L, scheme=scheme, path="fused", **kw)
    fus.load_state_dict(ref.state_dict())
    return ref.to(device, dtype), fus.to(device, dtype)


def _compare(cell, scheme, *, T=T, B=B, dtype=torch.float64, device="cpu", tol=TOL,
             batch_first=False, **kw):
    """Outputs, final states and the gradients of a loss on all of them agree."""
    ref, fus = _pair(cell, scheme, dtype, device, batch_first=batch_first, **kw)
    gen = torch.Generator().manual_seed(1)
    masks = ref.mask_plan().sample(T, B, generator=gen, device=device, dtype=dtype)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=gen).to(device, dtype)
    n = len(ref.state_names)
    hx = [torch.randn(L, B, H, generator=gen).to(device, dtype) for _ in range(n)]
    res = []
    for layer in (ref, fus):
        xi = x.clone().requires_grad_()
        hi = [h.clone().requires_grad_() for h in hx]
        out, hn = layer(xi, tuple(hi) if n > 1 else hi[0], masks=masks)
        hn = hn if isinstance(hn, tuple) else (hn,)
        loss = out.sin().sum() + sum(h.square().sum() for h in hn)
        res.append([out, *hn, *torch.autograd.grad(loss, [xi, *hi, *layer.parameters()])])
    for u, v in zip(*res):
        torch.testing.assert_close(v, u, **tol)


@pytest.mark.parametrize("cell", list_cells())
def test_batch_first_without_bias(cell):
    _compare(cell, "zoneout:p_cell=0,p_hidden=0.3+hidden-dropout:p=0.2+semeniuta:p=0.3",
             batch_first=True, bias=False)


def test_relu_rnn():
    _compare("rnn", "semeniuta:p=0.3+zoneout:p_cell=0,p_hidden=0.2", nonlinearity="relu")


@pytest.mark.parametrize("cell", list_cells())
@pytest.mark.parametrize("T,B", [(1, 3), (4, 1)])
def test_single_step_and_single_sample(cell, T, B):
    """T = 1 (no step before the first) and B = 1 (one row in every product)."""
    _compare(cell, "zoneout:p_cell=0,p_hidden=0.3+hidden-dropout:p=0.2", T=T, B=B)


def test_output_only_loss_and_frozen_inputs():
    """Unused final states and inputs that need no gradient."""
    ref, fus = _pair("lstm", "semeniuta:p=0.3+gal:p=0.2,p_recurrent=0.3")
    for layer in (ref, fus):
        layer.weight_hh_l0.requires_grad_(False)
        layer.bias_hh_l1.requires_grad_(False)
    x = torch.randn(T, B, I, dtype=torch.float64)
    masks = ref.mask_plan().sample(T, B, generator=torch.Generator().manual_seed(0),
                                   dtype=torch.float64)
    grads = []
    for layer in (ref, fus):
        out, _ = layer(x, masks=masks)
        params = [p for p in layer.parameters() if p.requires_grad]
        grads.append(torch.autograd.grad(out.square().sum(), params))
    for u, v in zip(*grads):
        torch.testing.assert_close(v, u, **TOL)


@pytest.mark.parametrize("cell", list_cells())
def test_inference_without_autograd(cell):
    scheme = "zoneout:p_cell=0,p_hidden=0.3+semeniuta:p=0.3"
    ref, fus = _pair(cell, scheme)
    x = torch.randn(T, B, I, dtype=torch.float64)
    with torch.no_grad():
        for mode in (True, False):
            a, ha = ref(x, stochastic=mode, generator=torch.Generator().manual_seed(3))
            b, hb = fus(x, stochastic=mode, generator=torch.Generator().manual_seed(3))
            torch.testing.assert_close(b, a, **TOL)
            torch.testing.assert_close(hb, ha, **TOL)


@pytest.mark.parametrize("cell", list_cells())
def test_a_step_frees_its_sequence_buffers(cell):
    """Training steps must not accumulate: the autograd node's context may not hold views of
    the output (their base holds the node, a cycle through C++ that gc cannot collect)."""
    import gc
    import weakref

    from memloss.models.paths import fused

    _, fus = _pair(cell, "zoneout:p_cell=0,p_hidden=0.3+semeniuta:p=0.3")
    x = torch.randn(T, B, I, dtype=torch.float64)
    made: list[weakref.ref] = []
    init = fused._Sequence.__init__

    def tracked(self, *args, **kw):
        init(self, *args, **kw)
        made.append(weakref.ref(self))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fused._Sequence, "__init__", tracked)
        for backward in (True, True, False):  # a graph dropped without backward too
            out, hn = fus(x, generator=torch.Generator().manual_seed(3))
            if backward:
                out.sum().backward()
            del out, hn
    gc.collect()
    assert len(made) == 3 * L
    assert [r() for r in made] == [None] * len(made)


@pytest.mark.parametrize("scheme", ["zoneout:p_cell=0.2,p_hidden=0.3",
                                    "gal:p=0.3,p_recurrent=0.3,tied=false"])
def test_a_retained_graph_gives_the_same_gradients_twice(scheme):
    """A second backward through a retained graph lays the output's views out again (the
    first backward drops them, so that the output's memory is not kept for the graph)."""
    fus = make_layer("lstm", I, H, scheme=scheme, path="fused").double()
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    out, (h, c) = fus(x, generator=torch.Generator().manual_seed(3))
    loss = (out * torch.randn_like(out)).sum() + h.sum() + 2 * c.sum()
    loss.backward(retain_graph=True)
    first = [x.grad.clone()] + [p.grad.clone() for p in fus.parameters()]
    loss.backward()
    for g, g1 in zip([x.grad] + [p.grad for p in fus.parameters()], first):
        torch.testing.assert_close(g, 2 * g1, **TOL)


def test_an_output_changed_in_place_before_the_backward_is_refused():
    """The backward reads the output (the previous states): autograd's check of saved
    tensors says when it was changed in place, as for torch's own functions."""
    fus = make_layer("lstm", I, H, scheme="zoneout:p_cell=0.2,p_hidden=0.3", path="fused")
    x = torch.randn(T, B, I, requires_grad=True)
    out, _ = fus(x, generator=torch.Generator().manual_seed(3))
    out.sum().backward()  # unchanged: fine
    out, _ = fus(x, generator=torch.Generator().manual_seed(3))
    out.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


@pytest.mark.parametrize("cell,scheme", [
    ("lstm", "semeniuta:p=0.3+zaremba:p=0.3"), ("lstm", "zoneout+moon:p=0.2"),
    ("lstm", "gal:p=0.3,p_recurrent=0.3,tied=false"), ("gru", "gal:p=0.3,p_recurrent=0.3"),
    ("gru", "semeniuta:p=0.3+hidden-dropout:p=0.2"), ("rnn", "semeniuta:p=0.3"),
    ("layernorm-lstm", "output-zoneout:p=0.3"),
])
def test_float32(cell, scheme):
    _compare(cell, scheme, dtype=torch.float32, tol=dict(atol=2e-5, rtol=1e-4))


@pytest.fixture
def compiled(monkeypatch):
    """Step kernels compiled by Inductor (skipped where no C++ compiler works)."""
    monkeypatch.setattr(kernels, "COMPILE", "always")
    kernels.clear_cache()
    yield
    built = kernels.compiled_kernels()
    # on CPU the kernels are called through the compiled module's own entry point
    assert all(k.boxed == getattr(k.fn, "current_callable", None)
               for k in kernels._cache.values() if k.compiled)
    # and, where it returns nothing (every kernel here but a backward with step parameters),
    # through the C++ functions that entry point calls (kernels._direct)
    assert all(k.direct is not None for k in kernels._cache.values()
               if k.compiled and (k.kind != "backward" or not k.desc[3].params))
    kernels.clear_cache()
    if not built:
        pytest.skip("Inductor could not compile a step kernel here (no working C++ compiler?)")


#: every in-step site and the tied recurrent mask, in one LSTM; the output gate on a
#: LayerNorm-LSTM (a carried state, separate input and recurrent parts, layer norms)
COMPILED_CASES = [
    pytest.param("lstm", "semeniuta:p=0.3+moon:p=0.2,sampling=step+zoneout:p_cell=0.2,"
                 "p_hidden=0.3+hidden-dropout:p=0.2+gal:p=0,p_recurrent=0.3", id="lstm"),
    pytest.param("layernorm-lstm", "output-zoneout:p=0.3+gal:p=0.2,p_recurrent=0.2",
                 id="layernorm-lstm", marks=pytest.mark.slow),
    pytest.param("gru", "semeniuta:p=0.3+zoneout:p_cell=0,p_hidden=0.2", id="gru",
                 marks=pytest.mark.slow),
    # per-gate recurrent masks: the kernels take and give [B, G, H] (one product per block)
    pytest.param("lstm", "gal:p=0.3,p_recurrent=0.3,tied=false", id="lstm-untied",
                 marks=pytest.mark.slow),
    pytest.param("gru", "gal:p=0.3,p_recurrent=0.3,tied=false", id="gru-untied",
                 marks=pytest.mark.slow),
]


@pytest.mark.parametrize("cell,scheme", COMPILED_CASES)
def test_compiled_step_kernels(cell, scheme, compiled):
    """The Inductor-compiled kernels (C++ on CPU) equal the reference, float32."""
    _compare(cell, scheme, dtype=torch.float32, tol=dict(atol=2e-5, rtol=1e-4))


@pytest.mark.slow
def test_compiled_kernels_compute_tanh_through_exp(compiled):
    """On CPU the step kernels compute tanh as ``2 / (1 + exp(-2x)) - 1`` (Inductor's
    ``cpp.use_decompose_tanh``): no vectorized tanh is left in an LSTM's compiled forward
    kernel, and the layer still equals the reference in float32."""
    if "cpp.use_decompose_tanh" not in kernels._inductor_options():
        pytest.skip("this torch's Inductor has no cpp.use_decompose_tanh")
    _compare("lstm", "zoneout:p_cell=0.3,p_hidden=0.2", dtype=torch.float32,
             tol=dict(atol=2e-5, rtol=1e-4))
    sources = [k.fn.source_code for key, k in kernels._cache.items()
               if key[0] == "forward" and k.compiled]
    assert sources and all(".tanh()" not in s and ".exp()" in s for s in sources)


def test_kernel_cache_names_depend_on_the_inductor_options(monkeypatch):
    """A kernel compiled with other Inductor options is another cache entry: its marker
    (which lets a process skip the compiler process) is not taken for this one's."""
    gm, fresh = kernels._trace(lambda a: (a.tanh(),), [torch.zeros(2, 3)])
    key = kernels._graph_key(gm, fresh)
    assert kernels._graph_key(gm, fresh) == key
    monkeypatch.setattr(kernels, "_inductor_options", lambda: {"cpp.threads": 1})
    assert kernels._graph_key(gm, fresh) != key


# --- dispatch ---------------------------------------------------------------------------
@pytest.mark.parametrize("cell,scheme,want", [
    ("lstm", None, "native"), ("lstm", "zaremba:p=0.5", "native"),
    ("lstm", "weight-drop:p=0.3", "native"), ("lstm", "gal:p=0.3,p_recurrent=0.3", "fused"),
    ("lstm", "gal:p=0.3,p_recurrent=0,tied=false", "fused"), ("lstm", "semeniuta:p=0.3", "fused"),
    ("lstm", "zoneout", "fused"), ("lstm", "moon:p=0.3", "fused"),
    ("layernorm-lstm", None, "fused"), ("layernorm-lstm", "zaremba:p=0.5", "fused"),
])
def test_auto_dispatch(cell, scheme, want):
    layer = Recurrent(cell, 3, 4, scheme=scheme)
    assert layer.chosen_path() == want
    assert f"chosen_path={want!r}" in repr(layer)


@pytest.mark.parametrize("path", ["reference", "native", "fused"])
def test_override_is_respected(path):
    layer = Recurrent("gru", 3, 4, scheme="zaremba:p=0.5", path=path)
    assert layer.chosen_path() == path
    layer(torch.randn(T, B, 3))


@pytest.mark.parametrize("cell,scheme,why", [
    ("lstm", "semeniuta:p=0.3", "inside the recurrence"),
    ("lstm", "gal:p=0.3,p_recurrent=0,tied=false", "per gate"),
    ("layernorm-lstm", "none", "no layernorm-lstm module"),
])
def test_native_override_says_why_it_cannot_run(cell, scheme, why):
    with pytest.raises(ValueError, match=f"path='native'.*{why}"):
        Recurrent(cell, 3, 4, scheme=scheme, path="native")(torch.randn(T, B, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cell", list_cells())
def test_fused_equals_reference_cuda(cell):
    scheme = "zoneout:p_cell=0,p_hidden=0.3+semeniuta:p=0.3+gal:p=0.2,p_recurrent=0.2"
    _compare(cell, scheme, device="cuda")


# --- cold start -----------------------------------------------------------------------
def test_import_does_not_load_the_tracer():
    """``import memloss.nn`` leaves torch.fx's tracer, Inductor and sympy unloaded (they come
    with the first step kernel)."""
    import subprocess
    import sys

    code = ("import sys, memloss.nn; "
            "print(sorted(m for m in ('sympy', 'torch._inductor.compile_fx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_kernel_cache_dir(monkeypatch, tmp_path):
    for var in (kernels.CACHE_ENV, "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    # what torch writes into the environment once Inductor is imported is not the user's
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "torch-default"))
    monkeypatch.setattr(kernels, "_USER_INDUCTOR_DIR", None)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert kernels.kernel_cache_dir() == tmp_path / "home" / ".cache" / "memloss" / "inductor"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernels.kernel_cache_dir() == tmp_path / "xdg" / "memloss" / "inductor"
    monkeypatch.setattr(kernels, "_USER_INDUCTOR_DIR", str(tmp_path / "user"))
    assert kernels.kernel_cache_dir() == tmp_path / "user"
    monkeypatch.setenv(kernels.CACHE_ENV, str(tmp_path / "mine"))
    assert kernels.kernel_cache_dir() == tmp_path / "mine"


def test_bad_compile_mode_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(kernels, "COMPILE", "sometimes")
    kernels.clear_cache()
    with pytest.raises(ValueError, match="MEMLOSS_COMPILE='sometimes' is not one of"):
        Recurrent("lstm", 3, 4, scheme="zoneout")(torch.randn(T, B, 3))


def _compile_between(cell: str, scheme: str) -> dict:
    """The fused path against the reference uncompiled, then again once the step kernels
    have compiled; the compile stats between. Skips where Inductor cannot compile."""
    tol = dict(atol=2e-5, rtol=1e-4)
    _compare(cell, scheme, dtype=torch.float32, tol=tol)
    assert kernels.wait_compiled(timeout=600)
    stats = kernels.compile_stats()
    _compare(cell, scheme, dtype=torch.float32, tol=tol)
    built = kernels.compiled_kernels()
    kernels.clear_cache()
    if not built:
        pytest.skip("Inductor could not compile a step kernel here (no working C++ compiler?)")
    return stats


@pytest.mark.slow
def test_background_compile_runs_the_step_meanwhile(monkeypatch, caplog):
    """Under ``auto`` the first calls run the step function while one thread compiles; the
    results equal the reference before and after the switch, one INFO line says what is
    compiled and how to skip it, and compile_stats reports it."""
    import logging

    monkeypatch.setattr(kernels, "COMPILE", "auto")
    monkeypatch.setattr(kernels, "MIN_COMPILE_ELEMENTS", 1)
    monkeypatch.setattr(kernels, "_announced", [])
    kernels.clear_cache()
    with caplog.at_level(logging.INFO, logger=kernels.__name__):
        stats = _compile_between("lstm", "semeniuta:p=0.3+zoneout:p_cell=0,p_hidden=0.2")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 1 and "background" in lines[0] and "MEMLOSS_COMPILE=never" in lines[0]
    assert stats["compiled_kernels"] >= 2 and stats["pending_kernels"] == 0
    assert stats["compile_seconds"] > 0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bmm_below", [0, 10**6], ids=["per-block-addmm", "batched"])
def test_per_gate_products_both_forms(cell, bmm_below, monkeypatch):
    """Untied recurrent masks: one addmm per gate block and one batched product over the
    blocks (chosen by H) give the reference's results."""
    from memloss.models.paths import fused

    monkeypatch.setattr(fused, "BMM_BELOW", bmm_below)
    _compare(cell, "gal:p=0.3,p_recurrent=0.3,tied=false+zoneout:p_cell=0,p_hidden=0.2")


@pytest.mark.parametrize("scheme", ["zoneout:p_cell=0.3,p_hidden=0.2",
                                    "gal:p=0.3,p_recurrent=0.3,tied=false"])
def test_padded_products_give_the_reference_results(scheme, monkeypatch):
    """The input product's backward and the per-gate products with their output rows padded
    (models/paths/products.py, here forced at every size) give the reference's results."""
    monkeypatch.setattr(products, "PADDING", "always")
    monkeypatch.setattr(products, "MIN_FLOPS", 0)
    _compare("lstm", scheme)


@pytest.mark.skipif(not products._onednn_here(), reason="this torch has no oneDNN")
@pytest.mark.parametrize("scheme", ["none", "zoneout:p_cell=0.3,p_hidden=0.2",
                                    "weight-drop:p=0.3+semeniuta:p=0.2",
                                    "gal:p=0.3,p_recurrent=0.3,tied=false"])
def test_onednn_products_give_the_reference_results(scheme, monkeypatch):
    """The input product and the per-step products (per gate block under untied masks) on
    oneDNN with packed weights (models/paths/products.py, here forced at every size) give
    the reference's results in float32, under a DropConnect mask on the recurrent weight
    too."""
    from memloss.models.paths import fused

    monkeypatch.setattr(products, "ONEDNN", "always")
    monkeypatch.setattr(fused, "BMM_BELOW", 0)  # per-gate blocks: the addmm form's branch
    _compare("lstm", scheme, dtype=torch.float32, tol=dict(atol=2e-5, rtol=1e-4))


@pytest.mark.slow
def test_compiled_kernels_land_in_the_per_user_cache(tmp_path):
    """A real compile in a fresh process writes Inductor's cache under the user's cache folder
    (not the system's temporary folder, where tracing would otherwise point it), and the run
    records it."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TORCHINDUCTOR_CACHE_DIR", kernels.CACHE_ENV)}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), MEMLOSS_COMPILE="always")
    code = ("import torch, json; from memloss.models import Recurrent; "
            "from memloss.models.paths import kernels; "
            "l = Recurrent('lstm', 8, 32, scheme='semeniuta:p=0.25'); "
            "y, _ = l(torch.randn(3, 32, 8)); y.sum().backward(); kernels.wait_compiled(); "
            "print(json.dumps(kernels.compile_stats()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout
    stats = json.loads(out.strip().splitlines()[-1])
    cache = tmp_path / "xdg" / "memloss" / "inductor"
    assert stats["cache_dir"] == str(cache) and stats["compiled_kernels"] >= 1
    assert any(cache.rglob("*")), "nothing was written to the per-user kernel cache"


@pytest.mark.slow
def test_background_compile_goes_through_the_compiler_process(tmp_path):
    """Under ``auto`` on an empty cache the kernels are compiled by the compiler process and
    this process loads them from the cache (Inductor's cache hits); a second process finds
    them there and starts no compiler process."""
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    env.update({kernels.CACHE_ENV: str(tmp_path / "cache"), "MEMLOSS_COMPILE": "auto"})
    code = ("import torch, json; from memloss.models import Recurrent; "
            "from memloss.models.paths import kernels; "
            "from torch._dynamo.utils import counters; "
            "l = Recurrent('lstm', 8, 32, scheme='semeniuta:p=0.25'); "
            "y, _ = l(torch.randn(3, 32, 8)); y.sum().backward(); "
            "assert kernels.wait_compiled(600); "
            "print(json.dumps(dict(kernels.compile_stats(), "
            "hits=counters['inductor']['fxgraph_cache_hit'])))")
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env=env).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    first, second = runs
    if not first["compiled_kernels"]:
        pytest.skip("Inductor could not compile a step kernel here (no working C++ compiler?)")
    assert first["compiled_kernels"] == first["hits"] == 2
    assert first["compiler_process_seconds"] > 0
    assert second["compiled_kernels"] == second["hits"] == 2
    assert second["compiler_process_seconds"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("child,words", [
    ("import sys; sys.exit(3)", "exited (3)"),  # dies
    ("import time; time.sleep(3600)", "answered nothing in 2 s"),  # hangs: given up
], ids=["dies", "hangs"])
def test_a_failing_compiler_process_falls_back_to_the_thread(child, words, monkeypatch, caplog,
                                                            tmp_path):
    """A compiler process that dies, or never answers (killed after COMPILER_TIMEOUT): one
    WARNING line, the thread compiles, results equal (nothing waits forever)."""
    import logging

    monkeypatch.setattr(kernels, "COMPILE", "auto")
    monkeypatch.setattr(kernels, "MIN_COMPILE_ELEMENTS", 1)
    monkeypatch.setattr(kernels, "COMPILER_TIMEOUT", 2.0)
    monkeypatch.setattr(kernels, "_COMPILER_ARGS", ["-c", child])
    monkeypatch.setattr(kernels, "_child", [])
    monkeypatch.setattr(kernels, "_child_broken", [])
    monkeypatch.setenv(kernels.CACHE_ENV, str(tmp_path))
    kernels.clear_cache()
    with caplog.at_level(logging.WARNING, logger=kernels.__name__):
        _compile_between("gru", "semeniuta:p=0.3")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1 and "compiler process failed" in lines[0] and words in lines[0]


@pytest.mark.parametrize("cell", list_cells())
def test_the_backward_kernel_recomputes_no_activation(cell):
    """The forward kernel keeps what the backward reads: the backward graph applies no
    squashing function (only their derivatives, on the kept values)."""
    scheme = "zoneout:p_cell=0,p_hidden=0.3+semeniuta:p=0.3"
    fus = make_layer(cell, I, H, num_layers=1, scheme=scheme, path="fused")
    kernels.clear_cache()
    out, _ = fus(torch.randn(T, B, I))
    out.sum().backward()
    plans = list(kernels._plans.values())
    assert plans
    squash = {torch.ops.aten.sigmoid.default, torch.ops.aten.tanh.default}
    for plan in plans:
        assert any(n.target in squash for n in plan.fw.graph.nodes)
        assert not [n for n in plan.bw.graph.nodes if n.target in squash]


_ENTRY = '''
import torch
empty_strided_cpu = torch._C._dynamo.guards._empty_strided_cpu
reinterpret_tensor = torch._C._dynamo.guards._reinterpret_tensor
kern = max  # stands for a compiled C++ function (a builtin)


def call(args):
    arg0_1, arg1_1 = args
    args.clear()
    buf0 = empty_strided_cpu((2, 4), (4, 1), torch.float32)
    buf1 = reinterpret_tensor(buf0, (2, 2), (4, 1), 2)  # alias
    buf2 = buf1; del buf1  # reuse
    kern(arg1_1, buf0, arg0_1, buf2)
    del arg0_1
    {extra}
    return {ret}
'''


@pytest.mark.parametrize("extra,ret,plain", [
    ("", "()", True),
    ("buf3 = arg0_1 + 1", "()", False),   # anything else the entry point does
    ("", "(buf0, )", False),              # a temporary leaves the call
    ("buf3 = reinterpret_tensor(arg1_1, (2, 2), (4, 1), 0)", "()", False),  # of an argument
])
def test_direct_calls_only_for_the_plain_entry_point(tmp_path, extra, ret, plain):
    """kernels._direct reads a compiled kernel's entry point only where it makes
    temporaries, calls builtins on arguments and temporaries and returns nothing; the
    bound calls pass each step's tensors and one set of temporaries in the entry point's
    order."""
    import importlib.util

    path = tmp_path / "entry.py"
    path.write_text(_ENTRY.format(extra=extra, ret=ret))
    spec = importlib.util.spec_from_file_location("entry", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Compiled:
        current_callable = staticmethod(module.call)

    direct = kernels._direct(Compiled(), torch.device("cpu"))
    assert (direct is not None) == plain
    if not plain:
        return
    steps = [[torch.zeros(1), torch.ones(1)], [torch.ones(1), torch.zeros(1)]]
    bound = direct.bind(steps)
    assert len(bound) == 2
    for step, args in zip(bound, steps):
        a1, b0, a0, b2 = step.args
        assert a1 is args[1] and a0 is args[0]
        assert b0.shape == (2, 4) and b2.shape == (2, 2)
        assert b2.data_ptr() == b0.data_ptr() + 2 * b0.element_size()
    assert bound[0].args[1] is bound[1].args[1]  # the temporaries: once per sequence
