"""ops.filter2d on generated input: a result equal to the per-image conv2d reference of
tests/ops/test_filter2d.py, or a documented error naming the argument."""
from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from poisonkit import ops
from tests.ops.test_filter2d import Quantized, assert_matches, reference

from .strategies import (FUZZ, assert_float_close, finite_part, image_problems, images,
                         nonfinite_rule, seeds)
from .tally import check_call

GOOD_K, BAD_K = [1, 3, 5, 7], [2, 4, 9]
FAULTS = [None] * 8 + ["x", "weights", "kernel", "padding", "normalize", "rounding"]


@st.composite
def weights_for(draw, x, broken=False, bad_kernel=False):
    """Per-image kernels for x: [N, kh, kw] or [N, C|1, kh, kw] (no N for a CHW image);
    broken: the wrong count, channels, rank or dtype, or a non-finite tap; bad_kernel: an
    even or too large size."""
    n = 1 if x.dim() == 3 else x.shape[0]
    c = x.shape[-3] if x.dim() >= 3 else 1
    kh = draw(st.sampled_from(BAD_K if bad_kernel else GOOD_K))
    kw = draw(st.sampled_from(GOOD_K + BAD_K if bad_kernel else GOOD_K))
    forms = (["wrong_count", "wrong_channels", "wrong_rank", "nonfinite", "float64"] if broken
             else ["shared", "per_channel", "one_channel"])
    form = draw(st.sampled_from(forms))
    shape = {"wrong_count": (n + 1, kh, kw), "wrong_channels": (n, c + 1, kh, kw),
             "wrong_rank": (n, 1, 1, kh, kw), "per_channel": (n, c, kh, kw),
             "one_channel": (n, 1, kh, kw)}.get(form, (n, kh, kw))
    gen = torch.Generator().manual_seed(draw(seeds))
    w = torch.randn(shape, generator=gen) * draw(st.sampled_from([0.1, 1.0, 10.0]))
    if form == "nonfinite":
        w.view(-1)[draw(st.integers(0, w.numel() - 1))] = draw(
            st.sampled_from([math.nan, math.inf, -math.inf]))
    if form == "float64":
        w = w.double()
    return w[0] if x.dim() == 3 and w.shape[0] == 1 else w


def problems_of(x, w, padding, normalize, rounding):
    problems = image_problems(x)
    if x.dim() == 3 and w.dim() not in (2, 3):
        return problems + ["weights"]
    wb = w.unsqueeze(0) if x.dim() == 3 else w
    if w.dtype != torch.float32 or wb.dim() not in (3, 4) or (
            x.dim() == 4 and wb.shape[0] != x.shape[0]):
        problems.append("weights")
    elif wb.dim() == 4 and x.dim() in (3, 4) and wb.shape[1] not in (1, x.shape[-3]):
        problems.append("weights")
    elif not torch.isfinite(w).all():
        problems.append("weights")
    kh, kw = w.shape[-2:] if w.dim() >= 2 else (1, 1)
    if kh % 2 == 0 or kw % 2 == 0 or kh > 7 or kw > 7:
        problems.append("kernel")
    for name, value, allowed in (("padding", padding, ops.PADDINGS),
                                 ("normalize", normalize, ("none", "max")),
                                 ("rounding", rounding, ("nearest", "truncate"))):
        if value not in allowed:
            problems.append(name)
    if x.dim() in (3, 4):
        h, wd = x.shape[-2:]
        if (padding == "valid" and (h < kh or wd < kw)) or (
                padding == "reflect" and (h <= kh // 2 or wd <= kw // 2)):
            problems.append("padding")
    return problems


def nonfinite_reference(x, w, padding, normalize, clamp):
    """Float images holding NaN or inf (the README's rule): NaN at every output whose window
    reads a non-finite pixel (normalize="max": every output of such an image, through its
    max), the reference on the finite pixels elsewhere."""
    ref = reference(finite_part(x), w, padding, normalize, "nearest", clamp)
    bad = (~torch.isfinite(x)).float()
    reach = reference(bad, torch.ones_like(w), padding, "none", "nearest", clamp=False) > 0
    if normalize == "max":
        reach = reach.flatten(1).any(1)[:, None, None, None].expand_as(reach)
    return nonfinite_rule(ref, reach)


def float_tolerance(x, w, padding, normalize):
    """float32 rounding of the taps' sums: two ulps of the largest sum of |w| |x| (divided by
    the image max for normalize='max'), plus 2e-6."""
    x = finite_part(x)
    mag = reference(x.abs(), w.abs(), padding, "none", "nearest", clamp=False).double()
    if normalize == "max":
        peak = reference(x, w, padding, "none", "nearest", clamp=False).double().flatten(1).amax(1)
        mag = torch.where(peak[:, None, None, None] > 0, mag / peak[:, None, None, None], mag)
    return 2e-6 + 2.4e-7 * float(mag.max()) if mag.numel() else 2e-6


@FUZZ
@given(data=st.data(), fault=st.sampled_from(FAULTS), clamp=st.booleans())
def test_filter2d(data, fault, clamp):
    x, _ = data.draw(images(broken=fault == "x"))
    w = data.draw(weights_for(x, broken=fault == "weights", bad_kernel=fault == "kernel"))
    padding = data.draw(st.sampled_from(("circular", "") if fault == "padding" else ops.PADDINGS))
    normalize = data.draw(st.sampled_from(["min"] if fault == "normalize" else ["none", "max"]))
    rounding = data.draw(st.sampled_from(["floor"] if fault == "rounding"
                                         else ["nearest", "truncate"]))
    problems = problems_of(x, w, padding, normalize, rounding)

    def compare(out):
        batch, wb = (x[None], w[None]) if x.dim() == 3 else (x, w)
        if not torch.isfinite(batch).all():
            ref = nonfinite_reference(batch, wb, padding, normalize, clamp)
        else:
            ref = reference(batch, wb, padding, normalize, rounding, clamp)
        if isinstance(ref, Quantized):
            assert out.dtype == torch.uint8
            assert_matches(out[None] if x.dim() == 3 else out, ref)
        else:
            assert out.dtype == torch.float32
            assert_float_close(out[None] if x.dim() == 3 else out, ref,
                               atol=float_tolerance(batch, wb, padding, normalize))

    check_call("filter2d", lambda: ops.filter2d(x, w, padding, normalize, rounding, clamp),
               problems, compare)
