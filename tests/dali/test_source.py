"""BatchSource: batches, partial last batch, seeded shuffling and sharding (disjoint,
deterministic slices that together cover each epoch once). Plain numpy: no DALI needed."""
from __future__ import annotations

import numpy as np
import pytest

from poisonkit.dali import BatchSource


def epoch_indices(source: BatchSource) -> list[int]:
    """The sample indices one epoch yields, checking each batch's images and labels match."""
    seen = []
    for images, labels, indices in source:
        assert len(images) <= source.batch_size
        for image, label, index in zip(images, labels, indices):
            i = int(index[0])
            np.testing.assert_array_equal(image, source.images[i])
            assert int(label[0]) == i % 7
            seen.append(i)
    return seen


def make(n: int = 23, **kw) -> BatchSource:
    images = np.arange(n * 2 * 2 * 3, dtype=np.uint8).reshape(n, 2, 2, 3)
    return BatchSource(images, [i % 7 for i in range(n)], **kw)


def test_unsharded_epoch_covers_data_in_order_with_partial_batch():
    source = make(batch_size=5)
    assert len(source) == 5
    assert epoch_indices(source) == list(range(23))
    assert [len(b[0]) for b in source] == [5, 5, 5, 5, 3]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("num_shards", [2, 3, 23])
def test_shards_are_disjoint_and_cover_each_epoch(shuffle, num_shards):
    shards = [make(batch_size=4, shuffle=shuffle, seed=5, shard_id=s, num_shards=num_shards)
              for s in range(num_shards)]
    for _epoch in range(3):
        parts = [epoch_indices(s) for s in shards]
        flat = [i for part in parts for i in part]
        assert sorted(flat) == list(range(23))  # disjoint and complete
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        for source, part in zip(shards, parts):
            assert len(source) == -(-len(part) // 4)
    if shuffle:  # each epoch reshuffles which samples a shard gets
        again = make(batch_size=4, shuffle=True, seed=5, shard_id=0, num_shards=num_shards)
        epochs = [epoch_indices(again) for _ in range(3)]
        assert num_shards == 23 or epochs[0] != epochs[1]


def test_shards_are_deterministic_and_follow_the_unsharded_order():
    whole = make(batch_size=3, shuffle=True, seed=9)
    shards = [make(batch_size=3, shuffle=True, seed=9, shard_id=s, num_shards=2)
              for s in range(2)]
    for _epoch in range(2):
        order = epoch_indices(whole)
        # shard s keeps slice [N*s//2, N*(s+1)//2) of the epoch's order, as DALI readers do
        assert [epoch_indices(s) for s in shards] == [order[:11], order[11:]]
    fresh = make(batch_size=3, shuffle=True, seed=9, shard_id=1, num_shards=2)
    assert epoch_indices(fresh) == epoch_indices(make(batch_size=3, shuffle=True, seed=9,
                                                      shard_id=1, num_shards=2))


def test_shard_method_equals_constructor_and_refuses_resharding():
    source = make(batch_size=4, shuffle=True, seed=1)
    shard = source.shard(2, 3)
    direct = make(batch_size=4, shuffle=True, seed=1, shard_id=2, num_shards=3)
    assert epoch_indices(shard) == epoch_indices(direct)
    with pytest.raises(ValueError, match="already shard 2 of 3"):
        shard.shard(0, 2)


@pytest.mark.parametrize("kw, match", [
    ({"num_shards": 0}, "num_shards"), ({"num_shards": 24}, "num_shards"),
    ({"num_shards": 2.0}, "num_shards"), ({"shard_id": 2, "num_shards": 2}, "shard_id"),
    ({"shard_id": -1, "num_shards": 2}, "shard_id"), ({"batch_size": 0}, "batch_size"),
])
def test_bad_arguments_name_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        make(**{"batch_size": 4, **kw})


def test_labels_must_match_images():
    with pytest.raises(ValueError, match="labels"):
        BatchSource(np.zeros((3, 4, 4, 3), np.uint8), [0, 1], batch_size=2)
