"""ops.lowpass on generated input: the scipy/numpy reference of tests/ops/test_lowpass.py,
or a documented error naming the argument."""
from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from poisonkit import ops
from tests.ops.test_lowpass import reference, reference_mask

from .strategies import (FUZZ, assert_float_close, finite_part, image_problems, images,
                         nonfinite_rule, unit)
from .tally import check_call

FAULTS = [None] * 6 + ["x", "keep", "basis", "shape"]


@FUZZ
@given(data=st.data(), fault=st.sampled_from(FAULTS), clamp=st.booleans())
def test_lowpass(data, fault, clamp):
    x, _ = data.draw(images(broken=fault == "x"))
    keep = data.draw(st.sampled_from([0.0, -0.1, 1.5, math.nan, math.inf]) if fault == "keep"
                     else st.sampled_from([1.0, 0.3, 0.5, 0.75, 0.1]))
    basis = data.draw(st.sampled_from(["dst"] if fault == "basis" else ["dct", "fft"]))
    shape = data.draw(st.sampled_from(["oval"] if fault == "shape" else ["square", "disk"]))
    problems = image_problems(x) + ([fault] if fault in ("keep", "basis", "shape") else [])
    if not problems and not reference_mask(*x.shape[-2:], keep, basis, shape).any():
        problems.append("keep")  # keeps no coefficient at this size

    def compare(out):
        # Non-finite pixels (README): NaN over their whole channel, the reference elsewhere.
        ref = reference(unit(finite_part(x)).numpy(), keep, basis, shape, clamp)
        reach = (~torch.isfinite(x)).flatten(-2).any(-1)[..., None, None].expand(x.shape)
        ref = nonfinite_rule(torch.from_numpy(ref), reach).numpy()
        if x.dtype == torch.uint8:
            assert out.dtype == torch.uint8
            assert (np.abs(out.double().numpy() - np.clip(ref, 0, 1) * 255) <= 0.5 + 1e-3).all()
        else:
            assert out.dtype == torch.float32
            assert_float_close(out, torch.from_numpy(ref), atol=1e-5)

    check_call("lowpass", lambda: ops.lowpass(x, keep, basis, shape, clamp), problems, compare)
