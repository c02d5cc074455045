"""Quality trackers: a fixed tiny deterministic training run per cell x scheme, so a change
that speeds a path up but breaks learning shows. Smaller is better (asv's convention).

The task is delayed recall: read tokens from a vocabulary of 8, at step t output the token
seen 3 steps earlier. It needs memory across steps, which is what the schemes disturb.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from memloss.models import Net, NetConfig

from .checkout import assert_measuring_checkout

__all__ = ["train_delayed_recall", "Quality"]

V, DELAY, SEQ, BATCH, STEPS, HIDDEN = 8, 3, 20, 32, 150, 32
_SCHEMES = {
    "none": "none",
    "gal": "gal:p=0.1,p_recurrent=0.1",
    "semeniuta": "semeniuta:p=0.1",
    "moon": "moon:p=0.1",
    "zoneout": "zoneout:p_cell=0.2,p_hidden=0.05",
    "zoneout-hidden": "zoneout:p_cell=0,p_hidden=0.1",
}
_CELLS = ("lstm", "gru")


def _data(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randint(V, (n, SEQ), generator=gen)
    y = torch.full_like(x, -100)
    y[:, DELAY:] = x[:, :-DELAY]
    return x, y


def train_delayed_recall(cell: str, scheme: str, seed: int = 0) -> dict[str, float]:
    """Train a small Net with one thread and fixed seeds; test error rate and perplexity."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = Net(NetConfig(cell=cell, hidden_size=HIDDEN, scheme=scheme, vocab_size=V,
                            embedding_dim=16, output_size=V))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        net.train()
        for _ in range(STEPS):
            x, y = _data(BATCH, gen)
            out, _ = net(x, generator=gen)
            loss = F.cross_entropy(out.reshape(-1, V), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        x, y = _data(256, torch.Generator().manual_seed(seed + 1))
        with torch.no_grad():
            out, _ = net(x)
        keep = y >= 0
        logits, target = out[keep], y[keep]
        err = (logits.argmax(-1) != target).double().mean().item()
        ppl = math.exp(F.cross_entropy(logits, target).item())
        return {"error_rate": err, "perplexity": ppl}
    finally:
        torch.set_num_threads(threads)


class Quality:
    params = (list(_CELLS), list(_SCHEMES))
    param_names = ["cell", "scheme"]
    timeout = 900

    def setup_cache(self) -> dict[tuple[str, str], dict[str, float] | None]:
        assert_measuring_checkout()
        out: dict[tuple[str, str], dict[str, float] | None] = {}
        for c in _CELLS:
            for s, spec in _SCHEMES.items():
                try:
                    out[(c, s)] = train_delayed_recall(c, spec)
                except ValueError:  # the scheme needs a site this cell lacks (moon on a GRU)
                    out[(c, s)] = None
        return out

    def setup(self, results: dict, cell: str, scheme: str) -> None:
        assert_measuring_checkout()
        if results[(cell, scheme)] is None:
            raise NotImplementedError(f"{scheme} does not apply to a {cell}")

    def track_error_rate(self, results: dict, cell: str, scheme: str) -> float:
        return results[(cell, scheme)]["error_rate"]

    track_error_rate.unit = "error rate"  # type: ignore[attr-defined]

    def track_perplexity(self, results: dict, cell: str, scheme: str) -> float:
        return results[(cell, scheme)]["perplexity"]

    track_perplexity.unit = "perplexity"  # type: ignore[attr-defined]
