"""poisonkit's NVIDIA DALI operators: loading the plugin, building training pipelines.

``load()`` loads ``libpoisonkit_dali.so`` (built by ``make dali`` into build/dali, or the
file named by $POISONKIT_DALI_PLUGIN); the operators then appear as ``fn.poisonkit.*``:

- ``fn.poisonkit.classwise_blur(images, labels, kernels=[...], kernel_size=3)``: the CUDA
  poison (class kernel by label, zero padding, divide by the image max, truncate).
- ``fn.poisonkit.sharpen(images, center=2.5, std=0.0, padding="valid", kernel=None, seed=...,
  sample_index=None, epoch=None)``: SSK, or RSK with ``std`` > 0, or explicit kernels;
  ``center``, ``std``, ``kernel``, ``sample_index`` and ``epoch`` accept per-sample
  ArgumentInputs. RSK's draws are Philox normals (csrc/kernels/philox.h), a pure function of
  (seed, sample index, epoch): sample index defaults to the position in the batch, epoch to
  the operator's iteration count. They are not the draws of the torch RandomSharpen (which
  uses torch.Generator): same distribution, other kernels.
- ``fn.poisonkit.ar_perturb(images, labels, indices, coefficients=[...], channels=3, eps=1.0,
  p=2.0, crop=4, key=0)``: the AR poison, equal to ops.ar_poison / ARPoison for the same
  coefficients, key and sample indices (uint8 exactly). ``key`` is a signed int64; use the
  helper ``ar_perturb`` below, which takes any key in [0, 2^64) as ARPoison does.
- ``fn.poisonkit.project_out(images, q=[...], q_shape=[D, K], clamp=False)``: the orthogonal
  projection defense, equal to ops.project_out (float32 output; with clamp the input's type).
  Q is an argument; a fitted Projection is a torch file that C++ does not read, so the helper
  ``project_out`` below loads it (or takes a Projection) and passes Q's values.

- ``fn.poisonkit.lowpass(images, sizes=[H, W, ...], rank_h=[...], rank_w=[...], rows=[...],
  cols=[...], mask=None, clamp=True)``: the frequency low-pass (FF of RSK+FF), equal to
  ops.lowpass. Its bases are arguments, one set per image size, built by the same Python
  code as the torch op's: use the helper ``lowpass(images, sizes=[(H, W), ...], keep=0.3,
  basis="dct", shape="square")``, which lists every size the pipeline will see.

Images are HWC (DALI's default) or CHW, uint8 in [0, 255] or float32 in [0, 1]; output has
the input's layout and (except project_out) type. The operators run on the CPU (DALI's
thread pool) and, in a plugin built with CUDA, on the GPU (DALI's stream); labels and
sample indices always come from the CPU. The results equal the torch ops' on the same
images and parameters.

The helpers below convert kernels from torch tensors, feed arrays in batches (a batch
source: a per-sample source silently drops a partial last batch) and wrap a pipeline in a
PyTorch iterator that keeps that partial batch.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

# The DALI wheel pinned in requirements.txt; a plugin is only valid for the DALI version it
# was compiled against.
DALI_VERSION = "2.4.0"
PLUGIN_ENV = "POISONKIT_DALI_PLUGIN"
_ROOT = Path(__file__).resolve().parents[1]
_BUILT_FOR = re.compile(rb"poisonkit-dali-built-for:([0-9A-Za-z.+_-]+)\x00")
_loaded: Path | None = None


def plugin_path() -> Path:
    """Where the plugin is looked for: $POISONKIT_DALI_PLUGIN, else build/dali."""
    env = os.environ.get(PLUGIN_ENV)
    return Path(env) if env else _ROOT / "build" / "dali" / "libpoisonkit_dali.so"


def plugin_dali_version(path: str | os.PathLike) -> str:
    """The DALI version a plugin file was compiled against (read without loading it)."""
    match = _BUILT_FOR.search(Path(path).read_bytes())
    if match is None:
        raise RuntimeError(f"poisonkit.dali: {path} is not a poisonkit DALI plugin "
                           "(no version marker)")
    return match.group(1).decode()


def load(path: str | os.PathLike | None = None) -> Path:
    """Loads the plugin (once per path) and returns its path.

    Raises ImportError when DALI is not installed, FileNotFoundError when the plugin is not
    built, RuntimeError when DALI or the plugin is not the pinned version.
    """
    global _loaded
    path = Path(path) if path is not None else plugin_path()
    if _loaded == path:
        return path
    try:
        import nvidia.dali as dali
        from nvidia.dali import plugin_manager
    except ImportError as e:
        raise ImportError(f"poisonkit.dali needs NVIDIA DALI {DALI_VERSION}: "
                          f"pip install nvidia-dali-cuda130=={DALI_VERSION}") from e
    if dali.__version__ != DALI_VERSION:
        raise RuntimeError(f"poisonkit.dali: DALI {dali.__version__} is installed but poisonkit "
                           f"pins {DALI_VERSION}: pip install nvidia-dali-cuda130=={DALI_VERSION}")
    if not path.is_file():
        raise FileNotFoundError(f"poisonkit.dali: DALI plugin not found at {path}: build it with "
                                f"`make dali` (or set ${PLUGIN_ENV})")
    built_for = plugin_dali_version(path)
    if built_for != dali.__version__:
        raise RuntimeError(f"poisonkit.dali: {path} was built for DALI {built_for}, but DALI "
                           f"{dali.__version__} is installed: rebuild it with `make dali`")
    plugin_manager.load_library(str(path))
    _loaded = path
    return path


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
        from .poisons.classwise_blur import class_kernels
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
    from .ops import _key64
    return _key64(key)


def ar_perturb(images, labels, indices, coefficients, *, eps: float | None = None,
               p: float | str | None = None, crop: int | None = None, key: int | None = None):
    """fn.poisonkit.ar_perturb: the AR poison of (key, sample index, class).

    coefficients: an ``ARPoison`` (its eps, p, crop and key are used unless given here), an
    ``ARCoefficients`` or a [K, C, 3, 3] tensor / array (then eps=1, p=2, crop=4, key=0 by
    default, as ARPoison). key: any int in [0, 2^64) (or a negative int64)."""
    load()
    from nvidia.dali import fn
    from .poisons.ar import ARCoefficients, check_coefficients
    from .transforms import ARPoison
    settings = {"eps": 1.0, "p": 2.0, "crop": 4, "key": 0}
    if isinstance(coefficients, ARPoison):
        settings = {"eps": coefficients.eps, "p": coefficients.p, "crop": coefficients.crop,
                    "key": coefficients.key}
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
        num_classes, key, patch = poison.num_classes, poison.key, poison.patch
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
    from .defenses.projection import Projection
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
    from .defenses.lowpass import lowpass_factors
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


def _image_sizes(images) -> list[tuple[int, int]]:
    """The distinct (H, W) of an NHWC array or a list of HWC arrays."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return [tuple(images.shape[1:3])]
    return sorted({tuple(np.shape(x)[:2]) for x in images})


class BatchSource:
    """Iterable of (images, labels, indices) batches for ``fn.external_source(batch=True,
    num_outputs=3)``; indices are the images' positions in ``images`` (int64), which key
    per-sample randomness (ar_perturb, sharpen's sample_index).

    images: uint8 NHWC array (or a list of HWC arrays of any sizes); labels: integers. Each
    epoch yields ceil(N / batch_size) batches, the last one partial, then stops; with
    shuffle, the order is a fixed function of (seed, epoch).
    """

    def __init__(self, images, labels, batch_size: int, shuffle: bool = False, seed: int = 0):
        if len(images) != len(labels):
            raise ValueError(f"labels: expected one per image ({len(images)}), got {len(labels)}")
        if len(images) == 0:
            raise ValueError("images: expected at least one image")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int32).reshape(-1, 1)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = -1
        self._order = np.arange(len(images))
        self._next = 0

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self):
        self.epoch += 1
        self._next = 0
        if self.shuffle:
            rng = np.random.default_rng((self.seed, self.epoch))
            self._order = rng.permutation(len(self.images))
        return self

    def __next__(self):
        if self._next >= len(self._order):
            raise StopIteration
        index = self._order[self._next:self._next + self.batch_size]
        self._next += self.batch_size
        images = [np.ascontiguousarray(self.images[i]) for i in index]
        return images, [self.labels[i] for i in index], [np.array([i], np.int64) for i in index]


def training_pipeline(source: BatchSource, *, num_threads: int = 2, device_id: int | None = None,
                      poison_kernels=None, ar_poison=None, sharpen_std: float | None = None,
                      sharpen_padding: str = "valid", lowpass_keep: float | None = None,
                      lowpass_basis: str = "dct", mean: Sequence[float] = (0.5, 0.5, 0.5),
                      std: Sequence[float] = (0.5, 0.5, 0.5), mirror: bool = True, seed: int = 0,
                      prefetch_queue_depth: int = 2):
    """A training pipeline: batches from ``source`` -> a poison (the class-wise blur when
    ``poison_kernels`` [K, k, k] is given, the AR poison when ``ar_poison`` (an ARPoison)
    is, keyed by the source's sample indices) -> sharpening (SSK when sharpen_std is 0, RSK
    when > 0, keyed by (seed, sample index, iteration); none when None) -> frequency
    low-pass (when ``lowpass_keep`` is given: RSK+FF's FF, square mask) -> random horizontal
    flip -> normalize to float CHW. Outputs ("images", "labels"): float32 [N, C, H, W] and
    int64 [N]. device_id=None runs on the CPU.
    """
    load()
    from nvidia.dali import fn, pipeline_def, types
    if poison_kernels is not None and ar_poison is not None:
        raise ValueError("poison_kernels, ar_poison: give at most one poison")
    # 'valid' sharpening drops a one-pixel border before the low-pass
    shrink = 2 if sharpen_std is not None and sharpen_padding == "valid" else 0
    sizes = [(h - shrink, w - shrink) for h, w in _image_sizes(source.images)]

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
            images = lowpass(images, sizes=sizes, keep=lowpass_keep, basis=lowpass_basis)
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
