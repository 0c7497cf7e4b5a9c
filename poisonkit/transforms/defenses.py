"""The defenses as torchvision v2 transforms: SSK / RSK sharpening, the frequency low-pass
(FF), RSK+FF, and the orthogonal projection. Each changes images only (tensors,
tv_tensors.Image, PIL) and passes Masks, BoundingBoxes, KeyPoints and labels through.
Defenses run on training images; test images are not sharpened or filtered.
"""
from __future__ import annotations

from typing import Any

import PIL.Image
import torch

from .._images import ImageTransform, batch_size_of
from ..defenses.lowpass import check_options
from ..defenses.projection import Projection
from ..defenses.sharpen import rsk_kernels, ssk_kernel
from . import functional as F


class Sharpen(ImageTransform):
    """SSK: a fixed sharpening kernel (center c, neighbours -(c-1)/4), clamped to [0, 1].

    padding='valid' is the reference's (32x32 -> 30x30); 'reflect', 'replicate' and
    'zeros' keep the size. Only images are filtered: with 'valid', a sample that also holds
    a Mask or BoundingBoxes no longer has one size, and a later geometric v2 transform
    (RandomCrop, Resize) refuses it ("multiple HxW dimensions"). Pick a size-keeping
    padding for such samples, or crop their masks to match.
    """

    def __init__(self, center: float = 2.5, padding: str = "valid"):
        super().__init__()
        self.center = center
        self.padding = F.check_padding(padding)
        self.register_buffer("kernel", ssk_kernel(center))

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return F.sharpen(inpt, self.kernel, self.padding)


class RandomSharpen(ImageTransform):
    """RSK: a fresh random sharpening kernel for every image at every call, drawn in
    make_params (defenses.sharpen.rsk_kernels).

    c ~ N(center, std), n1..n4 ~ N((c-1)/4, std). Draws come from ``generator`` (or a new
    one seeded with ``seed``; with neither, torch's global RNG). A seeded transform copied
    into DataLoader workers repeats the same draws in every worker: seed per worker if
    that matters. padding='valid' is the reference's; it shrinks images but not masks
    (see Sharpen).
    """

    def __init__(self, center: float = 2.5, std: float = 0.1, padding: str = "valid",
                 generator: torch.Generator | None = None, seed: int | None = None):
        super().__init__()
        if generator is not None and seed is not None:
            raise ValueError("generator, seed: give at most one")
        self.center, self.std = center, std
        self.padding = F.check_padding(padding)
        self.generator = generator if seed is None else torch.Generator().manual_seed(seed)
        rsk_kernels(0, center, std)  # validates center and std now rather than at first call

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        count = batch_size_of(flat_inputs[0]) if flat_inputs else 0
        return {"kernels": rsk_kernels(count, self.center, self.std, self.generator)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return F.sharpen(inpt, params["kernels"], self.padding)


class LowPass(ImageTransform):
    """FF: keep the low frequencies of each channel and invert (poisonkit.ops.lowpass).

    basis='dct', shape='square', keep=0.3 is the reference's filter: the top-left
    int(H * keep) x int(W * keep) block of orthonormal DCT-II coefficients. basis='fft'
    keeps the DFT frequencies |k| <= int(n * keep / 2) (the same fraction of the band);
    shape='disk' keeps the ellipse inscribed in the square instead (see
    poisonkit.defenses.lowpass). Float output is clamped to [0, 1] unless clamp=False.
    As a defense it runs on training images only, after sharpening: see RSKFF.
    """

    def __init__(self, keep: float = 0.30, basis: str = "dct", shape: str = "square",
                 clamp: bool = True):
        super().__init__()
        self.keep = check_options(keep, basis, shape)
        self.basis, self.shape, self.clamp = basis, shape, clamp

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return F.lowpass(inpt, self.keep, self.basis, self.shape, self.clamp)


class RSKFF(RandomSharpen):
    """The RSK+FF defense (Kim & Sandoval-Segura, 2024): RandomSharpen, then LowPass.

    Defaults are the paper's: c ~ N(2.5, 0.1), 'valid' sharpening (32x32 -> 30x30), then
    the DCT square low-pass keeping int(30 * 0.3) = 9 x 9 coefficients. Train-time order
    (DESIGN 3.3): ToTensor -> RSKFF -> RandomCrop(32, padding=4) -> RandomHorizontalFlip ->
    Normalize. Test images are NOT sharpened or filtered.

    restore_size=True reflect-pads the result back to the input's size (30 -> 32), so that
    the crop sees 32x32 images as in the clean pipeline; with the class-wise blur poison
    this measured 59.0% vs 40.3% for 'same' reflect sharpening (DESIGN 4). False (default)
    keeps the reference's 30x30 output.

    uint8 input is filtered in float ([0, 1], as after ToTensor) and rounded once at the
    end, so there is no intermediate rounding between the two filters. Draws of the
    sharpening kernels: see RandomSharpen (generator / seed).
    """

    def __init__(self, center: float = 2.5, std: float = 0.1, padding: str = "valid",
                 keep: float = 0.30, basis: str = "dct", shape: str = "square",
                 restore_size: bool = False, generator: torch.Generator | None = None,
                 seed: int | None = None):
        super().__init__(center, std, padding, generator, seed)
        self.keep = check_options(keep, basis, shape)
        self.basis, self.shape, self.restore_size = basis, shape, restore_size

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return F.sharpen_lowpass(inpt, params["kernels"], self.padding, self.keep, self.basis,
                                 self.shape, self.restore_size)


class OrthogonalProjection(ImageTransform):
    """The orthogonal projection defense: x <- x - Q Q^T x with a fitted Projection.

    ``projection``: a :class:`poisonkit.defenses.projection.Projection` or the path of a
    saved one. Output is float32 and leaves [0, 1] (the reference does not re-clip);
    clamp=True returns the input's dtype clamped to [0, 1] (uint8 rounded to nearest).
    PIL images cannot hold values outside [0, 1], so they are always clamped. Apply it to
    the (poisoned) training images before augmentation, as the reference projects the
    stored training set.
    """

    def __init__(self, projection, clamp: bool = False):
        super().__init__()
        if not isinstance(projection, Projection):
            projection = Projection.load(projection)
        self.clamp = bool(clamp)
        self.image_shape = tuple(projection.image_shape)
        self.register_buffer("Q", projection.Q)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        batch_size_of(inpt)  # checks the layout
        shape = ((len(inpt.getbands()), inpt.height, inpt.width) if isinstance(inpt, PIL.Image.Image)
                 else tuple(inpt.shape[-3:]))
        if shape != self.image_shape:
            raise ValueError(f"image: expected CHW / NCHW images of shape {self.image_shape} "
                             f"(the projection's), got {shape}")
        return F.project_out(inpt, self.Q, self.clamp)

    def extra_repr(self) -> str:
        return f"image_shape={self.image_shape}, rank={self.Q.shape[1]}, clamp={self.clamp}"
