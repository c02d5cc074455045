"""The papers' findings as statements memloss can test: each claim in the paper's words
(section or table named), and the comparisons of preset rows that measure it.

A :class:`Finding` holds :class:`Comparison` s of table rows, named by their full presets
(a ``-cpu`` run measures the same row at CPU size). ``"better"``: row ``a`` scores better
than row ``b`` (in the direction of the rows' metric; rows that score alike, within
:attr:`Finding.margin`, fail it); ``"similar"``: ``a`` and ``b`` score alike (within
:attr:`Finding.margin`, relative); ``"below"`` / ``"above"``: ``a`` scores
strictly below / above the number ``b`` (a bound the paper states, e.g. "worse than
random"). A row is measured on the finding's ``split`` unless its name carries another
(``gal-large-untied:test_mc``). ``baselines``: the unregularized rows that must overfit
(their validation curve passes its minimum and rises) before a claim about regularization
is tested; none for a claim about memory (Semeniuta Table 1). ``may_fail``: rows the paper
says fail, exempt from having to beat the trivial baseline of the data.

:mod:`memloss.evidence` applies the verdict rule to measured runs. Every ``better``
comparison whose two rows have a number in the paper agrees with the paper's numbers
(tested).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import GAL, KRUEGER, SEMENIUTA, ZAREMBA

__all__ = ["Comparison", "Finding", "FINDINGS", "RELATIONS", "row_split"]

RELATIONS = ("better", "similar", "below", "above")


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b``: a row (``preset`` or ``preset:split``) and a row or a number."""

    a: str
    b: "str | float"
    relation: str = "better"

    def __post_init__(self) -> None:
        if self.relation not in RELATIONS:
            raise ValueError(f"unknown relation {self.relation!r}; valid: {', '.join(RELATIONS)}")
        if (self.relation in ("below", "above")) != isinstance(self.b, float):
            raise ValueError(f"{self.a} {self.relation} {self.b!r}: 'below' and 'above' compare "
                             "a row with a number, 'better' and 'similar' two rows")

    def rows(self) -> tuple[str, ...]:
        return (self.a,) if isinstance(self.b, float) else (self.a, self.b)


@dataclass(frozen=True)
class Finding:
    id: str
    paper: str
    where: str
    quote: str
    claim: str
    comparisons: tuple[Comparison, ...]
    split: str = "test"
    baselines: tuple[str, ...] = ()
    may_fail: tuple[str, ...] = ()
    margin: float = 0.02
    notes: str = ""
    #: the finding compares network sizes: tested only where the rows of each comparison
    #: are networks of different sizes
    sizes: bool = False
    #: at CPU size, the seeds its compared rows' verdict reads (a sample declared before it
    #: ran; not tested until every one of them has run); empty: every seed
    cpu_seeds: tuple[int, ...] = ()

    def rows(self) -> tuple[str, ...]:
        """Every row reference the finding compares, in order, once."""
        return tuple(dict.fromkeys(r for c in self.comparisons for r in c.rows()))


def row_split(ref: str, default: str) -> tuple[str, str]:
    """``"preset:split"`` -> ``(preset, split)``; a bare preset takes ``default``."""
    preset, _, split = ref.partition(":")
    return preset, split or default


def _better(pairs: "list[tuple[str, str]]") -> tuple[Comparison, ...]:
    return tuple(Comparison(a, b) for a, b in pairs)


_T1 = "semeniuta-t1-{length}-{family}-{sampling}"
_T2 = "semeniuta-t2-{fd}{family}-{rate}-{sampling}"
_RATES = (("0.25", "step"), ("0.5", "step"), ("0.25", "sequence"), ("0.5", "sequence"))

_FINDINGS: list[Finding] = [
    # --- Semeniuta et al. 2016 -----------------------------------------------------------
    Finding(
        "semeniuta-t1-moon-sequence-fails", SEMENIUTA, "Section 4.1, Table 1",
        "Using dropout from (Moon et al., 2015) with per-sequence sampling, networks are able "
        "to discover the long-term dependency, but fail to use it on the test set due to the "
        "scaling issue.",
        "on both lengths, Gal's and update dropout (per sequence) score higher test accuracy "
        "than Moon's per-sequence dropout",
        _better([(_T1.format(length=n, family=f, sampling="sequence"),
                  _T1.format(length=n, family="moon", sampling="sequence"))
                 for n in ("short", "medium") for f in ("gal", "ours")]),
        may_fail=tuple(_T1.format(length=n, family="moon", sampling="sequence")
                       for n in ("short", "medium"))),
    Finding(
        "semeniuta-t1-moon-sequence-medium-below-chance", SEMENIUTA, "Section 4.1, Table 1",
        "Interestingly, in Medium case results on the test set are worse than random.",
        "Moon's per-sequence dropout on medium sequences: test accuracy strictly below 0.25 "
        "(Table 1: '<25%')",
        (Comparison(_T1.format(length="medium", family="moon", sampling="sequence"), 0.25,
                    "below"),),
        may_fail=(_T1.format(length="medium", family="moon", sampling="sequence"),)),
    Finding(
        "semeniuta-t1-no-memory-loss", SEMENIUTA, "Section 4.1, Table 1",
        "In contrast, using our recurrent dropout methods, networks are able to solve the "
        "problem in all cases. [...] We also note that the approach of (Gal, 2015) does not "
        "seem to exhibit the memory loss problem.",
        "on medium sequences, update dropout and Gal's (per step and per sequence) score "
        "higher test accuracy than Moon's per-step dropout, which does not fit",
        _better([(_T1.format(length="medium", family=f, sampling=s),
                  _T1.format(length="medium", family="moon", sampling="step"))
                 for f in ("ours", "gal") for s in ("step", "sequence")]),
        may_fail=(_T1.format(length="medium", family="moon", sampling="step"),)),
    Finding(
        "semeniuta-t2-ours-beats-alternatives", SEMENIUTA, "Section 4.2, Table 2",
        "(i) our approach shows better results than the alternatives",
        "without forward dropout, update dropout beats Moon's and Gal's at the same rate and "
        "sampling (test perplexity)",
        _better([(_T2.format(fd="", family="ours", rate=r, sampling=s),
                  _T2.format(fd="", family=f, rate=r, sampling=s))
                 for r, s in _RATES for f in ("moon", "gal")]),
        baselines=("semeniuta-t2-baseline",),
        notes="The upper part of Table 2; with forward dropout the paper's own numbers put "
              "Gal ahead at rate 0.5 per step (92.5 against 95.5)."),
    Finding(
        "semeniuta-t2-moon-per-step", SEMENIUTA, "Section 4.2, Table 2",
        "(ii) per-step mask sampling is better when dropping hidden state directly",
        "without forward dropout, Moon's per-step dropout beats its per-sequence dropout at "
        "both rates (test perplexity)",
        _better([(_T2.format(fd="", family="moon", rate=r, sampling="step"),
                  _T2.format(fd="", family="moon", rate=r, sampling="sequence"))
                 for r in ("0.25", "0.5")]),
        baselines=("semeniuta-t2-baseline",),
        notes="The upper part of Table 2; with forward dropout at rate 0.25 the paper's "
              "numbers are the other way round (105.8 against 99.9)."),
    Finding(
        "semeniuta-t2-ours-step-like-sequence", SEMENIUTA, "Section 4.2, Table 2",
        "(iii) on this task our method using per-step sampling seems to yield results "
        "similar to per-sequence sampling",
        "without forward dropout, update dropout per step and per sequence score alike at "
        "both rates (test perplexity within 2%)",
        tuple(Comparison(_T2.format(fd="", family="ours", rate=r, sampling="step"),
                         _T2.format(fd="", family="ours", rate=r, sampling="sequence"),
                         "similar") for r in ("0.25", "0.5")),
        baselines=("semeniuta-t2-baseline",),
        notes="At CPU size seeds 0-11 left it undecided; its verdict there reads a new "
              "sample, seeds 12-59, its size fixed before it ran "
              "(docs/results/semeniuta-t2-cpu-confirm-*.toml).",
        cpu_seeds=tuple(range(12, 60))),
    Finding(
        "semeniuta-t2-forward-dropout-first", SEMENIUTA, "Section 4.2, Table 2",
        "(iv) in this case forward dropout yields better results than any of the three "
        "recurrent dropouts",
        "forward dropout alone beats the best row of each recurrent dropout without it "
        "(test perplexity; the rows the paper's table puts best)",
        _better([("semeniuta-t2-fd-baseline", "semeniuta-t2-ours-0.5-sequence"),
                 ("semeniuta-t2-fd-baseline", "semeniuta-t2-moon-0.25-step"),
                 ("semeniuta-t2-fd-baseline", "semeniuta-t2-gal-0.5-step")]),
        baselines=("semeniuta-t2-baseline",)),
    Finding(
        "semeniuta-t2-with-forward-dropout", SEMENIUTA, "Section 4.2, Table 2",
        "(v) both our approach and that of (Gal, 2015) are effective when combined with the "
        "forward dropout, though ours is more effective",
        "with forward dropout, update dropout and Gal's (rate 0.25 per step) beat forward "
        "dropout alone, and update dropout beats Gal's (test perplexity)",
        _better([("semeniuta-t2-fd-ours-0.25-step", "semeniuta-t2-fd-baseline"),
                 ("semeniuta-t2-fd-gal-0.25-step", "semeniuta-t2-fd-baseline"),
                 ("semeniuta-t2-fd-ours-0.25-step", "semeniuta-t2-fd-gal-0.25-step")]),
        baselines=("semeniuta-t2-baseline",)),
    Finding(
        "semeniuta-t3-recurrent-beats-forward", SEMENIUTA, "Section 4.3, Table 3",
        "LSTM networks trained with our approach and the approach of (Gal, 2015) yield a "
        "lower bit-per-character (bpc) score than those trained with forward dropout only",
        "update dropout and Gal's (their best rows) beat forward dropout alone (test bpc)",
        _better([("semeniuta-t3-ours-0.25-step", "semeniuta-t3-fd-baseline"),
                 ("semeniuta-t3-gal-0.25-sequence", "semeniuta-t3-fd-baseline")]),
        baselines=("semeniuta-t3-baseline",)),
    Finding(
        "semeniuta-t3-only-ours-adds-to-forward", SEMENIUTA, "Section 4.3, Table 3",
        "our approach is the only one that improves over baseline LSTM with forward dropout",
        "with forward dropout, update dropout (0.25 per step) beats forward dropout alone, "
        "which beats the best Gal and Moon rows with it (test bpc)",
        _better([("semeniuta-t3-fd-ours-0.25-step", "semeniuta-t3-fd-baseline"),
                 ("semeniuta-t3-fd-baseline", "semeniuta-t3-fd-gal-0.25-step"),
                 ("semeniuta-t3-fd-baseline", "semeniuta-t3-fd-moon-0.25-sequence")]),
        baselines=("semeniuta-t3-baseline",)),
    Finding(
        "semeniuta-t3-ours-best", SEMENIUTA, "Section 4.3, Table 3",
        "The overall best result is achieved by a network trained with our dropout with 0.25 "
        "dropout rate and per-step sampling, closely followed by network with Gal (2015) "
        "dropout.",
        "update dropout 0.25 per step beats Gal's best row and the baseline (test bpc)",
        _better([("semeniuta-t3-ours-0.25-step", "semeniuta-t3-gal-0.25-sequence"),
                 ("semeniuta-t3-ours-0.25-step", "semeniuta-t3-baseline")]),
        baselines=("semeniuta-t3-baseline",)),
    # --- Zaremba et al. 2014 -------------------------------------------------------------
    Finding(
        "zaremba-regularized-larger", ZAREMBA, "Section 4.1, Table 1",
        "The lack of regularization effectively constrains size of the network, forcing us "
        "to use small network because larger networks overfit.",
        "the medium and large networks with dropout beat the best non-regularized network "
        "(test perplexity)",
        _better([("zaremba-medium", "zaremba-small"), ("zaremba-large", "zaremba-small")]),
        baselines=("zaremba-small",)),
    # --- Gal & Ghahramani 2016 -----------------------------------------------------------
    Finding(
        "gal-variational-beats-nonreg", GAL, "Section 5.1, Table 1",
        "Comparing our results to the non-regularised LSTM [...] we see that for either "
        "model size an improvement can be obtained by using our dropout variant.",
        "the variational LSTM (tied and untied) beats the non-regularized one of its size "
        "(test perplexity)",
        _better([(f"gal-{n}-{k}", f"gal-{n}-nonreg") for n in ("medium", "large")
                 for k in ("tied", "untied")]),
        baselines=("gal-medium-nonreg", "gal-large-nonreg")),
    Finding(
        "gal-variational-beats-zaremba", GAL, "Section 5.1, Table 1",
        "Validation perplexity for the large model is improved from [4]'s 82.2 down to 77.3 "
        "(with weight tying), or 77.9 without weight tying.",
        "the variational LSTM (tied and untied) beats Zaremba's dropout of its size (test "
        "perplexity)",
        _better([(f"gal-{n}-{k}", f"gal-{n}-zaremba") for n in ("medium", "large")
                 for k in ("tied", "untied")]),
        baselines=("gal-medium-nonreg", "gal-large-nonreg")),
    Finding(
        "gal-moon-underperforms", GAL, "Section 5.1, Table 1",
        "It seems that Moon et al. [20] underperform even compared to [4].",
        "per size: Zaremba's dropout beats Moon's (test perplexity)",
        _better([(f"gal-{n}-zaremba", f"gal-{n}-moon") for n in ("medium", "large")]),
        baselines=("gal-medium-nonreg", "gal-large-nonreg")),
    Finding(
        "gal-moon-embedding-dropout", GAL, "Section 5.1, Table 1",
        "Adding our embedding dropout, the model performs much better, but still "
        "underperforms compared to applying dropout on the inputs and outputs alone.",
        "per size: Moon's with embedding dropout beats Moon's, and Zaremba's dropout beats "
        "Moon's with embedding dropout (test perplexity)",
        _better([p for n in ("medium", "large")
                 for p in ((f"gal-{n}-moon-emb", f"gal-{n}-moon"),
                           (f"gal-{n}-zaremba", f"gal-{n}-moon-emb"))]),
        baselines=("gal-medium-nonreg", "gal-large-nonreg")),
    Finding(
        "gal-larger-needs-dropout", GAL, "Section 5.1, Table 1",
        "a significant reduction in perplexity can be achieved by using a larger model. This "
        "cannot be done with the non-regularised LSTM, where a larger model leads to worse "
        "results.",
        "the large variational LSTM beats the medium one; the medium non-regularized LSTM "
        "beats the large one (test perplexity)",
        _better([("gal-large-untied", "gal-medium-untied"),
                 ("gal-medium-nonreg", "gal-large-nonreg")]),
        baselines=("gal-medium-nonreg", "gal-large-nonreg"), sizes=True),
    Finding(
        "gal-mc-dropout", GAL, "Section 5.1, Table 1",
        "Test perplexity is reduced from 78.4 down to 73.4 (with MC dropout and untied "
        "weights).",
        "MC dropout beats the deterministic approximation for every variational row (test "
        "perplexity)",
        _better([(f"gal-{n}-{k}:test_mc", f"gal-{n}-{k}:test") for n in ("medium", "large")
                 for k in ("tied", "untied")]),
        baselines=("gal-medium-nonreg", "gal-large-nonreg")),
    Finding(
        "gal-figure-2", GAL, "Section 5.1, Figure 2",
        "As can be seen in fig. 2, even with early stopping, Variational LSTM achieves lower "
        "perplexity than naive dropout LSTM and standard LSTM.",
        "the variational LSTM's best validation perplexity beats naive dropout's and the "
        "standard LSTM's (medium model, no learning-rate decay)",
        _better([("gal-fig2-variational", "gal-fig2-naive"),
                 ("gal-fig2-variational", "gal-fig2-standard")]),
        split="valid", baselines=("gal-fig2-standard",)),
    # --- Krueger et al. 2016 -------------------------------------------------------------
    Finding(
        "krueger-t1-zoneout", KRUEGER, "Section 4.1, Table 1",
        "As shown in Table 1, zoneout gives a significant performance boost compared to the "
        "LSTM baseline and outperforms recurrent dropout",
        "zoneout beats the LSTM and recurrent dropout (test error, permuted sequential MNIST)",
        _better([("krueger-t1-zoneout", "krueger-t1-lstm"),
                 ("krueger-t1-zoneout", "krueger-t1-recurrent-dropout")]),
        baselines=("krueger-t1-lstm",)),
    Finding(
        "krueger-t2-best", KRUEGER, "Section 4.2.1, Table 2",
        "zoneout on cells with probability 0.5 and zoneout on states with probability 0.05 "
        "both outperform recurrent dropout, and combining these leads to our best-performing "
        "model (z_c = 0.5, z_h = 0.05)",
        "z_c = 0.5 with z_h = 0.05 beats every other row of Table 2 (validation bpc; the "
        "recurrent-dropout row is not a preset: its rate is not given)",
        _better([("krueger-t2-zc0.5-zh0.05", f"krueger-t2-{k}")
                 for k in ("zc0.5-zh0.5", "zc0.05-zh0.05", "zc0.5", "zc0.05", "zh0.5",
                           "zh0.05", "lstm")]),
        split="valid", baselines=("krueger-t2-lstm",)),
    Finding(
        "krueger-t2-zoneout-helps", KRUEGER, "Abstract; Table 2",
        "zoneout gives significant performance improvements across tasks",
        "every zoneout row beats the LSTM (validation bpc, character level)",
        _better([(f"krueger-t2-{k}", "krueger-t2-lstm")
                 for k in ("zc0.5-zh0.5", "zc0.05-zh0.05", "zc0.5", "zc0.5-zh0.05", "zc0.05",
                           "zh0.5", "zh0.05")]),
        split="valid", baselines=("krueger-t2-lstm",)),
    Finding(
        "krueger-t3-zoneout", KRUEGER, "Section 4.2.2, Table 3",
        "The top three performing models all used some form of zoneout. [Caption:] Zoneout "
        "and output zoneout outperform competitors.",
        "zoneout on the states, output zoneout and zoneout 0.05 on both beat recurrent "
        "dropout and the baseline (validation perplexity)",
        _better([(a, b) for a in ("krueger-t3-zoneout-h0.25", "krueger-t3-output-zoneout-0.25",
                                  "krueger-t3-zoneout-c0.05-h0.05")
                 for b in ("krueger-t3-recurrent-dropout-0.5", "krueger-t3-baseline")]),
        split="valid", baselines=("krueger-t3-baseline",)),
]

#: every finding by id, in the papers' order
FINDINGS: dict[str, Finding] = {}
for _f in _FINDINGS:
    if _f.id in FINDINGS:
        raise ValueError(f"finding {_f.id!r} is listed twice")
    FINDINGS[_f.id] = _f
