"""attribute(): each query's k most similar training images in a backbone's feature space,
with their cosine scores; every argument checked before any embedding is computed."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .embed import cached_embed
from .knn import check_args as check_knn_args
from .knn import knn, knn_faiss

METHODS = ("exact", "faiss")


@dataclass
class Attribution:
    scores: torch.Tensor           # [Q, k] float32 cosine similarities, best first
    indices: torch.Tensor          # [Q, k] int64 training-set positions
    query_classes: torch.Tensor | None  # the class each query was restricted to, if any
    backbone: str


def attribute(backbone, train_images: torch.Tensor, queries: torch.Tensor, k: int = 10,
              train_labels: torch.Tensor | None = None, query_classes: torch.Tensor | None = None,
              method: str = "exact", cache_dir: str | os.PathLike | None = None, batch_size: int = 512,
              device: str | torch.device = "cpu", verbose: bool = False) -> Attribution:
    """Attributes uint8 (or float [0, 1]) NCHW queries to train_images. With train_labels
    and query_classes (e.g. the model's predicted classes), only training images of the
    query's class are candidates. method 'exact' (chunked matmul + top-k, on `device`) or
    'faiss' (IndexFlatIP). The training set's embedding is cached in cache_dir."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    backbone.check_shape(train_images.shape, "data")
    backbone.check_shape(queries.shape, "query")
    if tuple(queries.shape[1:]) != tuple(train_images.shape[1:]):
        raise ValueError(f"query: images of shape {tuple(queries.shape[1:])} differ from the "
                         f"training images' {tuple(train_images.shape[1:])}")
    check_knn_args(len(queries), len(train_images), k, train_labels, query_classes)
    keys = cached_embed(backbone, train_images, cache_dir, batch_size=batch_size, device=device,
                        what="data", verbose=verbose)
    q = cached_embed(backbone, queries, None, batch_size=batch_size, device=device, what="query")
    if method == "exact":
        scores, indices = knn(q, keys, k, train_labels, query_classes, device=device)
    else:
        scores, indices = knn_faiss(q.numpy(), keys.numpy(), k, train_labels, query_classes)
    return Attribution(scores, indices, None if query_classes is None else torch.as_tensor(query_classes),
                       backbone.name)
