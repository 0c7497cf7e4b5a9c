"""Metrics against plain formulas: PSNR, SSIM of identical images, latent distances, and
`remaining` (1 for the protection as stored, 0 when the protected copy is the clean image)."""
import math

import pytest
import torch

from poisonkit.editing.evaluate import evaluate
from poisonkit.editing.metrics import psnr, ssim
from poisonkit.editing.protect import protect


def test_psnr_and_ssim(crops):
    a = crops.float() / 255
    b = (a + 0.1).clamp(0, 1)
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3))
    assert torch.allclose(psnr(a, b), 10 * torch.log10(1 / mse))
    assert torch.isinf(psnr(a, a)).all()
    assert torch.allclose(ssim(a, a), torch.ones(len(a)))
    assert (ssim(a, b) < 1).all()


def test_evaluate_remaining_and_distances(tiny_vae, crops, tmp_path):
    protected = protect(crops, tiny_vae, iters=8, progress=False).protected
    results = evaluate(crops, protected, tiny_vae, ["jpeg:50", "lowpass:0.3"], tmp_path,
                       progress=False)
    assert list(results) == ["none", "jpeg:50", "lowpass:0.3"]
    none = results["none"]
    assert none["remaining"] == pytest.approx(1.0)
    assert none["dist_target"] < none["dist_target_clean"]
    assert none["image_psnr"] > 20 and math.isfinite(none["recon_ssim"])
    # A "protection" that changed nothing has nothing remaining.
    unchanged = evaluate(crops, crops.clone(), tiny_vae, ["jpeg:50"], tmp_path / "same",
                         progress=False)
    assert math.isnan(unchanged["none"]["remaining"])
    jpeg = unchanged["jpeg:50"]
    assert jpeg["dist_target"] == pytest.approx(jpeg["dist_target_clean"])
    assert jpeg["recon_psnr"] == pytest.approx(jpeg["recon_psnr_clean"])
    # Resume reads the saved conditions back.
    again = evaluate(crops, protected, tiny_vae, ["jpeg:50", "lowpass:0.3"], tmp_path,
                     resume=True, progress=False)
    assert again == results


def test_evaluate_refuses_mismatched_images(tiny_vae, crops, tmp_path):
    with pytest.raises(ValueError, match="one shape"):
        evaluate(crops, crops[:3], tiny_vae, [], tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown 'blur'"):
        evaluate(crops, crops, tiny_vae, ["blur"], tmp_path, progress=False)
