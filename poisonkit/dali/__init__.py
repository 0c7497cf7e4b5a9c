"""poisonkit's NVIDIA DALI operators: loading the plugin, building training pipelines.

``load()`` loads ``libpoisonkit_dali.so``: the file named by $POISONKIT_DALI_PLUGIN, else the
copy packed into the installed wheel (poisonkit/dali/lib/), else a source checkout's
build/dali (``make dali``); the operators then appear as ``fn.poisonkit.*``:

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
  helper ``ar_perturb`` (poisonkit.dali.ops), which takes any key in [0, 2^64) as ARPoison does.
- ``fn.poisonkit.lsp_perturb(images, labels, indices, num_classes=10, patch=8, eps=6/255,
  class_sep=10.0, key=0)``: the LSP poison, equal to ops.lsp_poison / LSPPoison (helper
  ``lsp_perturb(images, labels, indices, poison)``).
- ``fn.poisonkit.one_pixel(images, labels, rows=[...], cols=[...], colours=[...])``: the
  one-pixel shortcut, equal to ops.one_pixel_apply / OnePixelShortcut (helper
  ``one_pixel(images, labels, poison)``).
- ``fn.poisonkit.project_out(images, q_file="q.npy", clamp=False)``: the orthogonal
  projection defense, equal to ops.project_out (float32 output; with clamp the input's type).
  Q comes from a .npy file (``Projection.save_q`` writes one; read, checked and, on the GPU,
  uploaded once) or, on the CPU, from a second input holding Q^T per sample. The helper
  ``project_out(images, projection)`` takes either: a .npy path, or a Projection, a saved one
  (.pt) or a [D, K] matrix (CPU).
- ``fn.poisonkit.lowpass(images, keep=0.3, basis="dct", shape="square", clamp=True)``: the
  frequency low-pass (FF of RSK+FF), equal to ops.lowpass. The operator builds (and caches)
  the bases of every image size it meets, so batches may mix sizes (e.g. decoded ImageNet
  JPEGs); the helper ``lowpass`` also checks that ``keep``, which the operator gets as a
  float32, keeps the same frequencies as ops.lowpass on every axis.

Images are HWC (DALI's default) or CHW, uint8 in [0, 255] or float32 in [0, 1]; output has
the input's layout and (except project_out) type. The operators run on the CPU (DALI's
thread pool) and, in a plugin built with CUDA, on the GPU (DALI's stream); labels and
sample indices always come from the CPU. The results equal the torch ops' on the same
images and parameters.

The package, by job: ``plugin`` (finding, checking and loading the plugin), ``ops`` (helpers
converting kernels, ARPoison, Projection and lowpass options to operator arguments),
``source`` (``BatchSource``: arrays fed in batches, optionally sharded; a per-sample source
silently drops a partial last batch) and ``pipeline`` (``training_pipeline`` and a PyTorch
iterator that keeps that partial batch).
"""
from .ops import (ar_perturb, classwise_blur, lowpass, lsp_perturb, one_pixel, project_out,
                  sharpen)
from .pipeline import torch_iterator, training_pipeline
from .plugin import (DALI_VERSION, PACKAGED_PLUGIN, PLUGIN_ENV, load, plugin_candidates,
                     plugin_dali_version, plugin_path)
from .source import BatchSource

__all__ = ["DALI_VERSION", "PACKAGED_PLUGIN", "PLUGIN_ENV", "BatchSource", "ar_perturb",
           "classwise_blur", "load", "lowpass", "lsp_perturb", "one_pixel", "plugin_candidates",
           "plugin_dali_version",
           "plugin_path", "project_out", "sharpen", "torch_iterator", "training_pipeline"]
