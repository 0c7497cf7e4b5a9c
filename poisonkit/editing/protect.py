"""Protecting a set of images with the encoder attack: batched, on any device, resumable.

Images are cut into chunks; each finished chunk is saved (atomically) in a state folder
beside its settings, so a killed run resumes at the first missing chunk and a run with
other settings or other images refuses the folder instead of mixing results.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .._io import atomic_write, write_json
from .attack import (DEFAULT_EPS, DEFAULT_ITERS, DEFAULT_STEP, check_budget, encoder_attack,
                     latent_of, quantize, random_start, target_latent, to_signed)
from .vae import check_vae_input

SETTINGS = "settings.json"


@dataclass
class Protection:
    """protected: the images' protected copies (uint8 for uint8 input, else float [0, 1]);
    distances: float32 [iters + 1, N], each image's latent distance to the target before
    each PGD step and after the last (on the unquantised iterate)."""

    protected: torch.Tensor
    distances: torch.Tensor


def check_images(images) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.dtype not in (
            torch.uint8, torch.float32):
        desc = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) \
            else type(images).__name__
        raise ValueError(f"images: expected a uint8 [0, 255] or float32 [0, 1] NCHW tensor, got {desc}")
    if len(images) == 0:
        raise ValueError("images: no images (N = 0)")
    if images.dtype == torch.float32 and (not torch.isfinite(images).all()
                                          or images.min() < 0 or images.max() > 1):
        raise ValueError("images: float images must be finite and in [0, 1]")


def fingerprint(images: torch.Tensor) -> str:
    return hashlib.sha256(images.contiguous().cpu().numpy().tobytes()).hexdigest()[:16]


def _open_state(state: Path, settings: dict) -> None:
    """Creates the state folder with its settings, or checks an existing one matches."""
    path = state / SETTINGS
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved != settings:
            changed = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
            raise ValueError(f"state: {state} holds chunks of another run (settings differ in "
                             f"{changed}); use another state folder or remove it")
        return
    state.mkdir(parents=True, exist_ok=True)
    write_json(path, settings)


def protect(images: torch.Tensor, vae, *, target="grey", eps: float = DEFAULT_EPS,
            step: float = DEFAULT_STEP, iters: int = DEFAULT_ITERS, seed: int = 0,
            batch_size: int = 64, device: str | torch.device = "cpu",
            state: str | os.PathLike | None = None, vae_name: str = "",
            progress: bool = True) -> Protection:
    """Runs the encoder attack over images (uint8 or float [0, 1] NCHW) in batches.

    vae: a diffusers AutoencoderKL or an encoder callable (see attack.latent_of); it is
    moved to `device`. target: 'grey', 'zero' or a latent tensor. eps, step: in the VAE's
    [-1, 1] input units (PhotoGuard's). state: a folder for per-batch results; with it the
    run resumes where a previous one with the same settings stopped. vae_name names the
    VAE in the state's settings (so a resume with another VAE is refused)."""
    check_images(images)
    check_budget(eps, step, iters)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    check_vae_input(vae, tuple(images.shape))
    if isinstance(target, torch.Tensor) and state is not None:
        raise ValueError("state: resumable runs need a named target ('grey' or 'zero')")
    device = torch.device(device)
    if hasattr(vae, "to"):
        vae = vae.to(device)
    latent = latent_of(vae)
    target_name = target
    target = target_latent(latent, target, to_signed(images[:1]).to(device)) \
        if not isinstance(target, torch.Tensor) else target.to(device)

    state = Path(state) if state is not None else None
    if state is not None:
        _open_state(state, {"target": target_name, "eps": eps, "step": step, "iters": iters,
                            "seed": seed, "batch_size": batch_size, "vae": vae_name,
                            "images": fingerprint(images), "count": len(images),
                            "dtype": str(images.dtype)})
    protected, distances = [], []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="protect", unit="batch", disable=not progress):
        chunk_file = state / f"chunk_{start:07d}.pt" if state is not None else None
        if chunk_file is not None and chunk_file.is_file():
            saved = torch.load(chunk_file, weights_only=True)
            protected.append(saved["protected"])
            distances.append(saved["distances"])
            continue
        clean = images[start:start + batch_size]
        indices = torch.arange(start, start + len(clean))
        x = to_signed(clean).to(device)
        adv, history = encoder_attack(x, latent, target, eps, step, iters,
                                      random_start(tuple(x.shape), indices, seed))
        out = quantize(adv, clean.to(device), eps).cpu() if clean.dtype == torch.uint8 \
            else ((adv + 1) / 2).clamp(0, 1).cpu()
        if chunk_file is not None:
            payload = {"protected": out, "distances": history}
            atomic_write(chunk_file, lambda tmp: torch.save(payload, tmp))
        protected.append(out)
        distances.append(history)
    return Protection(torch.cat(protected), torch.cat(distances, dim=1))
