"""Poisoned datasets and their loaders: stored images poisoned once up front
(PoisonedTensorDataset, batched fetches) or any map-style dataset poisoned on the fly
sample by sample (PoisonedDataset)."""
from __future__ import annotations

import PIL.Image
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.transforms.v2.functional import pil_to_tensor
from tqdm import tqdm


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
    """Any map-style dataset of (image, label) (torchvision ImageFolder or CIFAR10 giving
    PIL images, an in-memory tensor dataset, ...) poisoned on the fly: item i is the
    poison applied to (image, label, i), then ``transforms(image, label)`` when given
    (torchvision's ``transforms`` convention: v2 transforms take the pair). The poison
    depends on the sample index, not on the batch or worker. Items are (image tensor,
    label): a PIL result becomes a uint8 CHW tensor, so default_collate batches them."""

    def __init__(self, base, poison, transforms=None):
        if not hasattr(base, "__getitem__") or not hasattr(base, "__len__"):
            raise TypeError(f"base: expected a map-style dataset, got {type(base).__name__}")
        if not callable(getattr(poison, "poison_batch", None)):
            raise TypeError(f"poison: expected a poisonkit Poison, got {type(poison).__name__}")
        if transforms is not None and not callable(transforms):
            raise TypeError(f"transforms: expected a callable or None, got {type(transforms).__name__}")
        self.base, self.poison, self.transforms = base, poison, transforms

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, label = self.base[index]
        image, label, _ = self.poison(image, label, index)
        if self.transforms is not None:
            image, label = self.transforms(image, label)
        if isinstance(image, PIL.Image.Image):
            image = pil_to_tensor(image)
        return image, label
