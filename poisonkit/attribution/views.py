"""SimCLR views of a whole batch at once: the augmentations of lightly's SimCLRTransform
with its CIFAR settings (random resized crop of scale 0.08-1, horizontal flip 0.5, colour
jitter with probability 0.8 and strength 0.5, grayscale 0.2, no blur), drawn per image
but applied as batched tensor operations. lightly's own view transform runs per image
(torchvision v2 on one CHW tensor at a time): 13.6 ms per image pair on this CPU, longer
than the small CNN's training step on it, so it would bound SSL training."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# ITU-R 601 luma (torchvision's rgb_to_grayscale) and the YIQ basis used for hue rotation
# (as DALI's hue operator: a rotation of the chroma plane, linear in RGB).
_LUMA = torch.tensor([0.299, 0.587, 0.114])
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


@dataclass(frozen=True)
class ViewConfig:
    min_scale: float = 0.08
    ratio: tuple[float, float] = (3 / 4, 4 / 3)   # crop aspect ratio range (log-uniform)
    hflip: float = 0.5
    jitter_prob: float = 0.8
    brightness: float = 0.4   # lightly: cj_bright 0.8 x cj_strength 0.5
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale: float = 0.2


def _crop_grid(n: int, size: tuple[int, int], cfg: ViewConfig, g: torch.Generator) -> torch.Tensor:
    """Affine sampling grids for RandomResizedCrop (area scale in [min_scale, 1], aspect
    ratio log-uniform in cfg.ratio, crop inside the image) with the flip folded in."""
    area = torch.empty(n).uniform_(cfg.min_scale, 1.0, generator=g)
    log_ratio = torch.empty(n).uniform_(math.log(cfg.ratio[0]), math.log(cfg.ratio[1]), generator=g)
    ratio = log_ratio.exp()
    w = (area * ratio).sqrt().clamp(max=1.0)   # fractions of the image width / height
    h = (area / ratio).sqrt().clamp(max=1.0)
    cx = (torch.rand(n, generator=g) * 2 - 1) * (1 - w)   # centre in [-1, 1] coordinates
    cy = (torch.rand(n, generator=g) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n, generator=g) < cfg.hflip, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    return F.affine_grid(theta, [n, 3, *size], align_corners=False)


def _factor(n: int, strength: float, g: torch.Generator) -> torch.Tensor:
    return torch.empty(n, 1, 1, 1).uniform_(1 - strength, 1 + strength, generator=g)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (x * _LUMA.to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _jitter(x: torch.Tensor, cfg: ViewConfig, g: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation, hue with per-image factors (fixed order)."""
    n = len(x)
    x = (x * _factor(n, cfg.brightness, g)).clamp(0, 1)
    mean = _gray(x).mean((2, 3), keepdim=True)
    x = (mean + (x - mean) * _factor(n, cfg.contrast, g)).clamp(0, 1)
    gray = _gray(x)
    x = (gray + (x - gray) * _factor(n, cfg.saturation, g)).clamp(0, 1)
    angle = torch.empty(n).uniform_(-cfg.hue, cfg.hue, generator=g) * 2 * math.pi
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(n, 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    yiq = _RGB2YIQ.to(x)
    m = torch.linalg.inv(yiq) @ rot.to(x) @ yiq          # [n, 3, 3] RGB -> RGB
    return torch.einsum("nij,njhw->nihw", m, x).clamp(0, 1)


def simclr_views(x: torch.Tensor, g: torch.Generator, cfg: ViewConfig = ViewConfig()) -> torch.Tensor:
    """One random view of each image of x (float [0, 1] NCHW, 3 channels), same size."""
    n = len(x)
    x = F.grid_sample(x, _crop_grid(n, tuple(x.shape[-2:]), cfg, g).to(x), mode="bilinear",
                      padding_mode="reflection", align_corners=False)
    jitter = (torch.rand(n, generator=g) < cfg.jitter_prob).view(n, 1, 1, 1).to(x.device)
    x = torch.where(jitter, _jitter(x, cfg, g), x)
    gray = (torch.rand(n, generator=g) < cfg.grayscale).view(n, 1, 1, 1).to(x.device)
    return torch.where(gray, _gray(x).expand_as(x), x)
