"""Metrics of a protection under one purification that need only the VAE.

For clean images x, their protected copies x', a purification P, the encoder's latent
z(.) (posterior mean) and decoder D, and the attack's target latent t, per image:

  dist_target        ||z(P(x')) - t||_2         the protection pulls this down
  dist_target_clean  ||z(P(x)) - t||_2          the same for the unprotected image
  dist_clean_latent  ||z(P(x')) - z(x)||_2      how far the protected latent is from the clean one
  recon_psnr/ssim    PSNR / SSIM of D(z(P(x'))) against x   (low: an editor starting from
  recon_psnr/ssim_clean  ... of D(z(P(x))) against x         this latent loses the photo)
  image_psnr         PSNR of P(x') against x (for P = none: the perturbation's own PSNR)

and over the set, `remaining`: the fraction of the attack's pull toward the target that
survives P, (mean dist_target_clean - mean dist_target) / (mean ||z(x) - t|| - mean
||z(x') - t||): 1 = intact, 0 = gone (the protected image encodes like an unprotected one
under the same purification). SSIM: kornia.metrics.ssim (11x11 Gaussian window, sigma
1.5, as Wang et al.), averaged over the map.
"""
from __future__ import annotations

import torch

from .attack import latent_of, to_signed

PER_IMAGE = ("dist_target", "dist_target_clean", "dist_clean_latent", "recon_psnr", "recon_ssim",
             "recon_psnr_clean", "recon_ssim_clean", "image_psnr")


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of float [0, 1] NCHW batches (inf for identical images)."""
    mse = (a.float() - b.float()).square().flatten(1).mean(1)
    return 10 * torch.log10(1 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image mean SSIM of float [0, 1] NCHW batches (kornia.metrics.ssim)."""
    from kornia.metrics import ssim as kornia_ssim
    return kornia_ssim(a.float(), b.float(), 11).flatten(1).mean(1)


def unit(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255 if images.dtype == torch.uint8 else images.float()


class Probe:
    """Latents and reconstructions of one VAE (or encoder callable: no reconstructions)."""

    def __init__(self, vae, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.vae = vae.to(self.device) if hasattr(vae, "to") else vae
        self.latent = latent_of(self.vae)
        self.decodes = hasattr(self.vae, "decode")

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.latent(to_signed(images).to(self.device))

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latent -> float [0, 1] images on the CPU."""
        return ((self.vae.decode(z).sample + 1) / 2).clamp(0, 1).cpu()


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(1).norm(dim=1).cpu()


@torch.no_grad()
def condition_metrics(probe: Probe, clean: torch.Tensor, protected: torch.Tensor,
                      purified_clean: torch.Tensor, purified: torch.Tensor,
                      target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image metrics (PER_IMAGE; the recon_* ones only when the probe decodes) for one
    batch: clean and protected uint8 NCHW and their purified copies."""
    z_clean, z_p, z_q = probe.encode(clean), probe.encode(purified), probe.encode(purified_clean)
    out = {"dist_target": _distance(z_p, target), "dist_target_clean": _distance(z_q, target),
           "dist_clean_latent": _distance(z_p, z_clean),
           "image_psnr": psnr(unit(purified), unit(clean))}
    if probe.decodes:
        reference = unit(clean)
        recon, recon_clean = probe.decode(z_p), probe.decode(z_q)
        out.update(recon_psnr=psnr(recon, reference), recon_ssim=ssim(recon, reference),
                   recon_psnr_clean=psnr(recon_clean, reference),
                   recon_ssim_clean=ssim(recon_clean, reference))
    return out


def summarize(per_image: dict[str, torch.Tensor], baseline: dict[str, float]) -> dict[str, float]:
    """Means over the set, plus `remaining` given the unpurified baseline (the means of
    dist_target and dist_target_clean under 'none')."""
    summary = {name: float(values.mean()) for name, values in per_image.items()}
    pull = baseline["dist_target_clean"] - baseline["dist_target"]
    summary["remaining"] = ((summary["dist_target_clean"] - summary["dist_target"]) / pull
                            if pull > 0 else float("nan"))
    return summary
