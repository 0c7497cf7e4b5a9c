"""Hypothesis strategies shared by the fuzz tests: odd image tensors (shapes down to 1x1
and empty batches, wrong dtypes, strided / channels-last / transposed layouts, extreme and
non-finite values) and the settings that keep the suite fast."""
from __future__ import annotations

import math
import os

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Fast enough for CI on 2 cores and derandomized there, so that CI runs the same inputs
# every time (POISONKIT_FUZZ_EXAMPLES=2000 POISONKIT_FUZZ_RANDOM=1 for a deeper, fresh
# local run); no example database written into the checkout.
FUZZ = settings(max_examples=int(os.environ.get("POISONKIT_FUZZ_EXAMPLES", 80)), deadline=None, database=None,
                derandomize=os.environ.get("POISONKIT_FUZZ_RANDOM") != "1",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

GOOD_DTYPES = (torch.uint8, torch.float32)
BAD_DTYPES = (torch.float64, torch.float16, torch.int32, torch.int64, torch.bool)
LAYOUTS = ("contiguous", "channels_last", "strided", "transposed")
VALUES = ("random", "zeros", "max", "extremes", "nonfinite")

seeds = st.integers(0, 2**32 - 1)


def _fill(shape, dtype, values: str, gen: torch.Generator) -> torch.Tensor:
    """A tensor of `shape` in the dtype's image range ([0, 255] or [0, 1])."""
    unit = torch.rand(shape, generator=gen)
    if values == "zeros":
        unit.zero_()
    elif values == "max":
        unit.fill_(1.0)
    elif values in ("extremes", "nonfinite"):
        pick = torch.randint(0, 3, shape, generator=gen)
        unit = torch.where(pick == 0, 0.0, torch.where(pick == 1, 1.0, unit))
    if dtype == torch.uint8:
        return (unit * 255).round().to(torch.uint8)
    x = unit.to(dtype) if dtype.is_floating_point else (unit * 255).round().to(dtype)
    if values == "nonfinite" and dtype.is_floating_point and x.numel():
        special = torch.tensor([math.nan, math.inf, -math.inf], dtype=dtype)
        where = torch.rand(shape, generator=gen) < 0.2
        x[where] = special[torch.randint(0, 3, (int(where.sum()),), generator=gen)]
    return x


def _lay_out(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values in another memory layout."""
    if layout == "channels_last" and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "strided":
        wide = torch.zeros(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    if layout == "transposed":
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)
    return x


@st.composite
def images(draw, broken=False, channels=st.integers(1, 4), min_side=1, max_side=9,
           batch=st.integers(1, 3), single=st.booleans()):
    """(x, description): a CHW image (when `single` draws True) or an NCHW batch in a
    supported dtype, any layout, with extreme and non-finite values; with broken=True one
    documented fault: a wrong dtype, an empty batch or a wrong number of dims."""
    fault = draw(st.sampled_from(["dtype", "empty", "rank"])) if broken else None
    n, c = (0 if fault == "empty" else draw(batch)), draw(channels)
    h, w = draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side))
    dtype = draw(st.sampled_from(BAD_DTYPES if fault == "dtype" else GOOD_DTYPES))
    layout, values = draw(st.sampled_from(LAYOUTS)), draw(st.sampled_from(VALUES))
    gen = torch.Generator().manual_seed(draw(seeds))
    x = _lay_out(_fill((n, c, h, w), dtype, values, gen), layout)
    if fault == "rank":
        return (x[0, 0] if draw(st.booleans()) else x[None]), f"rank {x.dim()}"
    is_single = draw(single) and n >= 1
    return (x[0] if is_single else x), f"{tuple(x.shape)} {dtype} {layout} {values}"


def unit(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] units, float64 (uint8 / 255 as ToTensor)."""
    return x.double() / 255 if x.dtype == torch.uint8 else x.double()


def image_problems(x: torch.Tensor, *, allow_empty: bool = False, name: str = "x") -> list[str]:
    """What the ops' shared rules find wrong with an image tensor (CHW or NCHW)."""
    problems = []
    if x.dim() not in (3, 4) or x.dtype not in GOOD_DTYPES:
        problems.append(name)
    elif x.dim() == 4 and x.shape[0] == 0 and not allow_empty:
        problems.append(name)
    return problems


def assert_float_close(out: torch.Tensor, ref: torch.Tensor, atol=2e-6, rtol=1e-5):
    """Same shape and dtype, values close, NaN where the reference has NaN."""
    assert out.shape == ref.shape, (out.shape, ref.shape)
    torch.testing.assert_close(out.double(), ref.double(), atol=atol, rtol=rtol, equal_nan=True)


def finite_part(x: torch.Tensor) -> torch.Tensor:
    """x with its non-finite values replaced by 0 (what the reference sees)."""
    return torch.where(torch.isfinite(x), x, 0.0) if x.dtype.is_floating_point else x


def nonfinite_rule(ref: torch.Tensor, reach: torch.Tensor) -> torch.Tensor:
    """The README's rule for non-finite pixels: NaN at every output that `reach` marks (the
    outputs computed from a non-finite input value), the finite reference elsewhere."""
    return torch.where(reach, torch.full_like(ref, math.nan), ref)
