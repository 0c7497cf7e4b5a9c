"""poisonkit.ops.project_out against a float64 reference written from the definition
x - Q Q^T x (images in [0, 1] units)."""
from __future__ import annotations

import pytest
import torch

from poisonkit import ops
from tests.conftest import requires_cuda


def orthonormal(d: int, k: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, k, dtype=torch.float64, generator=gen))
    return q.float()


def reference(x: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """float64 x - Q Q^T x per image."""
    unit = x.double() / 255 if x.dtype == torch.uint8 else x.double()
    flat = unit.reshape(-1, Q.shape[0])
    q = Q.double()
    return (flat - (flat @ q) @ q.T).reshape(x.shape)


def random_images(shape, dtype, gen):
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    return x if dtype == torch.uint8 else x.float() / 255


# N not a multiple of the CPU block (8), D not a multiple of its tile (512), K not a
# multiple of its group (4), K = 1 and a large K.
SHAPES = [(1, 1, 1, 1, 1), (13, 3, 5, 7, 3), (9, 3, 32, 32, 10), (17, 1, 40, 41, 4),
          (8, 3, 10, 10, 150)]


@pytest.mark.parametrize("n,c,h,w,k", SHAPES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_matches_float64_reference(n, c, h, w, k, dtype, gen):
    x = random_images((n, c, h, w), dtype, gen)
    Q = orthonormal(c * h * w, k, gen)
    out = ops.project_out(x, Q)
    assert out.dtype == torch.float32 and out.shape == x.shape
    torch.testing.assert_close(out.double(), reference(x, Q), atol=2e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_real_images(cifar, dtype, gen):
    x = cifar["x_train"][::97][:64]
    x = x if dtype == torch.uint8 else x.float() / 255
    Q = orthonormal(3 * 32 * 32, 10, gen)
    torch.testing.assert_close(ops.project_out(x, Q).double(), reference(x, Q), atol=2e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_layouts(dtype, gen):
    base = random_images((6, 3, 12, 20), dtype, gen)
    Q = orthonormal(3 * 12 * 10, 5, gen)
    strided = base[..., ::2]  # non-contiguous
    channels_last = strided.contiguous(memory_format=torch.channels_last)
    for x in (strided, channels_last):
        torch.testing.assert_close(ops.project_out(x, Q).double(), reference(x, Q), atol=2e-6, rtol=0)
    chw = ops.project_out(strided[2], Q)
    assert chw.shape == strided[2].shape
    torch.testing.assert_close(chw.double(), reference(strided[2:3], Q)[0], atol=2e-6, rtol=0)
    # Q given as a plain (row-major) [D, K] matrix or as a transposed view: same result.
    torch.testing.assert_close(ops.project_out(strided, Q.t().contiguous().t()),
                               ops.project_out(strided, Q.contiguous()), atol=0, rtol=0)


def test_projected_images_leave_unit_range(cifar, gen):
    out = ops.project_out(cifar["x_train"][:32], orthonormal(3072, 10, gen))
    assert out.min() < 0 or out.max() > 1


def test_clamp_uint8_rounds_to_nearest_and_saturates(cifar, gen):
    x = cifar["x_train"][:40]
    Q = orthonormal(3072, 10, gen)
    out = ops.project_out(x, Q, clamp=True)
    assert out.dtype == torch.uint8
    scaled = reference(x, Q) * 255
    expected = (scaled + 0.5).floor().clamp(0, 255)
    # float32 accumulation may land on the other side of a .5 only right at a tie.
    near_tie = ((scaled - scaled.floor() - 0.5).abs() < 1e-3) & (scaled > 0) & (scaled < 255)
    differs = out.double() != expected
    assert not (differs & ~near_tie).any()
    assert (out.double() - expected).abs().max() <= 1
    assert (scaled < 0).any() and (out[scaled < 0] == 0).all()


def test_clamp_float(gen):
    x = random_images((5, 3, 8, 8), torch.float32, gen)
    Q = orthonormal(192, 7, gen)
    out = ops.project_out(x, Q, clamp=True)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), reference(x, Q).clamp(0, 1), atol=2e-6, rtol=0)


def test_idempotent_and_orthogonal_to_basis(cifar, gen):
    x = cifar["x_train"][100:150]
    Q = orthonormal(3072, 10, gen)
    once = ops.project_out(x, Q)
    twice = ops.project_out(once, Q)
    torch.testing.assert_close(twice, once, atol=1e-5, rtol=0)
    coefficients = once.reshape(len(x), -1).double() @ Q.double()
    assert coefficients.abs().max() < 1e-4
    # The kept part plus the removed part gives back the image.
    removed = (x.reshape(len(x), -1).double() / 255 @ Q.double()) @ Q.double().T
    torch.testing.assert_close(once.reshape(len(x), -1).double() + removed,
                               x.reshape(len(x), -1).double() / 255, atol=2e-6, rtol=0)


@pytest.mark.parametrize("x_args,q_shape,q_dtype,match", [
    (((2, 3, 4, 4), torch.uint8), (47, 2), torch.float32, "Q has 47 rows"),
    (((2, 3, 4, 4), torch.uint8), (48, 2), torch.float64, "Q must be float32"),
    (((2, 3, 4, 4), torch.int32), (48, 2), torch.float32, "x must be uint8 or float32"),
    (((2, 3, 4, 4), torch.float64), (48, 2), torch.float32, "x must be uint8 or float32"),
    (((0, 3, 4, 4), torch.uint8), (48, 2), torch.float32, "empty batch"),
    (((2, 3, 4, 4), torch.uint8), (48,), torch.float32, "D x K matrix"),
    (((2, 3, 4, 4), torch.uint8), (48, 0), torch.float32, "between 1 and D"),
    (((2, 48), torch.uint8), (48, 2), torch.float32, "NCHW"),
])
def test_bad_input(x_args, q_shape, q_dtype, match):
    shape, dtype = x_args
    x = torch.zeros(shape, dtype=dtype)
    Q = torch.zeros(q_shape, dtype=q_dtype)
    with pytest.raises(RuntimeError, match=match):
        ops.project_out(x, Q)


def test_nan_or_inf_in_Q_is_refused(gen):
    x = random_images((2, 3, 4, 4), torch.uint8, gen)
    for bad in (float("nan"), float("inf")):
        Q = orthonormal(48, 3, gen)
        Q[5, 1] = bad
        with pytest.raises(RuntimeError, match="NaN or inf"):
            ops.project_out(x, Q)


def test_not_tensors():
    with pytest.raises(TypeError, match="torch.Tensors"):
        ops.project_out([[0]], torch.zeros(1, 1))


@requires_cuda
@pytest.mark.parametrize("dtype,clamp", [(torch.uint8, False), (torch.uint8, True),
                                         (torch.float32, False)])
def test_cuda_matches_reference(cifar, dtype, clamp, gen):
    x = cifar["x_train"][:300]
    x = x if dtype == torch.uint8 else x.float() / 255
    Q = orthonormal(3072, 10, gen)
    out = ops.project_out(x.cuda(), Q.cuda(), clamp).cpu()
    if clamp:
        assert out.dtype == torch.uint8
        assert (out.int() - ops.project_out(x, Q, clamp).int()).abs().max() <= 1
    else:
        torch.testing.assert_close(out.double(), reference(x, Q), atol=2e-6, rtol=0)
    torch.library.opcheck(torch.ops.poisonkit.project_out.default, (x[:4].cuda(), Q.cuda(), clamp))
