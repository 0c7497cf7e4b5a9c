"""AR ops: Philox draws against a pure-Python Philox 4x32-10 (checked on the Random123
known-answer vectors), ar_generate against a float64 loop written from DESIGN 3.1,
ar_filter against torch.conv2d, norms, batch invariance, bad input."""
import math

import pytest
import torch
import torch.nn.functional as F

from poisonkit import ops
from poisonkit.poisons.ar import sample_coefficients
from tests.conftest import requires_cuda

M32 = 0xFFFFFFFF
CANVAS_STREAM = 0x41520001


def philox4x32_10(ctr, key):
    """Philox 4x32-10 as in Salmon et al. (2011), on Python ints."""
    c, (k0, k1) = list(ctr), key
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & M32, (p0 >> 32) ^ c[3] ^ k1, p0 & M32]
        k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
    return c


# Random123 tests/kat_vectors, "philox4x32 10" lines: counter, key, output.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32,) * 4, (M32, M32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_python_philox_matches_random123(ctr, key, expected):
    assert tuple(philox4x32_10(ctr, key)) == expected


def reference_normal(key, index, d, stream=CANVAS_STREAM):
    """Normal draw d of (key, index, stream) from the documented layout, in float64."""
    words = philox4x32_10((d // 4, index & M32, index >> 32, stream),
                          (key & M32, key >> 32))
    w = 2 * ((d // 2) % 2)
    u1, u2 = [((x >> 9) + 0.5) / 2**23 for x in words[w:w + 2]]
    r, theta = math.sqrt(-2 * math.log(u1)), 2 * math.pi * u2
    return r * math.cos(theta) if d % 2 == 0 else r * math.sin(theta)


@pytest.mark.parametrize("key", [0, 12345, 2**64 - 1, 2**40 + 7])
def test_canvas_draws_match_python_philox(key):
    indices = torch.tensor([0, 3, 2**33 + 5])
    canvas = ops.ar_canvas(indices, key, 2, 5, 7)
    assert canvas.shape == (3, 2, 5, 7) and canvas.dtype == torch.float32
    flat = canvas.flatten(1)
    for n, index in enumerate(indices.tolist()):
        for d in [0, 1, 2, 3, 6, 13, 69]:
            ref = reference_normal(key, index, d)
            assert flat[n, d].item() == pytest.approx(ref, rel=2e-6, abs=2e-6)


def test_canvas_is_standard_normal():
    x = ops.ar_canvas(torch.arange(50), 99, 3, 36, 36).double().flatten()
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02
    assert abs((x**4).mean() - 3) < 0.1  # kurtosis of a normal


@pytest.fixture(scope="module")
def coeffs10():
    return sample_coefficients(10, seed=1, progress=False).coeffs


def reference_generate(canvas, coeffs, labels, crop, eps, p):
    """DESIGN 3.1 in float64 loops: raster recursion, crop, Lp scaling (none for eps=None)."""
    x = canvas.double().clone()
    n_, c_, hc, wc = x.shape
    for n in range(n_):
        b = coeffs[labels[n]].double()
        for i in range(hc - 2):
            for j in range(wc - 2):
                window = x[n, :, i:i + 3, j:j + 3]
                x[n, :, i + 2, j + 2] = (b * window).sum((-2, -1)) - b[:, 2, 2] * window[:, 2, 2]
    x = x[:, :, crop:, crop:]
    if eps is None:
        return x
    norms = x.flatten(1).norm(p=p, dim=1)
    return eps * x / norms[:, None, None, None]


@pytest.mark.parametrize("height,width,crop,eps,p", [
    (32, 32, 4, 1.0, 2), (16, 20, 4, 8 / 255, math.inf), (9, 7, 2, 3.0, 2), (6, 6, 0, 0.5, 2)])
def test_generate_matches_float64_reference(coeffs10, height, width, crop, eps, p):
    labels = torch.tensor([0, 3, 9, 5])
    indices = torch.tensor([11, 0, 7, 123456789])
    key = 2024
    out = ops.ar_generate(coeffs10, labels, indices, key, height, width, crop, eps, p)
    canvas = ops.ar_canvas(indices, key, 3, height + crop, width + crop)
    ref = reference_generate(canvas, coeffs10, labels, crop, eps, p)
    err = (out.double() - ref).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1)
    assert err.max() <= 1e-5
    assert torch.allclose(out.flatten(1).norm(p=p, dim=1).double(),
                          torch.full((4,), eps, dtype=torch.float64), rtol=1e-5)


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_generate_other_channel_counts(channels):
    coeffs = sample_coefficients(3, channels=channels, seed=2, progress=False).coeffs
    labels, indices = torch.tensor([2, 0, 1]), torch.tensor([4, 5, 6])
    out = ops.ar_generate(coeffs, labels, indices, 11, 10, 12, 4, 1.0, 2)
    canvas = ops.ar_canvas(indices, 11, channels, 14, 16)
    ref = reference_generate(canvas, coeffs, labels, 4, 1.0, 2)
    err = (out.double() - ref).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1)
    assert out.shape == (3, channels, 10, 12) and err.max() <= 1e-5


def test_generate_unscaled_is_the_process(coeffs10):
    labels, indices = torch.tensor([2, 4]), torch.tensor([5, 6])
    raw = ops.ar_generate(coeffs10, labels, indices, 3, 12, 12, 4, eps=None)
    ref = reference_generate(ops.ar_canvas(indices, 3, 3, 16, 16), coeffs10, labels, 4, 1.0, 2)
    scaled = raw / raw.flatten(1).norm(dim=1)[:, None, None, None]
    assert torch.allclose(scaled.double(), ref, rtol=1e-4, atol=1e-7)


def test_same_key_index_same_perturbation_whatever_the_batch(coeffs10):
    labels = torch.arange(40) % 10
    indices = torch.arange(1000, 1040)
    whole = ops.ar_generate(coeffs10, labels, indices, 77, 32, 32)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    shuffled = ops.ar_generate(coeffs10, labels[perm], indices[perm], 77, 32, 32)
    assert torch.equal(shuffled, whole[perm])
    single = ops.ar_generate(coeffs10, labels[5:6], indices[5:6], 77, 32, 32)
    assert torch.equal(single[0], whole[5])
    other_key = ops.ar_generate(coeffs10, labels, indices, 78, 32, 32)
    assert (other_key - whole).abs().max() > 1e-2


def test_filter_matches_conv2d_and_detects_own_class(coeffs10):
    labels = torch.arange(10)
    delta = ops.ar_generate(coeffs10, labels, torch.arange(10), 5, 32, 32)
    resp = ops.ar_filter(delta, coeffs10)
    filters = coeffs10.clone()
    filters[..., 2, 2] = -1
    ref = F.conv2d(delta.double(), filters.double())
    assert resp.shape == (10, 10, 30, 30)
    assert torch.allclose(resp.double(), ref, atol=1e-6)
    own = resp[labels, labels].abs().amax((-2, -1))
    assert own.max() < 1e-5
    score = resp.clamp_min(0).sum((-2, -1))
    others = score[~torch.eye(10, dtype=torch.bool)]
    assert others.min() > 100 * own.max() * 900


def test_filter_uint8_and_single_image(coeffs10, gen):
    x = torch.randint(0, 256, (2, 3, 8, 9), dtype=torch.uint8, generator=gen)
    out = ops.ar_filter(x, coeffs10)
    assert torch.allclose(out, ops.ar_filter(x.float() / 255, coeffs10), atol=1e-6)
    assert torch.equal(ops.ar_filter(x[1], coeffs10), out[1])
    nc = x.float().div(255).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert torch.allclose(ops.ar_filter(nc, coeffs10), out, atol=1e-6)


def test_poison_adds_clamps_and_rounds(coeffs10, gen):
    x = torch.randint(0, 256, (6, 3, 20, 24), dtype=torch.uint8, generator=gen)
    labels, indices = torch.tensor([0, 1, 2, 3, 4, 9]), torch.arange(50, 56)
    delta = ops.ar_generate(coeffs10, labels, indices, 8, 20, 24, 4, 0.5, 2)
    expected = torch.floor((x.float() / 255 + delta).clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    assert torch.equal(ops.ar_poison(x, coeffs10, labels, indices, 8, 4, 0.5, 2), expected)
    xf = x.float().div(255).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # channels-last
    out = ops.ar_poison(xf, coeffs10, labels, indices, 8, 4, 0.5, 2)
    assert out.dtype == torch.float32 and torch.equal(out, (xf + delta).clamp(0, 1))
    single = ops.ar_poison(x[2], coeffs10, labels[2], indices[2], 8, 4, 0.5, 2)
    assert torch.equal(single, expected[2])


def test_poison_bad_input(coeffs10):
    x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    labels, indices = torch.tensor([0, 1]), torch.tensor([0, 1])
    with pytest.raises(RuntimeError, match="x holds 2 images but indices holds 1"):
        ops.ar_poison(x, coeffs10, labels[:1], indices[:1], 0)
    with pytest.raises(RuntimeError, match="channels"):
        ops.ar_poison(x[:, :1], coeffs10, labels, indices, 0)
    with pytest.raises(RuntimeError, match="uint8 or float32"):
        ops.ar_poison(x.double(), coeffs10, labels, indices, 0)
    with pytest.raises(RuntimeError, match="eps must be"):
        ops.ar_poison(x, coeffs10, labels, indices, 0, eps=-1.0)


@pytest.mark.parametrize("change,match", [
    (dict(coeffs=torch.zeros(10, 3, 3, 3, dtype=torch.float64)), "coeffs must be float32"),
    (dict(coeffs=torch.zeros(10, 3, 2, 3)), r"coeffs must be \[K, C, 3, 3\]"),
    (dict(coeffs=torch.full((10, 3, 3, 3), float("nan"))), "NaN or inf"),
    (dict(labels=torch.tensor([0, 10])), r"labels must be in \[0, 10\)"),
    (dict(labels=torch.tensor([0, -1])), r"labels must be in \[0, 10\)"),
    (dict(labels=torch.tensor([0])), "labels must be"),
    (dict(labels=torch.tensor([0.0, 1.0])), "labels must be int64"),
    (dict(indices=torch.tensor([0, -4])), "indices must be >= 0"),
    (dict(indices=torch.tensor([], dtype=torch.int64), labels=torch.tensor([], dtype=torch.int64)),
     "empty batch"),
    (dict(eps=0.0), "eps must be a positive"),
    (dict(eps=float("nan")), "eps must be a positive"),
    (dict(p=1), "p must be 2 or inf"),
    (dict(crop=-1), "crop must be >= 0"),
    (dict(height=0), "height and width"),
])
def test_generate_bad_input(coeffs10, change, match):
    args = dict(coeffs=coeffs10, labels=torch.tensor([0, 1]), indices=torch.tensor([0, 1]),
                key=0, height=8, width=8, crop=4, eps=1.0, p=2)
    args.update(change)
    with pytest.raises(RuntimeError, match=match):
        ops.ar_generate(**args)


@pytest.mark.parametrize("p", [2, math.inf])
def test_generate_refuses_an_exploding_class(coeffs10, p):
    coeffs = torch.cat([coeffs10[:2], torch.zeros(1, 3, 3, 3)])
    coeffs[2, :, 2, 1] = 3.0  # x[j] = 3 x[j-1]: overflows float32 along a row
    labels = torch.tensor([0, 1, 2, 1])
    with pytest.raises(RuntimeError, match="class 2 overflows float32"):
        ops.ar_generate(coeffs, labels, torch.arange(4), 0, 96, 96, 4, 1.0, p)
    raw = ops.ar_generate(coeffs, labels, torch.arange(4), 0, 96, 96, 4, eps=None)
    assert not torch.isfinite(raw[2]).all() and torch.isfinite(raw[[0, 1, 3]]).all()


def test_bad_key_and_filter_input(coeffs10):
    with pytest.raises(ValueError, match="key"):
        ops.ar_canvas(torch.tensor([0]), 2**64, 3, 4, 4)
    with pytest.raises(TypeError, match="key"):
        ops.ar_canvas(torch.tensor([0]), 1.5, 3, 4, 4)
    with pytest.raises(RuntimeError, match="channels but coeffs"):
        ops.ar_filter(torch.rand(1, 1, 8, 8), coeffs10)
    with pytest.raises(RuntimeError, match="at least 3x3"):
        ops.ar_filter(torch.rand(1, 3, 2, 8), coeffs10)
    with pytest.raises(RuntimeError, match="uint8 or float32"):
        ops.ar_filter(torch.rand(1, 3, 8, 8, dtype=torch.float64), coeffs10)


@requires_cuda
def test_cuda_matches_cpu(coeffs10):
    labels, indices = torch.arange(64) % 10, torch.arange(64) * 7
    for h, w, crop, p in [(32, 32, 4, 2.0), (96, 96, 4, math.inf), (17, 23, 2, 2.0)]:
        cpu = ops.ar_generate(coeffs10, labels, indices, 31, h, w, crop, 1.0, p)
        gpu = ops.ar_generate(coeffs10.cuda(), labels.cuda(), indices.cuda(), 31, h, w, crop, 1.0, p)
        err = (gpu.cpu() - cpu).flatten(1).norm(dim=1) / cpu.flatten(1).norm(dim=1)
        assert err.max() < 1e-4
    canvas = ops.ar_canvas(indices, 31, 3, 9, 9)
    assert torch.allclose(ops.ar_canvas(indices.cuda(), 31, 3, 9, 9).cpu(), canvas, atol=1e-5)
    x = torch.rand(4, 3, 16, 16)
    assert torch.allclose(ops.ar_filter(x.cuda(), coeffs10.cuda()).cpu(), ops.ar_filter(x, coeffs10),
                          atol=1e-5)
    x8 = (x * 255).to(torch.uint8)
    lab4, idx4 = labels[:4], indices[:4]
    cpu8 = ops.ar_poison(x8, coeffs10, lab4, idx4, 31, 4, 1.0, 2)
    gpu8 = ops.ar_poison(x8.cuda(), coeffs10.cuda(), lab4.cuda(), idx4.cuda(), 31, 4, 1.0, 2)
    assert (gpu8.cpu().int() - cpu8.int()).abs().max() <= 1  # rounding ties may differ
    bad = torch.zeros(1, 3, 3, 3)
    bad[0, :, 2, 1] = 3.0
    with pytest.raises(RuntimeError, match="overflows float32"):
        ops.ar_generate(bad.cuda(), lab4[:1].cuda() * 0, idx4[:1].cuda(), 0, 96, 96, 4)


@requires_cuda
@pytest.mark.parametrize("op", ["generate", "poison"])
def test_cuda_checks_labels_and_indices_on_the_device(coeffs10, op):
    """On CUDA the label and index ranges are checked by the kernels (one host sync per
    call, with the overflow flags), with the CPU's messages."""
    x = torch.rand(3, 3, 8, 8, device="cuda")
    coeffs = coeffs10.cuda()

    def call(labels, indices):
        labels, indices = torch.tensor(labels).cuda(), torch.tensor(indices).cuda()
        if op == "generate":
            return ops.ar_generate(coeffs, labels, indices, 0, 8, 8, 4, 1.0, 2)
        return ops.ar_poison(x, coeffs, labels, indices, 0, 4, 1.0, 2)

    with pytest.raises(RuntimeError, match=r"labels must be in \[0, 10\), got values in \[0, 10\]"):
        call([0, 10, 3], [0, 1, 2])
    with pytest.raises(RuntimeError, match=r"labels must be in \[0, 10\), got values in \[-1, 3\]"):
        call([0, -1, 3], [0, 1, 2])
    with pytest.raises(RuntimeError, match="indices must be >= 0, got -4"):
        call([0, 1, 3], [0, -4, 2])
    cpu = (ops.ar_generate(coeffs10, torch.tensor([0, 1, 3]), torch.tensor([0, 1, 2]), 0, 8, 8, 4,
                           1.0, 2) if op == "generate" else
           ops.ar_poison(x.cpu(), coeffs10, torch.tensor([0, 1, 3]), torch.tensor([0, 1, 2]), 0,
                         4, 1.0, 2))
    assert torch.allclose(call([0, 1, 3], [0, 1, 2]).cpu(), cpu, atol=1e-5)
