"""The encoder attack against a reference written from PhotoGuard's `pgd` (batch-norm loss,
decaying signed steps, projection then clamp), its eps ball, its descent, its errors."""
import math

import pytest
import torch

from poisonkit.editing.attack import (encoder_attack, latent_of, quantize, random_start,
                                      target_latent, to_signed)
from poisonkit.editing.protect import protect
from tests.conftest import requires_cuda


def reference_pgd(X, encode, target, eps, step_size, iters, noise):
    """PhotoGuard's pgd (demo/app.py) with its random start passed in."""
    X_adv = X.clone().detach() + noise * eps
    for i in range(iters):
        actual_step_size = step_size - (step_size - step_size / 100) / iters * i
        X_adv.requires_grad_(True)
        loss = (encode(X_adv).latent_dist.mean - target).norm()
        grad, = torch.autograd.grad(loss, [X_adv])
        X_adv = X_adv - grad.detach().sign() * actual_step_size
        X_adv = torch.minimum(torch.maximum(X_adv, X - eps), X + eps)
        X_adv.data = torch.clamp(X_adv, min=-1, max=1)
    return X_adv.detach()


def test_matches_photoguard_reference(tiny_vae, crops):
    x = to_signed(crops[:1])  # one image: the reference's batch norm is the per-image norm
    latent = latent_of(tiny_vae)
    target = target_latent(latent, "grey", x)
    noise = random_start(tuple(x.shape), torch.tensor([0]), seed=3)
    ours, _ = encoder_attack(x, latent, target, 0.06, 0.02, 15, noise)
    ref = reference_pgd(x, tiny_vae.encode, target, 0.06, 0.02, 15, noise)
    # Signed steps: a gradient entry rounding to the other sign moves one pixel by one step.
    assert (ours - ref).abs().gt(1e-5).float().mean() < 0.01


@pytest.mark.parametrize("eps", [0.01, 0.06, 0.12])
def test_stays_in_the_eps_ball_and_range(tiny_vae, crops, eps):
    latent = latent_of(tiny_vae)
    x = to_signed(crops)
    target = target_latent(latent, "grey", x)
    adv, _ = encoder_attack(x, latent, target, eps, 0.02, 10, random_start(tuple(x.shape),
                                                                            torch.arange(6), 0))
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= -1 and adv.max() <= 1
    stored = quantize(adv, crops, eps)
    assert stored.dtype == torch.uint8
    assert (stored.float() - crops.float()).abs().max() <= eps * 127.5 + 1e-4


def test_lowers_the_latent_distance(tiny_vae, crops):
    result = protect(crops, tiny_vae, iters=30, batch_size=4, progress=False)
    d = result.distances
    assert d.shape == (31, 6)
    assert (d[-1] < d[0]).all()  # every image pulled toward the target
    assert d[-1].mean() < 0.75 * d[0].mean()
    # and the trend is downhill: the last third is below the first third on average
    assert d[20:].mean() < d[:10].mean()


def test_zero_target_and_float_images(tiny_vae, crops):
    images = crops.float() / 255
    result = protect(images, tiny_vae, target="zero", eps=0.03, iters=10, progress=False)
    assert result.protected.dtype == torch.float32
    assert (result.protected - images).abs().max() <= 0.015 + 1e-6
    assert result.distances[-1].mean() < result.distances[0].mean()


def test_plain_encoder_callable(crops):
    conv = torch.nn.Conv2d(3, 2, 3, stride=2, padding=1)
    result = protect(crops, conv, iters=5, progress=False)
    assert result.protected.shape == crops.shape
    assert result.distances[-1].mean() < result.distances[0].mean()


def test_resume_and_batch_independent_start(tiny_vae, crops, tmp_path):
    first = protect(crops, tiny_vae, iters=5, batch_size=2, state=tmp_path / "s", progress=False)
    chunks = sorted((tmp_path / "s").glob("chunk_*.pt"))
    assert len(chunks) == 3
    chunks[1].unlink()
    again = protect(crops, tiny_vae, iters=5, batch_size=2, state=tmp_path / "s", progress=False)
    assert torch.equal(first.protected, again.protected)
    with pytest.raises(ValueError, match="state: .*settings differ in \\['eps'\\]"):
        protect(crops, tiny_vae, eps=0.1, iters=5, batch_size=2, state=tmp_path / "s",
                progress=False)
    with pytest.raises(ValueError, match="settings differ in \\['target'\\]"):
        protect(crops, tiny_vae, target="zero", iters=5, batch_size=2, state=tmp_path / "s",
                progress=False)
    # The random start is a function of (seed, index): the same rows in any batch.
    starts = random_start((6, 3, 4, 4), torch.arange(6), 7)
    assert torch.equal(starts[4:], random_start((2, 3, 4, 4), torch.tensor([4, 5]), 7))


@pytest.mark.parametrize("kwargs, match", [
    (dict(eps=0), "eps: expected a positive"),
    (dict(eps=-0.1), "eps: expected a positive"),
    (dict(eps=math.nan), "eps: expected a positive"),
    (dict(eps=3.0), "eps: .*exceeds"),
    (dict(step=math.inf), "step: expected a positive"),
    (dict(iters=0), "iters: expected a positive int"),
    (dict(batch_size=0), "batch_size"),
    (dict(target="black"), "target: expected one of"),
])
def test_bad_settings(tiny_vae, crops, kwargs, match):
    with pytest.raises(ValueError, match=match):
        protect(crops, tiny_vae, progress=False, **kwargs)


@pytest.mark.parametrize("images, match", [
    (torch.zeros(2, 1, 16, 16, dtype=torch.uint8), "takes 3-channel images, got 1"),
    (torch.zeros(2, 3, 15, 16, dtype=torch.uint8), "multiples of 2, got 15x16"),
    (torch.zeros(2, 3, 16, 16, dtype=torch.float64), "uint8 .* or float32"),
    (torch.full((2, 3, 16, 16), 2.0), "finite and in \\[0, 1\\]"),
    (torch.zeros(0, 3, 16, 16, dtype=torch.uint8), "no images"),
])
def test_bad_images(tiny_vae, images, match):
    with pytest.raises(ValueError, match=match):
        protect(images, tiny_vae, iters=1, progress=False)


@requires_cuda
def test_cuda_matches_cpu(tiny_vae, crops):
    cpu = protect(crops, tiny_vae, iters=5, progress=False, device="cpu")
    gpu = protect(crops, tiny_vae, iters=5, progress=False, device="cuda")
    assert gpu.protected.device.type == "cpu"
    # Signed steps amplify float differences into whole steps on a few pixels.
    assert (gpu.protected.int() - cpu.protected.int()).ne(0).float().mean() < 0.05
    assert torch.allclose(gpu.distances, cpu.distances, rtol=0.05)
