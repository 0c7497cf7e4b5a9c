"""The DALI operators (fn.poisonkit.*) against the torch ops on the same real images and
parameters: exact for uint8, 1e-5 for float; per-sample arguments, mixed image sizes, both
layouts; errors naming the argument; plugin loading checks; the training pipeline."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("nvidia.dali")
from nvidia.dali import fn, pipeline_def, types  # noqa: E402

from poisonkit import dali as pkdali  # noqa: E402
from poisonkit import ops  # noqa: E402
from poisonkit.defenses.projection import Projection  # noqa: E402
from poisonkit.defenses.sharpen import rsk_kernels, ssk_kernel  # noqa: E402
from poisonkit.poisons.ar import sample_coefficients  # noqa: E402
from poisonkit.poisons.classwise_blur import class_kernels  # noqa: E402
from poisonkit.transforms import ARPoison, ClasswiseBlur  # noqa: E402
from tests.conftest import requires_cuda, skip_or_fail  # noqa: E402
from tests.ops.test_ar import reference_normal  # noqa: E402

if not pkdali.plugin_path().is_file():
    skip_or_fail(f"DALI plugin not built at {pkdali.plugin_path()} (run `make dali`)",
                 allow_module_level=True)
pkdali.load()


def constant(batch):
    """A source giving the same batch every iteration (a default argument would be taken
    for DALI's iteration number)."""
    return lambda: batch


def run_pipeline(build, inputs: dict, layouts: dict | None = None, device_id=None,
                 iterations: int = 1):
    """Runs build(**nodes) on one batch; inputs maps names to lists of per-sample arrays.
    Returns, per iteration, the outputs as lists of numpy arrays."""
    layouts = layouts or {}
    batch_size = len(next(iter(inputs.values())))

    @pipeline_def(batch_size=batch_size, num_threads=2, device_id=device_id, seed=7)
    def pipe():
        nodes = {name: fn.external_source(source=constant(value), batch=True,
                                          layout=layouts.get(name))
                 for name, value in inputs.items()}
        outs = build(**nodes)
        outs = outs if isinstance(outs, tuple) else (outs,)
        return tuple(o.cpu() if device_id is not None else o for o in outs)

    p = pipe()
    p.build()
    results = []
    for _ in range(iterations):
        results.append([[np.array(t) for t in out] for out in p.run()])
    return results if iterations > 1 else results[0]


def hwc(images: torch.Tensor) -> list[np.ndarray]:
    """NCHW tensor -> list of HWC arrays."""
    return [np.ascontiguousarray(x.permute(1, 2, 0).numpy()) for x in images]


def chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def mixed_sizes(cifar, dtype=torch.uint8) -> list[torch.Tensor]:
    """Real CHW images of different sizes (crops of CIFAR images)."""
    x = cifar["x_train"]
    crops = [x[0], x[1500, :, 3:23, 2:30], x[3100, :, 5:22, 10:19], x[7700, :, :9, :31],
             x[9999]]
    return [c.contiguous() if dtype == torch.uint8 else (c.float() / 255) for c in crops]


def assert_close(actual: np.ndarray, expected: torch.Tensor):
    expected = expected.numpy()
    assert actual.shape == expected.shape
    if actual.dtype == np.uint8:
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


def classwise(images, labels, **kw):
    return fn.poisonkit.classwise_blur(images, labels,
                                       kernels=class_kernels().reshape(-1).tolist(), **kw)


# ---- classwise_blur

@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
def test_classwise_blur_equals_torch_poison_uint8(cifar, label_dtype):
    index = torch.arange(0, 10000, 625)  # 16 images, all classes
    x, y = cifar["x_train"][index], cifar["y_train"][index]
    labels = [np.array([v], dtype=label_dtype) for v in y.tolist()]
    (out,) = run_pipeline(classwise, {"images": hwc(x), "labels": labels}, {"images": "HWC"})
    expected, _ = ClasswiseBlur(seed=0)(x, y)
    for i in range(len(x)):
        assert_close(out[i], expected[i].permute(1, 2, 0))


def test_classwise_blur_float_mixed_sizes_and_chw(cifar):
    images = mixed_sizes(cifar, torch.float32)
    y = [3, 0, 9, 5, 1]
    labels = [np.array(v, dtype=np.int64) for v in y]
    kernels = class_kernels()
    for layout in ("HWC", "CHW"):
        data = [(x if layout == "CHW" else x.permute(1, 2, 0)).numpy().copy() for x in images]
        (out,) = run_pipeline(classwise, {"images": data, "labels": labels}, {"images": layout})
        for i, x in enumerate(images):
            expected = ops.filter2d(x, kernels[y[i]], padding="zeros", normalize="max",
                                    rounding="truncate")
            got = out[i] if layout == "CHW" else out[i].transpose(2, 0, 1)
            assert_close(np.ascontiguousarray(got), expected)


def test_classwise_blur_helper_uses_reference_kernels(cifar):
    x, y = cifar["x_train"][:4], cifar["y_train"][:4]
    kernels = class_kernels(num_classes=10, seed=3, kernel_size=5)
    (out,) = run_pipeline(lambda images, labels: pkdali.classwise_blur(images, labels, kernels),
                          {"images": hwc(x), "labels": [np.array([v]) for v in y.tolist()]})
    expected = ops.filter2d(x, kernels[y], padding="zeros", normalize="max", rounding="truncate")
    for i in range(4):
        assert_close(out[i], expected[i].permute(1, 2, 0))


# ---- sharpen

@pytest.mark.parametrize("padding", ["valid", "reflect", "replicate", "zeros"])
def test_sharpen_ssk_equals_torch(cifar, padding):
    x = cifar["x_train"][::1250]
    (out,) = run_pipeline(lambda images: fn.poisonkit.sharpen(images, padding=padding),
                          {"images": hwc(x)})
    expected = ops.filter2d(x, ssk_kernel().expand(len(x), 3, 3).contiguous(), padding=padding)
    for i in range(len(x)):
        assert_close(out[i], expected[i].permute(1, 2, 0))


def test_sharpen_per_sample_center(cifar):
    images = mixed_sizes(cifar)
    centers = [np.float32(c) for c in (2.5, 1.0, 3.25, 2.0, 4.0)]
    (out,) = run_pipeline(lambda images, center: fn.poisonkit.sharpen(images, center=center),
                          {"images": [x.permute(1, 2, 0).numpy().copy() for x in images],
                           "center": centers})
    for i, x in enumerate(images):
        expected = ops.filter2d(x, ssk_kernel(float(centers[i])), padding="valid")
        assert_close(out[i], expected.permute(1, 2, 0))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_sharpen_per_sample_kernels_mixed_sizes(cifar, dtype):
    images = mixed_sizes(cifar, dtype)
    kernels = rsk_kernels(len(images), generator=torch.Generator().manual_seed(5))
    (out,) = run_pipeline(
        lambda images, kernel: fn.poisonkit.sharpen(images, kernel=kernel, padding="reflect"),
        {"images": [x.permute(1, 2, 0).numpy().copy() for x in images],
         "kernel": [k.numpy() for k in kernels]})
    for i, x in enumerate(images):
        assert_close(out[i], ops.filter2d(x, kernels[i], padding="reflect").permute(1, 2, 0))


def test_sharpen_constant_5x5_kernel(cifar):
    x = cifar["x_train"][:3]
    k = torch.rand(5, 5, generator=torch.Generator().manual_seed(2)) / 12.5
    (out,) = run_pipeline(lambda images: pkdali.sharpen(images, kernel=k, padding="zeros"),
                          {"images": hwc(x)})
    expected = ops.filter2d(x, k.expand(3, 5, 5).contiguous(), padding="zeros")
    for i in range(3):
        assert_close(out[i], expected[i].permute(1, 2, 0))


def recover_cross_kernel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares taps (centre, up, left, right, down) of a 'valid' 3x3 cross filter
    mapping HW image x to y, and the largest residual."""
    c, u, l, r, d = x[1:-1, 1:-1], x[:-2, 1:-1], x[1:-1, :-2], x[1:-1, 2:], x[2:, 1:-1]
    a = np.stack([v.reshape(-1) for v in (c, u, l, r, d)], 1).astype(np.float64)
    taps, *_ = np.linalg.lstsq(a, y.reshape(-1).astype(np.float64), rcond=None)
    return taps, float(np.abs(a @ taps - y.reshape(-1)).max())


def test_sharpen_rsk_is_seeded_random_sharpening(cifar):
    # Real images squeezed into [0.45, 0.55] so that no output is clamped and every kernel
    # can be read back from its output.
    x = cifar["x_train"][:64, :1].float() / 255 * 0.1 + 0.45
    data = {"images": [v.permute(1, 2, 0).numpy().copy() for v in x]}

    def rsk(images):
        return fn.poisonkit.sharpen(images, std=0.1, seed=11)

    first, second = run_pipeline(rsk, data, iterations=2)
    again = run_pipeline(rsk, data, iterations=2)
    for a, b in zip(first[0] + second[0], again[0][0] + again[1][0]):
        np.testing.assert_array_equal(a, b)  # same seed: same draws
    assert not np.array_equal(first[0][0], second[0][0])  # new kernels each iteration

    taps = []
    for i, out in enumerate(first[0]):
        t, residual = recover_cross_kernel(x[i, 0].numpy(), out[..., 0])
        assert residual < 1e-5  # exactly a cross-shaped filter
        expected = ops.filter2d(x[i], torch.tensor([[0, t[1], 0], [t[2], t[0], t[3]],
                                                    [0, t[4], 0]], dtype=torch.float32),
                                padding="valid")
        assert_close(out, expected.permute(1, 2, 0))
        taps.append(t)
    taps = np.array(taps)
    center, neighbours = taps[:, 0], -taps[:, 1:]
    assert abs(center.mean() - 2.5) < 0.05 and 0.06 < center.std() < 0.14
    noise = neighbours - (center[:, None] - 1) / 4
    assert abs(noise.mean()) < 0.03 and 0.07 < noise.std() < 0.13


def rsk_reference_kernel(seed, index, epoch, center=2.5, std=0.1):
    """The documented RSK draws: normals 8 * epoch + 0..4 of Philox (seed, index, 'SK')."""
    z = [reference_normal(seed, index, 8 * epoch + j, stream=0x534B0001) for j in range(5)]
    c = center + std * z[0]
    n = [(c - 1) / 4 + std * v for v in z[1:]]
    return torch.tensor([[0, -n[0], 0], [-n[1], c, -n[2]], [0, -n[3], 0]], dtype=torch.float32)


def test_sharpen_rsk_draws_are_philox_of_seed_index_epoch(cifar):
    images = mixed_sizes(cifar, torch.float32)
    index = [np.int64(v) for v in (0, 7, 2**40 + 3, 12, 999)]
    epoch = [np.int32(v) for v in (0, 3, 1, 0, 2)]
    data = {"images": [x.permute(1, 2, 0).numpy().copy() for x in images], "index": index,
            "epoch": epoch}

    def rsk(images, index, epoch):
        return pkdali.sharpen(images, std=0.1, seed=2**62 + 5, sample_index=index, epoch=epoch)

    (out,) = run_pipeline(rsk, data)
    for i, x in enumerate(images):
        kernel = rsk_reference_kernel(2**62 + 5, int(index[i]), int(epoch[i]))
        assert_close(out[i], ops.filter2d(x, kernel, padding="valid").permute(1, 2, 0))
    # the same (seed, index, epoch) gives the same kernel in any batch position or size
    order = [3, 1]
    (again,) = run_pipeline(rsk, {k: [v[i] for i in order] for k, v in data.items()})
    for j, i in enumerate(order):
        np.testing.assert_array_equal(again[j], out[i])


def test_sharpen_rsk_equals_torch_rsk_kernels(cifar):
    # the same (seed, sample index, epoch): the same kernels in torch (ops.rsk_kernels) and DALI
    images = mixed_sizes(cifar, torch.float32)
    index = [np.int64(v) for v in (4, 0, 2**33 + 1, 77, 5)]
    data = {"images": [x.permute(1, 2, 0).numpy().copy() for x in images], "index": index}

    def rsk(images, index):
        return pkdali.sharpen(images, std=0.2, center=2.0, seed=31, sample_index=index, epoch=6)

    (out,) = run_pipeline(rsk, data)
    kernels = ops.rsk_kernels(31, torch.tensor([int(v) for v in index]), 6, 2.0, 0.2)
    for i, x in enumerate(images):
        assert_close(out[i], ops.filter2d(x, kernels[i], padding="valid").permute(1, 2, 0))


def test_nonfinite_pixels_follow_the_torch_rule(cifar):
    # README's rule, as the torch ops: NaN wherever a non-finite pixel reaches
    x = cifar["x_train"][:4].float() / 255
    x[1, 0, 3, 4], x[2, 1, 10, 10], x[3, 2, 0, 0] = float("nan"), float("inf"), -float("inf")
    labels = torch.tensor([0, 3, 5, 9])
    kernels = class_kernels(10)
    data = {"images": hwc(x), "labels": [np.array([v]) for v in labels.tolist()]}
    blur, sharp = run_pipeline(
        lambda images, labels: (classwise(images, labels), fn.poisonkit.sharpen(images)), data)
    expected_blur = ops.filter2d(x, kernels[labels], "zeros", "max", "truncate")
    expected_sharp = ops.filter2d(x, ssk_kernel().expand(4, 3, 3), "valid")
    for i in range(4):
        assert_close(blur[i], expected_blur[i].permute(1, 2, 0))
        assert_close(sharp[i], expected_sharp[i].permute(1, 2, 0))
    assert np.isnan(blur[1]).all() and np.isnan(sharp[2]).any() and not np.isnan(sharp[0]).any()


def test_sharpen_rsk_defaults_to_batch_position_and_iteration(cifar):
    x = cifar["x_train"][:3].float() / 255
    first, second = run_pipeline(lambda images: pkdali.sharpen(images, std=0.1, seed=9),
                                 {"images": hwc(x)}, iterations=2)
    for iteration, outs in enumerate((first[0], second[0])):
        for i in range(3):
            expected = ops.filter2d(x[i], rsk_reference_kernel(9, i, iteration), padding="valid")
            assert_close(outs[i], expected.permute(1, 2, 0))


# ---- ar_perturb

@pytest.fixture(scope="module")
def ar_coeffs():
    return sample_coefficients(10, seed=1, progress=False).coeffs


@pytest.mark.parametrize("key", [0, 2**64 - 1, 2**40 + 7])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_ar_perturb_equals_ar_poison_uint8(cifar, ar_coeffs, key, index_dtype):
    pick = torch.arange(0, 10000, 625)  # 16 images, all classes
    x, y = cifar["x_train"][pick], cifar["y_train"][pick]
    indices = pick * 3 + 1
    poison = ARPoison(ar_coeffs, key=key)
    (out,) = run_pipeline(
        lambda images, labels, indices: pkdali.ar_perturb(images, labels, indices, poison),
        {"images": hwc(x), "labels": [np.array([v], np.int64) for v in y.tolist()],
         "indices": [np.array([v], index_dtype) for v in indices.tolist()]}, {"images": "HWC"})
    expected = poison.poison_batch(x, y, indices)
    assert not torch.equal(expected, x)
    for i in range(len(x)):
        assert_close(out[i], expected[i].permute(1, 2, 0))


def test_ar_perturb_float_mixed_sizes_linf_and_chw(cifar, ar_coeffs):
    images = mixed_sizes(cifar, torch.float32)
    y, indices = [3, 0, 9, 5, 1], [4, 0, 2**35, 17, 9999]
    settings = {"eps": 8 / 255, "p": "inf", "crop": 2, "key": 31337}
    for layout in ("HWC", "CHW"):
        data = {"images": [(x if layout == "CHW" else x.permute(1, 2, 0)).numpy().copy()
                           for x in images],
                "labels": [np.array(v, np.int32) for v in y],
                "indices": [np.array(v, np.int64) for v in indices]}
        (out,) = run_pipeline(lambda images, labels, indices: pkdali.ar_perturb(
            images, labels, indices, ar_coeffs, **settings), data, {"images": layout})
        for i, x in enumerate(images):
            expected = ops.ar_poison(x, ar_coeffs, torch.tensor(y[i]), torch.tensor(indices[i]),
                                     **settings)
            got = out[i] if layout == "CHW" else out[i].transpose(2, 0, 1)
            assert_close(np.ascontiguousarray(got), expected)


def test_ar_perturb_refuses_an_exploding_class(cifar, ar_coeffs):
    coeffs = ar_coeffs.clone()
    coeffs[2] = 0.0
    coeffs[2, :, 2, 1] = 3.0  # x[j] = 3 x[j-1]: overflows float32 along a row
    x = cifar["x_train"][:2]
    with pytest.raises(RuntimeError, match="coefficients.*class 2 overflows"):
        run_pipeline(lambda images, labels, indices: pkdali.ar_perturb(images, labels, indices,
                                                                       coeffs),
                     {"images": [np.ascontiguousarray(np.tile(hwc(x)[i], (3, 3, 1)))
                                 for i in range(2)],
                      "labels": [np.array([1]), np.array([2])],
                      "indices": [np.array([0]), np.array([1])]})


# ---- project_out

@pytest.fixture(scope="module")
def projection():
    q, _ = torch.linalg.qr(torch.randn(3 * 32 * 32, 10, generator=torch.Generator().manual_seed(3),
                                       dtype=torch.float64))
    return Projection(q.float(), (3, 32, 32), 0.5, torch.zeros(10, 3 * 32 * 32))


@pytest.mark.parametrize("dtype, clamp", [(torch.uint8, False), (torch.uint8, True),
                                          (torch.float32, False), (torch.float32, True)])
def test_project_out_equals_torch(cifar, projection, dtype, clamp):
    x = cifar["x_train"][::1250]
    x = x if dtype == torch.uint8 else x.float() / 255
    (out,) = run_pipeline(lambda images: pkdali.project_out(images, projection, clamp=clamp),
                          {"images": hwc(x)})
    expected = ops.project_out(x, projection.Q, clamp)
    assert out[0].dtype == (np.uint8 if dtype == torch.uint8 and clamp else np.float32)
    for i in range(len(x)):
        assert_close(out[i], expected[i].permute(1, 2, 0))


def test_project_out_from_saved_file_and_chw(cifar, projection, tmp_path):
    path = projection.save(tmp_path / "projection.pt")
    x = cifar["x_train"][1::2000]
    (out,) = run_pipeline(lambda images: pkdali.project_out(images, str(path)),
                          {"images": [v.numpy().copy() for v in x]}, {"images": "CHW"})
    expected = ops.project_out(x, projection.Q)
    for i in range(len(x)):
        assert_close(out[i], expected[i])


@pytest.mark.parametrize("dtype, clamp", [(torch.uint8, True), (torch.float32, False)])
def test_project_out_reads_q_from_npy(cifar, projection, tmp_path, dtype, clamp):
    """q_file: the operator reads Q itself (Projection.save_q writes Fortran order, the
    transpose of a C-order file is tested too, as is a float64 file)."""
    x = cifar["x_train"][::1250]
    x = x if dtype == torch.uint8 else x.float() / 255
    expected = ops.project_out(x, projection.Q, clamp)
    paths = [projection.save_q(tmp_path / "q.npy"), tmp_path / "q_c.npy", tmp_path / "q64.npy"]
    np.save(paths[1], np.ascontiguousarray(projection.Q.numpy()))
    np.save(paths[2], projection.Q.double().numpy())
    for path in paths:
        (out,) = run_pipeline(lambda images: pkdali.project_out(images, str(path), clamp=clamp),
                              {"images": hwc(x)})
        for i in range(len(x)):
            assert_close(out[i], expected[i].permute(1, 2, 0))


def test_project_out_q_input_per_sample(cifar, projection):
    """Input 1: Q^T per sample, each sample projected with its own."""
    x = cifar["x_train"][:3]
    other = torch.linalg.qr(torch.randn(3072, 4, generator=torch.Generator().manual_seed(5),
                                        dtype=torch.float64))[0].float()
    qs = [projection.Q, other, projection.Q]
    (out,) = run_pipeline(lambda images, qt: fn.poisonkit.project_out(images, qt),
                          {"images": [v.numpy().copy() for v in x],
                           "qt": [q.T.contiguous().numpy() for q in qs]}, {"images": "CHW"})
    for i in range(3):
        assert_close(out[i], ops.project_out(x[i], qs[i]))


def test_project_out_file_errors_name_q_file(cifar, projection, tmp_path):
    images = {"images": hwc(cifar["x_train"][:2])}
    bad = {"missing.npy": None, "nan.npy": np.full((3072, 2), np.nan, np.float32),
           "3d.npy": np.zeros((3072, 2, 1), np.float32), "int.npy": np.zeros((3072, 2), np.int32),
           "short.npy": np.zeros((3000, 2), np.float32)}
    for name, value in bad.items():
        if value is not None:
            np.save(tmp_path / name, value)
        match = "Q has 3000 rows" if name == "short.npy" else "q_file"
        with pytest.raises(RuntimeError, match=match):
            run_pipeline(lambda images: fn.poisonkit.project_out(images,
                                                                 q_file=str(tmp_path / name)),
                         images)
    with pytest.raises(RuntimeError, match="exactly one"):
        run_pipeline(lambda images: fn.poisonkit.project_out(images), images)
    with pytest.raises(ValueError, match=".npy"):
        projection.save_q(tmp_path / "q.pt")


# ---- lowpass

@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("basis, shape", [("dct", "square"), ("fft", "disk")])
def test_lowpass_equals_torch(cifar, dtype, basis, shape):
    x = cifar["x_train"][::1250]
    x = x if dtype == torch.uint8 else x.float() / 255
    (out,) = run_pipeline(lambda images: pkdali.lowpass(images, keep=0.3, basis=basis,
                                                        shape=shape), {"images": hwc(x)})
    expected = ops.lowpass(x, 0.3, basis, shape)
    for i in range(len(x)):
        assert_close(out[i], expected[i].permute(1, 2, 0))


def test_lowpass_mixed_sizes_chw_and_no_clamp(cifar):
    images = mixed_sizes(cifar, torch.float32)
    for layout, clamp in (("HWC", True), ("CHW", False)):
        data = [(x if layout == "CHW" else x.permute(1, 2, 0)).numpy().copy() for x in images]
        (out,) = run_pipeline(lambda images: pkdali.lowpass(images, keep=0.5, shape="disk",
                                                            clamp=clamp),
                              {"images": data}, {"images": layout})
        for i, x in enumerate(images):
            expected = ops.lowpass(x, 0.5, "dct", "disk", clamp)
            got = out[i] if layout == "CHW" else out[i].transpose(2, 0, 1)
            assert_close(np.ascontiguousarray(got), expected)
        if not clamp:
            assert min(o.min() for o in out) < 0  # really unclamped


LOWPASS_SIZES = [(30, 45), (64, 64), (97, 50), (180, 180), (224, 224), (224, 201)]


@pytest.mark.parametrize("keep", [0.1, 0.3, 0.35, 1.0])
@pytest.mark.parametrize("basis, shape", [("dct", "square"), ("dct", "disk"), ("fft", "square"),
                                          ("fft", "disk")])
def test_lowpass_bases_built_in_the_operator_equal_torch(cifar, keep, basis, shape):
    """ImageNet-like batches: real images resized to several sizes (incl. 224x224 and odd
    widths, where the CPU driver folds both axes) in one batch, each against the torch op."""
    gen = torch.Generator().manual_seed(11)
    base = cifar["x_train"][::2000][:len(LOWPASS_SIZES)].float() / 255
    images = [torch.nn.functional.interpolate(b[None], size=s, mode="bilinear",
                                              align_corners=False)[0].clamp(0, 1)
              for b, s in zip(base, LOWPASS_SIZES)]
    images = [(x + 0.05 * torch.randn(x.shape, generator=gen)).clamp(0, 1) for x in images]
    (out,) = run_pipeline(lambda images: pkdali.lowpass(images, keep=keep, basis=basis,
                                                        shape=shape, clamp=False),
                          {"images": [x.numpy().copy() for x in images]}, {"images": "CHW"})
    for i, x in enumerate(images):
        assert_close(out[i], ops.lowpass(x, keep, basis, shape, clamp=False))


def test_lowpass_refuses_bad_options_and_sizes(cifar):
    images = {"images": hwc(cifar["x_train"][:2])}
    tiny = {"images": [np.zeros((9, 9, 3), np.uint8)]}
    with pytest.raises(RuntimeError, match="sample 0 is 9x9: keep=0.1 keeps no DCT coefficient"):
        run_pipeline(lambda images: pkdali.lowpass(images, keep=0.1), tiny)
    for args, match in (({"keep": 0.0}, "argument `keep`"), ({"keep": 1.5}, "argument `keep`"),
                        ({"basis": "dst"}, "argument `basis`"),
                        ({"shape": "circle"}, "argument `shape`")):
        with pytest.raises(RuntimeError, match=match):
            run_pipeline(lambda images: fn.poisonkit.lowpass(images, **args), images)
    with pytest.raises(ValueError, match="keep"):
        pkdali.lowpass(None, keep=0.1234567)  # float32 rounding would change int(81 * keep)
    with pytest.raises(ValueError, match="basis"):
        pkdali.lowpass(None, basis="dst")


# ---- errors name the argument

def ar(images, labels, indices, **kw):
    args = {"coefficients": [0.125] * 270, "channels": 3, **kw}
    return fn.poisonkit.ar_perturb(images, labels, indices, **args)


@pytest.mark.parametrize("build, match", [
    (lambda images, labels: fn.poisonkit.classwise_blur(images, labels, kernels=[0.1] * 10),
     "kernels"),
    (lambda images, labels: fn.poisonkit.classwise_blur(images, labels, kernels=[0.1] * 36,
                                                        kernel_size=2),
     "argument `kernel_size`: kernel size must be odd"),  # the reason, not DALI's assert text
    (lambda images, labels: fn.poisonkit.classwise_blur(images, labels,
                                                        kernels=[float("nan")] * 9), "kernels"),
    (lambda images, labels: fn.poisonkit.classwise_blur(images, labels, kernels=[0.1] * 27),
     "labels"),  # 3 classes, labels up to 9
    (lambda images, labels: fn.poisonkit.sharpen(images, padding="mirror"), "padding"),
    (lambda images, labels: fn.poisonkit.sharpen(images, std=-1.0), "std"),
    (lambda images, labels: fn.poisonkit.sharpen(images, center=float("inf")), "center"),
    (lambda images, labels: fn.poisonkit.sharpen(images, kernel=[1.0] * 8), "kernel"),
    (lambda images, labels: fn.poisonkit.sharpen(images, kernel=[1.0] * 9, center=2.0), "kernel"),
    (lambda images, labels: fn.poisonkit.sharpen(fn.cast(images, dtype=types.FLOAT64)), "images"),
    (lambda images, labels: fn.poisonkit.classwise_blur(
        images, fn.cast(labels, dtype=types.FLOAT), kernels=[0.1] * 90), "labels"),
    (lambda images, labels: fn.poisonkit.sharpen(images, std=0.1, epoch=-1), "epoch"),
    (lambda images, labels: fn.poisonkit.sharpen(images, std=0.1, sample_index=-2),
     "sample_index"),
    (lambda images, labels: ar(images, labels, labels, coefficients=[0.1] * 26), "coefficients"),
    (lambda images, labels: ar(images, labels, labels, coefficients=[float("nan")] * 270),
     "coefficients"),
    (lambda images, labels: ar(images, labels, labels, channels=1), "channels"),
    (lambda images, labels: ar(images, labels, labels, eps=0.0), "eps"),
    (lambda images, labels: ar(images, labels, labels, p=3.0), "argument `p`"),
    (lambda images, labels: ar(images, labels, labels, crop=-1), "crop"),
    (lambda images, labels: ar(images, labels, labels, coefficients=[0.1] * 27 * 3),
     "labels"),  # 3 classes, labels up to 9
    (lambda images, labels: ar(images, labels, labels - 5), "indices"),
    (lambda images, labels: ar(images, labels, fn.cast(labels, dtype=types.FLOAT)), "indices"),
])
def test_bad_arguments_name_the_argument(cifar, build, match):
    x, y = cifar["x_train"][::2000], cifar["y_train"][::2000]
    with pytest.raises(RuntimeError, match=match):
        run_pipeline(build, {"images": hwc(x), "labels": [np.array([v]) for v in y.tolist()]})


def test_valid_padding_needs_large_enough_images(cifar):
    tiny = [np.ascontiguousarray(cifar["x_train"][0, :, :2, :2].permute(1, 2, 0).numpy())]
    with pytest.raises(RuntimeError, match="padding='valid' needs images of at least 3x3, got 2x2"):
        run_pipeline(lambda images: fn.poisonkit.sharpen(images), {"images": tiny})


# ---- loading

def test_load_refuses_missing_or_foreign_plugins(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="make dali"):
        pkdali.load(tmp_path / "missing.so")
    foreign = tmp_path / "libpoisonkit_dali.so"
    foreign.write_bytes(b"\x7fELF...poisonkit-dali-built-for:1.2.3\x00...")
    with pytest.raises(RuntimeError, match="built for DALI 1.2.3"):
        pkdali.load(foreign)
    (tmp_path / "other.so").write_bytes(b"\x7fELF")
    with pytest.raises(RuntimeError, match="not a poisonkit DALI plugin"):
        pkdali.load(tmp_path / "other.so")
    import nvidia.dali
    monkeypatch.setattr(nvidia.dali, "__version__", "9.9.9")
    with pytest.raises(RuntimeError, match="pins 2.4.0"):
        pkdali.load(foreign)


def test_plugin_is_built_for_installed_dali():
    import nvidia.dali
    assert pkdali.plugin_dali_version(pkdali.plugin_path()) == nvidia.dali.__version__


# ---- training pipeline

def test_training_pipeline_keeps_partial_batch_and_matches_torch(cifar):
    index = torch.arange(0, 10000, 1000)  # 10 images
    x, y = cifar["x_train"][index], cifar["y_train"][index]
    source = pkdali.BatchSource(x.permute(0, 2, 3, 1).numpy(), y.numpy(), batch_size=4)
    kernels = class_kernels()
    pipe = pkdali.training_pipeline(source, poison_kernels=kernels, sharpen_std=0.0,
                                    sharpen_padding="reflect")
    poisoned, _ = ClasswiseBlur(seed=0)(x, y)
    sharpened = ops.filter2d(poisoned, ssk_kernel().expand(10, 3, 3).contiguous(),
                             padding="reflect")
    expected = (sharpened.float() - 127.5) / 127.5
    loader = pkdali.torch_iterator(pipe)
    for _epoch in range(2):
        sizes, seen = [], 0
        for batch in loader:
            images, labels = batch[0]["images"], batch[0]["labels"]
            sizes.append(len(images))
            assert images.dtype == torch.float32 and labels.dtype == torch.int64
            torch.testing.assert_close(labels, y[seen:seen + len(images)])
            for i, image in enumerate(images):
                ref = expected[seen + i]
                flipped = torch.allclose(image, ref.flip(-1), atol=1e-5)
                assert flipped or torch.allclose(image, ref, atol=1e-5)
            seen += len(images)
        assert sizes == [4, 4, 2]


def test_training_pipeline_ar_poison_follows_sample_indices(cifar, ar_coeffs):
    index = torch.arange(5, 10000, 1000)  # 10 images
    x, y = cifar["x_train"][index], cifar["y_train"][index]
    source = pkdali.BatchSource(x.permute(0, 2, 3, 1).numpy(), y.numpy(), batch_size=4,
                                shuffle=True, seed=3)
    poison = ARPoison(ar_coeffs, key=2**63 + 11)
    poisoned = poison.poison_batch(x, y, torch.arange(10))
    expected = (poisoned.float() - 127.5) / 127.5
    loader = pkdali.torch_iterator(pkdali.training_pipeline(source, ar_poison=poison,
                                                            mirror=False))
    for _epoch in range(2):
        seen = []
        for batch in loader:  # shuffled: find each image's sample by its poison
            for image, label in zip(batch[0]["images"], batch[0]["labels"]):
                match = [j for j in range(10) if torch.allclose(image, expected[j], atol=1e-6)]
                assert len(match) == 1 and label == y[match[0]]
                seen += match
        assert sorted(seen) == list(range(10)) and seen != list(range(10))


def test_training_pipeline_ssk_then_lowpass(cifar):
    x, y = cifar["x_train"][:6], cifar["y_train"][:6]
    source = pkdali.BatchSource(x.permute(0, 2, 3, 1).numpy(), y.numpy(), batch_size=6)
    pipe = pkdali.training_pipeline(source, sharpen_std=0.0, lowpass_keep=0.3, mirror=False)
    sharpened = ops.filter2d(x, ssk_kernel().expand(6, 3, 3).contiguous(), padding="valid")
    expected = (ops.lowpass(sharpened, 0.3).float() - 127.5) / 127.5
    (batch,) = list(pkdali.torch_iterator(pipe))
    assert batch[0]["images"].shape == (6, 3, 30, 30)
    torch.testing.assert_close(batch[0]["images"], expected, rtol=0, atol=1e-6)


def test_training_pipeline_shards_are_disjoint_and_cover_the_data(cifar):
    index = torch.arange(3, 10000, 1000)  # 10 images
    x, y = cifar["x_train"][index], cifar["y_train"][index]
    expected = (x.float() - 127.5) / 127.5
    source = pkdali.BatchSource(x.permute(0, 2, 3, 1).numpy(), y.numpy(), batch_size=2,
                                shuffle=True, seed=4)
    loaders = [pkdali.torch_iterator(pkdali.training_pipeline(source, mirror=False, shard_id=s,
                                                              num_shards=2)) for s in range(2)]
    for _epoch in range(2):
        parts = []
        for loader in loaders:
            seen = []
            for batch in loader:
                for image, label in zip(batch[0]["images"], batch[0]["labels"]):
                    match = [j for j in range(10)
                             if torch.allclose(image, expected[j], atol=1e-6)]
                    assert len(match) == 1 and label == y[match[0]]
                    seen += match
            parts.append(seen)
        assert len(parts[0]) == len(parts[1]) == 5
        assert sorted(parts[0] + parts[1]) == list(range(10))


def test_helpers_validate_before_building(projection):
    with pytest.raises(ValueError, match="poison_kernels, ar_poison"):
        pkdali.training_pipeline(pkdali.BatchSource(np.zeros((2, 4, 4, 3), np.uint8), [0, 1], 2),
                                 poison_kernels=class_kernels(), ar_poison=ARPoison(10))
    with pytest.raises(ValueError, match="p: expected 2 or inf"):
        pkdali.ar_perturb(None, None, None, torch.zeros(2, 3, 3, 3), p=1)
    with pytest.raises(ValueError, match="coefficients"):
        pkdali.ar_perturb(None, None, None, torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="projection"):
        pkdali.project_out(None, projection.Q[None])
    with pytest.raises(FileNotFoundError, match="path"):
        pkdali.project_out(None, "/nonexistent/projection.pt")


# ---- GPU backends: same results as the CPU backends

@requires_cuda
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_gpu_backends_equal_cpu(cifar, dtype):
    images = mixed_sizes(cifar, dtype) + [cifar["x_train"][i] if dtype == torch.uint8 else
                                          cifar["x_train"][i].float() / 255 for i in (5, 6)]
    labels = [np.array([i % 10], dtype=np.int32) for i in range(len(images))]
    data = {"images": [x.permute(1, 2, 0).numpy().copy() for x in images], "labels": labels,
            "kernel": [k.numpy() for k in rsk_kernels(len(images))]}

    def build(images, labels, kernel, gpu):
        images = images.gpu() if gpu else images
        return (classwise(images, labels), fn.poisonkit.sharpen(images),
                fn.poisonkit.sharpen(images, kernel=kernel, padding="reflect"))

    cpu = run_pipeline(lambda **n: build(**n, gpu=False), data)
    gpu = run_pipeline(lambda **n: build(**n, gpu=True), data, device_id=0)
    for out_cpu, out_gpu in zip(cpu, gpu):
        for a, b in zip(out_cpu, out_gpu):
            if a.dtype == np.uint8:
                # nvcc fuses multiply-adds (FMA), gcc does not here: at a rounding boundary
                # the uint8 results may differ by one level
                assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
            else:
                np.testing.assert_allclose(a, b, atol=1e-5)


@requires_cuda
def test_gpu_layout_copies_take_more_than_65535_samples_of_one_shape():
    # the layout kernels loop over grid rows: a shape group larger than CUDA's grid.y limit
    gen = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (70_000, 1, 4, 3), dtype=torch.uint8, generator=gen)
    data = {"images": hwc(x)}
    cpu = run_pipeline(lambda images: fn.poisonkit.sharpen(images, padding="zeros"), data)
    gpu = run_pipeline(lambda images: fn.poisonkit.sharpen(images.gpu(), padding="zeros"), data,
                       device_id=0)
    for a, b in zip(cpu[0], gpu[0]):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # FMA ties, as above


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_gpu_lowpass_and_project_out_equal_cpu(cifar, projection, tmp_path, dtype):
    """The GPU lowpass builds its bases per size like the CPU one (mixed sizes, 224x224);
    the GPU project_out reads Q from q_file and uploads it once (two iterations)."""
    sizes = [(32, 32), (224, 224), (97, 50), (224, 224)]
    base = cifar["x_train"][:len(sizes)].float()
    images = [torch.nn.functional.interpolate(b[None], size=s, mode="bilinear")[0]
              .round().clamp(0, 255).to(torch.uint8) for b, s in zip(base, sizes)]
    images = [x if dtype == torch.uint8 else x.float() / 255 for x in images]
    data = {"images": [x.permute(1, 2, 0).numpy().copy() for x in images]}
    build = lambda images: pkdali.lowpass(images, keep=0.3, basis="fft", shape="disk")  # noqa: E731
    cpu = run_pipeline(build, data)
    gpu = run_pipeline(lambda images: build(images.gpu()), data, device_id=0)
    for a, b in zip(cpu[0], gpu[0]):
        assert np.abs(a.astype(float) - b.astype(float)).max() <= (1 if a.dtype == np.uint8
                                                                      else 1e-5)
    path = str(projection.save_q(tmp_path / "q.npy"))
    small = {"images": hwc(cifar["x_train"][:4] if dtype == torch.uint8
                           else cifar["x_train"][:4].float() / 255)}
    cpu = run_pipeline(lambda images: pkdali.project_out(images, path), small, iterations=2)
    gpu = run_pipeline(lambda images: pkdali.project_out(images.gpu(), path), small,
                       device_id=0, iterations=2)
    for it_cpu, it_gpu in zip(cpu, gpu):
        for a, b in zip(it_cpu[0], it_gpu[0]):
            np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match=".npy"):
        run_pipeline(lambda images: pkdali.project_out(images.gpu(), projection), small,
                     device_id=0)
