"""Datasets: sources loaded into memory (datasets.py, memory.py), procedural stand-ins
(synthetic.py), and poisoned datasets with their loaders (poisoned.py)."""
from .datasets import NPZ_KEYS, TORCHVISION_SETS, data_path, load_dataset, load_image_folder, load_npz
from .memory import ImageDataset
from .poisoned import PoisonedDataset, PoisonedTensorDataset, apply_in_chunks, make_loader
from .synthetic import synthetic_dataset, synthetic_images

__all__ = ["ImageDataset", "NPZ_KEYS", "PoisonedDataset", "PoisonedTensorDataset", "TORCHVISION_SETS",
           "apply_in_chunks", "data_path", "load_dataset", "load_image_folder", "load_npz",
           "make_loader", "synthetic_dataset", "synthetic_images"]
