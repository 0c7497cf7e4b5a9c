"""Dataset sources: the .npz layout used across poisonkit (x_train uint8 NHWC, y_train
int64, x_test, y_test), found through an argument or $POISONKIT_DATA; torchvision
CIFAR-10/100 and ImageFolder trees; all loaded into an ImageDataset."""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .memory import ImageDataset
from .synthetic import synthetic_dataset

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
    from .._labels import check_labels
    d = load_npz(path)
    num_classes = check_labels(d["y_train"], d["y_test"])  # a stray label of 1000 is an error
    return ImageDataset(d["x_train"], d["y_train"], d["x_test"], d["y_test"], num_classes, f"npz {path}")


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
