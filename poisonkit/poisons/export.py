"""Writes a poisoned copy of a dataset plus a manifest (method, parameters, a hash of the
key, package version, per-split counts).

Sources: an .npz (x_train, y_train, x_test, y_test; the training split is poisoned, the
test split copied) or an ImageFolder directory (every image poisoned, sample index = its
position in ImageFolder's sorted order). Outputs: .npz (npz sources) or a PNG ImageFolder
(format='png'). The whole output folder is written under a hidden temporary name beside
it and renamed into place at the end, so an interrupted or killed export leaves the
destination absent or complete, never partial; the next run clears its leftovers. The
source is never overwritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import PIL.Image
import torch
from torchvision.transforms.v2 import functional as F
from tqdm import tqdm

from ..data import load_npz

METHODS = ("ar", "classwise-blur", "em", "em-class", "tap")
# Crafted by optimisation on the whole training split (its parameters: `options`).
CRAFTED = ("em", "em-class", "tap")
FORMATS = ("npz", "png")


def key_hash(key: int) -> str:
    """A short SHA-256 of the key, so a manifest identifies a key without revealing it."""
    return hashlib.sha256(str(int(key)).encode()).hexdigest()[:16]


def _staging_names(out_dir: Path) -> tuple[Path, Path]:
    """(the folder an export writes into, where an earlier copy waits while replaced)."""
    tag = f"{out_dir.name}.{os.getpid()}"
    return out_dir.with_name(f".{tag}.partial"), out_dir.with_name(f".{tag}.old")


def _clear_leftovers(out_dir: Path) -> None:
    """Removes what killed exports into out_dir left beside it."""
    for pattern in (f".{out_dir.name}.*.partial", f".{out_dir.name}.*.old"):
        for leftover in out_dir.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _publish(stage: Path, out_dir: Path, old: Path) -> None:
    """Moves the finished folder into place; an earlier copy is moved aside first and
    removed only afterwards (a kill in between leaves out_dir absent, not partial)."""
    if out_dir.exists():
        out_dir.rename(old)
    stage.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _crafted_spec(method: str, options: str, key: int, out_dir: Path) -> str:
    """The eval-condition spec of a crafted poison, checked before any work; its private
    checkpoint (state=) must not sit in the published folder."""
    from ..eval.conditions import check_spec, parse_spec
    spec = f"{method}:{','.join(filter(None, [options, f'key={key}']))}"
    state = parse_spec(spec)[2].get("state")
    if state is not None and out_dir in Path(str(state)).resolve().parents:
        raise ValueError(f"options: state={state} lies inside the published folder {out_dir}; "
                         "the crafting checkpoint holds the secret perturbation, keep it elsewhere")
    check_spec("poison", spec)
    return spec


def _make_poison(method: str, num_classes: int, out_dir: Path, key: int, eps: float, p: float,
                 crop: int, seed: int, coefficients: str | None, source=None, spec: str = ""):
    """(function images, labels, indices -> images, parameters for the manifest)."""
    if method in CRAFTED:
        from ..eval.conditions import Context, make_poison, parse_spec
        x, y = source.splits["x_train"], source.splits["y_train"]
        apply = make_poison(spec, Context(num_classes, tuple(x.shape[1:]), 0, x, y))
        options = {k: v for k, v in parse_spec(spec)[2].items() if k not in ("key", "state")}
        return apply, {"options": options, "key_sha256": key_hash(key)}
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
                   batch_size: int = 1024, force: bool = False, progress: bool = True,
                   options: str = "") -> Path:
    """Writes the poisoned copy of `data` into out_dir and returns its path
    (out_dir/<name>.npz, or out_dir/<name>/ for PNG), with out_dir/manifest.json.
    options: parameters of a crafted method (em, em-class, tap) as the eval condition
    takes them, 'steps=5,state=PRIVATE/em.pt' (eps and step in 1/255)."""
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
    if method in CRAFTED and is_folder:
        raise ValueError(f"data: {method} is crafted on a whole .npz training split; got a folder")
    if is_folder and fmt == "npz":
        raise ValueError("format: an ImageFolder source can only be written as 'png'")
    if not is_folder and src.suffix != ".npz":
        raise ValueError(f"data: expected an .npz file or an ImageFolder directory, got {src}")
    out_dir = Path(out_dir).resolve()
    out = out_dir / (src.name if fmt == "npz" else src.stem)
    if out == src or src in out.parents or (is_folder and src in out_dir.parents):
        raise ValueError(f"out: {out} would overwrite or sit inside the source {src}; "
                         "refusing")
    if not force and (out.exists() or (out_dir / "manifest.json").exists()):
        raise FileExistsError(f"out: {out_dir} already holds a poisoned copy; pass force=True "
                              "(--force) to replace it")
    ours = {out.name, "manifest.json", "ar_coefficients.pt"}
    if out_dir.is_dir() and any(entry.name not in ours for entry in out_dir.iterdir()):
        raise ValueError(f"out: {out_dir} holds files other than a poisoned copy; the export "
                         "replaces the whole folder, so give a new or empty one")

    spec = _crafted_spec(method, options, key, out_dir) if method in CRAFTED else ""
    source = _FolderSource(src) if is_folder else _NpzSource(src)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(out_dir)
    stage, old = _staging_names(out_dir)
    stage.mkdir()
    try:
        _write_copy(source, stage, stage / out.name, src, fmt, is_folder, method, key, eps, p,
                    crop, seed, coefficients, batch_size, progress, spec)
        _publish(stage, out_dir, old)
    except BaseException:  # KeyboardInterrupt (SIGINT) included: nothing partial stays
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out


def _write_copy(source, stage: Path, out: Path, src: Path, fmt: str, is_folder: bool,
                method: str, key: int, eps: float, p: float, crop: int, seed: int,
                coefficients: str | None, batch_size: int, progress: bool, spec: str) -> None:
    """Writes the poisoned copy, its coefficients (AR) and the manifest into stage."""
    apply, params = _make_poison(method, len(source.classes), stage, key, eps, p, crop, seed,
                                 coefficients, source, spec)
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
                    _save_png(image, out / split / source.classes[label] / f"{name}.png")
            bar.update(len(x))
    if fmt == "npz":
        splits = source.splits
        arrays = {"x_train": torch.cat(poisoned).permute(0, 2, 3, 1).numpy(),
                  "y_train": splits["y_train"].numpy(),
                  "x_test": splits["x_test"].permute(0, 2, 3, 1).numpy(),
                  "y_test": splits["y_test"].numpy()}
        with open(out, "wb") as f:
            np.savez(f, **arrays)
    elif not is_folder:  # the clean test split of an npz, as PNGs beside the poisoned train
        for i, (image, label) in enumerate(zip(source.splits["x_test"],
                                               source.splits["y_test"].tolist())):
            _save_png(image, out / "test" / source.classes[label] / f"{i:07d}.png")
    from .. import __version__
    manifest = {"method": method, "source": str(src), "output": out.name, "format": fmt,
                "parameters": params, "poisonkit_version": __version__,
                "counts": source.counts, "poisoned_splits": ["train"]}
    (stage / "manifest.json").write_text(json.dumps(manifest, indent=2))
