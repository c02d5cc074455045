"""benchmarks.cpu_table at a tiny size: every row has its time ratio, spread and peak-memory
ratio against nn.LSTM, and the markdown tables show them."""
from __future__ import annotations

import pytest

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


@pytest.mark.slow
def test_profile_times_the_compiled_kernels(monkeypatch):
    """Under MEMLOSS_COMPILE=auto the profile waits for the background compile: the fused
    scheme's table shows no eager gate activation (the step ran compiled)."""
    from memloss.models.paths import kernels

    monkeypatch.setattr(kernels, "COMPILE", "auto")
    monkeypatch.setattr(kernels, "MIN_COMPILE_ELEMENTS", 1)
    kernels.clear_cache()
    text = cpu_table.profile("zoneout", 8, 2, 2, top=100)
    assert kernels.wait_compiled(timeout=600)
    built = kernels.compiled_kernels()
    kernels.clear_cache()
    if not built:
        pytest.skip("Inductor could not compile a step kernel here (no working C++ compiler?)")
    fused_part = text.split("zoneout [auto]", 1)[1]
    assert "aten::sigmoid" not in fused_part and "aten::tanh" not in fused_part
