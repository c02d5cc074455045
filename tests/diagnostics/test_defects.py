"""Regression tests for the five defects the closed-form audit of the probes found (issue 12).

Each test fails on the probes as they were: gradient-flow named carried parts as totals,
the step-wise probes ran output-zoneout nets without the output gate's memory, the sweeping
probes reset the state of streamed tasks at every batch, probes computed in float32 for
float64 nets, and eq. 17 rows were attached to vanilla RNNs while MC over a stream redrew
its networks at every batch.
"""
from __future__ import annotations

import math

import pytest
import torch

from memloss.diagnostics import make_probe
from memloss.diagnostics.gradient_flow import GradientFlow
from memloss.diagnostics.impulse import Impulse
from memloss.diagnostics.state_decay import StateDecay
from memloss.diagnostics.test_time_scaling import TestTimeScaling
from memloss.diagnostics.uncertainty import Uncertainty
from memloss.models import Net, NetConfig
from memloss.models.inference import expected_masks, mode_masks
from memloss.tasks import evaluate

from .streams import stream_net, stream_task, write_corpus
from .toys import FloatTask, LinearTask, net, open_gate_lstm

T, H = 6, 3


def _curve(frame, quantity, layer, loss="last", mode="deterministic"):
    sel = frame[(frame.quantity == quantity) & (frame["loss"] == loss) & (frame["mode"] == mode)
                & (frame.layer == layer)]
    return sel.sort_values("t")["value"].to_numpy()


# --- 1. gradient-flow reports the quantities it names -------------------------------------
def linear_two_layer(a: float = 0.8, b: float = 0.5) -> Net:
    """A 2-layer relu RNN that is linear on positive input: h0_t = a h0_{t-1} + W x_t,
    h1_t = a h1_{t-1} + b h0_t; the head reads w = (1, 2, 2) from h1."""
    n = Net(NetConfig(cell="rnn", nonlinearity="relu", hidden_size=H, num_layers=2,
                      input_size=3, output_size=2, path="reference"))
    with torch.no_grad():
        for p in n.parameters():
            p.zero_()
        n.rnn.weight_hh_l0.copy_(a * torch.eye(H))
        n.rnn.weight_hh_l1.copy_(a * torch.eye(H))
        n.rnn.weight_ih_l0.fill_(0.5)
        n.rnn.weight_ih_l1.copy_(b * torch.eye(H))
        n.head.weight[0] = torch.tensor([1.0, 2.0, 2.0])
    return n


def test_lower_layer_grad_h_is_the_total_derivative():
    """Last-step loss L = mean_b w.h1_{T-1}: dL/dh1_t = a^(T-1-t) w/B and
    dL/dh0_t = (T-t) b a^(T-1-t) w/B (h0_t reaches the loss through h1_t and through
    h0_{t+1}); the parts carried through the recurrence drop the step's own paths."""
    a, b, B = 0.8, 0.5, 4
    r = GradientFlow(samples=1, batch_size=B, jacobian_stride=0, modes=("deterministic",))(
        linear_two_layer(a, b), LinearTask(length=T, size=B))
    n = 3.0 / math.sqrt(B)  # ||w|| / B per row, Frobenius over B rows
    f = r.frame
    assert _curve(f, "grad_h", 1) == pytest.approx([a ** (T - 1 - t) * n for t in range(T)], rel=1e-5)
    assert _curve(f, "grad_h", 0) == pytest.approx(
        [(T - t) * b * a ** (T - 1 - t) * n for t in range(T)], rel=1e-5)
    assert _curve(f, "grad_h_carried", 0) == pytest.approx(
        [(T - 1 - t) * b * a ** (T - 1 - t) * n for t in range(T)], rel=1e-5, abs=1e-12)
    assert _curve(f, "grad_h_carried", 1) == pytest.approx(
        [a ** (T - 1 - t) * n for t in range(T - 1)] + [0.0], rel=1e-5)


def test_grad_c_includes_the_path_through_h_at_the_last_step():
    """Open gates, zero weights, g = tanh(0.5): c_t = (t+1) g and h_t = tanh(c_t). A last-step
    loss w.h_{T-1} gives dL/dc_t = w sech^2(T g)/B at every t (forget gate 1), not 0 at
    t = T-1; the carried part is that for t < T-1 and 0 at the last step."""
    B = 4
    n = open_gate_lstm("none", hidden=H, g_bias=0.5).double()
    r = GradientFlow(samples=1, batch_size=B, jacobian_stride=0, modes=("deterministic",))(
        n, LinearTask(length=T, size=B))
    w = n.head.weight[0].detach()
    c_last = T * math.tanh(0.5)
    want = float((w / math.cosh(c_last) ** 2).norm()) / math.sqrt(B)
    assert _curve(r.frame, "grad_c", 0) == pytest.approx([want] * T, rel=1e-9)
    assert _curve(r.frame, "grad_c_carried", 0) == pytest.approx([want] * (T - 1) + [0.0],
                                                                 rel=1e-9, abs=1e-15)


def _lstm_oracle(n: Net, x: torch.Tensor, loss_of) -> dict[str, torch.Tensor]:
    """Two-layer LSTM written out by hand with every state a node of its own: ``retain_grad``
    gives the total derivative at each h, c and the carried part at the copy of the state
    each step is given. Returns ``{quantity: [T, L]}`` Frobenius norms."""
    L = n.config.num_layers
    B, T_ = x.shape[:2]
    h = [torch.zeros(B, n.config.hidden_size, dtype=x.dtype)] * L
    c = list(h)
    nodes: dict[str, list[list[torch.Tensor]]] = {q: [] for q in ("h", "c", "hin", "cin")}
    outs = []
    for t in range(T_):
        inp = x[:, t]
        row = {q: [] for q in nodes}
        for k in range(L):
            hp, cp = h[k].clone(), c[k].clone()
            if t == 0:
                hp.requires_grad_()
                cp.requires_grad_()
            hp.retain_grad()
            cp.retain_grad()
            w_ih, w_hh = getattr(n.rnn, f"weight_ih_l{k}"), getattr(n.rnn, f"weight_hh_l{k}")
            pre = inp @ w_ih.T + getattr(n.rnn, f"bias_ih_l{k}") + hp @ w_hh.T + \
                getattr(n.rnn, f"bias_hh_l{k}")
            i, f, g, o = pre.chunk(4, -1)
            c[k] = torch.sigmoid(f) * cp + torch.sigmoid(i) * torch.tanh(g)
            h[k] = torch.sigmoid(o) * torch.tanh(c[k])
            h[k].retain_grad()
            c[k].retain_grad()
            inp = h[k]
            row["h"].append(h[k])
            row["c"].append(c[k])
            row["hin"].append(hp)
            row["cin"].append(cp)
        for q in nodes:
            nodes[q].append(row[q])
        outs.append(n.head(h[-1]))
    loss_of(torch.stack(outs, 1)).backward()

    def norms(q: str, shift: int = 0) -> torch.Tensor:
        return torch.tensor([[0.0 if t + shift >= T_ else float(nodes[q][t + shift][k].grad.norm())
                              for k in range(L)] for t in range(T_)], dtype=torch.float64)

    return {"grad_h": norms("h"), "grad_c": norms("c"), "grad_h_carried": norms("hin", 1),
            "grad_c_carried": norms("cin", 1)}


@pytest.mark.parametrize("loss", ["last", "per-step"])
def test_every_gradient_quantity_matches_a_hand_written_lstm(loss):
    task = FloatTask(length=5, size=4)
    n = net("lstm", "none", hidden=4, layers=2, task=task).double()
    r = GradientFlow(samples=1, batch_size=4, jacobian_stride=0, modes=("deterministic",))(n, task)
    batch = next(task.batches("test", 4))
    x = batch.inputs.double()

    def loss_of(out):
        if loss == "last":
            return task.loss(out, batch)
        return sum(task.loss(out[:, :t + 1], batch) for t in range(out.shape[1]))

    want = _lstm_oracle(n, x, loss_of)
    for q, w in want.items():
        got = torch.tensor([_curve(r.frame, q, k, loss) for k in range(2)]).T
        torch.testing.assert_close(got, w, rtol=1e-9, atol=1e-12, msg=f"{q} ({loss} loss)")


# --- 2. step-wise probes on output-zoneout --------------------------------------------------
STEPWISE = ("state-decay", "impulse", "gradient-flow", "retention", "saturation")


@pytest.mark.parametrize("name", STEPWISE)
def test_step_wise_probes_run_output_zoneout(name):
    """The output gate output-zoneout zones out is part of the LSTM's state (h, c, o), so a
    step-by-step run is the full-sequence forward and every step-wise probe measures it."""
    from memloss.diagnostics import PROBES

    n = net("lstm", "output-zoneout:p=0.3")
    frame = make_probe(name, **PROBES.get(name).tiny())(n, FloatTask(length=6, size=16)).frame
    assert len(frame) > 0 and frame["value"].notna().all()


def test_all_probes_run_on_output_zoneout():
    from memloss.diagnostics import PROBES, run_probes

    n = net("lstm", "output-zoneout:p=0.3")
    params = {k: PROBES.get(k).tiny() for k in PROBES.list()}
    results = run_probes(n, FloatTask(length=6, size=16), params=params)
    assert set(results) == set(PROBES.list())


def test_whole_sequence_probes_still_run_output_zoneout():
    n = net("lstm", "output-zoneout:p=0.3")
    for name, kw in (("test-time-scaling", {"factors": (1.0,), "samples": 2}),
                     ("uncertainty", {"samples": 2, "batch_size": 16})):
        assert len(make_probe(name, **kw)(n, FloatTask(length=6, size=16)).frame) > 0


# --- 3. streamed tasks: carried state ------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def test_test_time_scaling_scores_a_stream_with_its_state_carried(corpus):
    task = stream_task(corpus)
    n = stream_net(task, "moon:p=0.3,scaling=expectation")
    r = TestTimeScaling(samples=2, batch_size=4, max_batches=10_000,
                        modes=("deterministic", "other-scaling"))(n, task)
    got = r.summary["table"]["test"]["deterministic"]
    want = evaluate(n, task, "test", mode="deterministic", batch_size=4)["perplexity"]
    assert list(got.values()) == [pytest.approx(want, rel=1e-6)]
    # the segmentation into BPTT batches does not change a carried stream's metric
    long = TestTimeScaling(samples=2, batch_size=4, max_batches=10_000,
                           modes=("deterministic", "other-scaling"))(n, stream_task(corpus, 1000))
    for mode in ("deterministic", "other-scaling"):
        assert list(long.summary["table"]["test"][mode].values()) == pytest.approx(
            list(r.summary["table"]["test"][mode].values()), rel=1e-6)


def test_uncertainty_scores_a_stream_with_its_state_carried(corpus):
    task = stream_task(corpus)
    n = stream_net(task, "gal:p=0.3,p_recurrent=0.3")
    r = Uncertainty(samples=2, batch_size=4, max_batches=10_000,
                    modes=("deterministic",))(n, task)
    ppl = evaluate(n, task, "test", mode="deterministic", batch_size=4)["perplexity"]
    assert r.summary["modes"]["deterministic"]["nll"] == pytest.approx(math.log(ppl), rel=1e-6)


# --- 4. float64 nets are probed in float64 -------------------------------------------------
def test_float64_net_gives_float64_masks_and_decay_rate():
    n = open_gate_lstm("moon:p=0.3,scaling=expectation").double()
    m = mode_masks(n, "deterministic", 4, 2, generator=torch.Generator(), device=torch.device("cpu"))
    assert m["l0.cell"].dtype == torch.float64 and m["l0.cell"].item() == 0.7
    assert expected_masks(n, other=True)["l0.cell"].item() == 1.0
    r = StateDecay(init_scale=1.0, samples=2)(n, FloatTask(length=8, double=True))
    assert r.summary["decay_rate"]["deterministic"] == pytest.approx(0.7, abs=1e-12)


def test_float64_random_directions_have_unit_norm_in_float64():
    n = open_gate_lstm("none").double()
    r = Impulse(perturb="state", t0=2, eps=0.5, samples=1, modes=("deterministic",))(
        n, FloatTask(length=6, double=True))
    dc = r.frame[(r.frame.quantity == "delta_c")].sort_values("t")["value"].to_numpy()
    assert dc[0] == pytest.approx(0.5, abs=1e-15)  # the perturbation itself
    assert dc == pytest.approx([0.5] * len(dc), abs=1e-12)  # forget gate sigmoid(30) = 1 - 9e-14


def test_float64_softmax_in_uncertainty():
    task = FloatTask(length=5, size=16, double=True)
    n = net("gru", "none", task=task).double()
    r = Uncertainty(samples=2, batch_size=16, modes=("deterministic",))(n, task)
    batch = next(task.batches("test", 16))
    with torch.no_grad():
        logp = torch.log_softmax(n(batch.inputs)[0][:, -1], -1)
    want = float(-logp.gather(1, batch.targets[:, None]).mean())
    assert r.summary["modes"]["deterministic"]["nll"] == pytest.approx(want, abs=1e-14)


# --- 5. eq. 17 only where it applies; MC networks fixed over a stream ----------------------
@pytest.mark.parametrize("scheme", ["hidden-dropout:p=0.3", "semeniuta:p=0.3"])
def test_vanilla_rnn_gets_no_semeniuta_rows(scheme):
    r = StateDecay(samples=2, batch_size=4)(net("rnn", scheme), FloatTask(length=5))
    assert not {"eq17", "eq19", "eq17_ratio", "eq19_ratio"} & set(r.frame.quantity)
    assert not r.summary["analytic_final"] and not r.summary["site_rates"]
    gru = StateDecay(samples=2, batch_size=4)(net("gru", "hidden-dropout:p=0.3"), FloatTask(length=5))
    assert "eq17" in set(gru.frame.quantity)


def test_mc_networks_keep_their_masks_for_the_whole_stream(corpus):
    """Gal's masks are drawn once per sequence: K fixed networks score the stream the same
    whether it is cut into 5-step batches or read in one."""
    n = stream_net(stream_task(corpus), "gal:p=0.3,p_recurrent=0.3")
    short = evaluate(n, stream_task(corpus, 5), mode="mc", samples=3, batch_size=4)
    whole = evaluate(n, stream_task(corpus, 1000), mode="mc", samples=3, batch_size=4)
    assert short["perplexity"] == pytest.approx(whole["perplexity"], rel=1e-6)
