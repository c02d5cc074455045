"""benchmarks.cpu_table at a tiny size: every row has its time ratio, spread and peak-memory
ratio against nn.LSTM, and the markdown tables show them."""
from __future__ import annotations

from benchmarks import cpu_table


def test_measure_rows_and_tables():
    schemes = {"zoneout": cpu_table.TABLE_SCHEMES["zoneout"],
               "gal (untied)": cpu_table.TABLE_SCHEMES["gal (untied)"]}
    rows, warm = cpu_table.measure(8, 2, 2, ("auto",), 1, schemes=schemes)
    assert [r["scheme"] for r in rows] == ["torch.nn.LSTM", "zoneout", "gal (untied)"]
    base = rows[0]
    assert base["ratio"] == 1.0 and base["peak_ratio"] == 1.0 and base["peak_bytes"] > 0
    for r in rows[1:]:
        assert r["chosen"] == "fused" and r["ratio"] > 0 and r["ratio_q1"] <= r["ratio_q3"]
        assert r["peak_ratio"] == r["peak_bytes"] / base["peak_bytes"] > 0
    assert warm["seconds"] >= 0
    times = cpu_table.markdown(rows, "auto")
    memory = cpu_table.markdown(rows, "auto", "memory")
    assert "| gal (untied) [fused] | " in times and " ms; " in times
    assert "MiB)" in memory and "| torch.nn.LSTM [torch.nn] | 1.00 (" in memory
