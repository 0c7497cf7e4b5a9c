"""Feeding arrays to a DALI pipeline in batches (an external source), optionally sharded."""
from __future__ import annotations

import numpy as np


class BatchSource:
    """Iterable of (images, labels, indices) batches for ``fn.external_source(batch=True,
    num_outputs=3)``; indices are the images' positions in ``images`` (int64), which key
    per-sample randomness (ar_perturb, sharpen's sample_index).

    images: uint8 NHWC array (or a list of HWC arrays of any sizes); labels: integers. Each
    epoch yields ceil(shard size / batch_size) batches, the last one partial, then stops;
    with shuffle, the order is a fixed function of (seed, epoch).

    Sharding (one source per process, as DALI's readers' shard_id / num_shards): every shard
    takes the same epoch order (same seed) and keeps its contiguous slice
    [N * shard_id // num_shards, N * (shard_id + 1) // num_shards), so the shards of an epoch
    are disjoint and together cover the data once; their sizes differ by at most one image.
    """

    def __init__(self, images, labels, batch_size: int, shuffle: bool = False, seed: int = 0,
                 shard_id: int = 0, num_shards: int = 1):
        if len(images) != len(labels):
            raise ValueError(f"labels: expected one per image ({len(images)}), got {len(labels)}")
        if len(images) == 0:
            raise ValueError("images: expected at least one image")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if not isinstance(num_shards, int) or not 1 <= num_shards <= len(images):
            raise ValueError(f"num_shards: expected an int in [1, {len(images)}] (at most one "
                             f"shard per image), got {num_shards!r}")
        if not isinstance(shard_id, int) or not 0 <= shard_id < num_shards:
            raise ValueError(f"shard_id: expected an int in [0, {num_shards}), got {shard_id!r}")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int32).reshape(-1, 1)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.shard_id, self.num_shards = shard_id, num_shards
        n = len(images)
        self._slice = slice(n * shard_id // num_shards, n * (shard_id + 1) // num_shards)
        self.epoch = -1
        self._order = np.arange(n)[self._slice]
        self._next = 0

    def shard(self, shard_id: int, num_shards: int) -> BatchSource:
        """The same data, order and batch size, restricted to one shard."""
        if self.num_shards != 1:
            raise ValueError(f"shard_id, num_shards: this source is already shard "
                             f"{self.shard_id} of {self.num_shards}")
        return BatchSource(self.images, self.labels, self.batch_size, self.shuffle, self.seed,
                           shard_id=shard_id, num_shards=num_shards)

    def __len__(self) -> int:
        return -(-len(self._order) // self.batch_size)

    def __iter__(self):
        self.epoch += 1
        self._next = 0
        if self.shuffle:
            rng = np.random.default_rng((self.seed, self.epoch))
            self._order = rng.permutation(len(self.images))[self._slice]
        return self

    def __next__(self):
        if self._next >= len(self._order):
            raise StopIteration
        index = self._order[self._next:self._next + self.batch_size]
        self._next += self.batch_size
        images = [np.ascontiguousarray(self.images[i]) for i in index]
        return images, [self.labels[i] for i in index], [np.array([i], np.int64) for i in index]
