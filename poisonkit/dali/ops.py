"""Helpers for the fn.poisonkit.* operators: arguments from torch tensors and poisonkit
objects (kernels, ARPoison, Projection, lowpass options), validated before the graph is built."""
from __future__ import annotations

import os
import numpy as np

from .plugin import load


def _flat_floats(name: str, value) -> list[float]:
    value = value.detach().cpu() if hasattr(value, "detach") else value
    array = np.asarray(value, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite values")
    return array.reshape(-1).tolist()


def classwise_blur(images, labels, kernels=None, *, num_classes: int = 10,
                   blur_parameter: float = 0.3, kernel_size: int = 3, seed: int = 0):
    """fn.poisonkit.classwise_blur with kernels given as a [num_classes, k, k] tensor or
    array, or drawn as the reference does (poisons.classwise_blur.class_kernels)."""
    load()
    from nvidia.dali import fn
    if kernels is None:
        from ..poisons.classwise_blur import class_kernels
        kernels = class_kernels(num_classes, blur_parameter, kernel_size, seed)
    shape = tuple(np.shape(kernels))
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"kernels: expected [num_classes, k, k], got shape {shape}")
    return fn.poisonkit.classwise_blur(images, labels, kernels=_flat_floats("kernels", kernels),
                                       kernel_size=shape[1])


def sharpen(images, *, center=2.5, std=0.0, padding: str = "valid", kernel=None,
            seed: int | None = None, sample_index=None, epoch=None):
    """fn.poisonkit.sharpen: SSK (std=0), RSK (std>0, Philox draws of (seed, sample_index,
    epoch)) or an explicit [k, k] kernel (tensor or array; DataNodes pass through as
    per-sample ArgumentInputs, as do center, std, sample_index and epoch)."""
    load()
    from nvidia.dali import fn
    from nvidia.dali.data_node import DataNode
    args = {"padding": padding}
    if seed is not None:
        args["seed"] = seed
    for name, value in (("sample_index", sample_index), ("epoch", epoch)):
        if value is not None:
            args[name] = value
    if kernel is not None:
        args["kernel"] = kernel if isinstance(kernel, DataNode) else _flat_floats("kernel", kernel)
    else:
        args.update(center=center, std=std)
    return fn.poisonkit.sharpen(images, **args)


def _key64(key) -> int:
    from ..ops import _key64
    return _key64(key)


def ar_perturb(images, labels, indices, coefficients, *, eps: float | None = None,
               p: float | str | None = None, crop: int | None = None, key: int | None = None):
    """fn.poisonkit.ar_perturb: the AR poison of (key, sample index, class).

    coefficients: an ``ARPoison`` (its eps, p, crop and key are used unless given here), an
    ``ARCoefficients`` or a [K, C, 3, 3] tensor / array (then eps=1, p=2, crop=4, key=0 by
    default, as ARPoison). key: any int in [0, 2^64) (or a negative int64)."""
    load()
    from nvidia.dali import fn
    from ..poisons.ar import ARCoefficients, check_coefficients
    from ..transforms import ARPoison
    settings = {"eps": 1.0, "p": 2.0, "crop": 4, "key": 0}
    if isinstance(coefficients, ARPoison):
        settings = {"eps": coefficients.eps, "p": coefficients.p, "crop": coefficients.crop,
                    "key": coefficients.philox_key}
        coefficients = coefficients.coeffs
    if isinstance(coefficients, ARCoefficients):
        coefficients = coefficients.coeffs
    import torch
    coefficients = check_coefficients(torch.as_tensor(np.asarray(coefficients, np.float32))
                                      if not isinstance(coefficients, torch.Tensor)
                                      else coefficients)
    given = {"eps": eps, "p": p, "crop": crop, "key": key}
    settings.update({k: v for k, v in given.items() if v is not None})
    p_value = float(settings["p"])
    if p_value not in (2.0, float("inf")):
        raise ValueError(f"p: expected 2 or inf, got {settings['p']!r}")
    return fn.poisonkit.ar_perturb(images, labels, indices,
                                   coefficients=_flat_floats("coefficients", coefficients),
                                   channels=int(coefficients.shape[1]),
                                   eps=float(settings["eps"]), p=p_value,
                                   crop=int(settings["crop"]), key=_key64(settings["key"]))



def lsp_perturb(images, labels, indices, poison=None, *, num_classes: int = 10, key: int = 0,
                patch: int = 8, eps: float = 6 / 255, class_sep: float = 10.0):
    """fn.poisonkit.lsp_perturb: the LSP poison of (key, sample index, class). poison: an
    ``LSPPoison`` (its settings are used) or None (then the keyword settings)."""
    load()
    from nvidia.dali import fn
    if poison is not None:
        num_classes, key, patch = poison.num_classes, poison.philox_key, poison.patch
        eps, class_sep = poison.eps, poison.class_sep
    return fn.poisonkit.lsp_perturb(images, labels, indices, num_classes=int(num_classes),
                                    key=_key64(key), patch=int(patch), eps=float(eps),
                                    class_sep=float(class_sep))


def one_pixel(images, labels, poison):
    """fn.poisonkit.one_pixel with the pixels of a ``OnePixelShortcut`` (e.g. from its
    search)."""
    load()
    from nvidia.dali import fn
    return fn.poisonkit.one_pixel(images, labels, rows=poison.rows.tolist(),
                                  cols=poison.cols.tolist(),
                                  colours=_flat_floats("colours", poison.colours))

def project_out(images, projection, *, clamp: bool = False):
    """fn.poisonkit.project_out. projection: the path of a .npy holding Q (float [D, K], as
    ``Projection.save_q`` writes it: the operator reads it itself, on CPU and GPU), or, for
    CPU pipelines, a fitted ``Projection``, the path of a saved one (.pt) or a float32 [D, K]
    tensor / array, fed to the operator as its Q^T input (one reference per sample, no copy).
    Images must have C*H*W = D; output float32 (leaves [0, 1]) or, with clamp, the input's
    type clamped to [0, 1]."""
    load()
    from nvidia.dali import fn
    from nvidia.dali.pipeline import Pipeline
    from ..defenses.projection import Projection
    if isinstance(projection, (str, os.PathLike)) and os.fspath(projection).endswith(".npy"):
        return fn.poisonkit.project_out(images, q_file=os.fspath(projection), clamp=bool(clamp))
    if getattr(images, "device", "cpu") != "cpu":
        raise ValueError("projection: on the GPU, pass the path of a .npy holding Q "
                         "(Projection.save_q writes one)")
    if isinstance(projection, (str, os.PathLike)):
        projection = Projection.load(projection)
    q = projection.Q if isinstance(projection, Projection) else projection
    q = np.asarray(q.detach().cpu() if hasattr(q, "detach") else q, dtype=np.float32)
    if q.ndim != 2:
        raise ValueError(f"projection: expected a Projection, a path or a [D, K] matrix, got "
                         f"shape {q.shape}")
    if not np.isfinite(q).all():
        raise ValueError("projection: Q contains NaN or inf")
    qt = np.ascontiguousarray(q.T)
    batch = Pipeline.current().max_batch_size
    # The same array for every sample; no_copy: DALI reads it in place.
    qt_node = fn.external_source(source=lambda: [qt] * batch, batch=True, no_copy=True)
    return fn.poisonkit.project_out(images, qt_node, clamp=bool(clamp))


def lowpass_keep_error(keep: float) -> str | None:
    """Why the DALI operator (which gets keep as a float32 and floors n * keep with a 1e-4
    guard) would keep other frequencies than ops.lowpass for some axis up to 8192, or None."""
    from .._lowpass_bases import dct_rank, fft_radius
    k32 = float(np.float32(keep))
    for n in range(1, 8193):
        if (dct_rank(n, keep) != int(np.floor(n * k32 + 1e-4))
                or fft_radius(n, keep) != int(np.floor(n * k32 / 2 + 1e-4))):
            return (f"keep={keep!r} keeps another number of frequencies on a size-{n} axis "
                    f"once rounded to float32 for the DALI operator; use a rounder value")
    return None


def lowpass(images, *, keep: float = 0.30, basis: str = "dct", shape: str = "square",
            clamp: bool = True):
    """fn.poisonkit.lowpass: ops.lowpass's filter (same keep, basis, shape). The operator
    builds and caches the bases of every image size it meets, so batches may mix sizes."""
    load()
    from nvidia.dali import fn
    from ..defenses.lowpass import check_options
    keep = check_options(keep, basis, shape)
    error = lowpass_keep_error(keep)
    if error:
        raise ValueError(f"keep: {error}")
    return fn.poisonkit.lowpass(images, keep=keep, basis=basis, shape=shape, clamp=bool(clamp))
