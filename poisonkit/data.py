"""Datasets: the .npz layout used across poisonkit (x_train uint8 NHWC, y_train int64,
x_test, y_test), found through an argument or $POISONKIT_DATA; torchvision CIFAR-10/100
and ImageFolder trees; the poisoned in-memory dataset and its loaders."""
from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def data_path(path: str | os.PathLike | None = None) -> Path | None:
    """The dataset path: the argument, else $POISONKIT_DATA, else None."""
    chosen = path if path is not None else os.environ.get("POISONKIT_DATA")
    return Path(chosen) if chosen else None


def load_npz(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Loads an .npz dataset as tensors: images NCHW uint8, labels int64."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data: no such file {path}")
    with np.load(path) as f:
        missing = [k for k in NPZ_KEYS if k not in f]
        if missing:
            raise ValueError(f"data: {path} lacks arrays {missing}; expected {NPZ_KEYS}")
        out = {}
        for split in ("train", "test"):
            x, y = f[f"x_{split}"], f[f"y_{split}"]
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
                raise ValueError(f"data: x_{split} must be uint8 [N, H, W, C] with C 1 or 3, "
                                 f"got {x.dtype} {x.shape}")
            if not np.issubdtype(y.dtype, np.integer):  # a float label would be truncated
                raise ValueError(f"data: y_{split} must hold integer class labels, got dtype {y.dtype}")
            if y.shape != (x.shape[0],):
                raise ValueError(f"data: y_{split} must have shape ({x.shape[0]},), got {y.shape}")
            out[f"x_{split}"] = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
            out[f"y_{split}"] = torch.from_numpy(y.astype(np.int64))
    return out


def synthetic_images(n: int = 64, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Procedural stand-in images, uint8 NCHW, and 10-class labels, for when no dataset is
    available offline. The class decides the shape drawn over a random colour gradient
    (disk, square, ring, horizontal bar, vertical bar; classes 5-9 draw it darker rather
    than lighter than the background), so the classes can be learnt; position, size and
    colours are random."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    labels = torch.arange(n) % 10
    base = 0.25 + 0.5 * torch.rand(n, 3, 1, 1, generator=g)
    slope = 0.4 * (torch.rand(n, 3, 2, generator=g) - 0.5)
    img = base + slope[..., 0, None, None] * yy + slope[..., 1, None, None] * xx
    cy, cx = 0.3 + 0.4 * torch.rand(2, n, 1, 1, generator=g)
    r = 0.12 + 0.1 * torch.rand(n, 1, 1, generator=g)
    dy, dx = (yy - cy).abs(), (xx - cx).abs()
    dist = (dy ** 2 + dx ** 2).sqrt()
    shapes = torch.stack([dist < r, torch.maximum(dy, dx) < r, (dist < r) & (dist > 0.55 * r),
                          (dy < 0.35 * r) & (dx < 1.8 * r), (dx < 0.35 * r) & (dy < 1.8 * r)], 1)
    mask = shapes[torch.arange(n), labels % 5].unsqueeze(1)
    shift = (0.2 + 0.3 * torch.rand(n, 3, 1, 1, generator=g)) * torch.where(labels < 5, 1.0, -1.0)[:, None, None, None]
    img = torch.where(mask, img + shift, img)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels


# --------------------------------------------------------------------------------------
# Datasets for the evaluation harness: one in-memory layout whatever the source.

@dataclass
class ImageDataset:
    """Train and test splits in memory: images uint8 NCHW, labels int64 [N]."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    source: str

    def __post_init__(self):
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] not in (1, 3) or len(x) == 0:
                raise ValueError(f"data: x_{split} must be non-empty uint8 [N, C, H, W] with C 1 or 3, "
                                 f"got {x.dtype} {tuple(x.shape)}")
            if tuple(y.shape) != (len(x),):
                raise ValueError(f"data: y_{split} must have shape ({len(x)},), got {tuple(y.shape)}")
            if y.min() < 0 or y.max() >= self.num_classes:
                raise ValueError(f"data: y_{split} must hold class indices in [0, {self.num_classes}), "
                                 f"got values in [{int(y.min())}, {int(y.max())}]")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"data: train and test images differ in shape: "
                             f"{tuple(self.x_train.shape[1:])} vs {tuple(self.x_test.shape[1:])}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "ImageDataset":
        """A class-balanced-in-expectation random subset (the .npz files are sorted by class,
        so a prefix would drop whole classes)."""
        g = torch.Generator().manual_seed(seed)
        pick = lambda n, k: torch.randperm(n, generator=g)[:k].sort().values if k is not None else torch.arange(n)
        i, j = pick(len(self.x_train), train), pick(len(self.x_test), test)
        return ImageDataset(self.x_train[i], self.y_train[i], self.x_test[j], self.y_test[j],
                            self.num_classes, f"{self.source} (subset {len(i)}/{len(j)})")


TORCHVISION_SETS = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def _torchvision_set(name: str, root: Path, download: bool) -> ImageDataset:
    import torchvision
    cls = getattr(torchvision.datasets, TORCHVISION_SETS[name])
    splits = [cls(str(root), train=t, download=download) for t in (True, False)]
    as_nchw = lambda d: torch.from_numpy(d.data).permute(0, 3, 1, 2).contiguous()
    as_labels = lambda d: torch.as_tensor(d.targets, dtype=torch.int64)
    return ImageDataset(as_nchw(splits[0]), as_labels(splits[0]), as_nchw(splits[1]),
                        as_labels(splits[1]), len(splits[0].classes), f"torchvision {cls.__name__}")


def load_image_folder(root: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(images uint8 NCHW RGB, labels int64, class names) from a folder of class folders.
    A file that cannot be decoded or images of different sizes are errors naming a file."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms.v2 import functional as F
    ds = ImageFolder(str(root))
    images = []
    for p, _ in tqdm(ds.samples, desc=f"load {ds.root}"):
        try:
            images.append(F.pil_to_tensor(ds.loader(p).convert("RGB")))
        except OSError as e:  # PIL's UnidentifiedImageError and truncated files
            raise ValueError(f"data: cannot read image {p} ({e})") from e
    shapes = {}
    for (p, _), im in zip(ds.samples, images):
        shapes.setdefault(tuple(im.shape[1:]), p)
    if len(shapes) > 1:
        examples = ", ".join(f"{h}x{w} ({p})" for (h, w), p in list(shapes.items())[:3])
        raise ValueError(f"data: {ds.root}: images differ in size: {examples}; resize them "
                         "to one size first")
    return torch.stack(images), torch.as_tensor(ds.targets, dtype=torch.int64), list(ds.classes)


def _image_folder(path: Path) -> ImageDataset:
    """An ImageFolder tree with train/ and test/ (or val/) subfolders of class folders."""
    test_dir = next((path / s for s in ("test", "val") if (path / s).is_dir()), None)
    if not (path / "train").is_dir() or test_dir is None:
        raise ValueError(f"data: ImageFolder {path} must hold train/ and test/ (or val/) "
                         "folders of class folders")
    (xtr, ytr, classes), (xte, yte, test_classes) = (load_image_folder(d) for d in (path / "train", test_dir))
    if classes != test_classes:
        raise ValueError(f"data: {path} train and test class folders differ")
    return ImageDataset(xtr, ytr, xte, yte, len(classes), f"ImageFolder {path}")


def _from_npz(path: Path) -> ImageDataset:
    from ._labels import check_labels
    d = load_npz(path)
    num_classes = check_labels(d["y_train"], d["y_test"])  # a stray label of 1000 is an error
    return ImageDataset(d["x_train"], d["y_train"], d["x_test"], d["y_test"], num_classes, f"npz {path}")


def synthetic_dataset(train: int = 2000, test: int = 500, size: int = 32) -> ImageDataset:
    """The procedural stand-in (see synthetic_images) as a dataset with train/test splits."""
    xtr, ytr = synthetic_images(train, size, seed=0)
    xte, yte = synthetic_images(test, size, seed=1)
    return ImageDataset(xtr, ytr, xte, yte, 10, "procedural images (offline fallback)")


def load_dataset(spec: str | os.PathLike | None = None, root: str | os.PathLike = "data",
                 download: bool = True) -> ImageDataset:
    """The dataset named by spec, else $POISONKIT_DATA, else CIFAR-10 through torchvision.

    spec: 'cifar10' / 'cifar100' (torchvision, stored under root, downloaded when online),
    'synthetic' (procedural images), a .npz file (x_train, y_train, x_test, y_test) or an
    ImageFolder directory with train/ and test/. With no spec and no $POISONKIT_DATA,
    CIFAR-10 is tried and, when it can be neither found nor downloaded, the procedural
    images are used with a message. A spec that names a missing file is an error.
    """
    chosen = data_path(spec)
    if chosen is None:
        try:
            return _torchvision_set("cifar10", Path(root), download)
        except (OSError, RuntimeError) as e:  # offline: urllib errors are OSErrors
            print(f"data: CIFAR-10 is not under {root} and could not be downloaded ({e}); "
                  "falling back to procedural images: accuracies are not comparable to CIFAR")
            return synthetic_dataset()
    name = str(chosen).lower()
    if name in TORCHVISION_SETS:
        return _torchvision_set(name, Path(root), download)
    if name == "synthetic":
        return synthetic_dataset()
    if chosen.is_dir():
        return _image_folder(chosen)
    if not chosen.exists():
        raise FileNotFoundError(f"data: {chosen} does not exist; expected 'cifar10', 'cifar100', "
                                "'synthetic', an .npz file or an ImageFolder directory")
    try:
        return _from_npz(chosen)
    except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise ValueError(f"data: {chosen} is not a readable dataset .npz ({e})") from e


# --------------------------------------------------------------------------------------
# Poisoned in-memory dataset and loaders.

def apply_in_chunks(fn, images: torch.Tensor, labels: torch.Tensor, chunk: int = 1024,
                    desc: str = "apply") -> torch.Tensor:
    """fn(images, labels, indices) -> images over chunks, with a progress bar. indices are
    the samples' positions in the whole set (index-keyed poisons such as AR need them)."""
    parts = [fn(images[i:i + chunk], labels[i:i + chunk], torch.arange(i, min(i + chunk, len(images))))
             for i in tqdm(range(0, len(images), chunk), desc=desc, leave=False)]
    return torch.cat(parts)


class PoisonedTensorDataset(Dataset):
    """Stored uint8 images with a poison applied once, up front (perturb-then-augment, as
    the reference code does), and an optional per-batch transform (a defense) applied at
    every fetch.

    poison: fn(images uint8 NCHW, labels, indices) -> images uint8 NCHW, or None. For a
    Dataset poisoned sample by sample on the fly, see PoisonedDataset. transform: fn on
    a uint8 NCHW batch, or None. Indexing with an int gives (image, label); the DataLoaders
    of make_loader fetch whole batches through __getitems__ (one op call per batch).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, poison=None, transform=None,
                 chunk: int = 1024):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images: expected uint8 NCHW, got {images.dtype} {tuple(images.shape)}")
        if tuple(labels.shape) != (len(images),):
            raise ValueError(f"labels: expected shape ({len(images)},), got {tuple(labels.shape)}")
        if poison is not None:
            images = apply_in_chunks(poison, images, labels, chunk, desc="poison")
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise ValueError(f"poison: must return uint8 NCHW, got {images.dtype} {tuple(images.shape)}")
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        x, y = self.__getitems__([index])
        return x[0], y[0]

    def __getitems__(self, indices):
        idx = torch.as_tensor(indices, dtype=torch.int64)
        x = self.images[idx]
        return (self.transform(x) if self.transform is not None else x), self.labels[idx]


def _batch_collate(batch):
    return batch


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, workers: int = 0,
                pin_memory: bool = False, seed: int = 0, drop_last: bool = False) -> DataLoader:
    """A DataLoader of (images, labels) batches. Under torchrun (torch.distributed
    initialised) each rank gets its shard through a DistributedSampler; call
    loader.sampler.set_epoch(epoch) (train.py does) so shuffles differ per epoch."""
    sampler = None
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
        shuffle = False
    g = torch.Generator().manual_seed(seed)
    batched = hasattr(dataset, "__getitems__")
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler,
                      num_workers=workers, pin_memory=pin_memory, drop_last=drop_last,
                      generator=g, collate_fn=_batch_collate if batched else None,
                      persistent_workers=workers > 0)


class PoisonedDataset(torch.utils.data.Dataset):
    """base[i] = (image, label) poisoned on the fly by poison(image, label, i) (e.g. an
    ARPoison), so the poison depends on the sample index, not on the batch or worker."""

    def __init__(self, base, poison):
        self.base, self.poison = base, poison

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, label = self.base[index]
        return self.poison(image, label, index)
