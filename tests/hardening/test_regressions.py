"""Bugs the fuzz tests found, pinned down."""
from __future__ import annotations

import pytest
import torch

from poisonkit import ops


@pytest.mark.parametrize("size", [(2**62, 4, 4), (2**31 + 5, 1, 1), (1, 2**32, 1)])
def test_ar_canvas_refuses_sizes_that_overflow_the_size_check_or_the_kernels_int(size):
    # Before: 2^62*4*4 wrapped int64 to 0 and passed the 2^33-draws check (an unclear
    # storage-size error from torch); 2^31+5 channels passed it and were truncated to a
    # negative int (an uninitialised 8 GiB result, returned without an error).
    with pytest.raises(RuntimeError, match="too large"):
        ops.ar_canvas(torch.tensor([0]), 0, *size)


def test_ar_generate_refuses_huge_sizes_before_adding_crop():
    with pytest.raises(RuntimeError, match="below 2\\^33"):
        ops.ar_generate(torch.zeros(1, 1, 3, 3), torch.tensor([0]), torch.tensor([0]), 0, 4,
                        4, 2**63 - 1)


def test_ar_norm_arguments_are_named_in_errors():
    args = (torch.zeros(1, 1, 3, 3), torch.tensor([0]), torch.tensor([0]), 0)
    with pytest.raises(ValueError, match="p: expected 2 or inf, got 'fro'"):
        ops.ar_generate(*args, 4, 4, 0, 1.0, "fro")
    with pytest.raises(TypeError, match="eps: expected a positive finite number, got None"):
        ops.ar_poison(torch.zeros(1, 1, 4, 4), *args, 0, None)


def test_ar_poison_single_image_takes_exactly_one_label_and_index():
    x, coeffs = torch.zeros(1, 4, 4), torch.zeros(1, 1, 3, 3)
    with pytest.raises(ValueError, match="labels: expected one value"):
        ops.ar_poison(x, coeffs, torch.tensor([], dtype=torch.int64), torch.tensor([0]), 0)
    with pytest.raises(ValueError, match="indices: expected one value"):
        ops.ar_poison(x, coeffs, torch.tensor(0), torch.tensor([1, 2]), 0)
    assert torch.equal(ops.ar_poison(x, coeffs, 0, 3, 5), ops.ar_poison(x, coeffs, torch.tensor(0),
                                                                        torch.tensor([3]), 5))


def test_ar_poison_transform_names_p():
    from poisonkit.transforms import ARPoison
    with pytest.raises(ValueError, match="p: expected 2 or inf, got 'fro'"):
        ARPoison(torch.zeros(1, 1, 3, 3), p="fro")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("width", [1, 2])
def test_ar_generate_on_canvases_narrower_than_the_filter(channels, width):
    # Found by `make sanitize`: the interleaved CPU recursion read row[1] of a one-column
    # canvas (one float past the scratch). Under 3 columns every pixel is an initial
    # condition, so the result is the scaled canvas itself.
    coeffs = torch.full((1, channels, 3, 3), 0.125)
    coeffs[..., 2, 2] = 0
    labels, indices = torch.tensor([0]), torch.tensor([7])
    out = ops.ar_generate(coeffs, labels, indices, 3, 5, width, 0, None, 2)
    canvas = ops.ar_canvas(indices, 3, channels, 5, width)
    torch.testing.assert_close(out, canvas)
