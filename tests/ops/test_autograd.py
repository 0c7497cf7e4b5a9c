"""Autograd of the ops: the linear ones (filter2d without normalisation or clamping,
lowpass and project_out without clamping) against autograd of plain-torch references in
float32; every other case raises on backward rather than returning no gradient."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from poisonkit import ops
from poisonkit.defenses.lowpass import lowpass_factors


@pytest.fixture
def x(gen):
    return torch.rand(2, 3, 8, 9, generator=gen).requires_grad_()


def grad_of(out, x, g):
    return torch.autograd.grad(out, x, g)[0]


@pytest.mark.parametrize("padding", ["zeros", "valid"])
def test_filter2d_backward_matches_conv2d(x, gen, padding):
    w = torch.randn(2, 3, 5, generator=gen)
    out = ops.filter2d(x, w, padding=padding, clamp=False)
    xr = x.detach().clone().requires_grad_()
    pad = (1, 2) if padding == "zeros" else 0
    ref = torch.cat([F.conv2d(xr[i:i + 1], w[i].expand(3, 1, 3, 5), padding=pad, groups=3)
                     for i in range(2)])
    g = torch.randn(out.shape, generator=gen)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(grad_of(out, x, g), grad_of(ref, xr, g), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("basis,shape", [("dct", "square"), ("fft", "disk")])
def test_lowpass_backward_is_its_adjoint(x, gen, basis, shape):
    rows, cols, mask = lowpass_factors(8, 9, 0.5, basis, shape)
    out = ops.lowpass(x, 0.5, basis, shape, clamp=False)
    xr = x.detach().clone().requires_grad_()
    coeffs = rows @ xr @ cols.T
    ref = rows.T @ (coeffs if mask is None else coeffs * mask) @ cols
    g = torch.randn(out.shape, generator=gen)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_of(out, x, g), grad_of(ref, xr, g), atol=1e-5, rtol=1e-5)


def test_project_out_backward(x, gen):
    Q, _ = torch.linalg.qr(torch.randn(3 * 8 * 9, 4, generator=gen))
    out = ops.project_out(x, Q)
    xr = x.detach().clone().requires_grad_()
    ref = xr - (xr.flatten(1) @ Q @ Q.T).view_as(xr)
    g = torch.randn(out.shape, generator=gen)
    torch.testing.assert_close(grad_of(out, x, g), grad_of(ref, xr, g), atol=1e-5, rtol=1e-5)


def test_nonlinear_cases_raise_on_backward(x, gen):
    w = torch.randn(2, 3, 3, generator=gen)
    Q, _ = torch.linalg.qr(torch.randn(3 * 8 * 9, 4, generator=gen))
    coeffs = torch.rand(10, 3, 3, 3, generator=gen)
    cases = {
        "filter2d: backward is defined only": lambda: ops.filter2d(x, w),  # clamps
        "filter2d: backward is defined only ": lambda: ops.filter2d(x, w, "reflect", clamp=False),
        "normalize='max'": lambda: ops.filter2d(x, w, normalize="max", clamp=False),
        "lowpass: backward is defined only for clamp=False": lambda: ops.lowpass(x),
        "project_out: backward is defined only for clamp=False": lambda: ops.project_out(x, Q, True),
        "ar_poison: backward is not supported": lambda: ops.ar_poison(
            x, coeffs, torch.tensor([0, 1]), torch.tensor([0, 1]), 1),
        "ar_filter: backward is not supported": lambda: ops.ar_filter(x, coeffs),
    }
    for match, make in cases.items():
        with pytest.raises(RuntimeError, match=match.strip()):
            make().sum().backward()
    with pytest.raises(RuntimeError, match="with respect to weights"):
        ops.filter2d(x, w.requires_grad_(), clamp=False).sum().backward()
    with pytest.raises(RuntimeError, match="ar_generate: backward is not supported"):
        ops.ar_generate(coeffs.requires_grad_(), torch.tensor([0]), torch.tensor([0]), 1, 8, 8).sum().backward()
