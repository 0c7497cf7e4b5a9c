"""The conditions of an evaluation: poisons and defenses, looked up by name in two
registries (name -> factory), so each op plugs in with one decorated function.

A spec is 'name', 'name:value' (the factory's first parameter) or 'name:key=value,...',
e.g. 'jpeg:10', 'pgd:eps=4,steps=5'. Factories take a Context and keyword parameters.

- Poison factory -> fn(images uint8 NCHW, labels, sample indices) -> poisoned uint8 NCHW,
  applied once to the stored training images before any augmentation.
- Defense factory -> Defense: a per-batch transform of the (poisoned) training images run
  inside the data loader, and/or an adversary run inside the training loop.

Registration points for ops that have not landed in this build are listed in
UNAVAILABLE_POISONS / UNAVAILABLE_DEFENSES: asking for them raises ConditionUnavailable
with the reason; register the factory and delete the entry when the op merges.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ..defenses.grayscale import pil_grayscale
from ..defenses.jpeg import jpeg_roundtrip
from ..defenses.projection import Projection, fit
from ..transforms import RSKFF, ARPoison, ClasswiseBlur, RandomSharpen, Sharpen
from .adversarial import PGD, PGD_PRESETS

# fn(images uint8 NCHW, labels, sample indices) -> poisoned uint8 NCHW
Poison = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Context:
    """What a factory may need: the dataset's geometry (a defense loaded from a file, such
    as a fitted projection, must check image_shape against it), the experiment's seed, and
    (for defenses fitted to the data) the poisoned training set. A poison's secret key is
    its own parameter, not this seed."""
    num_classes: int
    image_shape: tuple[int, int, int]
    seed: int = 0
    train_images: torch.Tensor | None = None
    train_labels: torch.Tensor | None = None


@dataclass
class Defense:
    """transform: uint8 NCHW batch -> uint8 or float [0, 1] NCHW, on training data (and on
    test data when apply_to_test, for defenses that change the input domain). An output
    smaller than the input (a 'valid' filter) is kept as it is by default, so the
    protocol's RandomCrop(size, padding=4) zero-pads it, as the reference pipelines do;
    restore='reflect' reflect-pads it back to the input size first (a variant).
    adversary: attack run on every training batch. protocol: the name of the training
    protocol of the reference this defense comes from (protocols.PROTOCOLS). info: what
    the defense measured while being built (a fitted projection's linear-model train
    accuracy), copied into the run's result."""
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    apply_to_test: bool = False
    adversary: PGD | None = None
    protocol: str = "harness"
    restore: str | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.restore not in (None, "reflect"):
            raise ValueError(f"restore: expected None or 'reflect', got {self.restore!r}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.transform is None:
            return images
        out = self.transform(images)
        dh, dw = images.shape[-2] - out.shape[-2], images.shape[-1] - out.shape[-1]
        if self.restore == "reflect" and (dh or dw):
            pad = (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)
            out = F.pad(out.float(), pad, mode="reflect").to(out.dtype)
        return out


class ConditionError(ValueError):
    """An unknown condition name or a bad parameter."""


class ConditionUnavailable(ConditionError):
    """A known condition whose op is not part of this build."""


POISONS: dict[str, Callable[..., Poison | None]] = {}
DEFENSES: dict[str, Callable[..., Defense]] = {}

# Registration points: these conditions exist in the design but their ops have not been
# merged into this build. Replace an entry by a registered factory when its op lands.
UNAVAILABLE_POISONS: dict[str, str] = {}
UNAVAILABLE_DEFENSES: dict[str, str] = {}


def register_poison(name: str):
    def deco(factory):
        POISONS[name] = factory
        return factory
    return deco


def register_defense(name: str):
    def deco(factory):
        DEFENSES[name] = factory
        return factory
    return deco


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, list, dict]:
    """'name[:value | :key=value,...]' -> (name, args, kwargs)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConditionError(f"condition: expected a non-empty name, got {spec!r}")
    name, _, params = spec.strip().partition(":")
    args, kwargs = [], {}
    for part in filter(None, params.split(",")):
        key, eq, val = part.partition("=")
        if eq:
            kwargs[key.strip()] = _value(val.strip())
        else:
            args.append(_value(part.strip()))
    return name, args, kwargs


def check_spec(kind: str, spec: str) -> tuple[Callable, list, dict]:
    """(factory, args, kwargs) for a 'poison' or 'defense' spec; raises ConditionUnavailable
    for a registration point whose op is not in this build, ConditionError for an unknown
    name or parameters the factory does not take."""
    registry, missing = ((POISONS, UNAVAILABLE_POISONS) if kind == "poison"
                         else (DEFENSES, UNAVAILABLE_DEFENSES))
    name, args, kwargs = parse_spec(spec)
    if name in missing:
        raise ConditionUnavailable(f"{kind} {name!r}: {missing[name]}")
    if name not in registry:
        raise ConditionError(f"{kind}: unknown name {name!r}; expected one of "
                             f"{sorted(registry)} (not yet available: {sorted(missing)})")
    factory = registry[name]
    try:
        inspect.signature(factory).bind(None, *args, **kwargs)
    except TypeError as e:
        params = list(inspect.signature(factory).parameters)[1:]
        raise ConditionError(f"{kind} {spec!r}: bad parameters ({e}); {name!r} takes "
                             f"{params or 'no parameters'}") from None
    return factory, args, kwargs


def make_poison(spec: str, ctx: Context) -> Poison | None:
    """The poison for spec ('none' gives None)."""
    factory, args, kwargs = check_spec("poison", spec)
    return factory(ctx, *args, **kwargs)


def make_defense(spec: str, ctx: Context) -> Defense:
    factory, args, kwargs = check_spec("defense", spec)
    return factory(ctx, *args, **kwargs)


def is_available(poison: str, defense: str) -> bool:
    """True when both conditions' ops are in this build (names only)."""
    try:
        check_spec("poison", poison), check_spec("defense", defense)
    except ConditionUnavailable:
        return False
    return True


# --- poisons ---------------------------------------------------------------------------

@register_poison("none")
def _no_poison(ctx: Context) -> None:
    return None


@register_poison("blur")
def _classwise_blur(ctx: Context, blur_parameter: float = 0.3, key: int = 0,
                    ratio: float = 1.0) -> Poison:
    """Class-wise blur ('CUDA', DESIGN §3.2); key 0 gives the reference kernels. ratio: the
    key-derived share of training samples poisoned (the CUDA paper's --mix)."""
    blur = ClasswiseBlur(ctx.num_classes, blur_parameter=blur_parameter, seed=key, key=key,
                         ratio=ratio)
    return blur.poison_batch


@register_poison("ar")
def _ar(ctx: Context, eps: float = 1.0, p: float = 2, crop: int = 4, key: int = 0,
        seed: int = 0, coefficients: str = "auto", ratio: float = 1.0) -> Poison:
    """Autoregressive perturbations (DESIGN §3.1): L2 eps 1.0 and crop 4 by default (the
    CIFAR preset), perturbation keyed by (key, index). coefficients: 'auto' (the reference's
    published set for 10 or 100 classes, as its poisons use, else sampled), 'published'
    (insist on it), 'sampled' (drawn with `seed`), or a coefficient file (ar_published.
    load_coefficients: .json, .npy, the reference's list-of-tensors .pt). ratio: the
    key-derived share of training samples poisoned."""
    from ..poisons.ar_published import load_coefficients, published_coefficients
    published = {10: "cifar10-published", 100: "cifar100-published"}.get(ctx.num_classes)
    if coefficients in ("auto", "published"):
        if published is None and coefficients == "published":
            raise ConditionError(f"ar: published coefficient sets exist for 10 and 100 classes, "
                                 f"this dataset has {ctx.num_classes}")
        coeffs = published_coefficients(published).coeffs if published else ctx.num_classes
    elif coefficients == "sampled":
        coeffs = ctx.num_classes
    else:
        coeffs = load_coefficients(coefficients).coeffs
        if coeffs.shape[0] != ctx.num_classes:
            raise ConditionError(f"ar: {coefficients} holds {coeffs.shape[0]} classes, this "
                                 f"dataset has {ctx.num_classes}")
    poison = ARPoison(coeffs, eps=eps, p=p, crop=crop, key=key, seed=seed, ratio=ratio)
    return poison.poison_batch


@register_poison("lsp")
def _lsp(ctx: Context, eps: float | None = None, patch: int = 8, key: int = 0,
         ratio: float = 1.0) -> Poison:
    """LSP synthetic noise (DESIGN §3.6): patch 8, L2 = eps * sqrt(C*H*W) with the
    reference's eps 6/255 by default; every point a pure function of (key, index, class).
    ratio: the key-derived share of training samples poisoned."""
    from ..keys import philox_key
    from ..poisons.lsp import DEFAULT_EPS, LSPPoison
    poison = LSPPoison(ctx.num_classes, key=philox_key(key), patch=patch,
                       eps=DEFAULT_EPS if eps is None else eps, ratio=ratio)
    return poison.poison_batch


@register_poison("ops")
def _ops(ctx: Context, key: int = 0, ratio: float = 1.0) -> Poison:
    """The one-pixel shortcut (DESIGN §3.6): the reference's pixel search over the training
    set, then that pixel set to its class's colour in every image. ratio: the share of
    training samples poisoned, picked by key."""
    from ..poisons.one_pixel import OnePixelShortcut
    if ctx.train_images is None or ctx.train_labels is None:
        raise ConditionError("ops: needs the training set to search its pixels")
    return OnePixelShortcut.search(ctx.train_images, ctx.train_labels, ctx.num_classes,
                                   key=key, ratio=ratio).poison_batch


def _crafted(ctx: Context, poison) -> Poison:
    """Crafts an optimisation-based poison (EM, TAP) on the context's training set."""
    if ctx.train_images is None or ctx.train_labels is None:
        raise ConditionError(f"{poison.method}: needs the training set to craft on")
    poison.craft(ctx.train_images, ctx.train_labels)
    return poison.poison_batch


def _em(ctx: Context, per_class: bool, eps: float, step: float, steps: int, train_steps: int,
        max_iterations: int, model: str, key: int, state: str | None, ratio: float) -> Poison:
    from ..poisons.em import ErrorMinimizing
    return _crafted(ctx, ErrorMinimizing(
        ctx.num_classes, per_class=per_class, eps=eps / 255, step=step / 255, steps=steps,
        train_steps=train_steps, max_iterations=max_iterations, model=model, key=key,
        state=state, ratio=ratio))


@register_poison("em")
def _em_samplewise(ctx: Context, eps: float = 8, step: float = 0.8, steps: int = 20,
                   train_steps: int = 10, max_iterations: int = 10, model: str = "small",
                   key: int = 0, state: str | None = None, ratio: float = 1.0) -> Poison:
    """Sample-wise error-minimizing noise (DESIGN §3.6), crafted on the training set with a
    surrogate; eps and step in 1/255. state: a private checkpoint path (resumable, and a
    finished one is reused instead of crafting again). ratio: the key-derived share of
    training samples the crafted noise is added to."""
    return _em(ctx, False, eps, step, steps, train_steps, max_iterations, model, key, state,
               ratio)


@register_poison("em-class")
def _em_classwise(ctx: Context, eps: float = 8, step: float = 0.8, steps: int = 20,
                  train_steps: int = 10, max_iterations: int = 10, model: str = "small",
                  key: int = 0, state: str | None = None, ratio: float = 1.0) -> Poison:
    """Class-wise error-minimizing noise; parameters as 'em'."""
    return _em(ctx, True, eps, step, steps, train_steps, max_iterations, model, key, state,
               ratio)


@register_poison("tap")
def _tap(ctx: Context, eps: float = 8, step: float = 2, steps: int = 10, train_epochs: int = 5,
         model: str = "small", key: int = 0, state: str | None = None,
         ratio: float = 1.0, batch_size: int = 512) -> Poison:
    """Targeted adversarial poisoning (y -> y+1 mod K, DESIGN §3.6) against a crafting
    model trained on the clean training set; eps and step in 1/255 (the CPU default: 10
    steps of 2; the paper's: steps=250,step=0.4,model=resnet18,train_epochs=40). ratio: the
    key-derived share of training samples the crafted noise is added to. batch_size: of the
    crafting model's training and of the attack (a small set needs small batches for the
    model to learn in a few epochs)."""
    from ..poisons.tap import TargetedAdversarial
    return _crafted(ctx, TargetedAdversarial(
        ctx.num_classes, eps=eps / 255, step=step / 255, steps=steps, train_epochs=train_epochs,
        model=model, key=key, state=state, ratio=ratio, batch_size=batch_size))


# --- defenses --------------------------------------------------------------------------

@register_defense("none")
def _no_defense(ctx: Context) -> Defense:
    return Defense()


def _on_unit(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Runs fn on [0, 1] floats, as the reference runs its filters after ToTensor."""
    return lambda images: fn(images.float().div_(255))


@register_defense("ssk")
def _ssk(ctx: Context, center: float = 2.5, padding: str = "valid") -> Defense:
    """Fixed sharpening alone ('valid': 32 -> 30, cropped back with zero padding), under
    the RSK paper's protocol (see rsk+ff)."""
    return Defense(_on_unit(Sharpen(center=center, padding=padding)), protocol="rskff")


@register_defense("rsk")
def _rsk(ctx: Context, center: float = 2.5, std: float = 0.1, padding: str = "valid") -> Defense:
    """Random sharpening alone, a fresh kernel per image per epoch. Draws from torch's
    global RNG, which the harness seeds and DataLoader reseeds per worker."""
    return Defense(_on_unit(RandomSharpen(center=center, std=std, padding=padding)), protocol="rskff")


@register_defense("rsk+ff")
def _rsk_ff(ctx: Context, center: float = 2.5, std: float = 0.1, keep: float = 0.3,
            padding: str = "valid", basis: str = "dct", shape: str = "square") -> Defense:
    """RSK+FF (DESIGN §3.3) in the reference geometry: ToTensor -> random sharpening
    ('valid', 32 -> 30) -> DCT low-pass keeping int(30 * keep) coefficients per axis ->
    RandomCrop(32, padding=4) with zero padding -> flip -> Normalize(0.2023 std), gradients
    clipped at 5.0. Source: protocols.RSKFF (aseriesof-tubes/RSK augments.py lines 45-46,
    util.py sharpen_image, main.py clip_grad_norm_)."""
    return Defense(_on_unit(RSKFF(center=center, std=std, padding=padding, keep=keep,
                                  basis=basis, shape=shape)), protocol="rskff")


@register_defense("rsk+ff-reflect")
def _rsk_ff_reflect(ctx: Context, center: float = 2.5, std: float = 0.1, keep: float = 0.3,
                    basis: str = "dct", shape: str = "square") -> Defense:
    """A poisonkit variant, not the reference: RSK+FF whose 30x30 output is reflect-padded
    back to 32x32 before the crop (no black frame); same protocol otherwise."""
    return Defense(_on_unit(RSKFF(center=center, std=std, padding="valid", keep=keep,
                                  basis=basis, shape=shape)), protocol="rskff", restore="reflect")


@register_defense("jpeg")
def _jpeg(ctx: Context, quality: int = 10) -> Defense:
    """JPEG round trip of every training image (ISS: liuzrcc/ImageShortcutSqueezing
    augmentations.py aug_train(), before the crop; test images untouched), ISS protocol."""
    jpeg_roundtrip(torch.zeros(0, 3, 1, 1, dtype=torch.uint8), quality)  # validates quality now
    return Defense(lambda images: jpeg_roundtrip(images, quality), protocol="iss")


@register_defense("grayscale")
def _grayscale(ctx: Context, test: int = 0) -> Defense:
    """Grayscale (3 equal channels, PIL's rounding) on the training images before the crop,
    ISS protocol (liuzrcc/ImageShortcutSqueezing augmentations.py aug_train(): Grayscale(3)
    on PIL images; aug_test() grayscales test images only with --ISS_both_train_test, main.py
    line 41): test=1 grayscales the test images too."""
    if test not in (0, 1):
        raise ConditionError(f"grayscale test: expected 0 or 1, got {test!r}")
    if ctx.image_shape[0] != 3:
        raise ConditionError(f"grayscale: expected RGB images, got shape {tuple(ctx.image_shape)}")
    return Defense(pil_grayscale, apply_to_test=bool(test), protocol="iss")


@register_defense("pgd")
def _pgd(ctx: Context, preset: str = "harness", eps: float | None = None,
         step: float | None = None, steps: int | None = None) -> Defense:
    """PGD adversarial training, L-inf, the attack in eval() mode. Presets (adversarial.
    PGD_PRESETS): 'harness' 8/255, 2/255, 10 steps; 'cuda' (pgd:cuda) the CUDA paper's
    eps 0.015, step eps/steps*1.5, 10 steps, uniform start, CUDA protocol; 'madry'
    (pgd:madry) the ISS code's eps 0.031, step 0.007, 10 steps, Gaussian start, ISS
    protocol. eps and step override the preset, in 1/255 units."""
    if preset not in PGD_PRESETS:
        raise ConditionError(f"pgd preset: expected one of {sorted(PGD_PRESETS)}, got {preset!r}")
    base, protocol, _ = PGD_PRESETS[preset]
    attack = PGD(eps=base.eps if eps is None else eps / 255,
                 step=base.step if step is None else step / 255,
                 steps=base.steps if steps is None else steps, start=base.start)
    return Defense(adversary=attack, protocol=protocol)


@register_defense("projection")
def _projection(ctx: Context, path: str | None = None, epochs: int = 20,
                clamp: int = 0, recipe: int = 1) -> Defense:
    """Orthogonal projection (DESIGN §3.4): fit the linear model on the poisoned training
    set (or load a saved fit from `path`, checked against the dataset's image shape) and
    project every training image onto the complement of its weights' span. Test images
    are not projected; results leave [0, 1] unless clamp=1, as in the reference. The model
    trains with the reference's step-2 recipe (protocols.PROJECTION_STEP2: strong
    augmentation, CutMix, batch 128, wd 1e-4, LR x0.1 at 50%/75% of the epochs;
    learn-from-unlearnable orthogonal_projection_step_2.py); recipe=0 turns it off (harness
    protocol, crop+flip), as the reference's --no-strong-aug."""
    if recipe not in (0, 1):
        raise ConditionError(f"projection recipe: expected 0 or 1, got {recipe!r}")
    if path is not None:
        projection = Projection.load(path)
        if projection.image_shape != tuple(ctx.image_shape):
            raise ConditionError(f"projection: {path} was fitted on images of shape "
                                 f"{projection.image_shape}, this dataset has {tuple(ctx.image_shape)}")
    else:
        if ctx.train_images is None or ctx.train_labels is None:
            raise ConditionError("projection: needs the training set to fit on (or path=...)")
        projection = fit((ctx.train_images, ctx.train_labels), ctx.num_classes, epochs=epochs,
                         seed=ctx.seed)
        print(f"projection: linear model train accuracy {100 * projection.train_accuracy:.1f}%")
    return Defense(lambda images: projection.apply(images, clamp=bool(clamp)),
                   protocol="projection-step2" if recipe else "harness",
                   info={"linear_train_accuracy": projection.train_accuracy})
