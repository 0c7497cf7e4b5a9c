"""Reading ImageFolder trees the way an owner lays them out: either a folder of class
folders, or a split root holding train/ and test/ (or val/) folders of class folders.

A split root read as a plain ImageFolder becomes two classes, 'test' and 'train' (the test
images get poisoned as a class of their own), so the split layout is detected first.
Labels of every split come from the training split's class folders; a test class with no
training folder is an error before any work.
"""
from __future__ import annotations

import os
from pathlib import Path

SPLITS = ("train", "test", "val")


def split_folders(root: str | os.PathLike) -> dict[str, Path] | None:
    """{split: folder} for a split root, None for a folder of class folders. A root that
    mixes split folders with other folders is refused (it is neither)."""
    root = Path(root)
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    splits = [d for d in folders if d.name in SPLITS]
    if not splits:
        return None
    others = [d.name for d in folders if d.name not in SPLITS]
    if others or "train" not in {d.name for d in splits}:
        raise ValueError(f"data: {root} holds split folders {[d.name for d in splits]} "
                         f"{'beside other folders ' + str(others) if others else 'but no train/'}; "
                         "expected train/ with test/ (or val/), or class folders only")
    return {d.name: d for d in splits}


def list_samples(folder: str | os.PathLike, classes: list[str] | None = None
                 ) -> tuple[list[tuple[Path, int]], list[str]]:
    """(samples [(path, label)] in ImageFolder's sorted order, class names) of a folder of
    class folders. classes: the training split's names, which fix the labels (a class
    folder outside them is an error)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
    folder = Path(folder)
    found, _ = find_classes(str(folder))
    if classes is None:
        classes = found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ValueError(f"data: {folder} has class folders {unknown} that the training "
                         "split lacks; every test class must be a training class")
    index = {name: i for i, name in enumerate(classes)}
    samples = make_dataset(str(folder), {name: index[name] for name in found},
                           extensions=IMG_EXTENSIONS)
    return [(Path(p), label) for p, label in samples], list(classes)


def stem_collisions(samples: list[tuple[Path, int]], root: Path) -> list[list[str]]:
    """Groups of files that would be written to the same PNG name (same folder and stem,
    different extension: a.png and a.jpg)."""
    by_target: dict[Path, list[str]] = {}
    for path, _ in samples:
        rel = path.relative_to(root)
        by_target.setdefault(rel.with_suffix(""), []).append(str(rel))
    return [names for names in by_target.values() if len(names) > 1]
