"""Writes a poisoned copy of an .npz dataset (the training split poisoned, the test split
copied) plus a manifest: method, parameters, a hash of the key, package version, counts.

Files are written to temporary names and renamed, and the source is never overwritten.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data import load_npz

METHODS = ("ar", "classwise-blur")


def key_hash(key: int) -> str:
    """A short SHA-256 of the key, so a manifest identifies a key without revealing it."""
    return hashlib.sha256(str(int(key)).encode()).hexdigest()[:16]


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _poison_fn(method: str, num_classes: int, out_dir: Path, key: int, eps: float, p: float,
               crop: int, seed: int, coefficients: str | None):
    """(batch function images, labels, indices -> images, parameters for the manifest)."""
    if method == "ar":
        from ..transforms import ARPoison
        from .ar import ARCoefficients, sample_coefficients
        coeffs = (ARCoefficients.load(coefficients) if coefficients
                  else sample_coefficients(num_classes, seed=seed))
        if coeffs.num_classes < num_classes:
            raise ValueError(f"coefficients: {coeffs.num_classes} classes, but the labels need "
                             f"{num_classes}")
        saved = coeffs.save(out_dir / "ar_coefficients.pt")
        poison = ARPoison(coeffs, eps=eps, p=p, crop=crop, key=key)
        params = {"eps": eps, "p": str(p), "crop": crop, "key_sha256": key_hash(key),
                  "coefficients": saved.name, "coefficients_metadata": coeffs.metadata}
        return lambda x, y, i: poison(x, y, i)[0], params
    from ..transforms import ClasswiseBlur
    poison = ClasswiseBlur(num_classes, seed=seed)
    return lambda x, y, i: poison(x, y)[0], {"seed": seed, "num_classes": num_classes}


def poison_npz(data: str | os.PathLike, out_dir: str | os.PathLike, method: str = "ar",
               key: int = 0, eps: float = 1.0, p: float = 2.0, crop: int = 4, seed: int = 0,
               coefficients: str | None = None, batch_size: int = 1024, force: bool = False,
               progress: bool = True) -> Path:
    """Poisons data's training split into out_dir/<data's name>; returns that path."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    src = Path(data)
    if src.is_dir():
        raise ValueError(f"data: {src} is a folder; only .npz datasets are supported")
    out_dir = Path(out_dir)
    out = out_dir / src.name
    if out.resolve() == src.resolve():
        raise ValueError(f"out: {out} is the source dataset; refusing to overwrite it")
    manifest_path = out_dir / "manifest.json"
    if not force and (out.exists() or manifest_path.exists()):
        raise FileExistsError(f"out: {out_dir} already holds a poisoned copy; pass force=True "
                              "(--force) to replace it")
    splits = load_npz(src)
    x, y = splits["x_train"], splits["y_train"]
    num_classes = int(y.max()) + 1
    out_dir.mkdir(parents=True, exist_ok=True)
    apply, params = _poison_fn(method, num_classes, out_dir, key, eps, p, crop, seed,
                               coefficients)
    poisoned = torch.empty_like(x)
    for start in tqdm(range(0, len(x), batch_size), desc=f"poison ({method})", disable=not progress):
        stop = min(start + batch_size, len(x))
        poisoned[start:stop] = apply(x[start:stop], y[start:stop], torch.arange(start, stop))
    arrays = {"x_train": poisoned.permute(0, 2, 3, 1).numpy(), "y_train": y.numpy(),
              "x_test": splits["x_test"].permute(0, 2, 3, 1).numpy(), "y_test": splits["y_test"].numpy()}
    _write_atomic(out, lambda f: np.savez(f, **arrays))
    from .. import __version__
    manifest = {"method": method, "source": str(src.resolve()), "output": out.name,
                "parameters": params, "poisonkit_version": __version__,
                "counts": {"train": len(x), "test": len(splits["x_test"])},
                "poisoned_splits": ["train"]}
    _write_atomic(manifest_path, lambda f: f.write(json.dumps(manifest, indent=2).encode()))
    return out
