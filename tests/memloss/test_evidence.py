"""The verdict rule on synthetic results: each verdict and each reason for "not tested";
bounds read strictly; the findings agree with the papers' own numbers."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from memloss.evidence import MIN_SEEDS, SIGN_TEST_SEEDS, compare, overfits, verdict
from memloss.presets import PRESETS
from memloss.presets.findings import FINDINGS, Comparison, Finding, row_split

# a perplexity finding: A beats B, baseline BASE must overfit
A, B, BASE = "semeniuta-t2-ours-0.5-step", "semeniuta-t2-moon-0.5-step", "semeniuta-t2-baseline"
FINDING = Finding("test-a-beats-b", "paper", "Table 2", "A is better", "A beats B",
                  (Comparison(A, B),), baselines=(BASE,))
OVERFIT = [150.0, 120.0, 110.0, 115.0]  # passes its minimum and rises
TRIVIAL = {(A, "test"): 125.0, (B, "test"): 125.0}


def _results(values: dict[str, list[float]], split: str = "test") -> pd.DataFrame:
    return pd.DataFrame([{"row": r, "split": split, "seed": s, "value": v}
                         for r, vs in values.items() for s, v in enumerate(vs)])


def _curves(curve=OVERFIT, seeds=3):
    return {(BASE, s): list(curve) for s in range(seeds)}


def test_reproduced_when_every_paired_difference_is_significant():
    v = verdict(FINDING, _results({A: [100.0, 101.0, 99.5], B: [110.0, 112.0, 109.0]}),
                _curves(), TRIVIAL)
    assert v.verdict == "reproduced" and v.reasons == ()
    (o,) = v.outcomes
    assert o.holds and o.low > 0 and o.p_value < 0.05 and o.seeds == 3


def test_contradicted_when_the_other_row_is_significantly_better():
    v = verdict(FINDING, _results({A: [110.0, 112.0, 109.0], B: [100.0, 101.0, 99.5]}),
                _curves(), TRIVIAL)
    assert v.verdict == "contradicted" and v.reason.startswith("fails: " + A)


def test_not_tested_when_the_difference_is_not_significant():
    v = verdict(FINDING, _results({A: [100.0, 104.0, 99.0], B: [101.0, 100.0, 102.0]}),
                _curves(), TRIVIAL)
    assert v.verdict == "not tested" and "no significant difference" in v.reason


def test_not_tested_when_the_baseline_did_not_overfit():
    still_falling = [150.0, 120.0, 110.0, 105.0]
    v = verdict(FINDING, _results({A: [100.0, 101.0, 99.5], B: [110.0, 112.0, 109.0]}),
                _curves(still_falling), TRIVIAL)
    assert v.verdict == "not tested" and v.outcomes == ()
    assert f"the baseline {BASE} did not overfit" in v.reason and "in 0 of 3 seeds" in v.reason
    v = verdict(FINDING, _results({A: [100.0, 101.0, 99.5], B: [110.0, 112.0, 109.0]}), {}, TRIVIAL)
    assert v.verdict == "not tested" and f"the baseline {BASE} has no validation curve" in v.reason


def test_not_tested_when_a_row_does_not_beat_the_trivial_baseline():
    v = verdict(FINDING, _results({A: [120.0, 121.0, 119.5], B: [130.0, 132.0, 129.0]}),
                _curves(), TRIVIAL)
    assert v.verdict == "not tested"
    assert f"1 of 2 compared rows did not beat the trivial baseline of their data ({B} test 130.3 against 125)" in v.reason
    # a row the paper says fails is exempt
    exempt = Finding(**{**FINDING.__dict__, "may_fail": (B,)})
    assert verdict(exempt, _results({A: [120.0, 121.0, 119.5], B: [130.0, 132.0, 129.0]}),
                   _curves(), TRIVIAL).verdict == "reproduced"


def test_not_tested_with_fewer_than_three_paired_seeds_or_no_runs():
    v = verdict(FINDING, _results({A: [100.0, 101.0], B: [110.0, 112.0]}), _curves(), TRIVIAL)
    assert v.verdict == "not tested" and f"fewer than {MIN_SEEDS} seeds (2 paired" in v.reason
    v = verdict(FINDING, _results({A: [100.0, 101.0, 99.0]}), _curves(), TRIVIAL)
    assert v.verdict == "not tested" and f"no runs of {B}:test" in v.reason


def test_identical_differences_in_every_seed_are_decided():
    c = Comparison(A, B)
    assert compare(c, {0: 1.0, 1: 2.0, 2: 3.0}, {0: 2.0, 1: 3.0, 2: 4.0}, True).holds is True
    tie = compare(c, {0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 1: 2.0, 2: 3.0}, True)
    assert tie.holds is False and tie.mean == 0.0  # a tie in every seed: alike, not better
    assert tie.alike_within == pytest.approx(0.02 * 2.0)


def test_better_fails_where_the_rows_score_alike():
    """A 'better' claim fails when the interval of the difference lies within +-margin of
    the rows' mean (a win as large as the margin is ruled out); it stays undecided when the
    interval is wider, and a significant win, however small, holds."""
    c = Comparison(A, B)
    b = {0: 100.0, 1: 101.0, 2: 99.0, 3: 100.0, 4: 100.5, 5: 99.5}
    alike = compare(c, {s: v + d for (s, v), d in zip(b.items(), (0.3, -0.2, 0.1, -0.3, 0.2, -0.1))},
                    b, True)
    assert alike.holds is False and alike.alike_within == pytest.approx(2.0, rel=1e-3)
    assert alike.describe().endswith("(6 seeds, p = 1; alike: within +-2)")
    wide = compare(c, {s: v + d for (s, v), d in zip(b.items(), (3.0, -2.0, 1.0, -3.0, 2.0, -1.0))},
                   b, True)
    assert wide.holds is None and wide.alike_within is None
    small_win = compare(c, {s: v - 0.5 + d for (s, v), d in zip(b.items(), (0.1, -0.1) * 3)}, b,
                        True)
    assert small_win.holds is True and small_win.alike_within is None
    # the paper's own difference caps the margin: a gap it calls a win is never called alike
    capped = compare(c, {s: v + d for (s, v), d in zip(b.items(), (0.3, -0.2, 0.1, -0.3, 0.2, -0.1))},
                     b, True, paper_gap=0.001)
    assert capped.holds is None


def test_the_paper_gap_of_two_rows_is_relative_to_their_mean():
    from memloss.evidence import _paper_gap

    a, b = "semeniuta-t2-ours-0.25-step", "semeniuta-t2-gal-0.25-step"
    xa, xb = PRESETS.get(a).reported["test"], PRESETS.get(b).reported["test"]
    assert _paper_gap((a, "test"), (b, "test")) == pytest.approx(abs(xa - xb) / ((xa + xb) / 2))
    assert _paper_gap((a, "test"), None) is None
    # a bound ("<25%") is not a number to take a difference of
    moon = "semeniuta-t1-medium-moon-sequence"
    assert PRESETS.get(moon).bounds and _paper_gap((moon, "test"),
                                                   ("semeniuta-t1-medium-ours-sequence", "test")) is None


def test_higher_is_better_for_accuracy():
    c = Comparison("x", "y")
    assert compare(c, {0: 0.9, 1: 0.95, 2: 0.92}, {0: 0.5, 1: 0.52, 2: 0.49}, False).holds is True


def test_similar_within_the_margin():
    c = Comparison(A, B, "similar")
    same = compare(c, {0: 100.0, 1: 101.0, 2: 99.0}, {0: 100.5, 1: 100.2, 2: 99.4}, True)
    apart = compare(c, {0: 100.0, 1: 101.0, 2: 99.0}, {0: 120.0, 1: 121.0, 2: 119.5}, True)
    assert same.holds is True and apart.holds is False


def test_a_bound_of_the_paper_is_strict():
    below = Comparison("semeniuta-t1-medium-moon-sequence", 0.25, "below")
    assert compare(below, {0: 0.20, 1: 0.21, 2: 0.19}, 0.25, False).holds is True
    # exactly chance in every seed is not "<25%"
    assert compare(below, {0: 0.25, 1: 0.25, 2: 0.25}, 0.25, False).holds is False
    assert compare(below, {0: 0.52, 1: 0.54, 2: 0.51}, 0.25, False).holds is False
    assert compare(below, {0: 0.20, 1: 0.30, 2: 0.24}, 0.25, False).holds is None


@pytest.mark.parametrize("curve, lower, expected", [
    ([5.0, 4.0, 3.0, 3.5], True, True), ([5.0, 4.0, 3.0, 2.9], True, False),
    ([5.0, 3.0, 3.001], True, False),  # a rise within MIN_RISE is noise
    ([0.5, 0.8, 0.7], False, True), ([5.0, 4.0], True, False), ([], True, False)])
def test_overfits(curve, lower, expected):
    assert overfits(curve, lower) is expected


def test_findings_name_existing_presets_and_agree_with_the_papers_numbers():
    for f in FINDINGS.values():
        for ref in f.rows() + f.baselines + f.may_fail:
            assert row_split(ref, f.split)[0] in PRESETS, (f.id, ref)
        for c in f.comparisons:
            pa, sa = row_split(c.a, f.split)
            reported_a = PRESETS.get(pa).reported.get(sa)
            if isinstance(c.b, float):
                bound = PRESETS.get(pa).bounds.get(sa, "")
                assert c.relation == "below" and bound == "<" and reported_a == c.b, f.id
                continue
            pb, sb = row_split(c.b, f.split)
            reported_b = PRESETS.get(pb).reported.get(sb)
            if reported_a is None or reported_b is None:
                continue  # a figure or a row without a number in the provided text
            lower = PRESETS.get(pa).metric in ("perplexity", "bpc", "error")
            if c.relation == "better":
                assert (reported_a < reported_b) == lower, (f.id, c)
            else:
                assert math.isclose(reported_a, reported_b, rel_tol=f.margin), (f.id, c)


def test_rank_agreement_reads_a_bound_as_strictly_beyond_its_number():
    """Semeniuta Table 1 at CPU size (docs/fidelity.md's means): tau-b 0.77 with "<25%" tied
    with 25%, 0.69 with it strictly below."""
    from memloss.reports.paper_tables import rank_agreement

    paper = [1, 1, 0.25, 1, 1, 1, 1, 1, 0.25, 0.25, 1, 1]
    measured = [0.9998, 1, 0.5205, 0.7487, 1, 1, 1, 1, 0.5687, 0.2747, 1, 1]
    bounds = [""] * 12
    summary = pd.DataFrame({"paper": "p", "table": "Table 1", "cpu": True, "split": "test",
                            "reported": paper, "mean": measured, "bound": bounds})
    assert round(rank_agreement(summary)["kendall_tau"].iloc[0], 2) == 0.77
    summary["bound"] = [""] * 8 + ["<"] + [""] * 3
    assert round(rank_agreement(summary)["kendall_tau"].iloc[0], 2) == 0.69


# --- diverged runs (rule step 0: a diverged run ranks below every finite one) ------------
AT = "non-finite gradient norm (nan) at epoch 1 step 14"


def _with_diverged(values: dict[str, list[float]], diverged: dict[str, list[int]],
                   split: str = "test") -> pd.DataFrame:
    """Finished rows (seed = position) and diverged runs (no split, no value)."""
    finished = _results(values, split).assign(status="finished", diverged_at="")
    down = pd.DataFrame([{"row": r, "split": "", "seed": s, "value": math.nan,
                          "status": "diverged", "diverged_at": AT}
                         for r, seeds in diverged.items() for s in seeds])
    return pd.concat([finished, down], ignore_index=True)


def test_a_row_that_diverged_in_every_seed_loses_by_the_sign_test():
    assert SIGN_TEST_SEEDS == 6  # 2 * 0.5 ** 6 = 0.031 < 0.05; 2 * 0.5 ** 5 = 0.0625
    v = verdict(FINDING, _with_diverged({A: [100.0 + s for s in range(6)]}, {B: list(range(6))}),
                _curves(seeds=6), TRIVIAL)
    assert v.verdict == "reproduced"
    (o,) = v.outcomes
    assert o.holds and o.wins == (6, 0) and o.seeds == 6 and math.isclose(o.p_value, 2 * 0.5 ** 6)
    assert f"{B} diverged in 6 of 6 seeds: {AT}" in o.describe()
    assert "sign test, p = 0.031" in o.describe()


@pytest.mark.parametrize("seeds", [3, 5])
def test_the_sign_test_does_not_decide_with_fewer_than_six_seeds(seeds):
    v = verdict(FINDING, _with_diverged({A: [100.0] * seeds}, {B: list(range(seeds))}),
                _curves(seeds=seeds), TRIVIAL)
    assert v.verdict == "not tested"
    assert v.reason.startswith("not decided by the sign test: ")
    assert f"{B} diverged in {seeds} of {seeds} seeds" in v.reason
    assert "the sign test decides from 6 untied pairs" in v.reason
    assert "no runs of" not in v.reason  # a diverged row has runs


def test_the_row_the_paper_puts_first_diverging_contradicts_it():
    v = verdict(FINDING, _with_diverged({B: [110.0] * 6}, {A: list(range(6))}), _curves(seeds=6),
                TRIVIAL)
    assert v.verdict == "contradicted"
    assert v.reason.startswith(f"fails: {A} better than {B} in 0 of 6 paired seeds, worse in 6")
    assert f"{A} diverged in 6 of 6 seeds" in v.reason


def test_both_rows_diverged_is_not_tested():
    v = verdict(FINDING, _with_diverged({}, {A: [0, 1, 2], B: [0, 1, 2]}), _curves(), TRIVIAL)
    assert v.verdict == "not tested" and v.outcomes == ()
    assert v.reason == (f"both diverged: {A} and {B} in every one of their 3 paired seeds "
                        f"({A}: {AT}; {B}: {AT})")


def test_mixed_seeds_are_paired_by_rank():
    # B diverged in seeds 0-2 and is finite but worse in 3-5: A wins every pair
    v = verdict(FINDING, _with_diverged({A: [100.0] * 6, B: [math.nan] * 3 + [110.0] * 3},
                                        {B: [0, 1, 2]}), _curves(seeds=6), TRIVIAL)
    (o,) = v.outcomes
    assert v.verdict == "reproduced" and o.wins == (6, 0)
    assert f"{B} diverged in 3 of 6 seeds" in o.describe()
    # B better in 3-4, both diverged in 5 (a tie, left out): 3 pairs against 2, undecided
    v = verdict(FINDING, _with_diverged({A: [100.0] * 5 + [math.nan],
                                         B: [math.nan] * 3 + [90.0, 90.0, math.nan]},
                                        {A: [5], B: [0, 1, 2, 5]}), _curves(seeds=6), TRIVIAL)
    (o,) = v.outcomes
    assert v.verdict == "not tested" and o.holds is None and o.wins == (3, 2)
    assert "tied in 1" in o.describe() and math.isnan(o.mean)


def test_a_diverged_row_ranks_last_whichever_way_its_metric_points():
    high, low = "semeniuta-t1-medium-gal-sequence", "semeniuta-t1-medium-moon-sequence"
    finding = Finding("acc", "paper", "Table 1", "q", "c", (Comparison(high, low),))
    trivial = {(high, "test"): 0.25, (low, "test"): 0.25}
    v = verdict(finding, _with_diverged({high: [0.9] * 6}, {low: list(range(6))}), {}, trivial)
    assert v.verdict == "reproduced" and v.outcomes[0].wins == (6, 0)


def test_similar_and_bounds_with_a_diverged_row_are_not_tested():
    similar = Finding("sim", "paper", "Table 2", "q", "c", (Comparison(A, B, "similar"),),
                      baselines=(BASE,))
    v = verdict(similar, _with_diverged({A: [100.0] * 3, B: [100.0, 101.0]}, {B: [2]}),
                _curves(), TRIVIAL)
    assert v.verdict == "not tested" and v.reason == f"{B} diverged in 1 of 3 seeds: {AT}"
    row = "semeniuta-t1-medium-moon-sequence"
    below = Finding("below", "paper", "Table 1", "q", "c", (Comparison(row, 0.25, "below"),),
                    may_fail=(row,))
    v = verdict(below, _with_diverged({}, {row: [0, 1, 2]}), {}, {(row, "test"): 0.25})
    assert v.verdict == "not tested" and v.reason == f"{row} diverged in 3 of 3 seeds: {AT}"


def test_the_trivial_baseline_holds_the_finite_seeds_and_a_diverged_baseline_is_named():
    # B's finite seeds are worse than the trivial model: not tested, its finite mean named
    v = verdict(FINDING, _with_diverged({A: [100.0] * 6, B: [130.0] * 3}, {B: [3, 4, 5]}),
                _curves(seeds=6), TRIVIAL)
    assert v.verdict == "not tested" and f"({B} test 130 against 125)" in v.reason
    # the baseline that must overfit diverged: the regime cannot show the finding
    v = verdict(FINDING, _with_diverged({A: [100.0] * 3, B: [110.0] * 3}, {BASE: [1]}),
                {(BASE, 0): OVERFIT, (BASE, 2): OVERFIT}, TRIVIAL)
    assert v.verdict == "not tested"
    assert v.reason == f"the baseline {BASE} diverged in 1 of 3 seeds: {AT}"


def test_results_without_a_status_column_are_all_finished():
    plain = _results({A: [100.0, 101.0, 99.5], B: [110.0, 112.0, 109.0]})
    both = plain.assign(status="finished", diverged_at="")
    assert verdict(FINDING, plain, _curves(), TRIVIAL) == verdict(FINDING, both, _curves(), TRIVIAL)


def test_a_finding_about_sizes_is_not_tested_where_the_rows_share_one_network(monkeypatch):
    """Gal's "a larger model" finding: where the medium and large rows train one network,
    however their scores differ the finding is not tested; where their sizes differ (the CPU
    presets: 1 x 128 against 1 x 256; full size: 650 against 1500 units) the rule goes on to
    compare them."""
    import memloss.evidence as evidence

    finding = FINDINGS["gal-larger-needs-dropout"]
    assert finding.sizes and [f.id for f in FINDINGS.values() if f.sizes] == [finding.id]
    rows = [row_split(r, finding.split)[0] for r in finding.rows()]
    frame = pd.DataFrame([{"row": r, "split": "test", "seed": s, "value": 50.0 + i + s * 0.1}
                          for i, r in enumerate(rows) for s in range(3)])
    curves = {(r, s): [3.0, 2.0, 2.5] for r in finding.baselines for s in range(3)}
    trivial = {(r, "test"): 1000.0 for r in rows}
    assert evidence._net_size("gal-medium-untied", True) == (1, 128)
    assert evidence._net_size("gal-large-untied", True) == (1, 256)
    for cpu in (True, False):
        v = verdict(finding, frame, curves, trivial, cpu=cpu)
        assert "same network" not in v.reason and v.outcomes
    monkeypatch.setattr(evidence, "_net_size", lambda row, cpu: (1, 256))
    one = verdict(finding, frame, curves, trivial, cpu=True)
    assert one.verdict == "not tested" and not one.outcomes
    assert one.reason == ("gal-large-untied and gal-medium-untied train the same network at "
                          "this size (1 x 256): the finding compares network sizes; "
                          "gal-medium-nonreg and gal-large-nonreg train the same network at "
                          "this size (1 x 256): the finding compares network sizes")


def test_a_classifier_overfits_by_its_validation_loss_not_its_error():
    """A classifier's error can keep falling after its loss has turned up (it grows
    over-confident on what it gets wrong): the rule reads the loss there, and the metric
    where the metric is a function of the loss (perplexity, bpc)."""
    from types import SimpleNamespace

    from memloss.evidence import curve_quantity, curves_of

    assert curve_quantity("perplexity") == ("perplexity", True)
    assert curve_quantity("bpc") == ("bpc", True)
    assert curve_quantity("error") == ("loss", True)
    assert curve_quantity("accuracy") == ("loss", True)
    metrics = [{"valid_error": e, "valid_loss": l} for e, l in
               [(0.40, 1.10), (0.30, 0.80), (0.27, 0.70), (0.26, 0.78), (0.25, 0.90)]]

    def run(row, seed, metric):
        info = {"preset": {"name": f"{row}-cpu", "cpu_of": row, "metric": metric}}
        return SimpleNamespace(config={"info": info}, seed=seed, metrics=metrics)

    k1 = "krueger-t1-lstm"
    curves = curves_of([run(k1, s, "error") for s in range(3)])
    assert curves[(k1, True, 0)] == [m["valid_loss"] for m in metrics]
    assert overfits(curves[(k1, True, 0)], True)
    assert not overfits([m["valid_error"] for m in metrics], True)  # the error never rose
    finding = FINDINGS.get("krueger-t1-zoneout")
    rows = {r: [0.20, 0.21, 0.19] for r in ("krueger-t1-zoneout",)}
    rows.update({r: [0.25, 0.26, 0.255] for r in ("krueger-t1-lstm", "krueger-t1-recurrent-dropout")})
    trivial = {(r, "test"): 0.9 for r in rows}
    by_loss = {(r, s): v for (r, c, s), v in curves.items()}
    assert verdict(finding, _results(rows), by_loss, trivial).verdict == "reproduced"
    falling = {k: [0.9, 0.8, 0.7, 0.6] for k in by_loss}
    v = verdict(finding, _results(rows), falling, trivial)
    assert v.verdict == "not tested" and f"the baseline {k1} did not overfit (its validation loss" in v.reason


def test_the_trivial_baseline_is_given_in_the_rows_metric():
    """Krueger Table 1 scores error on a task that reports accuracy: the majority class's
    accuracy becomes its error before a row is held to it."""
    from memloss.evidence import _task_trivial
    from tests.tasks.data.helpers import FIXTURES

    params = {"source": "mnist", "root": str(FIXTURES / "mnist"), "valid_size": 4}
    cache: dict = {}
    acc = _task_trivial("permuted-mnist", params, cache)
    err = _task_trivial("permuted-mnist", params, cache, "error")
    assert set(acc) == set(err) == {"valid", "test"}
    for split in acc:
        assert 0.0 <= acc[split] <= 1.0 and err[split] == pytest.approx(1.0 - acc[split])
    assert acc != err
    assert _task_trivial("permuted-mnist", params, cache, "accuracy") == acc


def test_a_declared_cpu_sample_is_read_alone_and_only_once_it_has_all_run():
    """``Finding.cpu_seeds``: at CPU size the compared rows are read on the declared seeds
    only (here seeds 3-5, where A wins, not seeds 0-2 too, where B does), and the finding is not
    tested until each of those seeds has run for every compared row (a diverged seed counts
    as run); the baseline is read on its own seeds; at full size the declaration is
    ignored."""
    from dataclasses import replace

    declared = replace(FINDING, cpu_seeds=(3, 4, 5))
    a = [110.0, 112.0, 109.0, 100.0, 101.0, 99.5]
    b = [100.0, 101.0, 99.5, 110.0, 112.0, 109.0]
    both = _results({A: a, B: b})
    v = verdict(declared, both, _curves(), TRIVIAL, cpu=True)
    assert v.verdict == "reproduced" and v.outcomes[0].seeds == 3
    full = verdict(declared, both, _curves(), TRIVIAL, cpu=False)  # all six: no difference
    assert full.verdict == "not tested" and full.outcomes[0].seeds == 6
    part = _results({A: a, B: b[:5]})
    v = verdict(declared, part, _curves(), TRIVIAL, cpu=True)
    assert v.verdict == "not tested" and v.outcomes == ()
    assert v.reasons[0] == f"its declared sample, seeds 3-5, has not all run ({B} 2 of 3)"
    v = verdict(declared, _with_diverged({A: a, B: b[:5]}, {B: [5]}), _curves(), TRIVIAL,
                cpu=True)
    assert "declared sample" not in v.reason
    assert verdict(replace(FINDING, cpu_seeds=(0, 2)), _results({A: a[:2], B: b[:2]}),
                   _curves(), TRIVIAL, cpu=True).reasons[0] == (
        f"its declared sample, seeds 0, 2, has not all run ({A} 1 of 2, {B} 1 of 2)")
