"""k nearest training images by cosine similarity of unit-norm features.

knn(): exact, as chunked matmuls (a block of queries x a block of keys at a time) with a
running top-k, so memory is bounded by the chunk sizes, not by N; on the CPU or a GPU.
knn_faiss(): faiss IndexFlatIP (exact inner product), keys added chunk by chunk from any
array-like (a numpy memmap of embeddings that do not fit in RAM as torch tensors).
Both can restrict each query's neighbours to one class (the model's predicted class)."""
from __future__ import annotations

import numpy as np
import torch


def check_args(num_queries: int, num_keys: int, k, key_labels, query_classes) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected a positive int, got {k!r}")
    if k > num_keys:
        raise ValueError(f"k: {k} neighbours requested but the training set holds {num_keys} images")
    if (key_labels is None) != (query_classes is None):
        raise ValueError("query_classes: give key_labels and query_classes together (or neither)")
    if key_labels is None:
        return
    key_labels, query_classes = torch.as_tensor(key_labels), torch.as_tensor(query_classes)
    if tuple(key_labels.shape) != (num_keys,) or tuple(query_classes.shape) != (num_queries,):
        raise ValueError(f"key_labels / query_classes: expected shapes ({num_keys},) and "
                         f"({num_queries},), got {tuple(key_labels.shape)} and {tuple(query_classes.shape)}")
    counts = torch.bincount(key_labels.long(), minlength=int(query_classes.max()) + 1)
    short = [int(c) for c in query_classes.unique() if counts[int(c)] < k]
    if short:
        raise ValueError(f"k: {k} neighbours requested within the predicted class, but class(es) "
                         f"{short} hold fewer training images ({[int(counts[c]) for c in short]})")


def knn(queries: torch.Tensor, keys: torch.Tensor, k: int, key_labels=None, query_classes=None,
        query_chunk: int = 2048, key_chunk: int = 16384,
        device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores [Q, k] float32, indices [Q, k] int64), best first. queries [Q, D] and keys
    [N, D] are unit-norm features (scores are cosines). key_labels [N] with query_classes
    [Q]: only keys of the query's class are candidates."""
    if queries.dim() != 2 or keys.dim() != 2 or queries.shape[1] != keys.shape[1]:
        raise ValueError(f"queries / keys: expected [Q, D] and [N, D], got {tuple(queries.shape)} "
                         f"and {tuple(keys.shape)}")
    check_args(len(queries), len(keys), k, key_labels, query_classes)
    device = torch.device(device) if device is not None else queries.device
    restrict = key_labels is not None
    if restrict:
        key_labels = torch.as_tensor(key_labels).to(device)
        query_classes = torch.as_tensor(query_classes).to(device)
    all_scores, all_indices = [], []
    for q0 in range(0, len(queries), query_chunk):
        q = queries[q0:q0 + query_chunk].to(device, torch.float32)
        best_s = torch.full((len(q), k), -torch.inf, device=device)
        best_i = torch.full((len(q), k), -1, dtype=torch.int64, device=device)
        for k0 in range(0, len(keys), key_chunk):
            block = keys[k0:k0 + key_chunk].to(device, torch.float32)
            s = q @ block.T
            if restrict:
                same = key_labels[k0:k0 + len(block)][None, :] == query_classes[q0:q0 + len(q), None]
                s.masked_fill_(~same, -torch.inf)
            # the block's own top-k first, then a merge of 2k candidates: no [Q, chunk] copies
            vals, pos = s.topk(min(k, len(block)), dim=1)
            best_s, sel = torch.cat([best_s, vals], 1).topk(k, dim=1)
            best_i = torch.cat([best_i, pos + k0], 1).gather(1, sel)
        all_scores.append(best_s.cpu())
        all_indices.append(best_i.cpu())
    return torch.cat(all_scores), torch.cat(all_indices)


def knn_faiss(queries, keys, k: int, key_labels=None, query_classes=None,
              key_chunk: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """knn() through faiss.IndexFlatIP; keys may be any [N, D] array-like (numpy memmap,
    tensor), added in chunks of key_chunk rows. With classes: one index per needed class."""
    try:
        import faiss
    except ImportError:
        raise ValueError("method: faiss is not installed (pip install 'poisonkit[attribution]')") from None
    queries = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
    if queries.ndim != 2 or len(keys.shape) != 2 or queries.shape[1] != keys.shape[1]:
        raise ValueError(f"queries / keys: expected [Q, D] and [N, D], got {queries.shape} and "
                         f"{tuple(keys.shape)}")
    check_args(len(queries), len(keys), k, key_labels, query_classes)

    def search(rows: np.ndarray | None, q: np.ndarray):
        index = faiss.IndexFlatIP(queries.shape[1])
        span = range(0, len(keys), key_chunk) if rows is None else range(0, len(rows), key_chunk)
        for start in span:
            part = keys[start:start + key_chunk] if rows is None else keys[rows[start:start + key_chunk]]
            index.add(np.ascontiguousarray(np.asarray(part, dtype=np.float32)))
        scores, found = index.search(q, k)
        return scores, (found if rows is None else rows[found])

    if key_labels is None:
        scores, indices = search(None, queries)
    else:
        key_labels, query_classes = np.asarray(key_labels), np.asarray(query_classes)
        scores = np.empty((len(queries), k), np.float32)
        indices = np.empty((len(queries), k), np.int64)
        for c in np.unique(query_classes):
            which = query_classes == c
            scores[which], indices[which] = search(np.flatnonzero(key_labels == c), queries[which])
    return torch.from_numpy(scores), torch.from_numpy(np.asarray(indices, dtype=np.int64))
