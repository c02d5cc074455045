"""Net: optional embedding -> Recurrent stack -> optional linear head, with inference modes."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

import torch
from torch import Tensor, nn

from .masks import MaskEntry, MaskPlan, Masks
from .recurrent import Recurrent
from .schemes import Scheme, parse_scheme

__all__ = ["NetConfig", "Net", "INFERENCE_MODES"]

INFERENCE_MODES = ("deterministic", "mc", "train-mode")


@dataclass(frozen=True)
class NetConfig:
    """Everything that defines a :class:`Net` (saved into every run directory).

    Give ``vocab_size`` for token-id input (an embedding of ``embedding_dim`` is added),
    else ``input_size`` for float features. ``output_size`` adds a linear head.
    ``init_range``: uniform(-r, r) init of every parameter (Zaremba, Semeniuta use 0.05-0.1).
    ``forget_bias``: initial LSTM forget-gate bias (``b_ih`` forget block; ``b_hh``'s is 0).
    """

    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    scheme: str = "none"
    input_size: int | None = None
    vocab_size: int | None = None
    embedding_dim: int | None = None
    output_size: int | None = None
    nonlinearity: str = "tanh"
    init_range: float | None = None
    forget_bias: float | None = None
    path: str = "auto"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.input_size is None) == (self.vocab_size is None):
            raise ValueError("NetConfig needs exactly one of input_size (float features) or "
                             "vocab_size (token ids)")
        for name in ("input_size", "vocab_size", "embedding_dim", "output_size"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"NetConfig.{name} must be a positive integer, got {v!r}")
        if self.init_range is not None and not self.init_range > 0:
            raise ValueError(f"NetConfig.init_range must be > 0, got {self.init_range!r}")
        if self.forget_bias is not None and self.cell != "lstm":
            raise ValueError(f"forget_bias applies to the lstm cell only, not {self.cell!r}")
        parse_scheme(self.scheme)  # fail early on a bad scheme string

    def to_dict(self) -> dict:
        return asdict(self)


class Net(nn.Module):
    r"""Embedding (token ids, with Gal's word-type dropout) or float input, a
    :class:`Recurrent` stack and a linear head applied at every step.

    Shape:
        - input: ``[B, T]`` token ids (``vocab_size``) or ``[B, T, input_size]`` floats
          (always batch first)
        - output: ``[B, T, output_size]`` (or ``[B, T, hidden_size]`` with no head), and h_n
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        scheme: Scheme = parse_scheme(config.scheme)
        self.embedding: nn.Embedding | None = None
        in_size = config.input_size
        if config.vocab_size is not None:
            in_size = config.embedding_dim or config.hidden_size
            self.embedding = nn.Embedding(config.vocab_size, in_size)
        self.rnn = Recurrent(config.cell, in_size, config.hidden_size, config.num_layers,
                             scheme=scheme, batch_first=True, nonlinearity=config.nonlinearity,
                             path=config.path)
        self.embedding_site = scheme.sites(self.rnn.cell).get("embedding")
        if self.embedding_site is not None and self.embedding is None:
            raise ValueError("embedding dropout (p_embedding > 0) needs token input: set vocab_size")
        self.head = nn.Linear(config.hidden_size, config.output_size) if config.output_size else None
        if config.init_range is not None:
            for p in self.parameters():
                nn.init.uniform_(p, -config.init_range, config.init_range)
        if config.forget_bias is not None:
            H = config.hidden_size
            with torch.no_grad():
                for k in range(config.num_layers):
                    getattr(self.rnn, f"bias_ih_l{k}")[H:2 * H].fill_(config.forget_bias)
                    getattr(self.rnn, f"bias_hh_l{k}")[H:2 * H].zero_()

    def mask_plan(self) -> MaskPlan:
        plan = self.rnn.mask_plan()
        if self.embedding_site is None:
            return plan
        emb = MaskEntry("embedding", self.embedding_site, (self.config.vocab_size,))
        return MaskPlan((emb,) + plan.entries)

    def forward(self, input: Tensor, hx: "Tensor | tuple[Tensor, Tensor] | None" = None, *,
                masks: Mapping[str, Tensor] | None = None, stochastic: bool | None = None,
                generator: torch.Generator | None = None):
        if self.embedding is not None:
            if input.dim() != 2 or input.is_floating_point():
                raise ValueError(f"this Net takes token ids of shape [B, T] (integer), got "
                                 f"{input.dtype} {tuple(input.shape)}")
            B, T = input.shape
            x = self.embedding(input)
        else:
            if input.dim() != 3:
                raise ValueError(f"this Net takes float input [B, T, {self.config.input_size}], "
                                 f"got shape {tuple(input.shape)}")
            B, T = input.shape[:2]
            x = input
        plan = self.mask_plan()
        if masks is not None:
            plan.validate(masks, T, B)
            m: Masks = dict(masks)
        else:
            sample = self.training if stochastic is None else stochastic
            m = (plan.sample(T, B, generator=generator, device=x.device, dtype=x.dtype) if sample
                 else plan.expected(device=x.device, dtype=x.dtype))
        me = m.pop("embedding", None)
        if me is not None:
            me = me.to(device=x.device, dtype=x.dtype)
            x = x * (me if me.dim() == 0 else torch.gather(me, 1, input).unsqueeze(-1))
        out, h_n = self.rnn(x, hx, masks=m)
        if self.head is not None:
            out = self.head(out)
        return out, h_n

    @torch.no_grad()
    def predict_proba(self, input: Tensor, hx=None, *, mode: str = "deterministic",
                      samples: int = 10, generator: torch.Generator | None = None) -> Tensor:
        """Class probabilities at every step under an inference mode.

        ``deterministic``: expected masks. ``mc``: average of the softmax over ``samples``
        independently sampled mask sets (Gal eq. 4). ``train-mode``: one sampled mask set.
        """
        if mode not in INFERENCE_MODES:
            raise ValueError(f"unknown inference mode {mode!r}; valid: {', '.join(INFERENCE_MODES)}")
        if mode == "deterministic":
            return torch.softmax(self(input, hx, stochastic=False)[0], dim=-1)
        if mode == "train-mode":
            return torch.softmax(self(input, hx, stochastic=True, generator=generator)[0], dim=-1)
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"mc inference needs samples >= 1, got {samples!r}")
        total = None
        for _ in range(samples):
            p = torch.softmax(self(input, hx, stochastic=True, generator=generator)[0], dim=-1)
            total = p if total is None else total + p
        return total / samples
