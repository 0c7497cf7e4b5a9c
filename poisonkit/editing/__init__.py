"""Protections against AI image editing (PhotoGuard's encoder attack) and how well they
survive purification (JPEG, low-pass, sharpening)."""
from .evaluate import evaluate
from .protect import Protection, protect
from .purify import purification
from .vae import default_vae, load_vae

__all__ = ["Protection", "default_vae", "evaluate", "load_vae", "protect", "purification"]
