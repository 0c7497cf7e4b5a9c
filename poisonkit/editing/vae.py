"""The VAE the protections attack: any local diffusers AutoencoderKL folder (Stable
Diffusion's, when the user has its weights), loaded offline, or poisonkit's small stand-in
trained here on CIFAR images and cached in the user's cache folder on first use.

The stand-in is not Stable Diffusion's VAE: two blocks (16, 32 channels) instead of four
(128-512), so it downsamples 2x (32x32 images -> 4x16x16 latents, 3x compression) where SD's
downsamples 8x (48x compression), and it was trained for minutes on 32x32 images with an L1
+ KL loss (no perceptual or adversarial loss). Numbers measured on it show how a protection
and a purification interact for *a* latent encoder, not what happens to SD's.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .._staging import Staging

# Nothing poisonkit does with diffusers may reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_NAME = "tiny-vae-cifar-v1"
TINY_CONFIG = dict(in_channels=3, out_channels=3, latent_channels=4,
                   block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
                   down_block_types=("DownEncoderBlock2D",) * 2,
                   up_block_types=("UpDecoderBlock2D",) * 2, sample_size=32)
# Training recipe of the stand-in (minutes on one CPU thread): L1 reconstruction + a KL
# term weighted as in Stable Diffusion's VAE config (kl_weight 1e-6), Adam.
TINY_TRAINING = dict(steps=300, batch_size=32, lr=2e-3, kl_weight=1e-6, seed=0)
TRAINING_RECORD = "poisonkit_training.json"


def cache_dir() -> Path:
    """$POISONKIT_CACHE, else $XDG_CACHE_HOME/poisonkit, else ~/.cache/poisonkit."""
    if os.environ.get("POISONKIT_CACHE"):
        return Path(os.environ["POISONKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "poisonkit"


def load_vae(path: str | os.PathLike):
    """A diffusers AutoencoderKL from a local folder (config.json + weights, as written by
    save_pretrained), local files only: a missing or incomplete folder is an error before
    anything else happens, never a download."""
    from diffusers import AutoencoderKL
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"vae: no such folder {path} (expected a diffusers "
                                "AutoencoderKL folder written by save_pretrained)")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"vae: {path} has no config.json; expected a diffusers "
                                "AutoencoderKL folder (for a full pipeline folder, pass its vae/ "
                                "subfolder)")
    try:
        vae = AutoencoderKL.from_pretrained(path, local_files_only=True, low_cpu_mem_usage=False)
    except (OSError, ValueError, EnvironmentError) as e:
        raise ValueError(f"vae: cannot load an AutoencoderKL from {path}: {e}") from e
    return vae.eval().requires_grad_(False)


def tiny_vae(seed: int = 0):
    """An untrained stand-in AutoencoderKL (TINY_CONFIG), initialised from seed."""
    from diffusers import AutoencoderKL
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoencoderKL(**TINY_CONFIG)


def train_tiny_vae(images: torch.Tensor, steps: int = TINY_TRAINING["steps"],
                   batch_size: int = TINY_TRAINING["batch_size"], lr: float = TINY_TRAINING["lr"],
                   kl_weight: float = TINY_TRAINING["kl_weight"], seed: int = TINY_TRAINING["seed"],
                   progress: bool = True):
    """Trains the stand-in on uint8 NCHW RGB images (32x32); returns (vae, record) where
    record holds the recipe and the final training loss. Batches are drawn with a seeded
    generator, so a run is reproducible for a given thread count."""
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (3, 32, 32):
        raise ValueError(f"images: expected uint8 [N, 3, 32, 32], got {images.dtype} "
                         f"{tuple(images.shape)}")
    if len(images) < batch_size:
        raise ValueError(f"images: need at least batch_size={batch_size} images, got {len(images)}")
    vae = tiny_vae(seed).train()
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    running = None
    bar = tqdm(range(steps), desc="train stand-in VAE", unit="step", disable=not progress)
    for _ in bar:
        batch = images[torch.randint(len(images), (batch_size,), generator=g)].float() / 127.5 - 1
        posterior = vae.encode(batch).latent_dist
        # The reparameterised sample needs its own seeded noise: diffusers draws from the
        # global RNG, so draw it here.
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=g)
        recon = vae.decode(z).sample
        l1 = (recon - batch).abs().mean()
        loss = l1 + kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        l1 = l1.item()
        running = l1 if running is None else 0.95 * running + 0.05 * l1
        bar.set_postfix(l1=f"{running:.4f}")
    record = dict(TINY_TRAINING, steps=steps, batch_size=batch_size, lr=lr, kl_weight=kl_weight,
                  seed=seed, num_images=len(images), final_l1_ema=running,
                  config={k: list(v) if isinstance(v, tuple) else v for k, v in TINY_CONFIG.items()},
                  torch_threads=torch.get_num_threads())
    return vae.eval().requires_grad_(False), record


def default_vae(data: str | os.PathLike | None = None, progress: bool = True):
    """The cached stand-in VAE (cache_dir()/tiny-vae-cifar-v1), trained on first use on the
    training images of `data` (an .npz or ImageFolder of 32x32 RGB images; default
    $POISONKIT_DATA) and published atomically
    (a staging folder renamed into place under a lock): a second first use while one trains
    fails at once naming the holder, and a killed training leaves nothing half-written."""
    dest = cache_dir() / TINY_NAME
    if (dest / "config.json").is_file():
        return load_vae(dest)
    from ..data.datasets import data_path, load_dataset
    source = data_path(data)
    if source is None:
        raise ValueError(f"vae: the stand-in VAE is not in the cache ({dest}) and no data to "
                         "train it on: pass --data / data= a dataset of 32x32 RGB images (or set "
                         "$POISONKIT_DATA), or --vae a diffusers AutoencoderKL folder")
    images = load_dataset(source, download=False).x_train
    with Staging(dest) as stage:
        if (dest / "config.json").is_file():  # another run published it while we waited
            return load_vae(dest)
        vae, record = train_tiny_vae(images, progress=progress)
        vae.save_pretrained(stage.path)
        (stage.path / TRAINING_RECORD).write_text(json.dumps(record, indent=1) + "\n")
        stage.publish()
    return load_vae(dest)


def check_vae_input(vae, image_shape: tuple[int, ...]) -> None:
    """Refuses images whose channel count the VAE does not take, or whose height and width
    its encoder cannot downsample evenly, before any attack or evaluation starts."""
    config = getattr(vae, "config", None)
    if config is None:
        return  # a plain encoder callable: its own errors apply
    c, h, w = image_shape[-3:]
    if c != config.in_channels:
        raise ValueError(f"images: the VAE takes {config.in_channels}-channel images, got {c} "
                         f"channels (shape {tuple(image_shape)})")
    factor = 2 ** (len(config.block_out_channels) - 1)
    if h % factor or w % factor or h < factor or w < factor:
        raise ValueError(f"images: the VAE downsamples by {factor}; height and width must be "
                         f"positive multiples of {factor}, got {h}x{w}")
