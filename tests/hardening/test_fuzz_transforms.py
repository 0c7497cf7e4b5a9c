"""The transforms on generated input (tensors, tv_tensors, PIL images; odd parameters):
the reference of the op they wrap with the transform's documented kernel, in the input's
type, or a documented error naming the argument."""
from __future__ import annotations

import math

import PIL.Image
import torch
from hypothesis import given
from hypothesis import strategies as st
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from poisonkit import ops, transforms
from poisonkit.defenses.projection import Projection
from poisonkit.defenses.sharpen import rsk_kernels
from tests.ops.test_ar import reference_generate
from tests.ops.test_filter2d import Quantized, assert_matches, reference

from .ar_inputs import coefficients
from .strategies import (FUZZ, assert_float_close, finite_part, image_problems, images,
                         nonfinite_rule, seeds, unit)
from .tally import check_call
from .test_fuzz_filter2d import nonfinite_reference

IMAGE_NAMES = ["x", "image", "label", "index"]
CENTERS = st.sampled_from([2.5, 1.0, 0.0, -3.0, 100.0])
BAD_NUMBERS = st.sampled_from([math.nan, math.inf, "2"])


@st.composite
def inputs(draw, broken=False, channels=st.integers(1, 4)):
    """(input in some type, plain tensor of it): a tensor, a tv_tensors.Image or a PIL image."""
    x, _ = draw(images(broken=broken, channels=channels))
    kind = draw(st.sampled_from(["tensor", "tv", "pil"]))
    if kind == "pil" and x.dim() == 3 and x.dtype == torch.uint8 and x.shape[0] in (1, 3):
        pil = F.to_pil_image(x)
        return pil, F.pil_to_tensor(pil)
    if kind == "tv" and x.dim() in (3, 4) and x.numel():
        return tv_tensors.Image(x), x
    return x, x


def assert_output(out, inpt, ref):
    """out has inpt's type and matches the filter2d-style reference ref."""
    if isinstance(inpt, PIL.Image.Image):
        assert isinstance(out, PIL.Image.Image)
        out = F.pil_to_tensor(out)
    else:
        assert type(out) is type(inpt)
        out = out.as_subclass(torch.Tensor)
    single = out.dim() == 3
    if isinstance(ref, Quantized):
        assert_matches(out[None] if single else out, ref)
    else:
        assert_float_close(out[None] if single else out, ref)


def transform_image_problems(x):
    """image_problems plus the transforms' layout rule: a tensor whose last dim looks like
    channels (1, 3, 4) while its channel dim does not is refused as channels-last (HWC)."""
    problems = image_problems(x)
    if not problems and x.shape[-1] in (1, 3, 4) and x.shape[-3] not in (1, 3, 4):
        problems = ["x"]
    return problems + ["image"] * bool(problems)


def filter_reference(batch, w, padding, normalize="none", rounding="nearest"):
    """filter2d's reference, with the README's rule for non-finite pixels."""
    if not torch.isfinite(batch).all():
        return nonfinite_reference(batch, w, padding, normalize, True)
    return reference(batch, w, padding, normalize, rounding)


def filter_problems(x, padding, k=3):
    problems = transform_image_problems(x)
    if x.dim() in (3, 4) and padding == "valid" and min(x.shape[-2:]) < k:
        problems.append("padding")
    if x.dim() in (3, 4) and padding == "reflect" and min(x.shape[-2:]) <= k // 2:
        problems.append("padding")
    return problems


def sharpen_kernel(c, n):
    return torch.tensor([[0.0, -n[0], 0.0], [-n[1], c, -n[2]], [0.0, -n[3], 0.0]])


@FUZZ
@given(data=st.data(), fault=st.sampled_from([None] * 4 + ["image", "center", "padding"]))
def test_sharpen(data, fault):
    center = data.draw(BAD_NUMBERS if fault == "center" else CENTERS)
    padding = data.draw(st.sampled_from(["circular"] if fault == "padding" else ops.PADDINGS))
    made = check_call("Sharpen", lambda: transforms.Sharpen(center, padding),
                      [fault] if fault in ("center", "padding") else [])
    if made is None:
        return
    inpt, x = data.draw(inputs(broken=fault == "image"))
    n = (center - 1) / 4

    def compare(out):
        batch = x[None] if x.dim() == 3 else x
        w = sharpen_kernel(center, [n] * 4).expand(batch.shape[0], 3, 3)
        assert_output(out, inpt, filter_reference(batch, w, padding))

    check_call("Sharpen", lambda: made(inpt), filter_problems(x, padding), compare)


@FUZZ
@given(data=st.data(), seed=seeds,
       fault=st.sampled_from([None] * 4 + ["image", "center", "std", "padding"]))
def test_random_sharpen(data, seed, fault):
    center = data.draw(BAD_NUMBERS if fault == "center" else CENTERS)
    std = data.draw(st.sampled_from([-0.1, math.nan] if fault == "std" else [0.0, 0.1, 1.0]))
    padding = data.draw(st.sampled_from(["same"] if fault == "padding" else ops.PADDINGS))
    made = check_call("RandomSharpen",
                      lambda: transforms.RandomSharpen(center, std, padding, seed=seed),
                      [fault] if fault in ("center", "std", "padding") else [])
    if made is None:
        return
    inpt, x = data.draw(inputs(broken=fault == "image"))

    def compare(out):
        batch = x[None] if x.dim() == 3 else x
        # RSK's kernels (their distribution is tested in tests/ops/test_rsk.py)
        w = rsk_kernels(batch.shape[0], center, std, torch.Generator().manual_seed(seed))
        assert_output(out, inpt, filter_reference(batch, w, padding))

    check_call("RandomSharpen", lambda: made(inpt), filter_problems(x, padding), compare)


@FUZZ
@given(data=st.data(), seed=st.integers(0, 2**31),
       fault=st.sampled_from([None] * 4 + ["image", "label", "kernel_size", "blur_parameter"]))
def test_classwise_blur(data, seed, fault):
    k = data.draw(st.sampled_from([2, 9] if fault == "kernel_size" else [1, 3, 5, 7]))
    blur = data.draw(st.sampled_from([0.0, math.nan] if fault == "blur_parameter" else [0.3, 1e-3, 5.0]))
    num_classes = data.draw(st.integers(1, 5))
    made = check_call("ClasswiseBlur", lambda: transforms.ClasswiseBlur(num_classes, blur, k, seed),
                      [fault] if fault in ("kernel_size", "blur_parameter") else [])
    if made is None:
        return
    inpt, x = data.draw(inputs(broken=fault == "image"))
    n = x.shape[0] if x.dim() == 4 else 1
    labels = torch.tensor(data.draw(st.lists(st.integers(0, num_classes - 1), min_size=n,
                                             max_size=n)), dtype=torch.int64)
    problems = transform_image_problems(x)
    if fault == "label":
        labels = data.draw(st.sampled_from([labels + num_classes, labels - num_classes,
                                            labels.float(), labels[:0]]))
        problems.append("labels")
    label = labels.reshape(()) if x.dim() == 3 and labels.numel() == 1 else labels

    def compare(result):
        out, returned = result
        assert returned is label
        batch = x[None] if x.dim() == 3 else x
        w = made.kernels[labels.reshape(-1)]
        ref = filter_reference(batch, w, "zeros", "max", "truncate")
        assert_output(out, inpt, ref)

    check_call("ClasswiseBlur", lambda: made(inpt, label), problems, compare)


@FUZZ
@given(data=st.data(), fault=st.sampled_from([None] * 4 + ["image", "label", "eps", "p", "crop",
                                                           "key"]))
def test_ar_poison_transform(data, fault):
    channels = data.draw(st.integers(1, 3))
    coeffs = data.draw(coefficients(channels))
    coeffs[..., 2, 1] = coeffs[..., 2, 1].clamp(-1, 1)  # stable classes: ar_poison tests the rest
    eps = data.draw(st.sampled_from([0.0, -1.0, math.nan]) if fault == "eps" else st.sampled_from([1.0, 0.1]))
    p = data.draw(st.sampled_from([1, "fro"]) if fault == "p" else st.sampled_from([2, "inf"]))
    crop = data.draw(st.sampled_from([-1, 1.5]) if fault == "crop" else st.integers(0, 3))
    key = data.draw(st.sampled_from([2**128, -1, 0.5]) if fault == "key" else st.integers(0, 2**64 - 1))
    made = check_call("ARPoison", lambda: transforms.ARPoison(coeffs, eps, p, crop, key),
                      [fault] if fault in ("eps", "p", "crop", "key") else [])
    if made is None:
        return
    inpt, x = data.draw(inputs(broken=fault == "image", channels=st.just(channels)))
    n = x.shape[0] if x.dim() == 4 else 1
    labels = torch.tensor(data.draw(st.lists(st.integers(0, coeffs.shape[0] - 1), min_size=n,
                                             max_size=n)), dtype=torch.int64)
    indices = torch.arange(n) * 1000
    problems = transform_image_problems(x)
    if fault == "label":
        labels = labels + coeffs.shape[0]
        problems.append("labels")
    single = x.dim() == 3
    label, index = (labels[0], indices[0]) if single and n == 1 else (labels, indices)

    def compare(result):
        out, returned, returned_index = result  # a v2 transform keeps the input's structure
        assert returned is label and returned_index is index
        batch = x[None] if single else x
        canvas = ops.ar_canvas(indices, made.key, channels, batch.shape[2] + crop,
                               batch.shape[3] + crop)
        delta = reference_generate(canvas, coeffs, labels, crop, eps, float(p))
        ref = nonfinite_rule((unit(finite_part(batch)) + delta).clamp(0, 1),
                             ~torch.isfinite(batch))  # README: NaN where a pixel is not finite
        got = F.pil_to_tensor(out) if isinstance(out, PIL.Image.Image) else out.as_subclass(torch.Tensor)
        got = got[None] if single else got
        if batch.dtype == torch.uint8:
            assert ((got.double() - ref * 255).abs() <= 0.5 + 1e-3).all()
        else:
            assert_float_close(got, ref, atol=1e-5)

    check_call("ARPoison", lambda: made(inpt, label, index), problems, compare)


@FUZZ
@given(data=st.data(), clamp=st.booleans(), fault=st.sampled_from([None] * 4 + ["image", "shape"]))
def test_orthogonal_projection(data, clamp, fault):
    inpt, x = data.draw(inputs(broken=fault == "image"))
    shape = tuple(x.shape[-3:]) if x.dim() >= 3 else (1, 2, 2)
    if fault == "shape":
        shape = (shape[0], shape[1] + 1, shape[2])
    d = math.prod(shape)
    gen = torch.Generator().manual_seed(data.draw(seeds))
    q = torch.linalg.qr(torch.randn(d, min(d, 3), dtype=torch.float64, generator=gen))[0].float()
    made = transforms.OrthogonalProjection(Projection(q, shape, 1.0, q.t().clone()), clamp)
    problems = transform_image_problems(x)
    if fault == "shape":
        problems.append("image")
    clamped = clamp or isinstance(inpt, PIL.Image.Image)

    def compare(out):
        got = F.pil_to_tensor(out) if isinstance(out, PIL.Image.Image) else out.as_subclass(torch.Tensor)
        batch = unit(x[None] if x.dim() == 3 else x).reshape(-1, d)
        ref = (batch - batch @ q.double() @ q.double().T).reshape(got.shape)
        if not clamped:
            assert_float_close(got, ref)
        elif got.dtype == torch.uint8:
            assert ((got.double() - ref.clamp(0, 1) * 255).abs() <= 0.5 + 1e-3).all()
        else:
            assert_float_close(got, ref.clamp(0, 1))

    check_call("OrthogonalProjection", lambda: made(inpt), problems, compare)
