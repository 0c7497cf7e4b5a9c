"""ops.ar_filter on generated input: conv2d of the images (in [0, 1] units) with every
class's AR filter (tap (2, 2) = -1), or a documented error naming the argument."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from poisonkit import ops

from .ar_inputs import coeff_problems, coefficients
from .strategies import (FUZZ, assert_float_close, finite_part, image_problems, images,
                         nonfinite_rule, unit)
from .tally import check_call

FAULTS = [None] * 5 + ["x", "channels", "coeffs"]


@FUZZ
@given(data=st.data(), fault=st.sampled_from(FAULTS))
def test_ar_filter(data, fault):
    x, _ = data.draw(images(broken=fault == "x"))
    channels = x.shape[-3] if x.dim() >= 3 else 1
    coeffs = data.draw(coefficients(channels + (fault == "channels"), broken=fault == "coeffs"))
    problems = image_problems(x) + coeff_problems(coeffs)
    if fault == "channels":
        problems += ["channels", "coeffs"]
    if x.dim() in (3, 4) and min(x.shape[-2:]) < 3:
        problems.append("x")

    def compare(out):
        filters = coeffs.double().clone()
        filters[..., 2, 2] = -1
        batch = unit(x[None] if x.dim() == 3 else x)
        # Non-finite pixels (README): NaN at every response whose window reads one.
        reach = F.conv2d((~torch.isfinite(batch)).double(), torch.ones_like(filters)) > 0
        ref = nonfinite_rule(F.conv2d(finite_part(batch), filters), reach)
        got = out[None] if x.dim() == 3 else out
        assert got.dtype == torch.float32
        assert_float_close(got, ref, atol=1e-5 * (1 + float(filters.abs().max())))

    check_call("ar_filter", lambda: ops.ar_filter(x, coeffs), problems, compare)
