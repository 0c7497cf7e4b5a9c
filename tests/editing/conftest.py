"""A tiny random AutoencoderKL (8 and 16 channels, 2x downsampling) that runs in
milliseconds, and a few real 16x16 crops for the editing tests."""
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_tiny_vae(seed: int = 0):
    from diffusers import AutoencoderKL
    torch.manual_seed(seed)
    vae = AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=4, latent_channels=4,
                        layers_per_block=1, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, sample_size=16)
    return vae.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_vae():
    return make_tiny_vae()


@pytest.fixture(scope="session")
def crops(cifar):
    """6 real CIFAR test images, top-left 16x16, uint8 NCHW."""
    return cifar["x_test"][:6, :, :16, :16].contiguous()
