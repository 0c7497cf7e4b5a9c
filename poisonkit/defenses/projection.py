"""Orthogonal projection defense (Sandoval-Segura et al., NeurIPS 2023).

A class-wise poison is a shortcut a *linear* model can learn: fit logits = W x on the
flattened [0, 1] poisoned training images (no bias, cross-entropy, SGD), and the poison
lives in the span of W's rows. Projecting every image onto the orthogonal complement of
that span, x <- x - Q Q^T x, removes it and the data becomes learnable again.

The linear model's training accuracy is the signal: high on a class-wise poison (about
74% on the class-wise blur poison on the 10k CIFAR-10 subset), low on clean data (about
39%). Protocol (DESIGN section 3.4): SGD lr 0.1, no momentum or weight decay, 20 epochs,
lr x0.1 at epochs 10 and 15, batch 1024, default nn.Linear initialisation. The reference
loader does not shuffle, but its data is not sorted by class; poisonkit's .npz files are,
and unshuffled SGD on sorted data collapses, so the data is shuffled once with a fixed
permutation (seeded) and then visited in that order every epoch.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import ops
from .._io import atomic_write, load_dict, save_dict
from .._images import as_plain_tensor

FORMAT = "poisonkit.projection"
VERSION = 1


@dataclass
class Projection:
    """A fitted projection: Q float32 [D, K] with orthonormal columns, the image shape
    (C, H, W) with C * H * W = D, the linear model's weight [K, D] and training accuracy,
    and the fit's settings (`fit_args`)."""

    Q: torch.Tensor
    image_shape: tuple[int, int, int]
    train_accuracy: float
    weight: torch.Tensor
    fit_args: dict = field(default_factory=dict)

    def __post_init__(self):
        self.image_shape = tuple(int(s) for s in self.image_shape)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape: expected (C, H, W), got {self.image_shape}")
        D = math.prod(self.image_shape)
        if not isinstance(self.Q, torch.Tensor) or self.Q.dtype != torch.float32 or self.Q.dim() != 2:
            raise ValueError(f"Q: expected a float32 [D, K] tensor, got {_describe(self.Q)}")
        K = self.Q.shape[1]
        if self.Q.shape[0] != D or not 1 <= K <= D:
            raise ValueError(f"Q: expected shape [{D}, K] with 1 <= K <= {D} for images "
                             f"{self.image_shape}, got {tuple(self.Q.shape)}")
        if not isinstance(self.weight, torch.Tensor) or tuple(self.weight.shape) != (K, D):
            raise ValueError(f"weight: expected a [{K}, {D}] tensor, got {_describe(self.weight)}")
        if not torch.isfinite(self.Q).all():
            raise ValueError("Q: contains NaN or inf")
        # Stored as the transpose of a contiguous [K, D] matrix: the op needs Q^T rows.
        self.Q = self.Q.t().contiguous().t()

    @property
    def rank(self) -> int:
        return self.Q.shape[1]

    def apply(self, images: torch.Tensor, clamp: bool = False) -> torch.Tensor:
        """x - Q Q^T x for uint8 or float32 CHW / NCHW images (see ops.project_out)."""
        return ops.project_out(images, self.Q.to(images.device), clamp)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes a torch.save file of plain tensors and a dict (loadable with
        weights_only=True), through a temporary name."""
        return save_dict(path, {
            "format": FORMAT, "version": VERSION, "Q": self.Q.cpu().contiguous(),
            "weight": self.weight.detach().cpu().contiguous(),
            "image_shape": list(self.image_shape), "train_accuracy": float(self.train_accuracy),
            "fit_args": dict(self.fit_args)})

    def save_q(self, path: str | os.PathLike) -> Path:
        """Writes Q alone, float32 [D, K], as a .npy (the file fn.poisonkit.project_out reads
        through its q_file argument), through a temporary name."""
        if not str(path).endswith(".npy"):
            raise ValueError(f"path: expected a .npy path, got {str(path)!r}")

        def write(tmp):
            with open(tmp, "wb") as f:
                np.save(f, self.Q.cpu().numpy())
        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Projection":
        payload = load_dict(path, "path", "projection")
        if payload.get("format") != FORMAT:
            raise ValueError(f"path: {path} is not a saved projection (format {FORMAT!r})")
        if payload.get("version") != VERSION:
            raise ValueError(f"path: {path} has projection format version "
                             f"{payload.get('version')!r}; this poisonkit reads {VERSION}")
        projection = cls(payload["Q"], payload["image_shape"], payload["train_accuracy"],
                         payload["weight"], payload.get("fit_args", {}))
        gram = projection.Q.double().T @ projection.Q.double()
        if not torch.allclose(gram, torch.eye(projection.rank, dtype=torch.float64), atol=1e-4):
            raise ValueError(f"path: {path} holds a Q whose columns are not orthonormal")
        return projection


def _describe(t) -> str:
    if isinstance(t, torch.Tensor):
        return f"{t.dtype} {tuple(t.shape)}"
    return type(t).__name__


def _to_unit(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255 if images.dtype == torch.uint8 else images.float()


def load_training_data(data) -> tuple[torch.Tensor, torch.Tensor]:
    """(images NCHW uint8 or float32, labels int64) from an (images, labels) pair, an .npz
    path (its x_train / y_train) or a Dataset of (image, label) samples."""
    if isinstance(data, (str, os.PathLike)):
        from ..data import load_npz
        d = load_npz(data)
        return d["x_train"], d["y_train"]
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(t, torch.Tensor) for t in data):
        return data[0], data[1]
    if isinstance(data, torch.utils.data.Dataset):
        images, labels = [], []
        for i in range(len(data)):
            image, label = data[i]
            images.append(as_plain_tensor(image))
            labels.append(int(label))
        if not images:
            raise ValueError("data: the dataset is empty")
        if len({im.dtype for im in images}) > 1:
            images = [_to_unit(im) for im in images]
        return torch.stack(images), torch.tensor(labels, dtype=torch.int64)
    raise TypeError("data: expected (images, labels) tensors, an .npz path or a Dataset of "
                    f"(image, label), got {type(data).__name__}")


def _check_training_data(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
    if x.dim() != 4 or x.dtype not in (torch.uint8, torch.float32):
        raise ValueError(f"data: images must be uint8 or float32 NCHW, got {_describe(x)}")
    if x.shape[0] == 0:
        raise ValueError("data: no images (N = 0)")
    if y.dtype.is_floating_point or y.dtype == torch.bool or tuple(y.shape) != (x.shape[0],):
        raise ValueError(f"data: labels must be integers of shape ({x.shape[0]},), got {_describe(y)}")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"data: labels must lie in [0, {num_classes}), got values in "
                         f"[{int(y.min())}, {int(y.max())}]")
    if x.dtype == torch.float32 and not torch.isfinite(x).all():
        raise ValueError("data: images contain NaN or inf")


def fit(data, num_classes: int, epochs: int = 20, lr: float = 0.1,
        milestones: tuple[int, ...] = (10, 15), batch_size: int = 1024,
        device: str | torch.device | None = None, seed: int = 0,
        progress: bool = True) -> Projection:
    """Fits the linear model on (poisoned) training data and returns its Projection.

    data: (images, labels) tensors (uint8 [0, 255] or float32 [0, 1], NCHW), an .npz path
    (x_train / y_train) or a Dataset of (image, label). device: default CUDA when
    available. seed fixes the initialisation and the one shuffle. The returned
    train_accuracy is the final model's accuracy over the whole training set.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr: expected a positive finite number, got {lr!r}")
    if any(not isinstance(m, int) or m < 1 for m in milestones):
        raise ValueError(f"milestones: expected positive epoch numbers, got {milestones!r}")
    x, y = load_training_data(data)
    _check_training_data(x, y, num_classes)
    device = torch.device(device if device is not None else
                          ("cuda" if torch.cuda.is_available() else "cpu"))

    n, image_shape = x.shape[0], tuple(x.shape[1:])
    D = math.prod(image_shape)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    x = x[order].reshape(n, D).to(device)
    y = y[order].to(device)
    # nn.Linear's default initialisation, U(-1/sqrt(D), 1/sqrt(D)), from the seeded generator.
    bound = 1.0 / math.sqrt(D)
    weight = ((torch.rand(num_classes, D, generator=g) * 2 - 1) * bound).to(device)
    weight.requires_grad_(True)
    optimizer = torch.optim.SGD([weight], lr=lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma=0.1)

    bar = tqdm(range(epochs), desc="fit projection", unit="epoch", disable=not progress)
    for _ in bar:
        total_loss = 0.0
        for start in range(0, n, batch_size):
            logits = _to_unit(x[start:start + batch_size]) @ weight.T
            loss = F.cross_entropy(logits, y[start:start + batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * logits.shape[0]
        scheduler.step()
        bar.set_postfix(loss=f"{total_loss / n:.4f}")

    weight = weight.detach()
    with torch.no_grad():
        correct = sum(int(((_to_unit(x[s:s + batch_size]) @ weight.T).argmax(1)
                           == y[s:s + batch_size]).sum()) for s in range(0, n, batch_size))
    return Projection(basis_of(weight).float().cpu(), image_shape, correct / n,
                      weight.float().cpu(),
                      {"num_classes": num_classes, "epochs": epochs, "lr": lr,
                       "milestones": list(milestones), "batch_size": batch_size,
                       "seed": seed, "num_images": n})


def basis_of(weight: torch.Tensor) -> torch.Tensor:
    """Q (float64 [D, K], orthonormal columns) spanning the rows of weight [K, D]: the rows
    are scaled to unit norm, then Q is the reduced QR factor of their transpose."""
    w = weight.detach().double()
    norms = w.norm(dim=1, keepdim=True)
    if not torch.isfinite(w).all() or (norms == 0).any():
        raise ValueError("weight: rows must be finite and non-zero")
    q, _ = torch.linalg.qr((w / norms).T, mode="reduced")
    return q
