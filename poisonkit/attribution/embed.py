"""Embeddings: a backbone's L2-normalised features of a set of images, computed in
batches without gradients, and cached on disk under a key that hashes the images' bytes
and the backbone's fingerprint (config and every weight): a change to either gives a new
key, so a stale embedding is never read. Cache files are written atomically (a temporary
name beside the file, then os.replace) and carry their key, checked on load."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .._io import atomic_write

CACHE_FORMAT = "poisonkit-embedding/1"


def content_digest(images: torch.Tensor) -> str:
    """sha256 of the images' shape, dtype and every byte."""
    t = images.detach().cpu().contiguous()
    h = hashlib.sha256(f"{tuple(t.shape)} {t.dtype};".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _check_images(images: torch.Tensor, what: str) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or len(images) == 0:
        raise ValueError(f"{what}: expected a non-empty [N, C, H, W] tensor, got "
                         f"{type(images).__name__} {tuple(getattr(images, 'shape', ()))}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(f"{what}: expected uint8 [0, 255] or float [0, 1] images, got {images.dtype}")


@torch.no_grad()
def embed(backbone, images: torch.Tensor, batch_size: int = 512, device: str | torch.device = "cpu",
          what: str = "images", verbose: bool = False) -> torch.Tensor:
    """float32 [N, D] unit-norm features of images (uint8 or float [0, 1] NCHW), on the CPU."""
    _check_images(images, what)
    backbone.check_shape(images.shape, what)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    device = torch.device(device)
    backbone = backbone.to(device).eval()
    out = []
    for i in tqdm(range(0, len(images), batch_size), desc=f"embed {what}", leave=False,
                  disable=not verbose):
        x = images[i:i + batch_size].to(device)
        x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
        out.append(F.normalize(backbone(x).float(), dim=1).cpu())
    return torch.cat(out)


def cache_key(backbone, images: torch.Tensor) -> str:
    return hashlib.sha256(f"{content_digest(images)} {backbone.fingerprint()}".encode()).hexdigest()


def cached_embed(backbone, images: torch.Tensor, cache_dir: str | os.PathLike | None, **kwargs) -> torch.Tensor:
    """embed(), read from cache_dir/<key>.pt when present, else computed and stored there.
    cache_dir None: no cache."""
    if cache_dir is None:
        return embed(backbone, images, **kwargs)
    _check_images(images, kwargs.get("what", "images"))
    key = cache_key(backbone, images)
    path = Path(cache_dir) / f"{key[:40]}.pt"
    if path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            if stored.get("format") == CACHE_FORMAT and stored.get("key") == key:
                return stored["features"]
        except Exception:  # a damaged cache file is recomputed, not trusted
            pass
    features = embed(backbone, images, **kwargs)
    record = {"format": CACHE_FORMAT, "key": key, "backbone": backbone.name, "features": features}
    atomic_write(path, lambda tmp: torch.save(record, tmp))
    return features
