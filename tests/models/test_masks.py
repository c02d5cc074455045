"""Statistical properties of sampled masks and of the inference modes."""
from __future__ import annotations

import pytest
import torch

from memloss.models import Net, NetConfig, Recurrent, make_scheme

from .variants import make_layer, scheme_variants

P = 0.3


def _big_plan(scheme, cell="lstm"):
    return make_layer(cell, 64, 64, num_layers=1, scheme=scheme).mask_plan()


@pytest.mark.parametrize("sid,scheme", scheme_variants(), ids=[s[0] for s in scheme_variants()])
def test_keep_rate_matches_one_minus_p(sid, scheme):
    plan = _big_plan(scheme)
    masks = plan.sample(50, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for e in plan.entries:
        m = masks[e.key]
        if e.spec.kind == "zoneout":
            rate, want = m.mean().item(), e.spec.p  # indicator of keeping the old value
            assert set(m.unique().tolist()) <= {0.0, 1.0}
        else:
            rate, want = (m != 0).double().mean().item(), 1 - e.spec.p
            scale = 1 / (1 - e.spec.p) if e.spec.scaling == "inverted" else 1.0
            assert torch.allclose(m[m != 0], torch.tensor(scale, dtype=m.dtype))
        n = m.numel()
        assert abs(rate - want) < 5 * (want * (1 - want) / n) ** 0.5 + 1e-9, (e.key, rate, want)


@pytest.mark.parametrize("sampling", ["step", "sequence"])
def test_step_masks_differ_across_steps_sequence_masks_do_not(sampling):
    plan = _big_plan(make_scheme("semeniuta", p=P, sampling=sampling))
    m = plan.sample(8, 4, generator=torch.Generator().manual_seed(0))["l0.update"]
    if sampling == "step":
        assert m.shape == (8, 4, 64)
        assert all(not torch.equal(m[t], m[t + 1]) for t in range(7))
    else:
        assert m.shape == (4, 64), "one mask per sequence, reused at every step"
        assert not torch.equal(m[0], m[1]), "different sequences get different masks"


def test_tied_output_gate_mask_is_the_complement_of_the_update_keep():
    plan = _big_plan(make_scheme("output-zoneout", p=P))
    m = plan.sample(5, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(m["l0.output_gate"], (m["l0.update"] == 0).float())


def test_untied_masks_have_one_mask_per_gate():
    plan = _big_plan(make_scheme("gal", p=P, tied=False))
    m = plan.sample(5, 3, generator=torch.Generator().manual_seed(0))
    assert m["l0.recurrent"].shape == (3, 4, 64)
    assert not torch.equal(m["l0.recurrent"][:, 0], m["l0.recurrent"][:, 1])


def test_same_seed_same_masks_and_different_seed_different():
    plan = _big_plan(make_scheme("zoneout"))
    a = plan.sample(5, 3, generator=torch.Generator().manual_seed(1))
    b = plan.sample(5, 3, generator=torch.Generator().manual_seed(1))
    c = plan.sample(5, 3, generator=torch.Generator().manual_seed(2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_word_type_dropout_drops_a_word_everywhere_in_its_sequence():
    torch.manual_seed(0)
    net = Net(NetConfig(vocab_size=6, embedding_dim=8, hidden_size=4, output_size=6,
                        scheme="gal:p=0,p_recurrent=0,p_embedding=0.5")).train()
    seen = {}

    def grab(module, args, output):
        seen["x"] = args[0]

    net.rnn.register_forward_hook(grab)
    tokens = torch.randint(0, 6, (16, 30), generator=torch.Generator().manual_seed(0))
    net(tokens, generator=torch.Generator().manual_seed(1))
    dropped = seen["x"].abs().sum(-1) == 0  # [B, T]
    n_dropped = 0
    for b in range(tokens.shape[0]):
        for w in tokens[b].unique():
            at = dropped[b][tokens[b] == w]
            assert at.all() or not at.any(), "a word type is dropped at all its positions or none"
            n_dropped += int(at.all())
    assert 0 < n_dropped < sum(len(r.unique()) for r in tokens)


@pytest.mark.parametrize("scheme", ["zaremba", "gal:tied=false", "moon", "semeniuta", "zoneout",
                                    "weight-drop", "hidden-dropout", "output-zoneout"])
def test_masks_are_off_in_deterministic_inference(scheme):
    torch.manual_seed(0)
    layer = Recurrent("lstm", 3, 5, scheme=scheme).eval()
    x = torch.randn(6, 2, 3)
    a, _ = layer(x, generator=torch.Generator().manual_seed(1))
    b, _ = layer(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    c, _ = layer(x, masks=layer.mask_plan().expected())
    assert torch.equal(a, c)
    s1, _ = layer(x, stochastic=True, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a, s1), "stochastic=True samples masks even in eval mode"


def test_mc_inference_averages_k_distinct_samples():
    torch.manual_seed(0)
    net = Net(NetConfig(input_size=3, hidden_size=5, output_size=4,
                        scheme="gal:p=0.4,tied=false")).eval()
    x = torch.randn(2, 7, 3)
    K = 4
    mc = net.predict_proba(x, mode="mc", samples=K, generator=torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        each = [torch.softmax(net(x, stochastic=True, generator=g)[0], -1) for _ in range(K)]
    torch.testing.assert_close(mc, sum(each) / K)
    assert all(not torch.equal(each[i], each[j]) for i in range(K) for j in range(i + 1, K))
    det = net.predict_proba(x, mode="deterministic")
    assert not torch.allclose(mc, det)
    torch.testing.assert_close(mc.sum(-1), torch.ones(2, 7))
    with pytest.raises(ValueError, match="inference mode"):
        net.predict_proba(x, mode="bayes")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_seed_same_masks_on_cpu_and_cuda():
    plan = _big_plan(make_scheme("semeniuta", p=P))
    a = plan.sample(5, 3, generator=torch.Generator().manual_seed(1))
    b = plan.sample(5, 3, generator=torch.Generator().manual_seed(1), device="cuda")
    assert all(torch.equal(a[k], b[k].cpu()) for k in a)


def test_printed_output_gate_reading_zones_out_where_the_update_was_kept():
    plan = _big_plan(make_scheme("output-zoneout", p=P, reading="printed"))
    m = plan.sample(5, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(m["l0.output_gate"], (m["l0.update"] != 0).float())
    assert plan.get("l0.output_gate").spec.test_value == pytest.approx(1 - P)


def test_shared_zoneout_draws_one_mask_for_cells_and_hiddens():
    shared = _big_plan(make_scheme("zoneout", p_cell=P, p_hidden=P, shared=True))
    m = shared.sample(6, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(m["l0.zoneout_hidden"], m["l0.zoneout_cell"])
    own = _big_plan(make_scheme("zoneout", p_cell=P, p_hidden=P))
    m = own.sample(6, 5, generator=torch.Generator().manual_seed(0))
    agree = (m["l0.zoneout_hidden"] == m["l0.zoneout_cell"]).float().mean().item()
    assert abs(agree - (P * P + (1 - P) ** 2)) < 0.03, "independent masks agree at p^2+(1-p)^2"


def test_shared_zoneout_at_two_rates_nests_the_masks():
    plan = _big_plan(make_scheme("zoneout", p_cell=0.1, p_hidden=0.4, shared=True))
    m = plan.sample(6, 5, generator=torch.Generator().manual_seed(0))
    zc, zh = m["l0.zoneout_cell"], m["l0.zoneout_hidden"]
    assert bool((zh >= zc).all()), "a zoned-out cell's hidden unit is zoned out too"
    assert abs(zh.mean().item() - 0.4) < 0.03


def test_gal_per_step_masks_change_every_step():
    plan = _big_plan(make_scheme("gal", p=P, p_recurrent=P, sampling="step"))
    m = plan.sample(8, 4, generator=torch.Generator().manual_seed(0))
    for site in ("input", "recurrent", "output"):
        assert m[f"l0.{site}" if site != "output" else "output"].shape[0] == 8
    assert all(not torch.equal(m["l0.recurrent"][t], m["l0.recurrent"][t + 1]) for t in range(7))


def test_zaremba_output_rate_is_its_own():
    plan = _big_plan(make_scheme("zaremba", p=0.2, p_output=0.5))
    assert plan.get("l0.input").spec.p == 0.2 and plan.get("output").spec.p == 0.5
    assert make_layer("lstm", 8, 8, scheme="zaremba:p=0,p_output=0.5").mask_plan().keys() \
        == ["output"]


@pytest.mark.parametrize("default,explicit", [
    ("zaremba:p=0.4", "zaremba:p=0.4,p_output=0.4"),
    ("gal:p=0.3,p_recurrent=0.3", "gal:p=0.3,p_recurrent=0.3,sampling=sequence"),
    ("zoneout:p_cell=0.3,p_hidden=0.3", "zoneout:p_cell=0.3,p_hidden=0.3,shared=false"),
    ("output-zoneout:p=0.3", "output-zoneout:p=0.3,reading=motivation"),
])
def test_new_options_at_their_default_draw_the_same_masks(default, explicit):
    a = _big_plan(default).sample(7, 3, generator=torch.Generator().manual_seed(5))
    b = _big_plan(explicit).sample(7, 3, generator=torch.Generator().manual_seed(5))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def _plain_sample(plan, T, B, generator, dtype):
    """Sampling as its definition reads (one ``torch.rand`` per drawing entry in plan order;
    the mask ``train_value`` of the keep indicator): what ``MaskPlan.sample`` computes in
    place must equal it bit for bit."""
    draws, out = {}, {}
    for e in plan.entries:
        if e.spec.tied_to is None:
            u = torch.rand(e.full_shape(T, B), generator=generator)
            draws[e.key] = (u, e.spec.p)
            out[e.key] = e.spec.train_value((u >= e.spec.p).to(dtype))
    for e in plan.entries:
        if e.spec.tied_to is not None:
            u, p_source = draws[f"{e.key.rsplit('.', 1)[0]}.{e.spec.tied_to}"]
            keep = (u < p_source) if e.spec.tied_inverse else (u >= e.spec.p)
            out[e.key] = e.spec.train_value(keep.to(dtype))
    return out


_BITS = {torch.float32: torch.int32, torch.float64: torch.int64, torch.bfloat16: torch.int16,
         torch.float16: torch.int16}


@pytest.mark.parametrize("dtype", list(_BITS), ids=str)
def test_sampled_masks_equal_their_definition_bit_for_bit(dtype):
    for _, scheme in scheme_variants() + [("rates", make_scheme("zaremba", p=0.65)),
                                         ("rates", make_scheme("zoneout", p_cell=0.15,
                                                               p_hidden=0.05))]:
        plan = make_layer("lstm", 5, 6, num_layers=2, scheme=scheme).mask_plan()
        got = plan.sample(4, 3, generator=torch.Generator().manual_seed(7), dtype=dtype)
        want = _plain_sample(plan, 4, 3, torch.Generator().manual_seed(7), dtype)
        assert got.keys() == want.keys()
        for k in want:
            assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
            assert torch.equal(got[k].view(_BITS[dtype]), want[k].view(_BITS[dtype])), (scheme, k)
