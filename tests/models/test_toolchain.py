"""The PyTorch toolchain on every scheme: torch.compile (training and eval), torch.export of
an eval-mode net, torch.jit.trace, CPU autocast to bfloat16, and .to(dtype). Under tracing
the layers run the reference loop over the cells' steps (plain PyTorch, no private ops)."""
from __future__ import annotations

import warnings

import pytest
import torch

from memloss.models import Net, NetConfig, get_cell, list_cells, parse_scheme

from .variants import cell_scheme_cases

T, B, V, H = 2, 2, 7, 4

#: every site but the output gate in one scheme (embedding and weight included) ...
ALL_SITES = ("semeniuta:p=0.3+moon:p=0.2,sampling=step+zoneout:p_cell=0.2,p_hidden=0.2"
             "+hidden-dropout:p=0.2+gal:p=0.2,p_recurrent=0.2,p_embedding=0.2,tied=false"
             "+weight-drop:p=0.2+torch-dropout:p=0.2")
#: ... and the output gate (it shares the update site with semeniuta)
OUTPUT_GATE = "output-zoneout:p=0.3+gal:p=0.2,p_recurrent=0.2,p_embedding=0.2"
#: the sites every cell has
COMMON = ("zoneout:p_cell=0,p_hidden=0.2+hidden-dropout:p=0.2"
          "+gal:p=0.2,p_recurrent=0.2,p_embedding=0.2,tied=false+weight-drop:p=0.2"
          "+torch-dropout:p=0.2")


def _stacks(cell):
    spec = get_cell(cell)
    if spec.has_cell:
        return (ALL_SITES, OUTPUT_GATE)
    return ("semeniuta:p=0.3+" + COMMON,) if "update" in spec.features else (COMMON,)


STACK_CASES = [(c, s) for c in list_cells() for s in _stacks(c)]
# one variant of every registered scheme on every cell it applies to
_seen: set = set()
SCHEME_CASES = []
for _cid, _cell, _scheme, _ok in cell_scheme_cases():
    if _ok and (_cell, _cid.split("[")[0]) not in _seen:
        _seen.add((_cell, _cid.split("[")[0]))
        SCHEME_CASES.append(pytest.param(_cell, _scheme, id=_cid))


def _net(cell, scheme, **kw):
    torch.manual_seed(0)
    return Net(NetConfig(cell=cell, vocab_size=V, hidden_size=H, num_layers=1, output_size=V,
                         scheme=scheme, **kw))


def _tokens():
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(1))


def _train_step(net, fn, x, masks):
    net.zero_grad()
    out, h = fn(x, masks=masks)
    loss = out.square().sum() + sum(s.sum() for s in (h if isinstance(h, tuple) else (h,)))
    loss.backward()
    return [out.detach()] + [p.grad.clone() for p in net.parameters()]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Each test compiles its own nets: start from an empty Dynamo cache (its recompile
    limit counts per code object, here Net.forward)."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _check_compile(cell, scheme, backend, sample_inside=True):
    net = _net(cell, scheme)
    x = _tokens()
    compiled = torch.compile(net, backend=backend, fullgraph=True)
    net.train()
    masks = net.mask_plan().sample(T, B, generator=torch.Generator().manual_seed(2))
    got, want = _train_step(net, compiled, x, masks), _train_step(net, net, x, masks)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    if sample_inside:
        out, _ = compiled(x)  # masks drawn inside the compiled graph
        out.sum().backward()
    net.eval()
    torch.testing.assert_close(compiled(x)[0], net(x)[0], atol=1e-5, rtol=1e-4)


def test_torch_compile_inductor_training_and_eval():
    """``torch.compile(model)`` with Inductor, training (outputs and every gradient under
    the same masks) and eval, on a net with every site but the output gate."""
    _check_compile("lstm", ALL_SITES, "inductor", sample_inside=False)


@pytest.mark.parametrize("cell,scheme", STACK_CASES)
def test_torch_compile_every_site(cell, scheme):
    """Dynamo captures one graph (``fullgraph=True``) for every site on every cell."""
    _check_compile(cell, scheme, "aot_eager")


@pytest.mark.slow
@pytest.mark.parametrize("cell,scheme", SCHEME_CASES)
def test_torch_compile_inductor_every_scheme(cell, scheme):
    _check_compile(cell, scheme, "inductor")


def _eval_net(cell, scheme):
    net = _net(cell, scheme).eval()
    return net, _tokens()


@pytest.mark.parametrize("cell,scheme", STACK_CASES + SCHEME_CASES)
def test_torch_export_of_an_eval_net(cell, scheme):
    """Deterministic inference exports as a plain function of the weights and the input."""
    net, x = _eval_net(cell, scheme)
    program = torch.export.export(net, (x,))
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert not [o for o in ops if "mkldnn" in o], ops
    got, want = program.module()(x), net(x)
    for a, b in zip(torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(want)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cell,scheme", STACK_CASES + SCHEME_CASES)
def test_torch_jit_trace(cell, scheme):
    net, x = _eval_net(cell, scheme)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(net, (x,))
    got, want = traced(x), net(x)
    for a, b in zip(torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(want)):
        torch.testing.assert_close(a, b)


def _paths(cell, scheme):
    return ["reference", "fused"] + (["native"] if scheme == "none" and get_cell(cell).native
                                     else [])


AUTOCAST_CASES = [(c, s, p) for c in list_cells() for s in ("none", _stacks(c)[0])
                  for p in _paths(c, s)]


@pytest.mark.parametrize("cell,scheme,path", AUTOCAST_CASES)
def test_cpu_autocast_to_bfloat16(cell, scheme, path):
    """Under CPU autocast the layer computes in bfloat16 and returns bfloat16 outputs and
    states (as nn.LSTM does); gradients reach the float32 parameters."""
    net = _net(cell, scheme, path=path).eval()
    x = _tokens()
    want, _ = net(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, h = net.rnn(net.embedding(x))
        logits, _ = net(x)
    assert out.dtype == torch.bfloat16
    assert all(s.dtype == torch.bfloat16 for s in (h if isinstance(h, tuple) else (h,)))
    torch.testing.assert_close(logits.float(), want, atol=0.05, rtol=0.05)
    net.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = net(x)
    out.float().square().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in net.parameters())


@pytest.mark.parametrize("cell,scheme,path", AUTOCAST_CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_to_dtype(cell, scheme, path, dtype):
    net = _net(cell, scheme, path=path).eval()
    x = _tokens()
    want, _ = net(x)
    net.to(dtype)
    got, h = net(x)
    assert got.dtype == dtype and all(s.dtype == dtype for s in
                                      (h if isinstance(h, tuple) else (h,)))
    tol = dict(atol=0.05, rtol=0.05) if dtype == torch.bfloat16 else dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.float(), want, **tol)
    net.train()
    got, _ = net(x)
    got.float().sum().backward()


def test_schemes_under_test_cover_every_site():
    from memloss.models import SITES
    covered = set()
    for cell, scheme in STACK_CASES:
        covered |= set(parse_scheme(scheme).sites(get_cell(cell)))
    assert covered == set(SITES)
