"""Writes a poisoned copy of a dataset plus a manifest (method, parameters, a hash of the
key, package version, per-split counts).

Sources: an .npz (x_train, y_train, x_test, y_test; the training split is poisoned, the
test split copied) or an ImageFolder directory (every image poisoned, sample index = its
position in ImageFolder's sorted order). Outputs: .npz (npz sources) or a PNG ImageFolder
(format='png'). Everything is written under a temporary name and renamed, and the source
is never overwritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import PIL.Image
import torch
from torchvision.transforms.v2 import functional as F
from tqdm import tqdm

from ..data import load_npz

METHODS = ("ar", "classwise-blur")
FORMATS = ("npz", "png")


def key_hash(key: int) -> str:
    """A short SHA-256 of the key, so a manifest identifies a key without revealing it."""
    return hashlib.sha256(str(int(key)).encode()).hexdigest()[:16]


def _write_file_atomic(path: Path, write: Callable) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _replace_dir(tmp: Path, out: Path) -> None:
    """Moves a finished folder into place, removing an earlier copy only afterwards."""
    old = out.with_name(out.name + ".old")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _make_poison(method: str, num_classes: int, out_dir: Path, key: int, eps: float, p: float,
                 crop: int, seed: int, coefficients: str | None):
    """(function images, labels, indices -> images, parameters for the manifest)."""
    if method == "ar":
        from ..transforms import ARPoison
        from .ar import ARCoefficients, sample_coefficients
        coeffs = (ARCoefficients.load(coefficients) if coefficients
                  else sample_coefficients(num_classes, seed=seed))
        if coeffs.num_classes < num_classes:
            raise ValueError(f"coefficients: {coeffs.num_classes} classes, but the labels need "
                             f"{num_classes}")
        poison = ARPoison(coeffs, eps=eps, p=p, crop=crop, key=key)
        saved = coeffs.save(out_dir / "ar_coefficients.pt")
        params = {"eps": eps, "p": str(p), "crop": crop, "key_sha256": key_hash(key),
                  "coefficients": saved.name, "coefficients_metadata": coeffs.metadata}
        return lambda x, y, i: poison(x, y, i)[0], params
    from ..transforms import ClasswiseBlur
    poison = ClasswiseBlur(num_classes, seed=seed)
    return lambda x, y, i: poison(x, y)[0], {"seed": seed, "num_classes": num_classes}


class _NpzSource:
    """Batches of the training split of an .npz; the test split passes through."""

    def __init__(self, path: Path):
        self.splits = load_npz(path)
        self.classes = [str(k) for k in range(int(self.splits["y_train"].max()) + 1)]
        self.counts = {"train": len(self.splits["x_train"]), "test": len(self.splits["x_test"])}

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        x, y = self.splits["x_train"], self.splits["y_train"]
        for start in range(0, len(x), batch_size):
            stop = min(start + batch_size, len(x))
            yield x[start:stop], y[start:stop], torch.arange(start, stop)


class _FolderSource:
    """One image at a time from an ImageFolder (images may differ in size)."""

    def __init__(self, path: Path):
        from torchvision.datasets import ImageFolder
        self.folder = ImageFolder(str(path))
        self.classes = self.folder.classes
        self.counts = {"train": len(self.folder.samples)}

    def batches(self, batch_size: int):
        for index, (path, label) in enumerate(self.folder.samples):
            with PIL.Image.open(path) as image:
                x = F.pil_to_tensor(image.convert("RGB"))
            yield x[None], torch.tensor([label]), torch.tensor([index])

    def name_of(self, index: int) -> str:
        return Path(self.folder.samples[index][0]).stem


def _save_png(image: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    F.to_pil_image(image).save(path, format="PNG")


def poison_dataset(data: str | os.PathLike, out_dir: str | os.PathLike, method: str = "ar",
                   fmt: str | None = None, key: int = 0, eps: float = 1.0, p: float = 2.0,
                   crop: int = 4, seed: int = 0, coefficients: str | None = None,
                   batch_size: int = 1024, force: bool = False, progress: bool = True) -> Path:
    """Writes the poisoned copy of `data` into out_dir and returns its path
    (out_dir/<name>.npz, or out_dir/<name>/ for PNG), with out_dir/manifest.json."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    src = Path(data).resolve()
    if not src.exists():
        raise FileNotFoundError(f"data: no such file or folder {src}")
    is_folder = src.is_dir()
    fmt = fmt or ("png" if is_folder else "npz")
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {FORMATS}, got {fmt!r}")
    if is_folder and fmt == "npz":
        raise ValueError("format: an ImageFolder source can only be written as 'png'")
    if not is_folder and src.suffix != ".npz":
        raise ValueError(f"data: expected an .npz file or an ImageFolder directory, got {src}")
    out_dir = Path(out_dir).resolve()
    out = out_dir / (src.name if fmt == "npz" else src.stem)
    if out == src or src in out.parents or (is_folder and src in out_dir.parents):
        raise ValueError(f"out: {out} would overwrite or sit inside the source {src}; "
                         "refusing")
    manifest_path = out_dir / "manifest.json"
    if not force and (out.exists() or manifest_path.exists()):
        raise FileExistsError(f"out: {out_dir} already holds a poisoned copy; pass force=True "
                              "(--force) to replace it")

    source = _FolderSource(src) if is_folder else _NpzSource(src)
    out_dir.mkdir(parents=True, exist_ok=True)
    apply, params = _make_poison(method, len(source.classes), out_dir, key, eps, p, crop, seed,
                                 coefficients)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    poisoned = []
    total = source.counts["train"]
    with tqdm(total=total, desc=f"poison ({method})", unit="img", disable=not progress) as bar:
        for x, y, idx in source.batches(batch_size):
            z = apply(x, y, idx)
            if fmt == "npz":
                poisoned.append(z)
            else:
                for image, label, i in zip(z, y.tolist(), idx.tolist()):
                    name = source.name_of(i) if is_folder else f"{i:07d}"
                    split = Path() if is_folder else Path("train")
                    _save_png(image, tmp / split / source.classes[label] / f"{name}.png")
            bar.update(len(x))
    if fmt == "npz":
        splits = source.splits
        arrays = {"x_train": torch.cat(poisoned).permute(0, 2, 3, 1).numpy(),
                  "y_train": splits["y_train"].numpy(),
                  "x_test": splits["x_test"].permute(0, 2, 3, 1).numpy(),
                  "y_test": splits["y_test"].numpy()}
        _write_file_atomic(out, lambda f: np.savez(f, **arrays))
    else:
        if not is_folder:  # the clean test split of an npz, as PNGs beside the poisoned train
            for i, (image, label) in enumerate(zip(source.splits["x_test"],
                                                   source.splits["y_test"].tolist())):
                _save_png(image, tmp / "test" / source.classes[label] / f"{i:07d}.png")
        _replace_dir(tmp, out)
    from .. import __version__
    manifest = {"method": method, "source": str(src), "output": out.name, "format": fmt,
                "parameters": params, "poisonkit_version": __version__,
                "counts": source.counts, "poisoned_splits": ["train"]}
    _write_file_atomic(manifest_path, lambda f: f.write(json.dumps(manifest, indent=2).encode()))
    return out
