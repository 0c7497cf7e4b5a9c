"""ops.project_out on generated input: x - Q Q^T x as the float64 reference of
tests/ops/test_projection.py computes it (clamped and rounded when asked), or a documented
error naming the argument."""
from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from poisonkit import ops
from tests.ops.test_projection import reference

from .strategies import (FUZZ, assert_float_close, finite_part, image_problems, images,
                         nonfinite_rule, seeds)
from .tally import check_call

FAULTS = [None] * 6 + ["x", "Q"]


@st.composite
def basis_for(draw, x, broken=False):
    """Q [D, K] for x's images: orthonormal columns or any finite matrix; broken: wrong
    rows, no columns, more columns than rows, float64, a non-finite entry or wrong rank."""
    d = math.prod(x.shape[-3:]) if x.dim() >= 3 else 1
    gen = torch.Generator().manual_seed(draw(seeds))
    form = draw(st.sampled_from(["rows", "no_columns", "too_many", "float64", "nonfinite", "rank"]
                                if broken else ["orthonormal", "orthonormal", "any"]))
    k = draw(st.integers(1, min(d, 6)))
    rows = d + draw(st.sampled_from([-1, 1, 3])) if form == "rows" and d > 1 else d + (form == "rows")
    cols = {"no_columns": 0, "too_many": d + 1}.get(form, k)
    q = torch.randn(rows, cols, dtype=torch.float64, generator=gen)
    if form == "orthonormal":
        q = torch.linalg.qr(q)[0]
    q = q.float() if form != "float64" else q
    if form == "nonfinite":
        q.view(-1)[draw(st.integers(0, q.numel() - 1))] = draw(st.sampled_from([math.nan, math.inf]))
    return q.flatten() if form == "rank" else q


def problems_of(x, q):
    problems = image_problems(x)
    d = math.prod(x.shape[-3:]) if x.dim() >= 3 else -1
    if (q.dim() != 2 or q.dtype != torch.float32 or q.shape[0] != d
            or not 1 <= q.shape[1] <= d or not torch.isfinite(q).all()):
        problems.append("Q")
    return problems


@FUZZ
@given(data=st.data(), fault=st.sampled_from(FAULTS), clamp=st.booleans())
def test_project_out(data, fault, clamp):
    x, _ = data.draw(images(broken=fault == "x"))
    q = data.draw(basis_for(x, broken=fault == "Q"))

    def compare(out):
        batch = x[None] if x.dim() == 3 else x
        # Non-finite pixels (README): NaN over their whole image, the reference elsewhere.
        reach = (~torch.isfinite(batch)).flatten(1).any(1)[:, None, None, None].expand(batch.shape)
        ref = nonfinite_rule(reference(finite_part(batch), q), reach)
        got = out[None] if x.dim() == 3 else out
        scale = 1 + float(ref[torch.isfinite(ref)].abs().max()) if torch.isfinite(ref).any() else 1
        if not clamp:
            assert got.dtype == torch.float32
            assert_float_close(got, ref, atol=2e-6 * scale)
        elif x.dtype == torch.uint8:  # rounded to nearest: within half a step (ties either way)
            assert got.dtype == torch.uint8 and got.shape == ref.shape
            assert ((got.double() - ref.clamp(0, 1) * 255).abs() <= 0.5 + 1e-3 * scale).all()
        else:
            assert got.dtype == torch.float32
            assert_float_close(got, ref.clamp(0, 1), atol=2e-6 * scale)

    check_call("project_out", lambda: ops.project_out(x, q, clamp), problems_of(x, q), compare)
