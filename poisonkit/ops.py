"""Thin wrappers over torch.ops.poisonkit.* with fake (meta) kernels for torch.compile.

Every op takes uint8 images in [0, 255] or float32 images in [0, 1], NCHW batches or CHW
single images, and returns the input's dtype.
"""
from __future__ import annotations

import torch

from . import _C  # noqa: F401  (loads the library: runs the TORCH_LIBRARY registrations)
from ._lowpass_bases import lowpass_factors

PADDINGS = ("zeros", "reflect", "replicate", "valid")


def cuda_available() -> bool:
    """True when the extension was built with its CUDA kernels."""
    return torch._C._dispatch_has_kernel_for_dispatch_key("poisonkit::filter2d", "CUDA")


def filter2d(x: torch.Tensor, weights: torch.Tensor, padding: str = "zeros",
             normalize: str = "none", rounding: str = "nearest", clamp: bool = True) -> torch.Tensor:
    """Per-image depthwise 2-D filter (cross-correlation, as torch.conv2d).

    x: uint8 or float32, NCHW (or CHW for one image). weights: float32 [N, kh, kw] (one
    kernel per image, shared by its channels) or [N, C, kh, kw]; for a CHW image drop N.
    Kernel sizes are odd, 1 to 7. padding: 'zeros', 'reflect', 'replicate' or 'valid'
    (no padding: the output shrinks by kh-1, kw-1). normalize='max' divides each image by
    its own global max over C, H, W (the CUDA poison); an image whose max is not positive is
    left as filtered. Non-finite values follow the README's rule (NaN wherever they reach;
    with normalize='max' the whole image). uint8 output rounds half up, or
    truncates with rounding='truncate' (the CUDA poison's reference); float output is
    clamped to [0, 1] unless clamp=False.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(weights, torch.Tensor):
        raise TypeError("filter2d: x and weights must be torch.Tensors")
    if x.dim() == 3:
        if weights.dim() not in (2, 3):
            raise ValueError("filter2d: for a CHW image, weights must be [kh, kw] or [C, kh, kw], "
                             f"got shape {tuple(weights.shape)}")
        return filter2d(x.unsqueeze(0), weights.unsqueeze(0), padding, normalize, rounding,
                        clamp).squeeze(0)
    return torch.ops.poisonkit.filter2d.default(x, weights, padding, normalize, rounding, clamp)


@torch.library.register_fake("poisonkit::filter2d")
def _filter2d_fake(x, weights, padding, normalize, rounding, clamp):
    torch._check(x.dim() == 4, lambda: "filter2d: x must be NCHW")
    n, c, h, w = x.shape
    kh, kw = weights.shape[-2:]
    if padding == "valid":
        h, w = h - kh + 1, w - kw + 1
    return x.new_empty((n, c, h, w))


def project_out(x: torch.Tensor, Q: torch.Tensor, clamp: bool = False) -> torch.Tensor:
    """Orthogonal projection defense: removes from every image its component in span(Q).

    x: uint8 [0, 255] or float32 [0, 1], NCHW (or CHW for one image). Q: float32 [D, K]
    with D = C * H * W, orthonormal columns (the op computes x - Q Q^T x for any Q; it is a
    projection only when Q^T Q = I). Images are taken in [0, 1] units (uint8 / 255).
    Returns float32: the projected images leave [0, 1] (negative values and values above 1
    are expected; the reference does not re-clip). clamp=True returns x's dtype instead,
    clamped to [0, 1] (uint8: rounded to nearest and saturated).
    """
    if not isinstance(x, torch.Tensor) or not isinstance(Q, torch.Tensor):
        raise TypeError("project_out: x and Q must be torch.Tensors")
    if x.dim() == 3:
        return project_out(x.unsqueeze(0), Q, clamp).squeeze(0)
    return torch.ops.poisonkit.project_out.default(x, Q, clamp)


@torch.library.register_fake("poisonkit::project_out")
def _project_out_fake(x, Q, clamp):
    torch._check(x.dim() == 4, lambda: "project_out: x must be NCHW")
    torch._check(Q.dim() == 2 and Q.shape[0] == x.shape[1] * x.shape[2] * x.shape[3],
                 lambda: "project_out: Q must be [C*H*W, K]")
    return torch.empty(x.shape, dtype=x.dtype if clamp else torch.float32, device=x.device)


# ---- AR perturbations (DESIGN 3.1) ----

def _key64(key: int) -> int:
    """A key in [0, 2^64) (or a negative int64) as the int64 the schema carries."""
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(f"key: expected an int, got {type(key).__name__}")
    if not -(1 << 63) <= key < (1 << 64):
        raise ValueError(f"key: expected an int in [-2^63, 2^64), got {key}")
    return key - (1 << 64) if key >= (1 << 63) else key


def _norm_p(p) -> float:
    """p = 2 or inf, given as a number or a string, as the float the schema carries."""
    try:
        return float(p)
    except (TypeError, ValueError):
        raise ValueError(f"p: expected 2 or inf, got {p!r}") from None


def _eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"eps: expected a positive finite number, got {eps!r}")
    return float(eps)


def ar_canvas(indices: torch.Tensor, key: int, channels: int, height: int, width: int) -> torch.Tensor:
    """The N(0,1) canvas each AR perturbation starts from: float32 [N, channels, height,
    width], entry (c, i, j) of sample n being Philox normal draw (c*height + i)*width + j
    of (key, indices[n]). ar_generate(..., height=H, width=W, crop) reads the initial
    conditions from ar_canvas(indices, key, C, H + crop, W + crop)."""
    return torch.ops.poisonkit.ar_canvas.default(indices, _key64(key), channels, height, width)


def ar_generate(coeffs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor, key: int,
                height: int, width: int, crop: int = 4, eps: float | None = 1.0,
                p: float | str = 2) -> torch.Tensor:
    """AR perturbations, float32 [N, C, height, width], on coeffs' device.

    coeffs: float32 [K, C, 3, 3] per-class AR coefficients (tap (2,2) unused). labels,
    indices: int64 [N]; sample n uses class labels[n] and the Philox draws of
    (key, indices[n]), so a perturbation does not depend on the batch it is computed in.
    Each is scaled to Lp norm eps (p = 2 or inf) over its C*H*W entries; eps=None returns
    the unscaled process.
    """
    eps = None if eps is None else _eps(eps)
    return torch.ops.poisonkit.ar_generate.default(coeffs, labels, indices, _key64(key), height,
                                                   width, crop, eps, _norm_p(p))


def ar_poison(x: torch.Tensor, coeffs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor,
              key: int, crop: int = 4, eps: float = 1.0, p: float | str = 2) -> torch.Tensor:
    """Images plus their AR perturbations (ar_generate at x's size) in [0,1] units,
    clamped to [0, 1]; uint8 in, uint8 out (rounded to nearest); float32 in [0, 1] in,
    float32 out. x: NCHW (or CHW with scalar labels/indices)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"ar_poison: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        one = []
        for name, t in (("labels", labels), ("indices", indices)):
            t = torch.as_tensor(t, device=x.device)
            if t.numel() != 1:
                raise ValueError(f"{name}: expected one value for a CHW image, got shape "
                                 f"{tuple(t.shape)}")
            one.append(t.reshape(1))
        return ar_poison(x.unsqueeze(0), coeffs, *one, key, crop, eps, p).squeeze(0)
    return torch.ops.poisonkit.ar_poison.default(x, coeffs, labels, indices, _key64(key), crop,
                                                 _eps(eps), _norm_p(p))


def ar_filter(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Every class's AR-filter valid response summed over channels: float32 [N, K, H-2, W-2]
    (or [K, H-2, W-2] for a CHW image). x: uint8 (read as x/255) or float32 (as is)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"ar_filter: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        return ar_filter(x.unsqueeze(0), coeffs).squeeze(0)
    return torch.ops.poisonkit.ar_filter.default(x, coeffs)


@torch.library.register_fake("poisonkit::ar_canvas")
def _ar_canvas_fake(indices, key, channels, height, width):
    return indices.new_empty((indices.shape[0], channels, height, width), dtype=torch.float32)


@torch.library.register_fake("poisonkit::ar_generate")
def _ar_generate_fake(coeffs, labels, indices, key, height, width, crop, eps, p):
    return coeffs.new_empty((indices.shape[0], coeffs.shape[1], height, width))


@torch.library.register_fake("poisonkit::ar_poison")
def _ar_poison_fake(x, coeffs, labels, indices, key, crop, eps, p):
    return x.new_empty(x.shape)  # contiguous NCHW, as the op returns (also for channels_last x)


@torch.library.register_fake("poisonkit::ar_filter")
def _ar_filter_fake(x, coeffs):
    torch._check(x.dim() == 4, lambda: "ar_filter: x must be NCHW")
    n, _, h, w = x.shape
    return x.new_empty((n, coeffs.shape[0], h - 2, w - 2), dtype=torch.float32)


def lowpass(x: torch.Tensor, keep: float = 0.30, basis: str = "dct", shape: str = "square",
            clamp: bool = True) -> torch.Tensor:
    """Frequency low-pass per channel (the FF of RSK+FF): keep the low frequencies of an
    orthonormal DCT-II (basis='dct') or of the DFT (basis='fft'), inside a square or disk
    mask, and invert. keep: in (0, 1]; the DCT square keeps int(H * keep) x int(W * keep)
    coefficients as the reference; see poisonkit.defenses.lowpass for the exact masks.

    x: uint8 or float32, NCHW (or CHW), any H and W. uint8 output is rounded to nearest and
    saturated; float output is clamped to [0, 1] unless clamp=False. The basis matrices
    are built once per (size, keep, basis, shape, device) and cached.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"lowpass: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        return lowpass(x.unsqueeze(0), keep, basis, shape, clamp).squeeze(0)
    if x.dim() != 4:
        raise ValueError(f"lowpass: x must be CHW or NCHW, got shape {tuple(x.shape)}")
    rows, cols, mask = lowpass_factors(x.shape[-2], x.shape[-1], keep, basis, shape, x.device)
    return torch.ops.poisonkit.lowpass.default(x, rows, cols, mask, bool(clamp))


@torch.library.register_fake("poisonkit::lowpass")
def _lowpass_fake(x, rows, cols, mask, clamp):
    torch._check(x.dim() == 4, lambda: "lowpass: x must be NCHW")
    return x.new_empty(x.shape)


# ---- autograd ----
# filter2d (normalize='none', zero or 'valid' padding), lowpass and project_out are linear
# in x when they do not clamp: their backward is the same op with the adjoint weights. Every
# other case, and gradients with respect to weights / bases / coefficients, raises on
# backward instead of returning a silent None.

def _no_gradient(op: str, why: str):
    def backward(ctx, *grads):
        raise RuntimeError(f"{op}: backward is not supported ({why})")
    return backward


def _keep_args(ctx, inputs, output):
    ctx.args = inputs
    ctx.weights_need_grad = [isinstance(t, torch.Tensor) and t.requires_grad for t in inputs[1:]]


def _refuse_weight_grads(ctx, op: str, names: str) -> None:
    if any(ctx.weights_need_grad):
        raise RuntimeError(f"{op}: backward with respect to {names} is not supported (only x)")


def _filter2d_backward(ctx, grad):
    x, weights, padding, normalize, rounding, clamp = ctx.args
    _refuse_weight_grads(ctx, "filter2d", "weights")
    if normalize != "none" or clamp or padding not in ("zeros", "valid"):
        raise RuntimeError("filter2d: backward is defined only where the filter is linear in x: "
                           "normalize='none', clamp=False and padding 'zeros' or 'valid', got "
                           f"normalize={normalize!r}, clamp={clamp}, padding={padding!r}")
    flipped = weights.flip(-1, -2)  # correlation's adjoint: correlation with the flipped kernel
    if padding == "valid":  # adjoint of 'valid' is the 'full' correlation
        kh, kw = weights.shape[-2:]
        grad = torch.nn.functional.pad(grad, (kw - 1, kw - 1, kh - 1, kh - 1))
    gx = torch.ops.poisonkit.filter2d.default(grad.contiguous(), flipped.contiguous(), padding,
                                              "none", rounding, False)
    return gx, None, None, None, None, None


def _lowpass_backward(ctx, grad):
    x, rows, cols, mask, clamp = ctx.args
    _refuse_weight_grads(ctx, "lowpass", "the basis rows or mask")
    if clamp:
        raise RuntimeError("lowpass: backward is defined only for clamp=False (clamping is not linear)")
    # out = R_H^T (M o (R_H X R_W^T)) R_W is self-adjoint in X
    return (torch.ops.poisonkit.lowpass.default(grad.contiguous(), rows, cols, mask, False),
            None, None, None, None)


def _project_out_backward(ctx, grad):
    x, Q, clamp = ctx.args
    _refuse_weight_grads(ctx, "project_out", "Q")
    if clamp:
        raise RuntimeError("project_out: backward is defined only for clamp=False (clamping is not linear)")
    # I - Q Q^T is symmetric
    return torch.ops.poisonkit.project_out.default(grad.contiguous(), Q, False), None, None


torch.library.register_autograd("poisonkit::filter2d", _filter2d_backward, setup_context=_keep_args)
torch.library.register_autograd("poisonkit::lowpass", _lowpass_backward, setup_context=_keep_args)
torch.library.register_autograd("poisonkit::project_out", _project_out_backward,
                                setup_context=_keep_args)
for _op in ("ar_generate", "ar_poison", "ar_filter"):
    torch.library.register_autograd(
        f"poisonkit::{_op}", _no_gradient(_op, "not implemented for the AR ops, which run in the "
                                          "data loader"),
        setup_context=lambda ctx, inputs, output: None)


# ---- RSK sharpening kernels (DESIGN 3.3) ----

def rsk_kernels(seed: int | torch.Tensor, indices: torch.Tensor, epoch: int = 0,
                center: float = 2.5, std: float = 0.1) -> torch.Tensor:
    """The RSK kernels of samples `indices` (int64 [N], >= 0) at `epoch` (0 to 2^31 - 1):
    float32 [N, 3, 3] on indices' device, K = [[0, -n1, 0], [-n2, c, -n3], [0, -n4, 0]] with
    c ~ N(center, std), n_i ~ N((c - 1) / 4, std). The draws are Philox normals of (seed,
    index, epoch), the same as fn.poisonkit.sharpen's (seed, sample_index, epoch).

    seed: an int in [-2^63, 2^64) or a 0-dim int64 tensor (one drawn from torch's RNG stays a
    tensor, so a compiled transform keeps the draw in its graph)."""
    if not isinstance(seed, torch.Tensor):
        seed = torch.tensor(_key64(seed), dtype=torch.int64)
    return torch.ops.poisonkit.rsk_kernels.default(seed, indices, epoch, float(center),
                                                   float(std))


@torch.library.register_fake("poisonkit::rsk_kernels")
def _rsk_kernels_fake(seed, indices, epoch, center, std):
    return indices.new_empty((indices.shape[0], 3, 3), dtype=torch.float32)


# ---- LSP synthetic perturbations and the one-pixel shortcut (DESIGN 3.6) ----

def _batch_of_one(x: torch.Tensor, **per_sample) -> list[torch.Tensor]:
    """The per-sample tensors of a CHW image (one value each) as [1] tensors."""
    out = []
    for name, t in per_sample.items():
        t = torch.as_tensor(t, device=x.device)
        if t.numel() != 1:
            raise ValueError(f"{name}: expected one value for a CHW image, got shape "
                             f"{tuple(t.shape)}")
        out.append(t.reshape(1))
    return out


def lsp_classes(key: int, num_classes: int, features: int,
                class_sep: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """LSP class tables drawn from the key (CPU): centres float32 [K, F], vertices of the
    hypercube {-class_sep, +class_sep}^F, and mixing matrices float32 [K, F, F] with
    entries uniform in (-1, 1), as make_classification's per-cluster centroid and
    covariance factor (see csrc/kernels/lsp.h for the draws)."""
    return torch.ops.poisonkit.lsp_classes.default(_key64(key), num_classes, features,
                                                   float(class_sep))


def lsp_generate(centres: torch.Tensor, mixing: torch.Tensor, labels: torch.Tensor,
                 indices: torch.Tensor, key: int, channels: int, height: int, width: int,
                 patch: int = 8, eps: float = 6 / 255, *, check_tables: bool = True) -> torch.Tensor:
    """LSP perturbations, float32 [N, channels, height, width], on the tables' device.

    Sample n's point is z A + centre of class labels[n] (z: F normal draws of
    (key, indices[n])), reshaped [H/patch, W/patch, C], each value repeated over a
    patch x patch block and scaled to an L2 norm of eps * sqrt(C H W). check_tables=False
    skips scanning the tables for NaN/inf (K F^2 values; a host sync on CUDA): for tables
    straight from lsp_classes, as LSPPoison passes them."""
    return torch.ops.poisonkit.lsp_generate.default(centres, mixing, labels, indices, _key64(key),
                                                    channels, height, width, patch, _eps(eps),
                                                    check_tables)


def lsp_poison(x: torch.Tensor, centres: torch.Tensor, mixing: torch.Tensor,
               labels: torch.Tensor, indices: torch.Tensor, key: int, patch: int = 8,
               eps: float = 6 / 255, *, check_tables: bool = True) -> torch.Tensor:
    """Images plus their LSP perturbations (lsp_generate at x's size) in [0, 1] units,
    clipped to [0, 1]; uint8 in, uint8 out, truncated as the reference stores it; float32
    in, float32 out. x: NCHW (or CHW with one label and index). check_tables: as
    lsp_generate."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"lsp_poison: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        one = _batch_of_one(x, labels=labels, indices=indices)
        return lsp_poison(x.unsqueeze(0), centres, mixing, *one, key, patch, eps,
                          check_tables=check_tables).squeeze(0)
    return torch.ops.poisonkit.lsp_poison.default(x, centres, mixing, labels, indices,
                                                  _key64(key), patch, _eps(eps), check_tables)


@torch.library.register_fake("poisonkit::lsp_classes")
def _lsp_classes_fake(key, num_classes, features, class_sep):
    return (torch.empty((num_classes, features)), torch.empty((num_classes, features, features)))


@torch.library.register_fake("poisonkit::lsp_generate")
def _lsp_generate_fake(centres, mixing, labels, indices, key, channels, height, width, patch, eps,
                       check_tables=True):
    return centres.new_empty((indices.shape[0], channels, height, width))


@torch.library.register_fake("poisonkit::lsp_poison")
def _lsp_poison_fake(x, centres, mixing, labels, indices, key, patch, eps, check_tables=True):
    return x.new_empty(x.shape)  # contiguous NCHW, as the op returns (also for channels_last x)


def one_pixel_moments(x: torch.Tensor, labels: torch.Tensor,
                      num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass of the OPS search over a batch: per class, channel and pixel the sum and
    the sum of squares of the values (float64 [K, C, H, W], in x's units: 0-255 for
    uint8), and the class counts (int64 [K]). Sums of batches add up to the dataset's."""
    return torch.ops.poisonkit.one_pixel_moments.default(x, labels, num_classes)


def one_pixel_search(sums: torch.Tensor, squares: torch.Tensor, counts: torch.Tensor,
                     unit: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The OPS scores mean/std of |colour - pixel| (float64 [K, H*W, 2^C]) and the greedy
    per-class choice (int64 [K]: position * 2^C + colour, position p being pixel
    (p // H, p % H)), from the moments. unit: a lit channel's value in the moments' units
    (255 for uint8 images, 1 for float). Runs on the CPU."""
    return torch.ops.poisonkit.one_pixel_search.default(sums.cpu(), squares.cpu(), counts.cpu(),
                                                        float(unit))


def one_pixel_apply(x: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor,
                    colours: torch.Tensor) -> torch.Tensor:
    """Sets pixel positions[k] (row * W + col) of every image of class k to colours[k]
    (float32 [K, C] in [0, 1]; uint8 images get round(255 * colour)). x: NCHW (or CHW with
    one label)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"one_pixel_apply: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        (one,) = _batch_of_one(x, labels=labels)
        return one_pixel_apply(x.unsqueeze(0), one, positions, colours).squeeze(0)
    return torch.ops.poisonkit.one_pixel_apply.default(x, labels, positions, colours)


@torch.library.register_fake("poisonkit::one_pixel_moments")
def _one_pixel_moments_fake(x, labels, num_classes):
    shape = (num_classes, *x.shape[1:])
    return (x.new_empty(shape, dtype=torch.float64), x.new_empty(shape, dtype=torch.float64),
            x.new_empty((num_classes,), dtype=torch.int64))


@torch.library.register_fake("poisonkit::one_pixel_search")
def _one_pixel_search_fake(sums, squares, counts, unit):
    k, c, h, w = sums.shape
    return sums.new_empty((k, h * w, 2 ** c)), counts.new_empty((k,))


@torch.library.register_fake("poisonkit::one_pixel_apply")
def _one_pixel_apply_fake(x, labels, positions, colours):
    return x.new_empty(x.shape)  # contiguous NCHW, as the op returns
