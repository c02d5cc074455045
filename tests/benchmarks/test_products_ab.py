"""benchmarks.products_ab at a tiny size: a row per fused scheme, a column per mode, and
the switch it holds fixed is restored by the test."""
from __future__ import annotations

import pytest

from benchmarks import products_ab
from memloss.models.paths import products


def test_table_of_every_fused_scheme(capsys, monkeypatch):
    monkeypatch.setattr(products, "PADDING", products.PADDING)
    monkeypatch.setattr(products, "ONEDNN", products.ONEDNN)
    assert products_ab.main(["--hidden", "8", "--batch", "2", "--rounds", "2",
                             "--switch", "padding", "--fix", "onednn=never"]) == 0
    out = capsys.readouterr().out
    assert "products.PADDING, onednn=never, H=8" in out
    assert "| scheme [fused] | never | auto |" in out
    assert "| gal (untied) | " in out and "| zoneout | " in out
    assert "| zaremba |" not in out  # native schemes are not the fused path's
    assert products.ONEDNN == "never"


def test_fix_names_another_switch():
    with pytest.raises(SystemExit):
        products_ab.main(["--switch", "padding", "--fix", "padding=never"])
