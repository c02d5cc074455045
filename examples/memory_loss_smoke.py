"""Smoke example: Semeniuta's section 3.2 memory-loss argument on a real LSTM layer.

All gates are forced open (large biases), inputs make g_t = 1 at every step, and the
layer runs in deterministic inference. Under cell dropout (moon) the cell state follows
eq. 17, sum_i p^(t-i+1); under update dropout (semeniuta) eq. 19, p * (t+1) (expectation
convention, p = keep probability).
"""
from __future__ import annotations

import torch

from memloss.models import Recurrent


def open_gate_lstm(scheme: str) -> Recurrent:
    layer = Recurrent("lstm", 1, 1, scheme=scheme).double().eval()
    with torch.no_grad():
        layer.weight_ih_l0.zero_()
        layer.weight_hh_l0.zero_()
        layer.bias_hh_l0.zero_()
        layer.bias_ih_l0.copy_(torch.tensor([40.0, 40.0, 40.0, 40.0]))  # i, f, g, o -> 1
    return layer


def main() -> None:
    T, drop = 12, 0.3
    keep = 1 - drop
    x = torch.zeros(T, 1, 1, dtype=torch.float64)
    rows = []
    for scheme in ("none", f"moon:p={drop},scaling=expectation",
                   f"semeniuta:p={drop},scaling=expectation"):
        layer = open_gate_lstm(scheme)
        c = []
        h, cT = torch.zeros(1, 1, 1, dtype=torch.float64), torch.zeros(1, 1, 1, dtype=torch.float64)
        for t in range(T):
            _, (h, cT) = layer(x[t:t + 1], (h, cT))
            c.append(cT.item())
        rows.append((scheme.split(":")[0], c))
    print(f"deterministic c_t with all gates open, keep probability {keep}")
    print("t   none     moon     eq.17    semeniuta  eq.19")
    for t in range(T):
        eq17 = sum(keep ** (t - i + 1) for i in range(t + 1))
        eq19 = keep * (t + 1)
        print(f"{t:<3} {rows[0][1][t]:<8.4f} {rows[1][1][t]:<8.4f} {eq17:<8.4f} "
              f"{rows[2][1][t]:<10.4f} {eq19:.4f}")


if __name__ == "__main__":
    main()
