"""ops.ar_generate on generated input: the float64 recursion of tests/ops/test_ar.py on the
op's own canvas (checked by test_fuzz_ar_canvas), or a documented error naming the
argument; an exploding class is refused when scaling and non-finite when not."""
from __future__ import annotations


import torch
from hypothesis import given
from hypothesis import strategies as st

from poisonkit import ops
from tests.ops.test_ar import reference_generate

from .ar_inputs import (FLT_MAX, batch_ids, coeff_problems, coefficients, explodes, id_problems,
                        key_problems, keys, norm_problems, norms)
from .strategies import FUZZ
from .tally import check_call

FAULTS = [None] * 6 + ["coeffs", "labels", "indices", "key", "norm", "size"]


def overflowing(coeffs, labels, indices, key, height, width, crop, l2) -> torch.Tensor:
    """bool [N]: sample n's unscaled process leaves float32's range, or (L2 scaling) its
    sum of squares does: the kernels take the norm in float32 (exploding class only)."""
    canvas = ops.ar_canvas(indices, key, coeffs.shape[1], height + crop, width + crop)
    raw = reference_generate(canvas, coeffs, labels, crop, None, 2).flatten(1)
    out_of_range = ~(raw.abs() <= FLT_MAX).all(1)
    if l2:
        out_of_range |= ~(raw.square().sum(1) <= FLT_MAX)
    return out_of_range & explodes(coeffs, labels)


def draw_sizes(data, broken):
    if broken:
        return data.draw(st.sampled_from([(0, 4, 0), (4, -1, 2), (3, 3, -1), (2**40, 4, 4),
                                          (4, 2**62, 4), (4, 4, 2**63 - 1)]))
    return data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8)), data.draw(st.integers(0, 4))


@FUZZ
@given(data=st.data(), fault=st.sampled_from(FAULTS), unscaled=st.integers(0, 5))
def test_ar_generate(data, fault, unscaled):
    channels = data.draw(st.integers(1, 4))
    coeffs = data.draw(coefficients(channels, broken=fault == "coeffs"))
    n = data.draw(st.integers(0 if fault == "indices" else 1, 3))
    labels, indices = data.draw(batch_ids(n, coeffs.shape[0], fault == "labels", fault == "indices"))
    key = data.draw(keys(broken=fault == "key"))
    eps, p = data.draw(norms(broken=fault == "norm"))
    eps = None if unscaled == 0 and fault != "norm" else eps
    height, width, crop = draw_sizes(data, fault == "size")
    problems = (coeff_problems(coeffs) + id_problems(labels, indices, coeffs.shape[0])
                + key_problems(key) + norm_problems(eps, p))
    if fault == "size":
        problems += ["height", "width", "crop", "canvas"]
    bad = torch.zeros(n, dtype=torch.bool)
    if not problems:
        bad = overflowing(coeffs, labels, indices, key, height, width, crop,
                          l2=eps is not None and float(p) == 2)
        if eps is not None and bad.any():
            problems.append("coefficients")

    def compare(out):
        assert out.dtype == torch.float32 and out.shape == (n, channels, height, width)
        canvas = ops.ar_canvas(indices, key, channels, height + crop, width + crop)
        ref = reference_generate(canvas, coeffs, labels, crop, eps, float(p))
        good = ~bad
        assert not torch.isfinite(out[bad]).flatten(1).all(1).any()
        scale = ref[good].abs().amax() if good.any() else 0.0
        torch.testing.assert_close(out[good].double(), ref[good], rtol=1e-4, atol=1e-5 * scale)

    check_call("ar_generate", lambda: ops.ar_generate(coeffs, labels, indices, key, height, width,
                                                      crop, eps, p), problems, compare)
