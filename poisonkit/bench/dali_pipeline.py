"""DALI training pipeline throughput on real CIFAR-10 images, CPU backend, two pipelines:
external source -> class-wise blur poison -> SSK sharpening -> random flip -> normalize, and
external source -> AR poison (by sample index) -> RSK sharpening -> frequency low-pass (FF)
-> random flip -> normalize.

Compares poisonkit's native operators (fn.poisonkit.*) with what a DALI user would
otherwise write: DALI's built-ins (fn.filter with per-sample class kernels, a max
reduction and arithmetic; close to, not exactly, the reference's truncation; DALI has no
AR generator, so the AR pipeline has no such row), or a Python function operator running
poisonkit's torch ops on each batch.

    $PY -m poisonkit.bench.dali_pipeline [--batch 256] [--threads 2] [--device-id 0]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from poisonkit import dali as pkdali
from poisonkit import ops
from poisonkit.defenses.sharpen import rsk_kernels, ssk_kernel
from poisonkit.poisons.ar import sample_coefficients
from poisonkit.poisons.classwise_blur import class_kernels
from poisonkit.transforms import ARPoison

from .common import images_per_second, load_cifar, write_results

MEAN, STD = [127.5] * 3, [127.5] * 3
AR_KEY = 2024


def nhwc_batch(batch) -> torch.Tensor:
    return torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)


def hwc_list(x: torch.Tensor) -> list[np.ndarray]:
    return [np.ascontiguousarray(v) for v in x.permute(0, 2, 3, 1).numpy()]


def blur_ssk_torch(batch, batch_labels, _indices):
    """The class-wise blur + SSK pipeline's image ops as poisonkit's torch ops."""
    x, y = nhwc_batch(batch), torch.from_numpy(np.concatenate(batch_labels)).long()
    x = ops.filter2d(x, class_kernels()[y], padding="zeros", normalize="max",
                     rounding="truncate")
    return hwc_list(ops.filter2d(x, ssk_kernel().expand(len(x), 3, 3).contiguous(),
                                 padding="reflect"))


def ar_rsk_ff_torch(poison: ARPoison, generator: torch.Generator):
    """The AR + RSK + FF pipeline's image ops as poisonkit's torch ops (ARPoison, RSK kernels
    from torch.Generator as RandomSharpen draws them, ops.lowpass)."""
    def run(batch, batch_labels, batch_indices):
        x = nhwc_batch(batch)
        y = torch.from_numpy(np.concatenate(batch_labels)).long()
        x = poison.poison_batch(x, y, torch.from_numpy(np.concatenate(batch_indices)))
        x = ops.filter2d(x, rsk_kernels(len(x), generator=generator), padding="valid")
        return hwc_list(ops.lowpass(x, 0.3))
    return run


def make_pipeline(case: str, kind: str, images: list[np.ndarray], labels: np.ndarray,
                  threads: int, device_id: int | None):
    from nvidia.dali import fn, pipeline_def, types

    kernels = class_kernels()
    ssk = ssk_kernel()
    poison = ARPoison(sample_coefficients(10, seed=0, progress=False), key=AR_KEY)
    label_batch = [np.array([v], dtype=np.int32) for v in labels]
    index_batch = [np.array([i], dtype=np.int64) for i in range(len(images))]
    filter_batch = [kernels[v].numpy() for v in labels]
    python_op = kind == "python_function"
    torch_ops = (blur_ssk_torch if case == "blur_ssk"
                 else ar_rsk_ff_torch(poison, torch.Generator().manual_seed(0)))

    @pipeline_def(batch_size=len(images), num_threads=threads, device_id=device_id, seed=0,
                  exec_async=not python_op, exec_pipelined=not python_op)
    def pipe():
        x = fn.external_source(source=lambda: images, batch=True, layout="HWC")
        y = fn.external_source(source=lambda: label_batch, batch=True)
        i = fn.external_source(source=lambda: index_batch, batch=True)
        if device_id is not None and not python_op:
            x = x.gpu()
        if kind == "poisonkit" and case == "blur_ssk":
            x = fn.poisonkit.classwise_blur(x, y, kernels=kernels.reshape(-1).tolist())
            x = fn.poisonkit.sharpen(x, padding="reflect")
        elif kind == "poisonkit":
            x = pkdali.ar_perturb(x, y, i, poison)
            x = pkdali.sharpen(x, std=0.1, padding="valid", sample_index=i)
            x = pkdali.lowpass(x, keep=0.3)
        elif kind == "dali_builtins":
            k = fn.external_source(source=lambda: filter_batch, batch=True)
            z = fn.filter(fn.cast(x, dtype=types.FLOAT) / 255.0, k, border="constant")
            z = z / fn.reductions.max(z) * 255.0
            x = fn.cast(z, dtype=types.UINT8)
            x = fn.filter(x, fn.external_source(source=lambda: [ssk.numpy()] * len(images),
                                                batch=True), border="reflect_101")
        else:
            x = fn.python_function(x, y, i, function=torch_ops, batch_processing=True)
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
    setting = f"CIFAR-10 32x32 uint8, batch {args.batch}, {args.threads} threads, {where}"
    cases = {"blur_ssk": "class-wise blur -> SSK", "ar_rsk_ff": "AR poison -> RSK -> FF"}
    impls = {"poisonkit": "poisonkit (fn.poisonkit.*)",
             "dali_builtins": "DALI built-ins (fn.filter + max + arithmetic)",
             "python_function": "fn.python_function (poisonkit torch ops)"}
    rows = []
    for case, case_name in cases.items():
        for kind, name in impls.items():
            if case == "ar_rsk_ff" and kind == "dali_builtins":
                continue  # DALI has no AR generator
            pipe = make_pipeline(case, kind, images, labels, args.threads, args.device_id)
            rate = images_per_second(pipe.run, args.batch)
            rows.append({"case": f"{case_name}: {setting}", "impl": name, "images_per_s": rate})
            del pipe
    write_results("dali_pipeline", rows, "DALI pipeline: poison -> sharpen -> flip -> normalize",
                  notes="Each row runs the whole pipeline: external source, the poison "
                        "(class-wise blur, or AR keyed by sample index), sharpening (SSK with "
                        "reflect padding, or RSK 'valid' as the reference, then the DCT "
                        "low-pass keeping 30%), random flip, "
                        "normalize. The Python function operator forces a synchronous, "
                        "non-pipelined executor.")


if __name__ == "__main__":
    main(sys.argv[1:])
