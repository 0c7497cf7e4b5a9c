"""torchvision-v2 transforms over poisonkit's ops: the poisons (Poison protocol, see
poisonkit.poisons.base) and the defenses, with a functional layer
(poisonkit.transforms.functional) that dispatches per input type.

Every transform accepts a PIL image, a tv_tensors.Image or a plain CHW tensor / NCHW batch
(uint8 or float32 in [0, 1]) and returns the same type; Masks, BoundingBoxes, KeyPoints
and labels in a sample pass through untouched. Poisons are applied to the stored image
before any augmentation (perturb-then-augment, as the reference code does); defenses such
as sharpening go first in the training pipeline and are not applied to test images.
"""
from ..poisons.ar import AR_PRESETS, ARPoison
from ..poisons.base import Poison
from ..poisons.classwise_blur import ClasswiseBlur
from . import functional
from .defenses import RSKFF, LowPass, OrthogonalProjection, RandomSharpen, Sharpen

__all__ = ["AR_PRESETS", "ARPoison", "ClasswiseBlur", "LowPass", "OrthogonalProjection", "Poison",
           "RSKFF", "RandomSharpen", "Sharpen", "functional"]
