"""DALI training pipeline throughput: external source -> class-wise blur poison -> SSK
sharpening -> random flip -> normalize, on real CIFAR-10 images, CPU backend.

Compares poisonkit's native operators (fn.poisonkit.*) with what a DALI user would
otherwise write: DALI's built-ins (fn.filter with per-sample class kernels, a max
reduction and arithmetic; close to, not exactly, the reference's truncation), or a Python
function operator running poisonkit's torch ops on each batch.

    $PY -m benchmarks.dali_pipeline [--batch 256] [--threads 2] [--device-id 0]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from benchmarks.common import images_per_second, load_cifar, write_results
from poisonkit import dali as pkdali
from poisonkit import ops
from poisonkit.defenses.sharpen import ssk_kernel
from poisonkit.poisons.classwise_blur import class_kernels

MEAN, STD = [127.5] * 3, [127.5] * 3


def make_pipeline(kind: str, images: list[np.ndarray], labels: np.ndarray, threads: int,
                  device_id: int | None):
    from nvidia.dali import fn, pipeline_def, types

    kernels = class_kernels()
    ssk = ssk_kernel()
    label_batch = [np.array([v], dtype=np.int32) for v in labels]
    filter_batch = [kernels[v].numpy() for v in labels]
    python_op = kind == "python_function"

    def poison_and_sharpen_torch(batch, batch_labels):
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
        y = torch.from_numpy(np.concatenate(batch_labels)).long()
        x = ops.filter2d(x, kernels[y], padding="zeros", normalize="max", rounding="truncate")
        x = ops.filter2d(x, ssk.expand(len(x), 3, 3).contiguous(), padding="reflect")
        return [np.ascontiguousarray(v) for v in x.permute(0, 2, 3, 1).numpy()]

    @pipeline_def(batch_size=len(images), num_threads=threads, device_id=device_id, seed=0,
                  exec_async=not python_op, exec_pipelined=not python_op)
    def pipe():
        x = fn.external_source(source=lambda: images, batch=True, layout="HWC")
        y = fn.external_source(source=lambda: label_batch, batch=True)
        if device_id is not None and not python_op:
            x = x.gpu()
        if kind == "poisonkit":
            x = fn.poisonkit.classwise_blur(x, y, kernels=kernels.reshape(-1).tolist())
            x = fn.poisonkit.sharpen(x, padding="reflect")
        elif kind == "dali_builtins":
            k = fn.external_source(source=lambda: filter_batch, batch=True)
            z = fn.filter(fn.cast(x, dtype=types.FLOAT) / 255.0, k, border="constant")
            z = z / fn.reductions.max(z) * 255.0
            x = fn.cast(z, dtype=types.UINT8)
            x = fn.filter(x, fn.external_source(source=lambda: [ssk.numpy()] * len(images),
                                                batch=True), border="reflect_101")
        else:
            x = fn.python_function(x, y, function=poison_and_sharpen_torch, batch_processing=True)
            if device_id is not None:
                x = x.gpu()
        return fn.crop_mirror_normalize(x, dtype=types.FLOAT, output_layout="CHW", mean=MEAN,
                                        std=STD, mirror=fn.random.coin_flip())

    p = pipe()
    p.build()
    return p


def main(argv=None, quick: bool = False) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device-id", type=int, default=None,
                        help="run the image ops on this GPU (default: CPU only)")
    args = parser.parse_args(argv or [])
    torch.set_num_threads(args.threads)
    pkdali.load()

    x, y = load_cifar(args.batch)
    labels = y.numpy()
    images = [np.ascontiguousarray(v) for v in x.permute(0, 2, 3, 1).numpy()]
    where = "CPU" if args.device_id is None else f"GPU {args.device_id}"
    case = f"CIFAR-10 32x32 uint8, batch {args.batch}, {args.threads} threads, {where}"
    impls = {"poisonkit": "poisonkit (fn.poisonkit.*)",
             "dali_builtins": "DALI built-ins (fn.filter + max + arithmetic)",
             "python_function": "fn.python_function (poisonkit torch ops)"}
    rows = []
    for kind, name in impls.items():
        pipe = make_pipeline(kind, images, labels, args.threads, args.device_id)
        rate = images_per_second(pipe.run, args.batch)
        rows.append({"case": case, "impl": name, "images_per_s": rate})
        del pipe
    write_results("dali_pipeline", rows, "DALI pipeline: poison -> sharpen -> flip -> normalize",
                  notes="Each row runs the whole pipeline (external source, class-wise blur, "
                        "SSK sharpening with reflect padding, random flip, normalize). The "
                        "Python function operator forces a synchronous, non-pipelined executor.")


if __name__ == "__main__":
    main(sys.argv[1:])
