"""Net: optional embedding -> Recurrent stack -> optional linear head, with inference modes."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from memloss.core import bounds, validate

from .cells import NONLINEARITIES, get_cell, list_cells
from .heads import FoldedHead
from .inference import predict
from .masks import MaskEntry, MaskPlan
from .recurrent import PATHS, Recurrent, check_call
from .schemes import Scheme, parse_scheme
from .sites import mask_shape

__all__ = ["NetConfig", "Net", "DATA_FIELDS"]


#: NetConfig fields a task fixes from its data
DATA_FIELDS = ("input_size", "vocab_size", "output_size")
#: bounds of NetConfig.init_range and |forget_bias|
MAX_INIT_RANGE = 10.0
MAX_FORGET_BIAS = 50.0


@dataclass(frozen=True)
class NetConfig:
    """Everything that defines a :class:`Net` (saved into every run directory).

    Give ``vocab_size`` for token-id input (an embedding of ``embedding_dim`` is added),
    else ``input_size`` for float features; a config with neither describes a net whose
    data sizes a task fills in (``TrainConfig.net``), and a :class:`Net` needs one.
    ``output_size`` adds a linear head; with ``head_words`` too, the head is a
    :class:`~memloss.models.heads.FoldedHead` (a linear layer over a model's own
    ``head_words`` words folded onto the ``output_size`` tokens; ``memloss import
    --fold-unk``). ``init_range``: uniform(-r, r) init of every
    parameter (Zaremba, Semeniuta use 0.05-0.1). ``forget_bias``: initial LSTM forget-gate
    bias (``b_ih`` forget block; ``b_hh``'s is 0). ``scheme`` is a scheme object or its text
    form, parsed once here (``to_dict`` writes the text form back).
    """

    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    scheme: "Scheme | str" = "none"
    input_size: int | None = None
    vocab_size: int | None = None
    embedding_dim: int | None = None
    output_size: int | None = None
    nonlinearity: str = "tanh"
    init_range: float | None = None
    forget_bias: float | None = None
    path: str = "auto"
    bidirectional: bool = False
    head_words: int | None = None

    def __post_init__(self) -> None:
        o = "NetConfig"
        cell = get_cell(self.cell)
        validate.integer(o, "hidden_size", self.hidden_size)
        validate.integer(o, "num_layers", self.num_layers, maximum=bounds.MAX_LAYERS)
        for name in ("input_size", "vocab_size", "embedding_dim", "output_size", "head_words"):
            validate.optional(validate.integer, o, name, getattr(self, name))
        if self.input_size is not None and self.vocab_size is not None:
            raise ValueError("NetConfig takes one of input_size (float features) or vocab_size "
                             "(token ids), not both")
        validate.choice(o, "nonlinearity", self.nonlinearity, NONLINEARITIES)
        if self.nonlinearity not in cell.nonlinearities:
            raise ValueError(f"nonlinearity={self.nonlinearity!r} does not apply to the "
                             f"{self.cell} cell (it takes {', '.join(cell.nonlinearities)})")
        validate.choice(o, "path", self.path, PATHS)
        validate.flag(o, "bidirectional", self.bidirectional)
        # beyond these a float32 gate is saturated: larger values change nothing but overflow
        validate.optional(validate.number, o, "init_range", self.init_range, 0.0, MAX_INIT_RANGE,
                          low_open=True)
        validate.optional(validate.number, o, "forget_bias", self.forget_bias, -MAX_FORGET_BIAS,
                          MAX_FORGET_BIAS)
        if self.embedding_dim is not None and self.input_size is not None:
            raise ValueError(f"NetConfig.embedding_dim={self.embedding_dim} applies to token input "
                             f"(vocab_size); this net takes float features (input_size="
                             f"{self.input_size}): remove embedding_dim")
        if self.forget_bias is not None and "f" not in cell.gates:
            with_f = [c for c in list_cells() if "f" in get_cell(c).gates]
            raise ValueError(f"forget_bias applies to cells with a forget gate "
                             f"({', '.join(with_f)}), not {self.cell!r}")
        if not isinstance(self.scheme, Scheme):
            object.__setattr__(self, "scheme", parse_scheme(self.scheme))
        sites = self.scheme.sites(cell)  # type: ignore[union-attr]
        if "embedding" in sites and self.input_size is not None:
            raise ValueError("embedding dropout (p_embedding > 0) needs token input: set "
                             "vocab_size, not input_size")

    @property
    def complete(self) -> bool:
        """True when the data sizes are set (exactly one of input_size or vocab_size)."""
        return (self.input_size is None) != (self.vocab_size is None)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["scheme"] = self.scheme.spec  # type: ignore[union-attr]
        return d

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "NetConfig":
        """Rebuild from :meth:`to_dict` (older run directories' empty ``extra`` is ignored)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a NetConfig is a JSON object, got {type(d).__name__}")
        d = dict(d)
        if d.get("extra") in ({}, None):
            d.pop("extra", None)
        unknown = sorted(set(d) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown NetConfig option {unknown[0]!r}; valid: "
                             f"{', '.join(cls.field_names())}")
        return cls(**d)


def check_bounds(config: NetConfig) -> None:
    """Refuse a complete net config too large for this machine (:mod:`memloss.core.bounds`),
    from its sizes alone."""
    if not config.complete:
        return
    width = config.input_size if config.vocab_size is None else (config.embedding_dim
                                                                 or config.hidden_size)
    assert width is not None
    bounds.check_net("NetConfig", cell_gates=get_cell(config.cell).num_gates, input_size=width,
                     hidden=config.hidden_size, layers=config.num_layers,
                     directions=2 if config.bidirectional else 1, vocab=config.vocab_size,
                     output=config.head_words or config.output_size)


class Net(nn.Module):
    r"""Embedding (token ids, with Gal's word-type dropout) or float input, a
    :class:`Recurrent` stack and a linear head applied at every step.

    Shape:
        - input: ``[B, T]`` token ids (``vocab_size``) or ``[B, T, input_size]`` floats
          (always batch first)
        - lengths (optional): ``[B]`` real steps of each sequence of a right-padded batch
          (:meth:`Recurrent.forward`): padding then changes no result
        - output: ``[B, T, output_size]`` (or ``[B, T, D * hidden_size]`` with no head, D = 2
          if bidirectional else 1), and h_n
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        if not isinstance(config, NetConfig):
            raise ValueError(f"Net takes a NetConfig, got {type(config).__name__}")
        if not config.complete:
            raise ValueError("NetConfig needs exactly one of input_size (float features) or "
                             "vocab_size (token ids) to build a Net")
        check_bounds(config)  # before any layer is built
        self.config = config
        scheme = config.scheme
        assert isinstance(scheme, Scheme)
        self.embedding: nn.Embedding | None = None
        in_size = config.input_size
        if config.vocab_size is not None:
            in_size = config.embedding_dim or config.hidden_size
            self.embedding = nn.Embedding(config.vocab_size, in_size)
        self.rnn = Recurrent(config.cell, in_size, config.hidden_size, config.num_layers,
                             scheme=scheme, batch_first=True, nonlinearity=config.nonlinearity,
                             path=config.path, applied_outside=("embedding",),
                             bidirectional=config.bidirectional)
        self.embedding_site = scheme.sites(self.rnn.cell).get("embedding")
        self._plan = self._make_plan()
        width = config.hidden_size * self.rnn.num_directions
        self.head: nn.Module | None = None
        if config.head_words is not None:
            if not config.output_size:
                raise ValueError("NetConfig.head_words folds a head onto output_size tokens: "
                                 "set output_size too")
            self.head = FoldedHead(width, config.head_words, config.output_size)
        elif config.output_size:
            self.head = nn.Linear(width, config.output_size)
        if config.init_range is not None:  # in parameter order: embedding, stack, head
            r = config.init_range
            if self.embedding is not None:
                nn.init.uniform_(self.embedding.weight, -r, r)
            self.rnn.reset_parameters(r)
            for p in self.head.parameters() if self.head is not None else ():
                nn.init.uniform_(p, -r, r)
        if config.forget_bias is not None:
            self._set_forget_bias(config.forget_bias)

    def _set_forget_bias(self, value: float) -> None:
        """The forget-gate block of the first gate bias set to ``value``, of the others to 0
        (LSTM: ``b_ih`` and ``b_hh``; LayerNorm-LSTM: its one bias), in both directions."""
        cell, H = self.rnn.cell, self.config.hidden_size
        rows = cell.gate_slice("f", H)
        biases = [p.name for p in cell.params if p.bias and p.rows == "gates"]
        with torch.no_grad():
            for k in range(self.config.num_layers):
                for tag in self.rnn.layer_tags(k):
                    for i, name in enumerate(biases):
                        b = getattr(self.rnn, f"{name}_{tag}", None)
                        if b is not None:
                            b[rows].fill_(value if i == 0 else 0.0)

    def mask_plan(self) -> MaskPlan:
        """Every mask of the net: ``embedding`` (if any), then the recurrent stack's."""
        return self._plan

    def _make_plan(self) -> MaskPlan:
        plan = self.rnn.mask_plan()
        if self.embedding_site is None:
            return plan
        shape = mask_shape("embedding", self.embedding_site, self.rnn.cell.num_gates,
                           self.rnn.input_size, self.config.hidden_size, self.config.vocab_size)
        emb = MaskEntry("embedding", self.embedding_site, shape)
        return MaskPlan((emb,) + plan.entries)

    def forward(self, input: Tensor, hx: "Tensor | tuple[Tensor, Tensor] | None" = None, *,
                masks: Mapping[str, Tensor] | None = None, stochastic: bool | None = None,
                generator: torch.Generator | None = None,
                lengths: "Tensor | Sequence[int] | None" = None):
        check_call(input, hx, masks, self.rnn.weight_ih_l0, 1)
        if self.embedding is not None:
            if input.dim() != 2 or input.is_floating_point():
                raise ValueError(f"this Net takes token ids of shape [B, T] (integer), got "
                                 f"{input.dtype} {tuple(input.shape)}")
            validate.token_ids("Net", input, self.embedding.num_embeddings)
            B, T = input.shape
            x = self.embedding(input)
        else:
            if input.dim() != 3:
                raise ValueError(f"this Net takes float input [B, T, {self.config.input_size}], "
                                 f"got shape {tuple(input.shape)}")
            B, T = input.shape[:2]
            x = input
        m = self.rnn.resolve_masks(T, B, masks=masks, stochastic=stochastic, generator=generator,
                                   device=x.device, dtype=x.dtype, plan=self._plan)
        me = m.pop("embedding", None)
        if me is not None:
            x = x * (me if me.dim() == 0 else torch.gather(me, 1, input).unsqueeze(-1))
        out, h_n = self.rnn(x, hx, masks=m, lengths=lengths)
        if self.head is not None:
            out = self.head(out)
        return out, h_n

    def predict_proba(self, input: Tensor, hx=None, *, mode: str = "deterministic",
                      samples: int = 10, generator: torch.Generator | None = None,
                      lengths: "Tensor | None" = None) -> Tensor:
        """Class probabilities at every step under an inference mode
        (:func:`memloss.models.inference.predict`; ``lengths`` as in :meth:`forward`)."""
        return predict(self, input, None if hx is None else [hx] * (samples if mode == "mc" else 1),
                       mode=mode, samples=samples, generator=generator, lengths=lengths)[0]
