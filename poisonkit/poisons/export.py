"""Writes a poisoned copy of a dataset, a public manifest, and the owner's private key file.

Sources: an .npz (x_train, y_train, x_test, y_test: the training split is poisoned, the
test split copied) or an ImageFolder: a split root with train/ and test/ (or val/)
(train poisoned, the others copied, the layout kept) or a folder of class folders (every
image poisoned). Sample index = position in the training split (ImageFolder's sorted
order). Outputs: .npz (npz sources) or PNG ImageFolder trees (format='png').

Safety (issue 14):
- Everything is checked before any work: labels (integers in [0, K), test classes among
  the training classes), options, the output path, PNG name collisions.
- The folder is written under a staging name owned by this run, under a lock on the
  destination, and renamed into place (poisonkit._staging): a killed run leaves the
  destination absent or complete, and concurrent runs to other destinations are untouched.
- The published folder holds the data and manifest.json only. The key (128 random bits
  by default) and every per-class secret (AR coefficients, blur kernels, ...) go to a key
  file beside the folder (mode 0600, path printed); the manifest holds a salted scrypt
  check of the key and a dataset id that the key file repeats (poisonkit.keys).
- The manifest's counts are the files actually written, checked before publishing.
- Partial poisoning: `ratio` poisons a key-derived share of the training split; the
  manifest lists the poisoned sample indices (which samples, not how: not a secret).

Methods register with `register_method(name)`: a factory(ctx: ExportContext, **options)
returning an ExportPoison (apply, public parameters, secrets for the key file).
"""
from __future__ import annotations

import functools
import inspect
import json
import os
import secrets
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import PIL.Image
import torch
from torchvision.transforms.v2 import functional as F
from tqdm import tqdm

from .. import keys as keymod
from .._labels import check_labels
from .._outputs import check_inputs_apart
from .._staging import Staging
from ..data import load_npz
from ..image_folders import list_samples, split_folders, stem_collisions
from .base import Poison, check_ratio

FORMATS = ("npz", "png")
MANIFEST = "manifest.json"
MANIFEST_VERSION = 2


@dataclass(frozen=True)
class ExportContext:
    """What a method factory may use: the class count, the owner's 128-bit key, the share
    of samples to poison, and the training split when it is in memory (npz sources; None
    for ImageFolders)."""
    num_classes: int
    key: int
    train_images: torch.Tensor | None = None
    train_labels: torch.Tensor | None = None
    ratio: float = 1.0


@dataclass
class ExportPoison:
    """poison: the Poison (built with the context's ratio); public: parameters safe to
    publish; secrets: JSON-able per-class parameters that would let anyone regenerate the
    perturbation (written to the key file only)."""
    poison: Poison
    public: dict
    secrets: dict

    def apply(self, images: torch.Tensor, labels: torch.Tensor,
              indices: torch.Tensor) -> torch.Tensor:
        """images uint8 NCHW, labels and sample indices int64 [N] -> poisoned images."""
        return self.poison.poison_batch(images, labels, indices)

    def poisoned_indices(self, count: int) -> list[int]:
        """The sample indices in [0, count) this poison changes (its key-derived subset)."""
        return torch.nonzero(self.poison.poisoned_mask(torch.arange(count))).flatten().tolist()


METHODS: dict[str, Callable[..., ExportPoison]] = {}


def register_method(name: str):
    def deco(factory):
        METHODS[name] = factory
        return factory
    return deco


@register_method("ar")
def _ar(ctx: ExportContext, eps: float = 1.0, p: float | str = 2.0, crop: int = 4,
        seed: int | None = None, coefficients: str | None = None) -> ExportPoison:
    """AR (DESIGN 3.1). Coefficients: a saved set, or sampled with `seed` (by default a
    seed derived from the key, so they are as secret as the key)."""
    from ..transforms import ARPoison
    from .ar import ARCoefficients, sample_coefficients
    if coefficients:
        coeffs = ARCoefficients.load(coefficients)
    else:
        seed = keymod.derived_seed(ctx.key, "ar-coefficients") if seed is None else seed
        coeffs = sample_coefficients(ctx.num_classes, seed=seed, progress=False)
    if coeffs.num_classes < ctx.num_classes:
        raise ValueError(f"coefficients: {coeffs.num_classes} classes, but the labels need "
                         f"{ctx.num_classes}")
    poison = ARPoison(coeffs, eps=eps, p=p, crop=crop, key=keymod.philox_key(ctx.key),
                      ratio=ctx.ratio)
    return ExportPoison(poison,
                        {"eps": poison.eps, "p": str(poison.p), "crop": crop},
                        {"ar_coefficients": coeffs.coeffs.tolist(),
                         "coefficients_metadata": coeffs.metadata})


@register_method("classwise-blur")
def _classwise_blur(ctx: ExportContext, seed: int | None = None,
                    blur_parameter: float = 0.3) -> ExportPoison:
    """Class-wise blur (DESIGN 3.2). Kernels drawn as the reference does from `seed`; by
    default from 128 key-derived bits (seed 0 gives the reference's published kernels)."""
    from ..transforms import ClasswiseBlur
    if seed is None:  # numpy's legacy seeding takes 32-bit words
        bits = keymod.derived_seed(ctx.key, "classwise-blur-kernels", 128)
        seed = [(bits >> (32 * w)) & 0xFFFFFFFF for w in range(4)]
    elif seed == 0:
        warnings.warn("seed 0 gives the reference's published kernels: anyone can recreate "
                      "them", stacklevel=2)
    blur = ClasswiseBlur(ctx.num_classes, blur_parameter=blur_parameter, seed=seed, key=ctx.key,
                         ratio=ctx.ratio)
    return ExportPoison(blur,
                        {"blur_parameter": blur_parameter, "kernel_size": blur.kernels.shape[-1]},
                        {"blur_kernels": blur.kernels.tolist(), "seed": seed})



@register_method("lsp")
def _lsp(ctx: ExportContext, eps: float | None = None, patch: int = 8) -> ExportPoison:
    """LSP (DESIGN 3.6): every point drawn from the key (class tables included), so the key
    file's key is the only secret. eps defaults to the reference's 6/255."""
    from .lsp import DEFAULT_EPS, LSPPoison, lsp_features
    if ctx.train_images is not None:  # the patch must divide the images: refuse now
        lsp_features(*ctx.train_images.shape[1:], patch)
    poison = LSPPoison(ctx.num_classes, key=keymod.philox_key(ctx.key), patch=patch,
                       eps=DEFAULT_EPS if eps is None else eps, ratio=ctx.ratio)
    return ExportPoison(poison,
                        {"eps": poison.eps, "patch": patch, "class_sep": poison.class_sep}, {})


@register_method("ops")
def _ops(ctx: ExportContext) -> ExportPoison:
    """OPS (DESIGN 3.6): the reference's search over the training split, in memory (an
    .npz source). The chosen pixels go to the key file: they would show where to repair."""
    from .one_pixel import OnePixelShortcut
    if ctx.train_images is None:
        raise ValueError("method: 'ops' searches the whole training split in memory; give an "
                         ".npz source")
    poison = OnePixelShortcut.search(ctx.train_images, ctx.train_labels, ctx.num_classes,
                                     key=ctx.key, ratio=ctx.ratio)
    return ExportPoison(poison, {},
                        {"ops_rows": poison.rows.tolist(), "ops_cols": poison.cols.tolist(),
                         "ops_colours": poison.colours.tolist()})

def _crafted(ctx: ExportContext, method: str, eps: float | None = None,
             steps: int | None = None, max_iterations: int | None = None,
             train_epochs: int | None = None, model: str | None = None,
             state: str | None = None) -> ExportPoison:
    """EM, EM class-wise, TAP (DESIGN 3.6) through their eval conditions (the parameters
    they take: eps in 1/255 (8), steps, model; em, em-class: max_iterations; tap:
    train_epochs), crafted on the in-memory training split. The perturbation is the secret;
    it lives in the private, resumable crafting checkpoint `state` (never inside the
    published folder), too large for the key file."""
    from ..eval.conditions import Context, make_poison
    if ctx.train_images is None:
        raise ValueError(f"data: {method} is crafted on a whole .npz training split; got a folder")
    options = {k: v for k, v in {"eps": eps, "steps": steps, "max_iterations": max_iterations,
                                 "train_epochs": train_epochs, "model": model}.items()
               if v is not None}
    params = {**options, "state": state, "ratio": ctx.ratio, "key": ctx.key}
    spec = f"{method}:" + ",".join(f"{k}={v}" for k, v in params.items() if v is not None)
    poison_batch = make_poison(spec, Context(ctx.num_classes, tuple(ctx.train_images.shape[1:]),
                                             0, ctx.train_images, ctx.train_labels))
    # the condition hands back the crafted poison's bound poison_batch
    return ExportPoison(poison_batch.__self__, options, {"crafting_state": state})


for _method in ("em", "em-class", "tap"):
    register_method(_method)(functools.partial(_crafted, method=_method))


def _make_poison(method: str, ctx: ExportContext, options: dict) -> ExportPoison:
    factory = METHODS[method]
    try:
        inspect.signature(factory).bind(ctx, **options)
    except TypeError:
        takes = list(inspect.signature(factory).parameters)[1:]
        raise ValueError(f"options: method {method!r} takes {takes}, got "
                         f"{sorted(options)}") from None
    return factory(ctx, **options)


# --- sources ---------------------------------------------------------------------------

class _NpzSource:
    """An .npz: the training split in batches; the test split passes through."""
    layout = "npz"

    def __init__(self, path: Path, num_classes: int | None):
        self.splits = load_npz(path)
        self.num_classes = check_labels(self.splits["y_train"], self.splits["y_test"],
                                        num_classes)
        self.classes = [str(k) for k in range(self.num_classes)]
        self.counts = {"train": len(self.splits["x_train"]), "test": len(self.splits["x_test"])}

    def context(self, key: int, ratio: float) -> ExportContext:
        return ExportContext(self.num_classes, key, self.splits["x_train"], self.splits["y_train"],
                             ratio)

    def train_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        x, y = self.splits["x_train"], self.splits["y_train"]
        for start in range(0, len(x), batch_size):
            stop = min(start + batch_size, len(x))
            yield x[start:stop], y[start:stop], torch.arange(start, stop)

    def copied(self, split: str) -> Iterator[tuple[torch.Tensor, int, str]]:
        for i, (image, label) in enumerate(zip(self.splits["x_test"], self.splits["y_test"].tolist())):
            yield image, label, f"{i:07d}"

    def train_names(self) -> Callable[[int], str]:
        return lambda i: f"{i:07d}"

    def split_dir(self, split: str) -> Path:
        return Path(split)


def _read_rgb(path: Path) -> torch.Tensor:
    try:
        with PIL.Image.open(path) as image:
            return F.pil_to_tensor(image.convert("RGB"))
    except OSError as e:  # PIL's UnidentifiedImageError and truncated files
        raise ValueError(f"data: cannot read image {path} ({e})") from e


class _FolderSource:
    """An ImageFolder: a split root (train/ + test/ or val/) or a folder of class folders,
    one image at a time (sizes may differ). Output keeps each file's relative path, with
    .png for its extension."""

    def __init__(self, path: Path, num_classes: int | None):
        splits = split_folders(path)
        self.layout = "classes" if splits is None else "splits"
        self.roots = {"train": path} if splits is None else splits
        self.samples = {}
        self.samples["train"], self.classes = list_samples(self.roots["train"])
        for split, root in self.roots.items():
            if split != "train":
                self.samples[split], _ = list_samples(root, self.classes)
        if not self.samples["train"]:
            raise ValueError(f"data: {self.roots['train']} holds no images")
        collisions = [group for split in self.roots
                      for group in stem_collisions(self.samples[split], self.roots[split])]
        if collisions:
            shown = "; ".join(", ".join(g) for g in collisions[:10])
            raise ValueError(f"data: {len(collisions)} groups of files share a folder and stem "
                             f"and would be written to the same PNG ({shown}); rename them")
        self.num_classes = check_labels(np.array([y for _, y in self.samples["train"]]),
                                        None, len(self.classes) if num_classes is None
                                        else num_classes)
        self.counts = {split: len(s) for split, s in self.samples.items()}

    def context(self, key: int, ratio: float) -> ExportContext:
        return ExportContext(self.num_classes, key, ratio=ratio)

    def train_batches(self, batch_size: int):
        for index, (path, label) in enumerate(self.samples["train"]):
            yield _read_rgb(path)[None], torch.tensor([label]), torch.tensor([index])

    def copied(self, split: str):
        for path, label in self.samples[split]:
            yield _read_rgb(path), label, self._rel(split, path)

    def _rel(self, split: str, path: Path) -> str:
        """Path below the class folder, without extension."""
        return str(Path(*path.relative_to(self.roots[split]).parts[1:]).with_suffix(""))

    def train_names(self) -> Callable[[int], str]:
        return lambda i: self._rel("train", self.samples["train"][i][0])

    def split_dir(self, split: str) -> Path:
        return Path(split) if self.layout == "splits" else Path()


def _save_png(image: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    F.to_pil_image(image).save(path, format="PNG")


# --- checks before any work ----------------------------------------------------------

def _check_destination(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"out: {out_dir} is an existing file; expected a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MANIFEST).is_file():
            raise ValueError(f"out: {out_dir} is a non-empty folder that is not a poisoned "
                             "copy; the export replaces the whole folder, so give a new or "
                             "empty one")
        if not force:
            raise FileExistsError(f"out: {out_dir} already holds a poisoned copy; pass "
                                  "force=True (--force) to replace it")
    probe = out_dir.parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"out: {probe} is not writable")


def _check_key_file(key_file: Path, out_dir: Path, src: Path, force: bool) -> None:
    check_inputs_apart(key_file, [src], what="key_file")
    if key_file == out_dir or out_dir in key_file.parents:
        raise ValueError(f"key_file: {key_file} is inside the published folder {out_dir}; "
                         "the key must be kept apart from the data")
    if key_file.is_dir():
        raise IsADirectoryError(f"key_file: {key_file} is a folder; expected a file name")
    if key_file.exists() and not force and not _orphan_key_file(key_file, out_dir):
        raise FileExistsError(f"key_file: {key_file} exists (the key of another copy?); "
                              "pass --force or another --key-file")


def _orphan_key_file(key_file: Path, out_dir: Path) -> bool:
    """A key file a killed export to out_dir left behind: its dataset was never published."""
    try:
        record = keymod.read_key_file(key_file)
        manifest = json.loads((out_dir / MANIFEST).read_text()) if out_dir.is_dir() else {}
    except (OSError, ValueError):
        return False
    return (record.get("destination") == str(out_dir)
            and record.get("dataset_id") != manifest.get("dataset_id"))


def default_key_file(out_dir: str | os.PathLike) -> Path:
    """Where the key goes when no key_file is given: beside the published folder."""
    out_dir = Path(out_dir).resolve()
    return out_dir.with_name(f"{out_dir.name}.key.json")


# --- the export ----------------------------------------------------------------------

def poison_dataset(data: str | os.PathLike, out_dir: str | os.PathLike, method: str = "ar",
                   fmt: str | None = None, key: int | None = None,
                   key_file: str | os.PathLike | None = None, num_classes: int | None = None,
                   batch_size: int = 1024, force: bool = False, progress: bool = True,
                   ratio: float = 1.0, **options) -> Path:
    """Writes the poisoned copy of `data` into out_dir and returns its path
    (out_dir/<name>.npz, or out_dir/<name>/ for PNG), with out_dir/manifest.json, and the
    key file (default: default_key_file(out_dir)). key: None draws 128 random bits.
    ratio: the share of training samples poisoned, picked by the key (the manifest lists them).
    options: the method's parameters (AR: eps, p, crop, seed, coefficients; classwise-blur:
    seed, blur_parameter; LSP: eps, patch; OPS: none)."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {sorted(METHODS)}, got {method!r}")
    ratio = check_ratio(ratio)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if key is None:
        key = keymod.new_key()
    elif keymod.check_key(key).bit_length() < 64:
        warnings.warn(f"key: a {key.bit_length()}-bit key can be guessed, and with it the "
                      "perturbation regenerated; leave the key out for 128 random bits",
                      stacklevel=2)
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
    # the crafting checkpoint of EM / TAP holds the perturbation: never in the published folder
    check_inputs_apart(out_dir, [src] + ([options["state"]] if options.get("state") else []))
    _check_destination(out_dir, force)
    key_file = Path(key_file).resolve() if key_file is not None else default_key_file(out_dir)
    _check_key_file(key_file, out_dir, src, force)

    source = _FolderSource(src, num_classes) if is_folder else _NpzSource(src, num_classes)
    poison = _make_poison(method, source.context(key, ratio), options)
    dataset_id = secrets.token_hex(16)
    manifest = {"manifest_version": MANIFEST_VERSION, "method": method, "source": src.name,
                "output": out.name, "format": fmt, "layout": source.layout,
                "num_classes": source.num_classes, "parameters": poison.public,
                "dataset_id": dataset_id, "key_check": keymod.key_check(key),
                "poisoned_splits": ["train"], "ratio": ratio,
                "poisoned_indices": poison.poisoned_indices(source.counts["train"])}
    with Staging(out_dir) as stage:
        counts = _write_copy(source, poison, stage.path / out.name, fmt, batch_size, progress,
                             method)
        if counts != source.counts:
            raise RuntimeError(f"export: wrote {counts} images but the source holds "
                               f"{source.counts}; nothing was published")
        from .. import __version__
        (stage.path / MANIFEST).write_text(json.dumps(
            {**manifest, "counts": counts, "poisonkit_version": __version__}, indent=2))
        keymod.write_key_file(key_file, {
            "key": key, "dataset_id": dataset_id, "destination": str(out_dir),
            "method": method, "philox_key": hex(keymod.philox_key(key)),
            "parameters": poison.public, "secrets": poison.secrets})
        stage.publish()
    print(f"key file (keep it private; it regenerates the perturbation): {key_file}",
          file=sys.stderr)
    return out


def _write_copy(source, poison: ExportPoison, out: Path, fmt: str, batch_size: int,
                progress: bool, method: str) -> dict:
    """Writes the poisoned copy to `out`; returns the image counts found in what was written."""
    poisoned = []
    name_of = source.train_names()
    train_dir = source.split_dir("train")
    with tqdm(total=source.counts["train"], desc=f"poison ({method})", unit="img",
              disable=not progress) as bar:
        for x, y, idx in source.train_batches(batch_size):
            z = poison.apply(x, y, idx)
            if fmt == "npz":
                poisoned.append(z)
            else:
                for image, label, i in zip(z, y.tolist(), idx.tolist()):
                    _save_png(image, out / train_dir / source.classes[label] / f"{name_of(i)}.png")
            bar.update(len(x))
    if fmt == "npz":
        splits = source.splits
        with open(out, "wb") as f:
            np.savez(f, x_train=torch.cat(poisoned).permute(0, 2, 3, 1).numpy(),
                     y_train=splits["y_train"].numpy(),
                     x_test=splits["x_test"].permute(0, 2, 3, 1).numpy(),
                     y_test=splits["y_test"].numpy())
        return _npz_counts(out)
    for split in source.counts:
        if split != "train":
            for image, label, name in source.copied(split):
                _save_png(image, out / source.split_dir(split) / source.classes[label] / f"{name}.png")
    return {split: sum(1 for _ in (out / source.split_dir(split)).rglob("*.png"))
            for split in source.counts}


def _npz_counts(path: Path) -> dict:
    """Rows of x_train / x_test in a written .npz, read from the array headers."""
    counts = {}
    with zipfile.ZipFile(path) as z:
        for split in ("train", "test"):
            with z.open(f"x_{split}.npy") as f:
                version = np.lib.format.read_magic(f)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                counts[split] = header(f)[0][0]
    return counts

