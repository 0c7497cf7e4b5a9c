"""Generated arguments of the AR ops (coefficients, labels, indices, keys, norms) and the
rules they document, shared by the AR fuzz tests."""
from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

from .strategies import seeds

FLT_MAX = torch.finfo(torch.float32).max
EXPLODING_TAP = 1e30  # tap (2, 1): x[j] = 1e30 x[j-1] overflows float32 within two steps


@st.composite
def coefficients(draw, channels: int, broken=False):
    """float32 [K, C, 3, 3]: stable (|taps| summing to 0.9) with sometimes one exploding
    class; broken: float64, a wrong shape or a non-finite tap."""
    k = draw(st.integers(1, 4))
    gen = torch.Generator().manual_seed(draw(seeds))
    c = torch.randn(k, channels, 3, 3, generator=gen)
    c[..., 2, 2] = 0
    c = 0.9 * c / c.abs().sum((-2, -1), keepdim=True)
    if draw(st.integers(0, 4)) == 0:
        c[draw(st.integers(0, k - 1)), :, 2, 1] = EXPLODING_TAP
    form = draw(st.sampled_from(["float64", "shape", "nonfinite"])) if broken else None
    if form == "float64":
        c = c.double()
    elif form == "shape":
        c = c[..., :2, :]
    elif form == "nonfinite":
        c.view(-1)[draw(st.integers(0, c.numel() - 1))] = draw(st.sampled_from([math.nan, math.inf]))
    return c


@st.composite
def batch_ids(draw, n: int, num_classes: int, broken_labels=False, broken_indices=False):
    """(labels, indices) int64 [n]; broken: out of range, a float dtype or a wrong length."""
    labels = torch.tensor(draw(st.lists(st.integers(0, num_classes - 1), min_size=n, max_size=n)),
                          dtype=torch.int64)
    indices = torch.tensor(draw(st.lists(st.sampled_from([0, 1, 7, 2**31, 2**62 + 5]) |
                                         st.integers(0, 10**6), min_size=n, max_size=n)),
                           dtype=torch.int64)
    if broken_labels:
        form = draw(st.sampled_from(["high", "negative", "float", "length"]))
        labels = {"high": torch.full((n,), num_classes), "negative": torch.full((n,), -1),
                  "float": labels.float(), "length": labels[:-1] if n else labels[:0]}[form]
        if form == "length" and n == 0:
            labels = torch.zeros(1, dtype=torch.int64)
    if broken_indices:
        form = draw(st.sampled_from(["negative", "int32", "2d"]))
        indices = {"negative": -1 - indices, "int32": indices.int(),
                   "2d": indices[None]}[form]
        if form == "negative" and n == 0:
            indices = torch.tensor([-1])
    return labels, indices


def keys(broken=False):
    if broken:
        return st.sampled_from([2**64, -(2**63) - 1, 1.5, True, "7"])
    return st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64 - 1, -1, -(2**63)]) | st.integers(0, 2**64 - 1)


def norms(broken=False):
    """(eps, p) with p as a number or a string."""
    if broken:
        return st.one_of(
            st.tuples(st.sampled_from([0.0, -1.0, math.nan, math.inf]), st.just(2)),
            st.tuples(st.just(1.0), st.sampled_from([1, 0, math.nan, -math.inf, "fro", "two"])))
    return st.tuples(st.sampled_from([1.0, 8 / 255, 1e-30, 3.0, 1e3]),
                     st.sampled_from([2, 2.0, math.inf, "2", "inf"]))


def key_problems(key) -> list[str]:
    ok = isinstance(key, int) and not isinstance(key, bool) and -(2**63) <= key < 2**64
    return [] if ok else ["key"]


def norm_problems(eps, p) -> list[str]:
    problems = []
    if eps is not None and not (isinstance(eps, float) and math.isfinite(eps) and eps > 0):
        problems.append("eps")
    try:
        if float(p) not in (2.0, math.inf):
            problems.append("p")
    except ValueError:
        problems.append("p")
    return problems


def id_problems(labels, indices, num_classes) -> list[str]:
    problems = []
    if indices.dtype != torch.int64 or indices.dim() != 1 or len(indices) == 0 or (indices < 0).any():
        problems.append("indices")
    if (labels.dtype != torch.int64 or labels.dim() != 1 or labels.shape != indices.shape[-1:]
            or (len(labels) and (labels.min() < 0 or labels.max() >= num_classes))):
        problems.append("labels")
    return problems


def coeff_problems(coeffs) -> list[str]:
    ok = (coeffs.dtype == torch.float32 and coeffs.dim() == 4 and coeffs.shape[-2:] == (3, 3)
          and torch.isfinite(coeffs).all())
    return [] if ok else ["coeffs"]


def explodes(coeffs, labels) -> torch.Tensor:
    """bool [N]: sample n's class has the exploding tap."""
    return (coeffs[labels, :, 2, 1] == EXPLODING_TAP).any(-1)


def as_uint64(key: int) -> int:
    return key % 2**64
