"""Edits with a full local diffusers img2img pipeline (Stable Diffusion's, when the user has
it; nothing is downloaded), and how similar the edit of a protected image is to the edit
of its clean original.

Similarity (offline, no CLIP or FID network): PSNR and SSIM between edit(x') and edit(x)
with the same prompt, seed and settings, as PhotoGuard's paper compares the edits of
immunized and non-immunized images (it also reports FID and VIFp). Low similarity means
the protection works: the editor no longer produces the edit it would have made.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .metrics import psnr, ssim, unit

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_img2img(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """A StableDiffusionImg2ImgPipeline from a local folder (model_index.json + parts),
    local files only; its safety checker is not loaded (nothing to download)."""
    path = Path(path)
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(f"pipeline: {path} is not a diffusers pipeline folder (no "
                                "model_index.json)")
    try:  # Stable Diffusion's text encoder and tokenizer live in transformers
        import transformers  # noqa: F401
    except ImportError:
        raise ValueError("pipeline: a Stable Diffusion img2img pipeline needs the transformers "
                         "package (its CLIP text encoder), which is not installed") from None
    from diffusers import StableDiffusionImg2ImgPipeline
    try:
        pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
            path, local_files_only=True, low_cpu_mem_usage=False, safety_checker=None,
            requires_safety_checker=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"pipeline: cannot load an img2img pipeline from {path}: {e}") from e
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


@torch.no_grad()
def edit(pipe, images: torch.Tensor, prompt: str, *, strength: float = 0.5,
         guidance_scale: float = 7.5, steps: int = 50, seed: int = 1234) -> torch.Tensor:
    """uint8 NCHW images -> their edits, uint8 NCHW of the same size; one seeded generator
    per image so an image's edit does not depend on its batch."""
    outputs = []
    for image in images:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        result = pipe(prompt=prompt, image=unit(image)[None], strength=strength,
                      guidance_scale=guidance_scale, num_inference_steps=steps,
                      generator=generator, output_type="pt")
        edited = result.images[0].clamp(0, 1)
        outputs.append((edited * 255).round().to(torch.uint8).cpu())
    return torch.stack(outputs)


def edit_similarity(edited: torch.Tensor, edited_clean: torch.Tensor) -> dict[str, float]:
    """Mean PSNR / SSIM of edits of protected images against the clean images' edits."""
    a, b = unit(edited), unit(edited_clean)
    return {"edit_psnr": float(psnr(a, b).mean()), "edit_ssim": float(ssim(a, b).mean())}
