"""Training protocols: how the reference code of each paper turns a stored (poisoned,
defended) image into a model input and takes a step. A protocol fixes the augmentation
after the defense's own transform, the Normalize constants, gradient clipping, CutMix and,
for the projection step-2 recipe, the optimiser settings. Each is named and sourced
(repository, file, the statement; commits as stored by the search index on 2026-11-30).

Every defense names its default protocol (conditions.Defense.protocol); a run can force
one protocol for all its conditions (a paper's whole matrix, `reproduce`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .augment import CIFAR_MEAN, CIFAR_STD, REFERENCE_STD, crop_flip, normalize, strong_augment, to_unit


@dataclass(frozen=True)
class Protocol:
    """std None: no Normalize (the model sees [0, 1] pixels). recipe: TrainConfig fields
    the reference fixes (applied over the run's config, epochs excepted)."""
    name: str
    source: str
    mean: tuple[float, ...] | None = CIFAR_MEAN
    std: tuple[float, ...] | None = CIFAR_STD
    grad_clip: float | None = None
    strong_augment: bool = False
    cutmix_prob: float = 0.0
    cutmix_beta: float = 1.0
    recipe: tuple[tuple[str, object], ...] = ()

    def prep(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] floats -> the model's input."""
        return x if self.std is None else normalize(x, self.mean, self.std)

    def augment(self, x: torch.Tensor, size: tuple[int, int],
                generator: torch.Generator | None = None) -> torch.Tensor:
        """[0, 1] float batch (the defense's output, possibly smaller than `size`) ->
        augmented [0, 1] batch of the model's size: (strong chain,) RandomCrop(size,
        padding=4) with zero padding, horizontal flip."""
        if self.strong_augment:
            x = strong_augment(x)
        return crop_flip(x, padding=4, generator=generator, size=tuple(size))


HARNESS = Protocol(
    "harness", "poisonkit DESIGN §4: crop+flip, Normalize with the true CIFAR-10 std, no clipping")

RSKFF = Protocol(
    "rskff",
    "Kim & Sandoval-Segura, github.com/aseriesof-tubes/RSK (commit b2a55f8): augments.py "
    "get_transform() 'rsk_ff' = ToTensor -> sharpen_image (util.py: conv2d groups=3, no padding, "
    "32->30) -> get_dct_image -> RandomCrop(32, padding=4) -> RandomHorizontalFlip -> "
    "Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)) (lines 24-27, 28-31, 45-46, "
    "55-57; the file nests the lists as base + [rsk, ff, ff_augs], the README's Compose flattens "
    "them in this order); main.py: torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0) before every step",
    std=REFERENCE_STD, grad_clip=5.0)

CUDA = Protocol(
    "cuda",
    "Sadasivan et al., github.com/vinusankars/Convolution-based-Unlearnability (commit 989534e): "
    "final_filter_unlearnable.py trains on RandomCrop(size, padding=4) + RandomHorizontalFlip + "
    "ToTensor with no Normalize, clip_grad_norm_(model.parameters(), 5.0); adversarial training "
    "'atk = attacker(model, eps=eps, alpha=eps/steps * 1.5, steps=steps)' (torchattacks.PGD) with "
    "README's --pgd-radius=0.015 --pgd-steps=10",
    mean=None, std=None, grad_clip=5.0)

ISS = Protocol(
    "iss",
    "Liu et al., github.com/liuzrcc/ImageShortcutSqueezing (commits 869398f, 9d4e935): "
    "augmentations.py aug_train() = [Grayscale(3) | JPEG] on the PIL image -> RandomCrop(32, "
    "padding=4) -> RandomHorizontalFlip -> ToTensor, no Normalize; aug_test() applies "
    "grayscale/JPEG only when --ISS_both_train_test (main.py lines 34-41); no clipping; "
    "adversarial training: madrys.py MadrysLoss (lines 13, 22, 27, 33-35)",
    mean=None, std=None)

AR = Protocol(
    "ar",
    "Sandoval-Segura et al., github.com/psandovalsegura/autoregressive-poisoning (commit "
    "053ef9d): lightning_modules/lightning_cifar10.py train_dataloader() = RandomCrop(32, "
    "padding=4) -> RandomHorizontalFlip -> ToTensor -> Normalize((0.4914, 0.4822, 0.4465), "
    "(0.2023, 0.1994, 0.2010)); no clipping",
    std=REFERENCE_STD)

PROJECTION_STEP2 = Protocol(
    "projection-step2",
    "Sandoval-Segura et al., github.com/psandovalsegura/learn-from-unlearnable (commit "
    "786b9a6): orthogonal_projection_step_2.py main(): RandomRotation(10) -> RandomAffine(0, "
    "shear=10, scale=(0.8, 1.2)) -> ColorJitter(0.2, 0.2, 0.2) -> RandomCrop(32, padding=4) -> "
    "RandomHorizontalFlip -> Normalize(.., (0.2023, 0.1994, 0.2010)); train(): CutMix with "
    "beta 1, cutmix_prob 0.5; parse_args(): batch 128, lr 0.1, momentum 0.9, weight decay 1e-4, "
    "50 epochs; MultiStepLR at int(0.5 E), int(0.75 E) (25/37), gamma 0.1; no clipping",
    std=REFERENCE_STD, strong_augment=True, cutmix_prob=0.5, cutmix_beta=1.0,
    recipe=(("batch_size", 128), ("weight_decay", 1e-4), ("nesterov", False),
            ("schedule", "multistep")))

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (HARNESS, RSKFF, CUDA, ISS, AR, PROJECTION_STEP2)}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"protocol: expected one of {sorted(PROTOCOLS)}, got {name!r}")
    return PROTOCOLS[name]


def train_view(defense, protocol: Protocol, images: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """What the model sees for stored uint8 training images under a defense and protocol:
    the defense's transform (in the loader), then the protocol's augmentation and
    normalisation (in the training loop), at the stored images' size."""
    x = to_unit(defense(images))
    return protocol.prep(protocol.augment(x, images.shape[-2:], generator))
