"""Purifications a protected image may meet before it reaches an editor, named by specs:

  none            the image as published
  jpeg:Q          JPEG round trip at quality Q (1-100): poisonkit.defenses.jpeg (Pillow's
                  codec, 4:2:0 chroma)
  lowpass[:K]     DCT low-pass keeping int(H * K) x int(W * K) coefficients (K in (0, 1],
                  default 0.5; RSK+FF's FF uses 0.3)
  sharpen[:C]     fixed sharpening kernel (SSK) with centre C (default 2.5), reflect padding
                  so the size is kept (the VAE needs the input's size)
  A+B+...         a chain, applied left to right (e.g. sharpen+lowpass:0.5, jpeg:75+lowpass)

Every purification maps uint8 NCHW to uint8 NCHW of the same shape.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..defenses.jpeg import jpeg_roundtrip
from ..defenses.sharpen import ssk_kernel
from ..transforms import functional as F

NAMES = ("none", "jpeg", "lowpass", "sharpen")
JPEG_QUALITIES = (95, 90, 85, 75, 60, 50, 40, 30, 20, 10)


def _number(spec: str, text: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"purification: bad parameter {text!r} in {spec!r}; expected "
                         f"{'an integer' if kind is int else 'a number'}") from None


def _one(spec: str, part: str) -> Callable[[torch.Tensor], torch.Tensor]:
    name, _, arg = part.partition(":")
    if name not in NAMES:
        raise ValueError(f"purification: unknown {name!r} in {spec!r}; expected one of {NAMES} "
                         "(jpeg:Q, lowpass[:K], sharpen[:C]) joined by '+'")
    if name == "none":
        if arg:
            raise ValueError(f"purification: 'none' takes no parameter ({spec!r})")
        return lambda x: x
    if name == "jpeg":
        if not arg:
            raise ValueError(f"purification: jpeg needs a quality, e.g. jpeg:75 ({spec!r})")
        quality = _number(spec, arg, int)
        if not 1 <= quality <= 100:
            raise ValueError(f"purification: JPEG quality must be 1-100, got {quality} ({spec!r})")
        return lambda x: jpeg_roundtrip(x, quality)
    if name == "lowpass":
        keep = _number(spec, arg, float) if arg else 0.5
        if not 0 < keep <= 1:
            raise ValueError(f"purification: lowpass keeps a fraction in (0, 1], got {keep} ({spec!r})")
        return lambda x: F.lowpass_image(x, keep)
    kernel = ssk_kernel(_number(spec, arg, float) if arg else 2.5)
    return lambda x: F.sharpen_image(x, kernel, "reflect")


def purification(spec: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function a spec names (see the module docstring); bad specs fail here, before
    any work."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"purification: expected a spec such as 'jpeg:75', got {spec!r}")
    steps = [_one(spec, part.strip()) for part in spec.split("+")]

    def apply(x: torch.Tensor) -> torch.Tensor:
        for fn in steps:
            x = fn(x)
        return x
    return apply


def default_specs() -> list[str]:
    """none, JPEG at 95..10, low-pass, sharpening and two chains."""
    return (["none"] + [f"jpeg:{q}" for q in JPEG_QUALITIES]
            + ["lowpass:0.5", "lowpass:0.3", "sharpen", "sharpen+lowpass:0.5", "jpeg:75+lowpass:0.5"])


def jpeg_quality(spec: str) -> int | None:
    """Q for a plain 'jpeg:Q' spec, else None (the curves' x axis)."""
    name, _, arg = spec.partition(":")
    return int(arg) if name == "jpeg" and "+" not in spec else None
