"""Helpers for the fn.poisonkit.* operators: arguments from torch tensors and poisonkit
objects (kernels, ARPoison, Projection, lowpass bases), validated before the graph is built."""
from __future__ import annotations

import os
from typing import Sequence

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
    """fn.poisonkit.project_out with Q from a fitted ``Projection``, the path of a saved one
    (loaded here: the operator cannot read torch files) or a float32 [D, K] tensor / array.
    Images must have C*H*W = D; output float32 (leaves [0, 1]) or, with clamp, the input's
    type clamped to [0, 1]."""
    load()
    from nvidia.dali import fn
    from ..defenses.projection import Projection
    if isinstance(projection, (str, os.PathLike)):
        projection = Projection.load(projection)
    q = projection.Q if isinstance(projection, Projection) else projection
    shape = tuple(np.shape(q))
    if len(shape) != 2:
        raise ValueError(f"projection: expected a Projection, a path or a [D, K] matrix, got "
                         f"shape {shape}")
    return fn.poisonkit.project_out(images, q=_flat_floats("projection", q), q_shape=list(shape),
                                    clamp=bool(clamp))


def lowpass(images, *, sizes: Sequence[tuple[int, int]] = ((32, 32),), keep: float = 0.30,
            basis: str = "dct", shape: str = "square", clamp: bool = True):
    """fn.poisonkit.lowpass with the bases of ops.lowpass (poisonkit.defenses.lowpass) for
    every image size in ``sizes`` ((H, W) pairs: an image of another size is an error)."""
    load()
    from nvidia.dali import fn
    from ..defenses.lowpass import lowpass_factors
    sizes = [tuple(s) for s in sizes]
    if not sizes or any(len(s) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0
                                               for v in s) for s in sizes):
        raise ValueError(f"sizes: expected (H, W) pairs of positive ints, got {sizes!r}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes: expected distinct sizes, got {sizes!r}")
    factors = [lowpass_factors(h, w, keep, basis, shape) for h, w in sizes]
    args = {"sizes": [int(v) for s in sizes for v in s],
            "rank_h": [int(r.shape[0]) for r, _, _ in factors],
            "rank_w": [int(c.shape[0]) for _, c, _ in factors],
            "rows": [v for r, _, _ in factors for v in _flat_floats("rows", r)],
            "cols": [v for _, c, _ in factors for v in _flat_floats("cols", c)],
            "clamp": bool(clamp)}
    if shape != "square":
        args["mask"] = [v for _, _, m in factors for v in _flat_floats("mask", m)]
    return fn.poisonkit.lowpass(images, **args)
