"""ops.ar_poison on generated input: images plus the float64 reference perturbation,
clamped to [0, 1] (uint8 rounded to nearest), or a documented error naming the argument."""
from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from poisonkit import ops
from tests.ops.test_ar import reference_generate

from .ar_inputs import (batch_ids, coeff_problems, coefficients, id_problems, key_problems, keys,
                        norm_problems, norms)
from .strategies import (FUZZ, assert_float_close, finite_part, image_problems, images,
                         nonfinite_rule, unit)
from .tally import check_call
from .test_fuzz_ar_generate import overflowing

FAULTS = [None] * 10 + ["x", "channels", "count", "coeffs", "labels", "indices", "key", "norm"]


@FUZZ
@given(data=st.data(), fault=st.sampled_from(FAULTS), crop=st.integers(0, 4))
def test_ar_poison(data, fault, crop):
    x, _ = data.draw(images(broken=fault == "x"))
    channels = x.shape[-3] if x.dim() >= 3 else 1
    coeffs = data.draw(coefficients(channels + (fault == "channels"), broken=fault == "coeffs"))
    n = (x.shape[0] if x.dim() == 4 else 1) + (fault == "count")
    labels, indices = data.draw(batch_ids(n, coeffs.shape[0], fault == "labels", fault == "indices"))
    if x.dim() == 3 and fault not in ("count", "labels", "indices"):
        labels, indices = labels[0], indices[0]  # scalars for one CHW image
    key = data.draw(keys(broken=fault == "key"))
    eps, p = data.draw(norms(broken=fault == "norm"))
    problems = image_problems(x) + coeff_problems(coeffs) + key_problems(key) + norm_problems(eps, p)
    if x.dim() == 3 and (labels.numel() != 1 or indices.numel() != 1):
        problems += ["labels", "indices"]  # one CHW image takes one label and one index
    elif x.dim() == 3:
        problems += id_problems(labels.reshape(1), indices.reshape(1), coeffs.shape[0])
    else:
        problems += id_problems(labels, indices, coeffs.shape[0])
    if fault == "channels":
        problems += ["channels", "coeffs"]
    if fault == "count":
        problems += ["x", "indices", "labels"]
    batch = x[None] if x.dim() == 3 else x
    if not problems and overflowing(coeffs, labels.reshape(-1), indices.reshape(-1), key,
                                    batch.shape[2], batch.shape[3], crop,
                                    l2=float(p) == 2).any():
        problems.append("coefficients")

    def compare(out):
        canvas = ops.ar_canvas(indices.reshape(-1), key, channels, batch.shape[2] + crop,
                               batch.shape[3] + crop)
        delta = reference_generate(canvas, coeffs, labels.reshape(-1), crop, eps, float(p))
        # Non-finite pixels (README): NaN where they are, the reference elsewhere.
        ref = nonfinite_rule((unit(finite_part(batch)) + delta).clamp(0, 1),
                             ~torch.isfinite(batch))
        got = out[None] if x.dim() == 3 else out
        assert got.dtype == x.dtype and got.shape == batch.shape
        if x.dtype == torch.uint8:  # rounded to nearest: within half a step (ties either way)
            assert ((got.double() - ref * 255).abs() <= 0.5 + 1e-3).all()
        else:
            assert_float_close(got, ref, atol=1e-5)

    check_call("ar_poison", lambda: ops.ar_poison(x, coeffs, labels, indices, key, crop, eps, p),
               problems, compare)
