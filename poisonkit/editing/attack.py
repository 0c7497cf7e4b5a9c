"""PhotoGuard's encoder attack (Salman et al., ICML 2023, MadryLab/photoguard): L-inf PGD
that pulls the latent of x + delta toward a target latent, so an editing model that starts
from that latent edits something else (a grey image) instead of the photo.

As the reference (demo/app.py `pgd`, notebooks/demo_simple_attack_img2img.ipynb):
images in the VAE's [-1, 1] range; a uniform random start in [-eps, eps]; at step i of
`iters` a step size decaying linearly from `step` to step / 100,
step_i = step - (step - step / 100) / iters * i; a signed-gradient descent step on
||E(x_adv) - target||_2; then projection onto the eps ball around x and clamping to
[-1, 1]. The latent is the encoder posterior's mean (`latent_dist.mean`, as the
reference), not a sample. The reference's loss is the norm over the whole batch; its
gradient's sign per image equals that of the per-image norm used here (a positive factor
apart), so batching does not change the attack.

Budgets, in the [-1, 1] units the reference uses: its img2img notebook eps 0.06, step 0.02,
1000 iterations, target the zero latent; its demo eps 0.12, step 0.01, 200 iterations,
target the latent of a flat grey image. poisonkit's defaults: eps 0.06, step 0.02 (the
img2img notebook's) against the grey target (the demo's), 200 iterations (the demo's).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

DEFAULT_EPS = 0.06
DEFAULT_STEP = 0.02
DEFAULT_ITERS = 200
TARGETS = ("grey", "zero")


def latent_of(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """x in [-1, 1] -> latent tensor, for a diffusers AutoencoderKL (its encode's
    latent_dist.mean) or any callable returning a tensor or an object with latent_dist."""
    encode = model.encode if hasattr(model, "encode") else model
    if not callable(encode):
        raise TypeError(f"vae: expected an AutoencoderKL or an encoder callable, got "
                        f"{type(model).__name__}")

    def latent(x: torch.Tensor) -> torch.Tensor:
        out = encode(x)
        out = getattr(out, "latent_dist", out)
        out = getattr(out, "mean", out) if not isinstance(out, torch.Tensor) else out
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"vae: the encoder returned {type(out).__name__}; expected a tensor "
                            "or an object with latent_dist.mean")
        return out
    return latent


def check_budget(eps: float, step: float, iters: int) -> None:
    for name, value in (("eps", eps), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value <= 0:
            raise ValueError(f"{name}: expected a positive finite number (in the VAE's [-1, 1] "
                             f"input units), got {value!r}")
    if eps > 2:
        raise ValueError(f"eps: {eps} exceeds the whole [-1, 1] range (2)")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters: expected a positive int, got {iters!r}")


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] NCHW -> float32 in [-1, 1]."""
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1
    if images.dtype != torch.float32:
        raise ValueError(f"images: expected uint8 or float32, got {images.dtype}")
    return images * 2 - 1


def target_latent(latent: Callable, target, like: torch.Tensor) -> torch.Tensor:
    """The latent the attack pulls toward, for images shaped like `like` ([-1, 1]):
    'grey' (a flat 50% grey image's latent), 'zero', or a latent tensor (broadcast)."""
    if isinstance(target, torch.Tensor):
        return target.to(like.device, torch.float32)
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {TARGETS} or a latent tensor, got {target!r}")
    with torch.no_grad():
        grey = latent(torch.zeros_like(like[:1]))
    return grey if target == "grey" else torch.zeros_like(grey)


def random_start(shape: tuple[int, ...], indices: torch.Tensor, seed: int) -> torch.Tensor:
    """Uniform [-1, 1) noise per image, a function of (seed, image index) only, so results
    do not depend on the batch or chunk an image falls in."""
    g = torch.Generator()
    out = torch.empty(shape)
    for row, index in enumerate(indices.tolist()):
        g.manual_seed((seed * 1_000_003 + index) % 2**63)
        out[row] = torch.rand(shape[1:], generator=g) * 2 - 1
    return out


def encoder_attack(x: torch.Tensor, latent: Callable, target: torch.Tensor, eps: float = DEFAULT_EPS,
                   step: float = DEFAULT_STEP, iters: int = DEFAULT_ITERS,
                   start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch: x float32 NCHW in [-1, 1]; latent: x -> latent (latent_of); target: the
    target latent. start: uniform [-1, 1) noise of x's shape (scaled by eps; None: no
    random start). Returns (x_adv in [-1, 1] within eps of x, distances [iters + 1, N]:
    ||latent(x_adv) - target||_2 per image before each step and after the last)."""
    check_budget(eps, step, iters)
    x = x.detach()
    adv = x if start is None else x + eps * start.to(x.device)
    history = []
    for i in range(iters):
        step_i = step - (step - step / 100) / iters * i
        adv = adv.detach().requires_grad_(True)
        distance = (latent(adv) - target).flatten(1).norm(dim=1)
        grad, = torch.autograd.grad(distance.sum(), adv)
        history.append(distance.detach())
        adv = adv.detach() - grad.sign() * step_i
        adv = torch.minimum(torch.maximum(adv, x - eps), x + eps).clamp(-1, 1)
    with torch.no_grad():
        history.append((latent(adv) - target).flatten(1).norm(dim=1))
    return adv, torch.stack(history).cpu()


def quantize(adv: torch.Tensor, clean: torch.Tensor, eps: float) -> torch.Tensor:
    """x_adv in [-1, 1] -> uint8, rounded to nearest but kept inside the eps ball around the
    uint8 clean image (whose pixels are integers, so the ball's bounds round inward)."""
    pixels = (adv + 1) * 127.5
    radius = eps * 127.5
    low = (clean.float() - radius).ceil().clamp(0, 255)
    high = (clean.float() + radius).floor().clamp(0, 255)
    return torch.minimum(torch.maximum(pixels.round(), low), high).to(torch.uint8)
