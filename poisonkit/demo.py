"""`poisonkit demo`: the project's main job. Trains the small CNN on clean data, on each
poison alone and with the defenses that apply, prints the table and writes a markdown
report with plots (accuracy curves, example images) to a folder.

Conditions whose ops are not in this build are skipped with a note, so the demo runs at
every stage of the project; they join the matrix when their op registers.
"""
from __future__ import annotations

import time

from .data import load_dataset
from .eval.conditions import ConditionUnavailable
from .eval.models import NESTEROV
from .eval.run import check_conditions, run_matrix
from .eval.train import TrainConfig

# (poison, defense): the story of the seed papers (DESIGN §4). Sharpening alone (rsk) is
# the ablation of RSK+FF; other pairs run through `poisonkit eval`.
MATRIX = [
    ("none", "none"),
    ("blur", "none"), ("blur", "rsk"), ("blur", "rsk+ff"),
    ("ar", "none"), ("ar", "projection"), ("ar", "jpeg:10"), ("ar", "grayscale"),
]
# Budget: the whole demo under 15 minutes on 2 free CPU cores with the 10k CIFAR-10
# subset. One small-CNN epoch there (40 steps of 256 + the 2000-image test pass) costs
# about 15 CPU-seconds on one core, about 9-10 s on two: 8 conditions x 10 epochs is about
# 13 minutes. Lower EPOCHS if conditions are added.
EPOCHS = 10


def available_matrix() -> tuple[list[tuple[str, str]], list[str]]:
    """The conditions whose ops are in this build, and a note for each one skipped."""
    kept, notes = [], []
    for cond in MATRIX:
        try:
            check_conditions([cond])
            kept.append(cond)
        except ConditionUnavailable as e:
            notes.append(f"skipped {cond[0]} / {cond[1]}: {e}")
    return kept, notes


def run_demo(out: str, data: str | None = None, epochs: int = EPOCHS, model: str = "small",
             device: str = "auto", workers: int = 0, resume: bool = False,
             train_subset: int | None = None, test_subset: int | None = None) -> list[dict]:
    dataset = load_dataset(data)
    if train_subset is not None or test_subset is not None:
        dataset = dataset.subset(train_subset, test_subset)
    conditions, notes = available_matrix()
    for n in notes:
        print(n)
    config = TrainConfig(epochs=epochs, nesterov=NESTEROV.get(model, False))
    start = time.perf_counter()
    results = run_matrix(conditions, dataset, out, model=model, config=config, device=device,
                         workers=workers, resume=resume, title="poisonkit demo: poisons vs defenses",
                         notes=notes)
    print(f"demo: {len(results)} conditions in {time.perf_counter() - start:.0f} s")
    return results
