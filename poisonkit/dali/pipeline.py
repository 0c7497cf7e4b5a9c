"""A training pipeline built from the operator helpers, and its PyTorch iterator."""
from __future__ import annotations

from typing import Sequence

from .ops import ar_perturb, classwise_blur, lowpass, sharpen
from .plugin import load
from .source import BatchSource


def training_pipeline(source: BatchSource, *, num_threads: int = 2, device_id: int | None = None,
                      poison_kernels=None, ar_poison=None, sharpen_std: float | None = None,
                      sharpen_padding: str = "valid", lowpass_keep: float | None = None,
                      lowpass_basis: str = "dct", mean: Sequence[float] = (0.5, 0.5, 0.5),
                      std: Sequence[float] = (0.5, 0.5, 0.5), mirror: bool = True, seed: int = 0,
                      prefetch_queue_depth: int = 2, shard_id: int = 0, num_shards: int = 1):
    """A training pipeline: batches from ``source`` -> a poison (the class-wise blur when
    ``poison_kernels`` [K, k, k] is given, the AR poison when ``ar_poison`` (an ARPoison)
    is, keyed by the source's sample indices) -> sharpening (SSK when sharpen_std is 0, RSK
    when > 0, keyed by (seed, sample index, iteration); none when None) -> frequency
    low-pass (when ``lowpass_keep`` is given: RSK+FF's FF, square mask) -> random horizontal
    flip -> normalize to float CHW. Outputs ("images", "labels"): float32 [N, C, H, W] and
    int64 [N]. device_id=None runs on the CPU.

    shard_id / num_shards (e.g. the rank and world size under torchrun): the pipeline reads
    only that shard of ``source`` (``BatchSource.shard``: disjoint, deterministic slices).
    """
    load()
    from nvidia.dali import fn, pipeline_def, types
    if poison_kernels is not None and ar_poison is not None:
        raise ValueError("poison_kernels, ar_poison: give at most one poison")
    if (shard_id, num_shards) != (0, 1):
        source = source.shard(shard_id, num_shards)
    @pipeline_def(batch_size=source.batch_size, num_threads=num_threads, device_id=device_id,
                  seed=seed, prefetch_queue_depth=prefetch_queue_depth)
    def pipe():
        # cycle="raise": end each epoch with StopIteration, call iter(source) again on reset.
        images, labels, indices = fn.external_source(
            source=source, num_outputs=3, batch=True, cycle="raise", layout=["HWC", "", ""],
            dtype=[types.UINT8, types.INT32, types.INT64])
        if device_id is not None:
            images = images.gpu()
        if poison_kernels is not None:
            images = classwise_blur(images, labels, poison_kernels)
        if ar_poison is not None:
            images = ar_perturb(images, labels, indices, ar_poison)
        if sharpen_std is not None:
            images = sharpen(images, std=sharpen_std, padding=sharpen_padding,
                             sample_index=indices)
        if lowpass_keep is not None:
            images = lowpass(images, keep=lowpass_keep, basis=lowpass_basis)
        flip = fn.random.coin_flip(probability=0.5 if mirror else 0.0)
        images = fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout="CHW",
                                          mirror=flip, mean=[255 * m for m in mean],
                                          std=[255 * s for s in std])
        return images, fn.reshape(fn.cast(labels, dtype=types.INT64), shape=[])

    return pipe()


def torch_iterator(pipeline, output_map: Sequence[str] = ("images", "labels")):
    """A PyTorch iterator over ``pipeline`` that keeps the partial last batch and restarts
    each epoch (DALIGenericIterator, LastBatchPolicy.PARTIAL, auto_reset). Create it once and
    loop over it once per epoch; batches are lists with one dict per pipeline."""
    from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy
    return DALIGenericIterator(pipeline, list(output_map),
                               last_batch_policy=LastBatchPolicy.PARTIAL, auto_reset=True)
