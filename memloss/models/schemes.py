"""Recurrent-regularization schemes as data: each scheme places masks at named sites.

A scheme is a small frozen dataclass. ``scheme.sites(cell)`` returns ``{site: SiteSpec}``;
schemes compose with ``+`` (or :class:`Stack`), and two schemes that claim the same site
are rejected. Site names (see docs/models.md for where each acts in the step):

``embedding`` word-type dropout (Gal 4.2), ``input`` layer input, ``recurrent`` h_{t-1}
before the recurrent product, ``update`` candidate g (LSTM) / n (GRU), ``cell`` new cell
state (Moon), ``hidden`` new hidden state, ``zoneout_cell`` / ``zoneout_hidden``
(Krueger), ``output_gate`` output-gate zoneout tied to the update mask (Krueger 3.3),
``weight`` DropConnect on the recurrent matrix, ``output`` last layer's output.

Options added after a scheme's first release (``Zaremba.p_output``, ``Gal.sampling``,
``Zoneout.shared``, ``OutputZoneout.reading``) are left out of ``spec`` while at their
default, so a scheme's text form (and every saved run's config) stays as it was.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, ClassVar, Literal

from memloss.core import validate
from memloss.core.validate import shown
from memloss.core.registry import Registry

if TYPE_CHECKING:  # schemes are data: the registry imports without the cells (and torch)
    from .cells import CellSpec

__all__ = [
    "SiteSpec",
    "Scheme",
    "Stack",
    "SCHEMES",
    "make_scheme",
    "parse_scheme",
    "list_schemes",
    "SAMPLINGS",
    "SCALINGS",
    "READINGS",
]

Sampling = Literal["step", "sequence", "forward"]
Scaling = Literal["inverted", "expectation"]
Reading = Literal["motivation", "printed"]
SAMPLINGS = ("step", "sequence")
SCALINGS = ("inverted", "expectation")
#: the readings of Krueger et al.'s output-gate variant (section 3.3), see docs/models.md
READINGS = ("motivation", "printed")

#: metadata of an option added after its scheme's first release: left out of ``spec``
#: while at its default (saved runs' scheme texts stay valid and equal)
_LATER = {"omit_default": True}


def _param(default: object, help: str, *, later: bool = False) -> object:
    """A scheme parameter's field: its default and its meaning (``metadata["help"]``, shown by
    ``memloss ls schemes`` and ``memloss describe``); ``later``: see :data:`_LATER`."""
    return field(default=default, metadata={"help": help, **(_LATER if later else {})})


_SCALING = ("inverted: kept units scaled by 1/(1-p) in training, nothing at test; expectation: "
            "no scaling in training, values times 1-p at test")
_SAMPLING = "sequence: one mask per sequence, reused at every step; step: a new mask every step"


@dataclass(frozen=True)
class SiteSpec:
    """One mask site: rate ``p``, how often it is sampled, how it is scaled.

    ``kind="dropout"`` masks multiply the value (kept units scaled by 1/(1-p) under
    ``inverted``; test-time factor 1-p under ``expectation``). ``kind="zoneout"`` masks are
    indicators (1 = keep the previous value) with expectation p at test time.
    ``per_gate`` gives one mask per gate block (Gal's untied variant). ``tied_to`` names a
    site of the same layer whose uniform draw this mask reuses (no draw of its own): the
    mask is then built from ``keep = u >= p`` with the source's ``u`` (so two zoneout masks
    of one rate are equal, and at different rates nested), or, with ``tied_inverse``, from
    ``keep`` = the source's dropped indicator ``u < p_source`` (this mask's ``p`` is then
    ``1 - p_source``).
    """

    p: float
    sampling: Sampling
    kind: Literal["dropout", "zoneout"] = "dropout"
    scaling: Scaling = "inverted"
    per_gate: bool = False
    tied_to: str | None = None
    tied_inverse: bool = False

    def train_value(self, keep: "object") -> "object":
        """The training-mode mask for a draw ``keep`` ~ Bernoulli(1-p) (float tensor of 0/1).

        Dropout: the (scaled) keep indicator. Zoneout: the indicator of zoning out,
        ``1 - keep``, which is 1 with probability p.
        """
        if self.kind == "zoneout":
            return 1.0 - keep
        if self.scaling == "inverted":
            return keep / (1.0 - self.p)
        return keep

    @property
    def test_value(self) -> float:
        """The deterministic (expected) multiplier used at test time."""
        if self.kind == "zoneout":
            return self.p
        return 1.0 if self.scaling == "inverted" else 1.0 - self.p


class Scheme:
    """Base class: subclasses are frozen dataclasses with a ``name`` and ``sites``."""

    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name.startswith("p"):
                if value is not None or f.default is not None:
                    validate.rate(self.name, f.name, value)
            elif f.name == "sampling":
                validate.choice(self.name, f.name, value, SAMPLINGS)
            elif f.name == "scaling":
                validate.choice(self.name, f.name, value, SCALINGS)
            elif f.name == "reading":
                validate.choice(self.name, f.name, value, READINGS)
            elif f.type in (bool, "bool"):
                validate.flag(self.name, f.name, value)

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        raise NotImplementedError

    def __add__(self, other: "Scheme") -> "Stack":
        return Stack(_flatten(self) + _flatten(other))

    @property
    def spec(self) -> str:
        """Round-trippable text form, e.g. ``semeniuta:p=0.25,sampling=step``."""
        args = ",".join(f"{f.name}={getattr(self, f.name)}" for f in _shown_fields(self))
        return f"{self.name}:{args}" if args else self.name

    @property
    def short(self) -> str:
        """A short label for tables and legends: the name, with the sampling where the scheme
        has a choice of it (``moon/sequence``; ``gal`` only when sampled per step)."""
        shown = {f.name for f in _shown_fields(self)}
        sampling = getattr(self, "sampling", None) if "sampling" in shown else None
        return f"{self.name}/{sampling}" if sampling and self.name != "zoneout" else self.name

    def __str__(self) -> str:
        return self.spec


def _shown_fields(s: Scheme) -> list:
    """The fields of ``s`` its text form shows: all but later options at their default."""
    return [f for f in fields(s)  # type: ignore[arg-type]
            if not (f.metadata.get("omit_default") and getattr(s, f.name) == f.default)]


def _flatten(s: Scheme) -> tuple[Scheme, ...]:
    return s.schemes if isinstance(s, Stack) else (s,)


def _need_site(scheme: Scheme, cell: CellSpec, site: str, hint: str) -> None:
    if site not in cell.sites:
        raise ValueError(f"scheme {scheme.name!r} needs the {site!r} site, which a {cell.name} cell "
                         f"does not have; {hint}")


SCHEMES: Registry[type[Scheme]] = Registry("scheme", entry_points="memloss.schemes")


@SCHEMES.register("none", "no regularization")
@dataclass(frozen=True)
class NoScheme(Scheme):
    name: ClassVar[str] = "none"

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        return {}


@SCHEMES.register("zaremba", "Zaremba 2014: dropout on non-recurrent connections (input, between "
                  "layers, output), new mask every step; p_output gives the output its own "
                  "rate (Semeniuta's forward dropout 0.2 in / 0.5 out)")
@dataclass(frozen=True)
class Zaremba(Scheme):
    """``p`` drops every layer's input; the last layer's output is dropped at ``p_output``
    (None: at ``p``, Zaremba's one rate for every non-recurrent connection)."""

    name: ClassVar[str] = "zaremba"
    p: float = _param(0.5, "dropout rate of every layer's input")  # type: ignore[assignment]
    scaling: Scaling = _param("inverted", _SCALING)  # type: ignore[assignment]
    p_output: float | None = _param(  # type: ignore[assignment]
        None, "rate of the last layer's output (none: p)", later=True)

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        p_out = self.p if self.p_output is None else self.p_output
        out: dict[str, SiteSpec] = {}
        if self.p > 0:
            out["input"] = SiteSpec(self.p, "step", scaling=self.scaling)
        if p_out > 0:
            out["output"] = SiteSpec(p_out, "step", scaling=self.scaling)
        return out


@SCHEMES.register("gal", "Gal 2016 variational: one mask per sequence on inputs, h_{t-1} and "
                  "outputs (tied or untied per gate), word-type embedding dropout; "
                  "sampling=step redraws them every step (Semeniuta's per-step rows)")
@dataclass(frozen=True)
class Gal(Scheme):
    """``sampling``: ``sequence`` (Gal's variational masks, the default) or ``step`` (a new
    input, recurrent and output mask every step, as Semeniuta et al. 2016 Tables 1-3 run
    "Gal (2015)" per step). Word-type embedding dropout stays per sequence either way (a
    word type is dropped everywhere in the sequence, Gal 4.2)."""

    name: ClassVar[str] = "gal"
    p: float = _param(0.25,  # type: ignore[assignment]
        "rate on every layer's input and on the last layer's output")
    p_recurrent: float = _param(0.25,  # type: ignore[assignment]
        "rate on h_{t-1} before the recurrent product")
    p_embedding: float = _param(0.0,  # type: ignore[assignment]
        "rate of word types dropped from the embedding (a Net's input), the same word "
        "everywhere in a sequence")
    tied: bool = _param(True,  # type: ignore[assignment]
        "true: one mask for all gates; false: one per gate block (Gal's untied variant)")
    scaling: Scaling = _param("inverted", _SCALING)  # type: ignore[assignment]
    sampling: Sampling = _param("sequence", _SAMPLING, later=True)  # type: ignore[assignment]

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        untied = not self.tied and cell.num_gates > 1
        out: dict[str, SiteSpec] = {}
        if self.p > 0:
            out["input"] = SiteSpec(self.p, self.sampling, scaling=self.scaling, per_gate=untied)
            out["output"] = SiteSpec(self.p, self.sampling, scaling=self.scaling)
        if self.p_recurrent > 0:
            out["recurrent"] = SiteSpec(self.p_recurrent, self.sampling, scaling=self.scaling,
                                        per_gate=untied)
        if self.p_embedding > 0:
            out["embedding"] = SiteSpec(self.p_embedding, "sequence", scaling=self.scaling)
        return out


@SCHEMES.register("moon", "Moon 2015 rnnDrop: dropout on the cell state c_t (Semeniuta eq. 8), "
                  "per sequence or per step")
@dataclass(frozen=True)
class Moon(Scheme):
    name: ClassVar[str] = "moon"
    p: float = _param(0.5, "rate on the new cell state c_t")  # type: ignore[assignment]
    sampling: Sampling = _param("sequence", _SAMPLING)  # type: ignore[assignment]
    scaling: Scaling = _param("inverted", _SCALING)  # type: ignore[assignment]

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        _need_site(self, cell, "cell", "use 'hidden-dropout' to drop the hidden state instead")
        return {"cell": SiteSpec(self.p, self.sampling, scaling=self.scaling)} if self.p > 0 else {}


@SCHEMES.register("hidden-dropout", "dropout directly on the hidden state h_t (the baseline "
                  "Semeniuta 3.2 discusses), per sequence or per step")
@dataclass(frozen=True)
class HiddenDropout(Scheme):
    name: ClassVar[str] = "hidden-dropout"
    p: float = _param(0.5, "rate on the new hidden state h_t")  # type: ignore[assignment]
    sampling: Sampling = _param("sequence", _SAMPLING)  # type: ignore[assignment]
    scaling: Scaling = _param("inverted", _SCALING)  # type: ignore[assignment]

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        return {"hidden": SiteSpec(self.p, self.sampling, scaling=self.scaling)} if self.p > 0 else {}


@SCHEMES.register("semeniuta", "Semeniuta 2016 recurrent dropout on the update vector g (LSTM eq. 9, "
                  "GRU eq. 13; vanilla RNN eq. 2 drops h_{t-1}), per step or per sequence")
@dataclass(frozen=True)
class Semeniuta(Scheme):
    name: ClassVar[str] = "semeniuta"
    p: float = _param(0.25,  # type: ignore[assignment]
        "rate on the update g (LSTM) / n (GRU); on h_{t-1} for a vanilla RNN")
    sampling: Sampling = _param("step", _SAMPLING)  # type: ignore[assignment]
    scaling: Scaling = _param("inverted", _SCALING)  # type: ignore[assignment]

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        if self.p == 0:
            return {}
        site = "update" if "update" in cell.sites else "recurrent"
        return {site: SiteSpec(self.p, self.sampling, scaling=self.scaling)}


@SCHEMES.register("zoneout", "Krueger 2016 zoneout: units keep their previous value with "
                  "probability p_cell (cells) / p_hidden (hidden states), per step; shared=true "
                  "draws one mask for both (Krueger section 4)")
@dataclass(frozen=True)
class Zoneout(Scheme):
    """``shared``: one draw for cells and hidden states (Krueger et al. section 4, "a shared
    zoneout mask on cells and hiddens"): ``z_h`` reuses ``z_c``'s uniforms, so at equal
    rates the two masks are the same; at different rates a zoned-out hidden unit's cell is
    zoned out too (or the reverse). The default draws them independently."""

    name: ClassVar[str] = "zoneout"
    p_cell: float = _param(0.5,  # type: ignore[assignment]
        "probability that a cell unit keeps c_{t-1}")
    p_hidden: float = _param(0.05,  # type: ignore[assignment]
        "probability that a hidden unit keeps h_{t-1}")
    sampling: Sampling = _param("step", _SAMPLING)  # type: ignore[assignment]
    shared: bool = _param(False,  # type: ignore[assignment]
        "true: one draw for cells and hidden states (Krueger section 4)", later=True)

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        out: dict[str, SiteSpec] = {}
        if self.p_cell > 0:
            _need_site(self, cell, "zoneout_cell", "set p_cell=0 and use p_hidden")
            out["zoneout_cell"] = SiteSpec(self.p_cell, self.sampling, kind="zoneout")
        if self.p_hidden > 0:
            tie = "zoneout_cell" if self.shared and "zoneout_cell" in out else None
            out["zoneout_hidden"] = SiteSpec(self.p_hidden, self.sampling, kind="zoneout",
                                             tied_to=tie)
        return out


@SCHEMES.register("output-zoneout", "Krueger 2016 3.3: recurrent dropout on the update with the "
                  "output gate zoned out where the update was dropped (reading=motivation) "
                  "or kept (reading=printed)")
@dataclass(frozen=True)
class OutputZoneout(Scheme):
    """``reading``: which update mask entries zone the output gate out (docs/models.md,
    "Output-gate zoneout"). ``motivation`` (default): where the update was dropped, as the
    paper's stated motivation asks ("prevent the network from being forced (by the output
    gate) to expose a memory cell which has not been updated"); ``printed``: where the
    update was kept, as the printed formula ``h_t = ((1 - d_t) o_t + d_t o_{t-1})
    tanh(c_t)`` with ``c_t = f_t c_{t-1} + d_t i_t g_t`` reads."""

    name: ClassVar[str] = "output-zoneout"
    p: float = _param(0.25,  # type: ignore[assignment]
        "rate on the update g; the output gate zones out with it")
    scaling: Scaling = _param("inverted", _SCALING)  # type: ignore[assignment]
    reading: Reading = _param("motivation",  # type: ignore[assignment]
        "motivation: the output gate keeps o_{t-1} where the update was dropped; printed: "
        "where it was kept", later=True)

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        _need_site(self, cell, "output_gate", "only an LSTM has an output gate")
        if self.p == 0:
            return {}
        printed = self.reading == "printed"
        return {
            "update": SiteSpec(self.p, "step", scaling=self.scaling),
            "output_gate": SiteSpec(1.0 - self.p if printed else self.p, "step", kind="zoneout",
                                    tied_to="update", tied_inverse=printed),
        }


@SCHEMES.register("weight-drop", "DropConnect on the recurrent weight matrix, one mask per "
                  "forward pass (AWD-LSTM)")
@dataclass(frozen=True)
class WeightDrop(Scheme):
    name: ClassVar[str] = "weight-drop"
    p: float = _param(0.5,  # type: ignore[assignment]
        "DropConnect rate on the recurrent weight matrix, one mask per forward pass")
    scaling: Scaling = _param("inverted", _SCALING)  # type: ignore[assignment]

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        return {"weight": SiteSpec(self.p, "forward", scaling=self.scaling)} if self.p > 0 else {}


@SCHEMES.register("torch-dropout", "torch.nn's dropout=: a new mask every step and unit on "
                  "each layer's output except the last (one mask for both directions)")
@dataclass(frozen=True)
class TorchDropout(Scheme):
    name: ClassVar[str] = "torch-dropout"
    p: float = _param(0.5,  # type: ignore[assignment]
        "rate on each layer's output except the last's, a new mask every step")

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        return {"between": SiteSpec(self.p, "step")} if self.p > 0 else {}


@dataclass(frozen=True)
class Stack(Scheme):
    """Several schemes at once (e.g. ``semeniuta + zaremba``); no two may claim a site."""

    name: ClassVar[str] = "stack"
    schemes: tuple[Scheme, ...] = ()

    def __post_init__(self) -> None:
        for s in self.schemes:
            if not isinstance(s, Scheme):
                raise ValueError(f"Stack takes schemes, got {type(s).__name__}")

    def sites(self, cell: CellSpec) -> dict[str, SiteSpec]:
        out: dict[str, SiteSpec] = {}
        owner: dict[str, str] = {}
        for s in self.schemes:
            for site, spec in s.sites(cell).items():
                if site in out:
                    raise ValueError(
                        f"incompatible schemes: {owner[site]!r} and {s.name!r} both place a mask "
                        f"at the {site!r} site; keep one of them or set its rate to 0")
                out[site] = spec
                owner[site] = s.name
        return out

    @property
    def spec(self) -> str:
        return "+".join(s.spec for s in self.schemes) or "none"

    @property
    def short(self) -> str:
        return "+".join(s.short for s in self.schemes) or "none"


def list_schemes() -> list[str]:
    return SCHEMES.list()


#: the one spelling of a number in a scheme string (float() also takes "0.2_5" and "nan")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _coerce(cls: type[Scheme], key: str, raw: str) -> object:
    types = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
    if key not in types:
        valid = ", ".join(types) or "none"
        raise ValueError(f"scheme {cls.name!r} has no parameter {shown(key)}; valid: {valid}")
    t = str(types[key])
    if t == "float | None" and raw.lower() == "none":
        return None
    if t == "bool":
        if raw.lower() in ("1", "true", "yes"):
            return True
        if raw.lower() in ("0", "false", "no"):
            return False
        raise ValueError(f"scheme {cls.name!r}: {key} must be true or false, got {shown(raw)}")
    if t in ("float", "float | None"):
        if not _NUMBER.fullmatch(raw):
            raise ValueError(f"scheme {cls.name!r}: {key} must be a number such as 0.25, got "
                             f"{shown(raw)}")
        return float(raw)
    return raw


def make_scheme(name: str, **params: object) -> Scheme:
    """Build a registered scheme by name, e.g. ``make_scheme("semeniuta", p=0.3)``; every
    value is checked (a rate in [0, 1), ``tied`` a bool, ``sampling`` a known name)."""
    cls = SCHEMES.get(name)
    valid = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    bad = sorted(set(params) - valid)
    if bad:
        raise ValueError(f"scheme {name!r} has no parameter {shown(bad[0])}; valid: "
                         f"{', '.join(sorted(valid)) or 'none'}")
    return cls(**params)  # type: ignore[call-arg]


def parse_scheme(text: "str | Scheme | None") -> Scheme:
    """Parse ``"semeniuta:p=0.25,sampling=step+zaremba:p=0.5"`` into a scheme (stacked by
    ``+``); a scheme object is returned as it is, None is ``none``. Empty parts, a key given
    twice and numbers in any other spelling than ``0.25``/``2.5e-1`` are errors."""
    if text is None:
        return NoScheme()
    if isinstance(text, Scheme):
        return text
    if not isinstance(text, str):
        raise ValueError(f"a scheme is text such as 'semeniuta:p=0.25' or a Scheme, got "
                         f"{type(text).__name__}")
    return _parse_text(text)


def _parse_text(text: str) -> Scheme:
    if not text.strip():
        raise ValueError("empty scheme; use 'none' or e.g. 'semeniuta:p=0.25'")
    parts = [p.strip() for p in text.split("+")]
    if not all(parts):
        raise ValueError(f"scheme {shown(text)} has an empty part between '+' signs; remove "
                         "the stray '+' (e.g. 'semeniuta:p=0.25+zaremba:p=0.5')")
    schemes: list[Scheme] = []
    for part in parts:
        name, _, args = part.partition(":")
        name = name.strip()
        cls = SCHEMES.get(name)
        if any(s.name == name for s in schemes):
            raise ValueError(f"scheme {name!r} appears twice in {shown(text)}; give it once")
        params: dict[str, object] = {}
        items = [a.strip() for a in args.split(",")] if args.strip() else []
        for item in items:
            key, eq, raw = item.partition("=")
            key = key.strip()
            if not item:
                raise ValueError(f"scheme {name!r} has an empty parameter (a stray ','); give "
                                 "key=value pairs separated by single commas")
            if not eq or not key:
                raise ValueError(f"scheme {name!r}: expected key=value, got {shown(item)}")
            if key in params:
                raise ValueError(f"scheme {name!r}: {shown(key)} is given twice; give each "
                                 "parameter once")
            params[key] = _coerce(cls, key, raw.strip())
        schemes.append(make_scheme(name, **params))
    return schemes[0] if len(schemes) == 1 else Stack(tuple(schemes))
