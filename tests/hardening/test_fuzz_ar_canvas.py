"""ops.ar_canvas on generated input: draws equal to the Python Philox reference of
tests/ops/test_ar.py, or a documented error naming the argument (too-large canvases
included, sizes that would overflow int64 or the kernels' int among them)."""
from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from poisonkit import ops
from tests.ops.test_ar import reference_normal

from .ar_inputs import as_uint64, batch_ids, key_problems, keys
from .strategies import FUZZ
from .tally import check_call

FAULTS = [None] * 5 + ["indices", "key", "size", "huge"]
HUGE = [(2**32, 1, 1), (1, 2**31, 1), (2**62, 4, 4), (2**20, 2**7, 2**7), (3, 2**40, 2**40),
        (1, 1, 2**33)]


@FUZZ
@given(data=st.data(), fault=st.sampled_from(FAULTS))
def test_ar_canvas(data, fault):
    n = data.draw(st.integers(0 if fault == "indices" else 1, 3))
    _, indices = data.draw(batch_ids(n, 1, broken_indices=fault == "indices"))
    key = data.draw(keys(broken=fault == "key"))
    if fault == "huge":
        size = data.draw(st.sampled_from(HUGE))
    else:
        side = st.integers(-1, 0) if fault == "size" else st.integers(1, 6)
        size = (data.draw(st.integers(1, 4)), data.draw(side), data.draw(side))
    problems = key_problems(key) + (["channels", "height", "width", "canvas"]
                                    if fault in ("size", "huge") else [])
    if indices.dtype != torch.int64 or indices.dim() != 1 or not len(indices) or (indices < 0).any():
        problems.append("indices")

    def compare(out):
        assert out.dtype == torch.float32 and out.shape == (len(indices), *size)
        flat = out.flatten(1)
        draws = data.draw(st.lists(st.integers(0, flat.shape[1] - 1), min_size=1, max_size=8))
        for row, index in enumerate(indices.tolist()):
            for d in draws:
                ref = reference_normal(as_uint64(key), index, d)
                assert abs(flat[row, d].item() - ref) <= 2e-6 * (1 + abs(ref))

    check_call("ar_canvas", lambda: ops.ar_canvas(indices, key, *size), problems, compare)
