"""Autoregressive (AR) perturbations (Sandoval-Segura et al., NeurIPS 2022; DESIGN 3.1).

Each class k has AR coefficients b[k] of shape [C, 3, 3] (tap (2,2) zero, the 8 others of
each channel summing to 1). A sample's perturbation is the AR process of its class started
from Philox normal draws of (key, sample index), cropped and scaled to an Lp norm of eps
(`poisonkit.ops.ar_generate`), so a poisoned dataset never has to be stored.

`sample_coefficients` draws a class set with the reference's acceptance tests;
`detect` recovers the class an AR perturbation was generated for.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import ops
from .._io import load_dict, save_dict
from ..keys import philox_key
from .base import Poison

# Sum of a channel's 8 raw taps below which the normalisation is refused (it would blow
# the coefficients up).
MIN_TAP_SUM = 1e-2
REJECTION_REASONS = ("tiny_sum", "nonfinite", "norm", "response")


def default_min_response(num_classes: int) -> float:
    """The reference's minimum response: 10 for up to 10 classes, 3 for more."""
    return 10.0 if num_classes <= 10 else 3.0


def ar_filters(coeffs: torch.Tensor) -> torch.Tensor:
    """The AR filters: coefficients with tap (2,2) set to -1, [K, C, 3, 3]."""
    filters = coeffs.clone()
    filters[..., 2, 2] = -1.0
    return filters


def check_coefficients(coeffs: torch.Tensor) -> torch.Tensor:
    """Validates a coefficient set (float32 [K, C, 3, 3], finite); returns it float32."""
    if not isinstance(coeffs, torch.Tensor):
        raise TypeError(f"coefficients: expected a tensor, got {type(coeffs).__name__}")
    if coeffs.dim() != 4 or coeffs.shape[-2:] != (3, 3) or coeffs.shape[0] < 1 or coeffs.shape[1] < 1:
        raise ValueError(f"coefficients: expected shape [K, C, 3, 3], got {tuple(coeffs.shape)}")
    if not torch.isfinite(coeffs).all():
        bad = sorted({int(k) for k in torch.nonzero(~torch.isfinite(coeffs))[:, 0]})
        raise ValueError(f"coefficients: classes {bad} contain NaN or inf")
    return coeffs.to(torch.float32)


@dataclass
class ARCoefficients:
    """An accepted coefficient set and how it was drawn (seed, thresholds, rejections)."""
    coeffs: torch.Tensor
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.coeffs = check_coefficients(self.coeffs)

    @property
    def num_classes(self) -> int:
        return self.coeffs.shape[0]

    def save(self, path: str | os.PathLike) -> Path:
        """Writes {coeffs, metadata} with torch.save, through a temporary name."""
        return save_dict(path, {"coeffs": self.coeffs, "metadata": self.metadata})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ARCoefficients":
        payload = load_dict(path, "coefficients", "ARCoefficients")
        if "coeffs" not in payload:
            raise ValueError(f"coefficients: {path} is not a saved ARCoefficients file")
        return cls(payload["coeffs"], dict(payload.get("metadata", {})))


def relu_responses(perturbations: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """sum(ReLU(AR-filter response)) of each perturbation to each class: [N, K]."""
    return ops.ar_filter(perturbations, coeffs).clamp_min(0).sum((-2, -1))


def detect(x: torch.Tensor, coeffs: torch.Tensor | ARCoefficients) -> torch.Tensor:
    """Most likely class of each image (the lowest ReLU AR-filter response): int64 [N].

    x: a perturbation or poisoned image, uint8 or float32, NCHW (or CHW)."""
    if isinstance(coeffs, ARCoefficients):
        coeffs = coeffs.coeffs
    coeffs = check_coefficients(coeffs).to(x.device)
    single = x.dim() == 3
    scores = relu_responses(x.unsqueeze(0) if single else x, coeffs)
    labels = scores.argmin(dim=1)
    return labels[0] if single else labels


def _trials(b: torch.Tensor, numbers: torch.Tensor, which, trials: int, seed: int,
            size: int, crop: int) -> torch.Tensor:
    """Unscaled processes [M, len(which), C, size, size] of candidates b [M, C, 3, 3]:
    candidate m's trial t starts from the canvas of Philox (seed, m * trials + t)."""
    which = torch.as_tensor(list(which))
    if len(b) == 0:
        return torch.empty(0, len(which), b.shape[1], size, size)
    labels = torch.arange(len(b)).repeat_interleave(len(which))
    indices = (numbers[:, None] * trials + which).flatten()
    raw = ops.ar_generate(b, labels, indices, seed, size, size, crop, eps=None)
    return raw.unflatten(0, (len(b), len(which)))


def _norm_ok(raw: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Per candidate: every trial finite with an L2 norm of at most max_norm."""
    norms = raw.flatten(2).norm(dim=2)
    return torch.isfinite(norms).all(dim=1) & (norms <= max_norm).all(dim=1)


def sample_coefficients(num_classes: int, channels: int = 3, seed: int = 0,
                        min_response: float | None = None, max_norm: float = 50.0,
                        trials: int = 3, size: int = 32, crop: int = 4,
                        max_candidates: int = 2_000_000, block: int = 4096,
                        progress: bool = True) -> ARCoefficients:
    """Draws num_classes AR coefficient sets with the reference's acceptance tests.

    A candidate (per channel: randn(3,3), tap (2,2) zeroed, divided by its sum) is kept
    only if: no channel's tap sum is below MIN_TAP_SUM in magnitude ('tiny_sum'); it is
    finite ('nonfinite'); on `trials` canvases of size x size (crop `crop`) its process
    is finite with an L2 norm before scaling of at most max_norm ('norm'); and its last
    trial, scaled to unit L2 norm as the reference's generate(eps=1.0, p=2) returns it,
    has sum(ReLU(response)) >= min_response to every already-accepted class's AR filter
    ('response'), as in the reference's autoregressive_param_finder.py. Deterministic for
    a seed (numpy PCG64 for the taps, drawn in blocks that give the same sequence as one
    candidate at a time; candidate m's trials are the canvases of Philox key = seed,
    indices m*trials .. m*trials + trials - 1). metadata records the parameters, the count
    of every rejection reason and the accepted candidates' numbers.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels: expected a positive int, got {channels!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    min_response = default_min_response(num_classes) if min_response is None else float(min_response)
    if not np.isfinite(min_response) or not np.isfinite(max_norm) or max_norm <= 0:
        raise ValueError(f"min_response, max_norm: expected finite numbers (max_norm > 0), got "
                         f"{min_response!r}, {max_norm!r}")
    if trials < 1:
        raise ValueError(f"trials: expected at least 1, got {trials!r}")

    rng = np.random.Generator(np.random.PCG64(seed))
    accepted: list[torch.Tensor] = []
    accepted_candidates: list[int] = []  # lets anyone replay the acceptance tests
    rejections: Counter = Counter({reason: 0 for reason in REJECTION_REASONS})
    candidate = 0  # number of the first candidate of the current block
    bar = tqdm(total=num_classes, desc="AR coefficients", disable=not progress, leave=False)
    while len(accepted) < num_classes:
        if candidate >= max_candidates:
            raise RuntimeError(f"sample_coefficients: only {len(accepted)} of {num_classes} classes "
                               f"accepted after {max_candidates} candidates ({dict(rejections)}); "
                               "lower min_response or raise max_norm")
        count = min(block, max_candidates - candidate)
        numbers = torch.arange(candidate, candidate + count)
        candidate += count
        # The vectorised filters first (they do not depend on earlier acceptances) ...
        b = rng.standard_normal((count, channels, 3, 3))
        b[:, :, 2, 2] = 0.0
        sums = b.sum(axis=(2, 3))
        tiny = np.any(np.abs(sums) < MIN_TAP_SUM, axis=1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            b = torch.from_numpy(b / sums[:, :, None, None]).to(torch.float32)
        nonfinite = ~torch.isfinite(b).flatten(1).all(dim=1) & ~torch.from_numpy(tiny)
        rejections["tiny_sum"] += int(tiny.sum())
        rejections["nonfinite"] += int(nonfinite.sum())
        alive = torch.nonzero(~torch.from_numpy(tiny) & ~nonfinite).flatten()
        # Most candidates diverge: their first trial decides, so only the survivors of the
        # first trial have the other trials generated (the same canvases either way).
        raw = _trials(b[alive], numbers[alive], range(1), trials, seed, size, crop)
        first_ok = _norm_ok(raw, max_norm)
        more = _trials(b[alive[first_ok]], numbers[alive[first_ok]], range(1, trials), trials,
                       seed, size, crop)
        ok = first_ok.clone()
        ok[first_ok] = _norm_ok(more, max_norm)
        raw = torch.cat([raw[first_ok], more], dim=1)  # survivors of trial 0, all trials
        norms = raw.flatten(2).norm(dim=2)
        survivor = torch.cumsum(first_ok, 0) - 1  # alive position -> row of raw
        # ... then the greedy response test, in candidate order, on the survivors.
        for i in range(len(alive)):
            if len(accepted) == num_classes:
                break
            if not ok[i]:
                rejections["norm"] += 1
                continue
            j = survivor[i]
            gen = raw[j, -1] / norms[j, -1]
            if accepted and relu_responses(gen[None], torch.stack(accepted)).min() < min_response:
                rejections["response"] += 1
                continue
            accepted.append(b[alive[i]])
            accepted_candidates.append(int(numbers[alive[i]]))
            bar.set_postfix(rejections.items(), refresh=False)
            bar.update(1)
        else:
            continue
        # Stopped inside the block: candidates after the last accepted one were not examined.
        last = accepted_candidates[-1]
        examined = numbers <= last
        rejections["tiny_sum"] -= int(torch.from_numpy(tiny)[~examined].sum())
        rejections["nonfinite"] -= int(nonfinite[~examined].sum())
        candidate = last + 1
    bar.close()
    from .. import __version__
    metadata = {
        "method": "ar", "num_classes": num_classes, "channels": channels, "seed": seed,
        "min_response": min_response, "max_norm": max_norm, "trials": trials, "size": size,
        "crop": crop, "min_tap_sum": MIN_TAP_SUM, "candidates": candidate,
        "rejections": dict(rejections), "accepted_candidates": accepted_candidates,
        "poisonkit_version": __version__,
    }
    return ARCoefficients(torch.stack(accepted), metadata)


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


class ARPoison(Poison):
    """The AR poison: adds the perturbation of (key, sample index, class) to each image.

    A Poison (see poisonkit.poisons.base): call on a sample ``(image, label, index)``, a
    dict sample with label and index, or a batch ``(images, labels, indices)``; the output
    keeps the input's structure. The perturbation is computed in [0,1] units at the image's
    size, added, clamped to [0, 1] and rounded to nearest for uint8 input, so the same
    (key, index) gives the same image whatever the batch or worker. Apply it to the stored
    image before any augmentation (perturb-then-augment, as the reference).

    coefficients: a [K, C, 3, 3] tensor, an ARCoefficients, or a class count (then drawn
    with sample_coefficients(num_classes, seed=seed)). key: the owner's secret (default:
    128 random bits; the Philox generator uses keys.philox_key(key)).
    """

    needs_indices = True

    def __init__(self, coefficients, eps: float = 1.0, p: float | str = 2, crop: int = 4,
                 key: int | None = None, seed: int = 0, *, ratio: float = 1.0,
                 labels_getter="default", indices_getter="default"):
        if isinstance(coefficients, int) and not isinstance(coefficients, bool):
            coefficients = sample_coefficients(coefficients, seed=seed, progress=False)
        if isinstance(coefficients, ARCoefficients):
            coefficients = coefficients.coeffs
        coefficients = check_coefficients(coefficients).clone()
        p = ops._norm_p(p)
        if p not in (2.0, float("inf")):
            raise ValueError(f"p: expected 2 or inf, got {p!r}")
        if isinstance(eps, bool) or not (isinstance(eps, (int, float)) and 0 < eps < float("inf")):
            raise ValueError(f"eps: expected a positive finite number, got {eps!r}")
        if isinstance(crop, bool) or not isinstance(crop, int) or crop < 0:
            raise ValueError(f"crop: expected an int >= 0, got {crop!r}")
        super().__init__(coefficients.shape[0], ratio=ratio, key=key, labels_getter=labels_getter,
                         indices_getter=indices_getter)
        self.register_buffer("coeffs", coefficients)
        self.eps, self.p, self.crop = float(eps), p, crop

    @classmethod
    def preset(cls, name: str, coefficients=None, key: int | None = None, seed: int = 0,
               **overrides):
        """ARPoison with a dataset's defaults: 'cifar10', 'cifar100', 'svhn', 'stl10',
        'imagenet' (224x224). coefficients default to a freshly sampled set, or for the
        '*-published' presets to the reference's published set. overrides: a preset's
        entries (num_classes, crop, eps, p) or Poison options (ratio, getters)."""
        if name not in AR_PRESETS:
            raise ValueError(f"preset: expected one of {sorted(AR_PRESETS)}, got {name!r}")
        preset_keys = {*AR_PRESETS[name], "p"}
        cfg = {**AR_PRESETS[name], **{k: v for k, v in overrides.items() if k in preset_keys}}
        options = {k: v for k, v in overrides.items() if k not in preset_keys}
        if coefficients is None and "published" in cfg:
            from .ar_published import published_coefficients
            coefficients = published_coefficients(cfg["published"])
        return cls(cfg["num_classes"] if coefficients is None else coefficients, eps=cfg["eps"],
                   p=cfg.get("p", 2), crop=cfg["crop"], key=key, seed=seed, **options)

    @property
    def philox_key(self) -> int:
        """The 64-bit key of the Philox draws (the ops' and the DALI operator's `key`)."""
        return philox_key(self.key)

    def perturbation(self, labels: torch.Tensor, indices: torch.Tensor, height: int,
                     width: int) -> torch.Tensor:
        """float32 [N, C, height, width] perturbations on labels' device."""
        return ops.ar_generate(self.coeffs.to(labels.device), labels, indices, self.philox_key,
                               height, width, self.crop, self.eps, self.p)

    def apply(self, images, labels, indices):
        if images.shape[1] != self.coeffs.shape[1]:
            raise ValueError(f"image: expected {self.coeffs.shape[1]} channels, got shape "
                             f"{tuple(images.shape)}")
        return ops.ar_poison(images, self.coeffs.to(images.device), labels, indices,
                             self.philox_key, self.crop, self.eps, self.p)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, eps={self.eps}, p={self.p}, crop={self.crop}"
