"""The fused path's products with padded output rows (models/paths/products.py): the same
numbers as ``torch.mm``, bit for bit where MKL's blocked path runs, into strided outputs too,
measured once per shape."""
from __future__ import annotations

import pytest
import torch

from memloss.models.paths import products


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(products, "_CHOICE", {})


def _factors(m: int, k: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)


@pytest.mark.parametrize("mode", ["never", "always", "auto"])
def test_same_numbers_as_mm_bit_for_bit(mode, monkeypatch):
    """A product over the size's blocked path (the shape of an H = 650 input product's
    backward at T x B = 280) gives exactly ``torch.mm``'s numbers, padded or not."""
    monkeypatch.setattr(products, "PADDING", mode)
    dy, w = _factors(280, 2600, 650)
    assert torch.equal(products.mm(dy, w), torch.mm(dy, w))  # dy W
    x = w.t()[:280].contiguous()
    assert torch.equal(products.mm(dy.t(), x), torch.mm(dy.t(), x))  # dy^T x


@pytest.mark.parametrize("mode", ["never", "always"])
def test_into_a_strided_output(mode, monkeypatch):
    """``out`` may be a column block of a wider buffer (the per-gate products)."""
    monkeypatch.setattr(products, "PADDING", mode)
    monkeypatch.setattr(products, "MIN_FLOPS", 0)
    a, b = _factors(40, 30, 50)
    buf = torch.zeros(40, 200)
    got = products.mm(a, b, out=buf[:, 50:100])
    assert got.data_ptr() == buf[:, 50:100].data_ptr()
    torch.testing.assert_close(buf[:, 50:100], torch.mm(a, b), rtol=1e-6, atol=1e-5)
    assert buf[:, :50].abs().sum() == 0 and buf[:, 100:].abs().sum() == 0


def test_measured_once_per_shape_and_only_where_it_can_pay(monkeypatch):
    calls = []
    real = products._padding_pays
    monkeypatch.setattr(products, "_padding_pays", lambda a, b: calls.append(a.shape) or real(a, b))
    a, b = _factors(280, 2600, 650)
    for _ in range(3):
        products.mm(a, b)
    assert calls == [torch.Size([280, 2600])]
    assert list(products.choices().values()) in ([True], [False])
    # an aligned width, a small product: plain torch.mm, nothing measured
    products.mm(*_factors(280, 2600, 640))
    products.mm(*_factors(8, 16, 10))
    assert len(calls) == 1 and len(products.choices()) == 1


def test_never_measures(monkeypatch):
    monkeypatch.setattr(products, "PADDING", "never")
    monkeypatch.setattr(products, "_padding_pays", lambda a, b: pytest.fail("measured"))
    products.mm(*_factors(280, 2600, 650))
    assert products.choices() == {}


def test_onednn_rule(monkeypatch):
    """oneDNN runs only float32 CPU products; under "auto" only weights of at least
    ONEDNN_MIN_WEIGHT values on an AVX-512 CPU; a rule of the hardware and the size, never a
    timing (its numbers differ from MKL's in the last bits)."""
    f32, f64 = torch.zeros(1), torch.zeros(1, dtype=torch.float64)
    big = products.ONEDNN_MIN_WEIGHT
    assert not products.use_onednn(32, big, 1, f64)
    monkeypatch.setattr(products, "ONEDNN", "never")
    assert not products.use_onednn(32, big, 1, f32)
    monkeypatch.setattr(products, "ONEDNN", "auto")
    assert not products.use_onednn(32, big - 1, 1, f32)
    avx512 = torch.backends.cpu.get_cpu_capability() == "AVX512"
    assert products.use_onednn(32, big, 1, f32) == (avx512 and products._onednn_here())
    # products over many rows (an input product's T x B) take it from a smaller weight
    many, small = products.ONEDNN_MANY_ROWS, products.ONEDNN_MIN_WEIGHT_MANY_ROWS
    assert small < big
    assert not products.use_onednn(many - 1, small, 1, f32)
    assert not products.use_onednn(many, small - 1, 1, f32)
    assert products.use_onednn(many, small, 1, f32) == (avx512 and products._onednn_here())
    monkeypatch.setattr(products, "ONEDNN", "always")
    assert products.use_onednn(1, 1, 1, f32) == products._onednn_here()
    with torch.autocast("cpu"):  # F.linear's autocast dtype, not oneDNN's float32
        assert not products.use_onednn(1, 1, 1, f32)


@pytest.mark.skipif(not products._onednn_here(), reason="this torch has no oneDNN")
def test_packed_linear_is_linear():
    a, w = _factors(40, 30, 50)
    b = torch.randn(50)
    torch.testing.assert_close(products.packed_linear(a, products.pack(w.t(), 40), b),
                               torch.nn.functional.linear(a, w.t(), b), rtol=1e-5, atol=1e-5)
