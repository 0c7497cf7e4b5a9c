"""torchvision-v2-compatible transforms over poisonkit's ops.

Each accepts a PIL image, a CHW tensor or an NCHW batch (uint8 or float32 in [0, 1]) and
returns the same type. Poisons are applied to the stored image before any augmentation
(perturb-then-augment, as the reference code does); defenses such as sharpening go first
in the training pipeline and are not applied to test images.
"""
from __future__ import annotations

import PIL.Image
import torch
from torch import nn
from torchvision.transforms import v2

from . import ops
from ._images import as_image_tensor, batch_size_of, per_image
from .defenses.lowpass import check_options
from .defenses.projection import Projection
from .defenses.sharpen import rsk_kernels, ssk_kernel
from .poisons.classwise_blur import class_kernels


def _check_padding(padding: str) -> str:
    if padding not in ops.PADDINGS:
        raise ValueError(f"padding: expected one of {ops.PADDINGS}, got {padding!r}")
    return padding


class ClasswiseBlur(nn.Module):
    """The CUDA poison: blur each image with its class's kernel, divide by the image's max.

    Call on a sample ``(image, label)`` or a batch ``(images, labels)``; returns
    ``(poisoned, label)``, so it composes with ``v2.Compose`` called on (image, label).
    uint8 output is truncated, as the reference stores it; float output is the
    normalised value in [0, 1]. Kernels: ``self.kernels`` [num_classes, k, k], drawn as the
    reference does (seed 0 gives the published kernels). The reference pads by 1, so only
    kernel_size 3 keeps its exact geometry; other sizes here keep the image size.
    """

    def __init__(self, num_classes: int = 10, blur_parameter: float = 0.3, kernel_size: int = 3,
                 seed: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.register_buffer("kernels", class_kernels(num_classes, blur_parameter, kernel_size, seed))

    def forward(self, image, label):
        x, rewrap = as_image_tensor(image)
        labels = torch.as_tensor(label, device=x.device)
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise TypeError(f"label: expected integer class indices, got dtype {labels.dtype}")
        expected = () if x.dim() == 3 else (batch_size_of(x),)
        if tuple(labels.shape) != expected:
            raise ValueError(f"label: expected shape {expected} for images of shape "
                             f"{tuple(x.shape)}, got {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"label: expected class indices in [0, {self.num_classes}), got "
                             f"values in [{int(labels.min())}, {int(labels.max())}]")
        weights = self.kernels.to(x.device)[labels.reshape(-1)]
        out = ops.filter2d(x, per_image(weights, x), padding="zeros", normalize="max",
                           rounding="truncate")
        return rewrap(out), label

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, kernel_size={self.kernels.shape[-1]}"


class Sharpen(v2.Transform):
    """SSK: a fixed sharpening kernel (center c, neighbours -(c-1)/4), clamped to [0, 1].

    padding='valid' is the reference's (32x32 -> 30x30); 'reflect', 'replicate' and
    'zeros' keep the size.
    """

    def __init__(self, center: float = 2.5, padding: str = "valid"):
        super().__init__()
        self.center = center
        self.padding = _check_padding(padding)
        self.kernel = ssk_kernel(center)

    def transform(self, inpt, params):
        x, rewrap = as_image_tensor(inpt)
        weights = self.kernel.to(x.device).expand(batch_size_of(x), 3, 3)
        return rewrap(ops.filter2d(x, per_image(weights, x), padding=self.padding))


class RandomSharpen(v2.Transform):
    """RSK: a fresh random sharpening kernel for every image at every call.

    c ~ N(center, std), n1..n4 ~ N((c-1)/4, std). Draws come from ``generator`` (or a new
    one seeded with ``seed``; with neither, torch's global RNG). A seeded transform copied
    into DataLoader workers repeats the same draws in every worker: seed per worker if
    that matters. padding='valid' is the reference's.
    """

    def __init__(self, center: float = 2.5, std: float = 0.1, padding: str = "valid",
                 generator: torch.Generator | None = None, seed: int | None = None):
        super().__init__()
        if generator is not None and seed is not None:
            raise ValueError("generator, seed: give at most one")
        self.center, self.std = center, std
        self.padding = _check_padding(padding)
        self.generator = generator if seed is None else torch.Generator().manual_seed(seed)
        rsk_kernels(0, center, std)  # validates center and std now rather than at first call

    def transform(self, inpt, params):
        x, rewrap = as_image_tensor(inpt)
        weights = rsk_kernels(batch_size_of(x), self.center, self.std, self.generator)
        return rewrap(ops.filter2d(x, per_image(weights.to(x.device), x), padding=self.padding))


class OrthogonalProjection(v2.Transform):
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
        self.image_shape = projection.image_shape
        self.register_buffer("Q", projection.Q)

    def transform(self, inpt, params):
        x, rewrap = as_image_tensor(inpt)
        if tuple(x.shape[-3:]) != self.image_shape or x.dim() not in (3, 4):
            raise ValueError(f"image: expected CHW / NCHW images of shape {self.image_shape} "
                             f"(the projection's), got {tuple(x.shape)}")
        clamp = self.clamp or isinstance(inpt, PIL.Image.Image)
        return rewrap(ops.project_out(x, self.Q.to(x.device), clamp))

    def extra_repr(self) -> str:
        return f"image_shape={self.image_shape}, rank={self.Q.shape[1]}, clamp={self.clamp}"


# Per-dataset defaults of the AR poison (DESIGN 3.1): classes, image size, crop, L2 eps.
# ImageNet-size keeps STL-10's rule of eps proportional to the side (1.0 per 32 pixels).
AR_PRESETS = {
    "cifar10": {"num_classes": 10, "size": 32, "crop": 4, "eps": 1.0},
    "cifar100": {"num_classes": 100, "size": 32, "crop": 4, "eps": 1.0},
    "svhn": {"num_classes": 10, "size": 32, "crop": 4, "eps": 1.0},
    "stl10": {"num_classes": 10, "size": 96, "crop": 4, "eps": 3.0},
    "imagenet": {"num_classes": 100, "size": 224, "crop": 2, "eps": 7.0},
    # The reference's published coefficient sets (poisons/ar_published.py).
    "cifar10-published": {"num_classes": 10, "size": 32, "crop": 4, "eps": 1.0,
                          "published": "cifar10-published"},
    "cifar100-published": {"num_classes": 100, "size": 32, "crop": 4, "eps": 1.0,
                           "published": "cifar100-published"},
    "imagenet100-published": {"num_classes": 100, "size": 224, "crop": 2, "eps": 7.0,
                              "published": "cifar100-published"},
}


class ARPoison(nn.Module):
    """The AR poison: adds the perturbation of (key, sample index, class) to each image.

    Call on a sample ``(image, label, index)`` or a batch ``(images, labels, indices)``;
    returns ``(poisoned, label)``. The perturbation is computed in [0,1] units at the
    image's size, added, clamped to [0, 1] and rounded to nearest for uint8 input, so the
    same (key, index) gives the same image whatever the batch or worker. Apply it to the
    stored image before any augmentation (perturb-then-augment, as the reference).

    coefficients: a [K, C, 3, 3] tensor, an ARCoefficients, or a class count (then drawn
    with sample_coefficients(num_classes, seed=seed)). key: the owner's secret.
    """

    def __init__(self, coefficients, eps: float = 1.0, p: float | str = 2, crop: int = 4,
                 key: int = 0, seed: int = 0):
        super().__init__()
        from .poisons import ar
        if isinstance(coefficients, int) and not isinstance(coefficients, bool):
            coefficients = ar.sample_coefficients(coefficients, seed=seed, progress=False)
        if isinstance(coefficients, ar.ARCoefficients):
            coefficients = coefficients.coeffs
        self.register_buffer("coeffs", ar.check_coefficients(coefficients).clone())
        p = ops._norm_p(p)
        if p not in (2.0, float("inf")):
            raise ValueError(f"p: expected 2 or inf, got {p!r}")
        if not (isinstance(eps, (int, float)) and eps > 0 and eps < float("inf")):
            raise ValueError(f"eps: expected a positive finite number, got {eps!r}")
        if isinstance(crop, bool) or not isinstance(crop, int) or crop < 0:
            raise ValueError(f"crop: expected an int >= 0, got {crop!r}")
        self.eps, self.p, self.crop, self.key = float(eps), p, crop, ops._key64(key)

    @classmethod
    def preset(cls, name: str, coefficients=None, key: int = 0, seed: int = 0, **overrides):
        """ARPoison with a dataset's defaults: 'cifar10', 'cifar100', 'svhn', 'stl10',
        'imagenet' (224x224). coefficients default to a freshly sampled set, or for the
        '*-published' presets to the reference's published set."""
        if name not in AR_PRESETS:
            raise ValueError(f"preset: expected one of {sorted(AR_PRESETS)}, got {name!r}")
        cfg = {**AR_PRESETS[name], **overrides}
        if coefficients is None and "published" in cfg:
            from .poisons.ar_published import published_coefficients
            coefficients = published_coefficients(cfg["published"])
        return cls(cfg["num_classes"] if coefficients is None else coefficients, eps=cfg["eps"],
                   p=cfg.get("p", 2), crop=cfg["crop"], key=key, seed=seed)

    @property
    def num_classes(self) -> int:
        return self.coeffs.shape[0]

    def perturbation(self, labels: torch.Tensor, indices: torch.Tensor, height: int,
                     width: int) -> torch.Tensor:
        """float32 [N, C, height, width] perturbations on labels' device."""
        return ops.ar_generate(self.coeffs.to(labels.device), labels, indices, self.key, height,
                               width, self.crop, self.eps, self.p)

    def forward(self, image, label, index):
        x, rewrap = as_image_tensor(image)
        expected = () if x.dim() == 3 else (batch_size_of(x),)
        if expected == (0,):
            raise ValueError(f"image: expected a non-empty batch, got shape {tuple(x.shape)}")
        labels = torch.as_tensor(label, device=x.device)
        indices = torch.as_tensor(index, device=x.device)
        for name, t in (("label", labels), ("index", indices)):
            if t.dtype.is_floating_point or t.dtype == torch.bool:
                raise TypeError(f"{name}: expected integers, got dtype {t.dtype}")
            if tuple(t.shape) != expected:
                raise ValueError(f"{name}: expected shape {expected} for images of shape "
                                 f"{tuple(x.shape)}, got {tuple(t.shape)}")
        if x.shape[-3] != self.coeffs.shape[1]:
            raise ValueError(f"image: expected {self.coeffs.shape[1]} channels, got shape "
                             f"{tuple(x.shape)}")
        if x.dtype not in (torch.uint8, torch.float32):
            raise TypeError(f"image: expected uint8 or float32, got {x.dtype}")
        out = ops.ar_poison(x, self.coeffs.to(x.device), labels.long(), indices.long(), self.key,
                            self.crop, self.eps, self.p)
        return rewrap(out), label

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, eps={self.eps}, p={self.p}, crop={self.crop}")


class LowPass(v2.Transform):
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

    def transform(self, inpt, params):
        x, rewrap = as_image_tensor(inpt)
        return rewrap(ops.lowpass(x, self.keep, self.basis, self.shape, self.clamp))

    def extra_repr(self) -> str:
        return f"keep={self.keep}, basis={self.basis!r}, shape={self.shape!r}, clamp={self.clamp}"


class RSKFF(v2.Transform):
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
        super().__init__()
        self.sharpen = RandomSharpen(center, std, padding, generator, seed)
        self.lowpass = LowPass(keep, basis, shape)
        self.restore_size = restore_size

    def transform(self, inpt, params):
        x, rewrap = as_image_tensor(inpt)
        unit = x.float().div_(255.0) if x.dtype == torch.uint8 else x
        y = self.lowpass.transform(self.sharpen.transform(unit, params), params)
        if self.restore_size:
            y = _reflect_pad_to(y, x.shape[-2], x.shape[-1])
        if x.dtype == torch.uint8:  # y is in [0, 1]: round half up, as the kernels do
            y = y.mul(255.0).add_(0.5).floor_().to(torch.uint8)
        return rewrap(y)

    def extra_repr(self) -> str:
        return f"restore_size={self.restore_size}"


def _reflect_pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Reflect-pads the last two dims of x up to height x width (extra row/col at the end)."""
    dh, dw = height - x.shape[-2], width - x.shape[-1]
    if dh == 0 and dw == 0:
        return x
    return torch.nn.functional.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2),
                                   mode="reflect")
