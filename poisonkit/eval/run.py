"""Runs conditions end to end: poison the stored training images once, defend them in the
loader, train, record clean test accuracy; then write per-run JSON, the matrix JSON, a
markdown report and the plots."""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict
from pathlib import Path

import torch

from .._io import write_json, write_text
from ..data import ImageDataset, PoisonedTensorDataset, apply_in_chunks, make_loader
from . import report
from .conditions import Context, check_spec, make_defense, make_poison
from .models import NESTEROV, build_model
from .train import TrainConfig, train


def resolve_device(name: str = "auto") -> torch.device:
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' requested but no CUDA device is available")
    return device


def init_distributed() -> bool:
    """Joins the process group when launched by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or torch.distributed.is_initialized():
        return torch.distributed.is_initialized()
    torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return True


def is_main_process() -> bool:
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def check_conditions(conditions: list[tuple[str, str]]) -> None:
    """Raises before any work if a name is unknown or unavailable or its parameters do
    not fit its factory."""
    for poison, defense in conditions:
        check_spec("poison", poison)
        check_spec("defense", defense)


def _slug(poison: str, defense: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "-", f"{poison}__{defense}")


def _data_record(data: ImageDataset) -> dict:
    return {"source": data.source, "train": len(data.x_train), "test": len(data.x_test),
            "num_classes": data.num_classes, "image_shape": list(data.image_shape)}


def _settings(data: ImageDataset, poison: str, defense: str, model: str, config: TrainConfig,
              workers: int) -> dict:
    """What determines a run's result (and so whether a finished run can be reused)."""
    return {"poison": poison, "defense": defense, "model": model, "epochs": config.epochs,
            "data": _data_record(data), "config": {**asdict(config), "workers": workers}}


def example_picks(labels: torch.Tensor, count: int = 10) -> torch.Tensor:
    """Index of the first training image of each of the first `count` classes."""
    classes = labels.unique()[:count]
    return torch.stack([torch.nonzero(labels == k)[0, 0] for k in classes])


def poison_images(data: ImageDataset, poison: str, seed: int = 0) -> torch.Tensor:
    """The training images with `poison` applied (the stored images for 'none')."""
    fn = make_poison(poison, Context(data.num_classes, data.image_shape, seed, data.x_train,
                                     data.y_train))  # crafted poisons (EM, TAP) need the set
    if fn is None:
        return data.x_train
    return apply_in_chunks(fn, data.x_train, data.y_train, desc=f"poison {poison}")


def run_condition(data: ImageDataset, poison: str, defense: str, model: str = "small",
                  config: TrainConfig | None = None, device: str = "auto", workers: int = 0,
                  poisoned: torch.Tensor | None = None, verbose: bool = True) -> tuple[dict, dict]:
    """Trains one condition. Returns (result record, example images {'poisoned', 'defended'}
    for the first image of each class). poisoned: the training images already poisoned
    with `poison` (to share one poisoning between conditions)."""
    config = config or TrainConfig(nesterov=NESTEROV.get(model, False))
    dev = resolve_device(device)
    check_conditions([(poison, defense)])
    start = time.perf_counter()
    if poisoned is None:
        poisoned = poison_images(data, poison, config.seed)
    torch.manual_seed(config.seed)  # same initial weights and draws for every condition
    ctx = Context(data.num_classes, data.image_shape, config.seed, poisoned, data.y_train)
    defense_obj = make_defense(defense, ctx)
    dataset = PoisonedTensorDataset(poisoned, data.y_train, transform=defense_obj)
    loader = make_loader(dataset, config.batch_size, shuffle=True, workers=workers,
                         pin_memory=dev.type == "cuda", seed=config.seed)
    net = build_model(model, data.num_classes, data.image_shape[0]).to(dev)
    history = train(net, loader, data.x_test, data.y_test, config, dev,
                    adversary=defense_obj.adversary,
                    test_transform=defense_obj if defense_obj.apply_to_test else None,
                    verbose=verbose and is_main_process(), desc=f"{poison} / {defense}")
    result = {
        "schema": report.SCHEMA, **_settings(data, poison, defense, model, config, workers),
        **defense_obj.info,
        "device": str(dev),
        **asdict(history), "peak_accuracy": history.peak_accuracy,
        "peak_epoch": history.peak_epoch, "final_accuracy": history.final_accuracy,
        "seconds": time.perf_counter() - start,
    }
    picks = example_picks(data.y_train)
    examples = {"poisoned": poisoned[picks], "defended": defense_obj(poisoned[picks])}
    return report.validate_result(result), examples


def _reusable(path: Path, expected: dict) -> dict | None:
    """A finished run's record, if it exists, is well-formed and has the same settings."""
    try:
        old = report.validate_result(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
    return old if all(old[k] == v for k, v in expected.items()) else None


def run_matrix(conditions: list[tuple[str, str]], data: ImageDataset, out: str | os.PathLike,
               model: str = "small", config: TrainConfig | None = None, device: str = "auto",
               workers: int = 0, resume: bool = False, title: str = "poisonkit evaluation",
               notes: list[str] | None = None, verbose: bool = True) -> list[dict]:
    """Runs every (poison, defense) condition, writes out/runs/*.json as each finishes,
    then out/results.json, out/README.md, out/curves.png and out/examples.png."""
    check_conditions(conditions)
    config = config or TrainConfig(nesterov=NESTEROV.get(model, False))
    out = Path(out)
    picks = example_picks(data.y_train)
    results, rows, poisoned_cache = [], [("clean", data.x_train[picks])], {}
    for poison, defense in conditions:
        path = out / "runs" / f"{_slug(poison, defense)}.json"
        if poison not in poisoned_cache:
            poisoned_cache[poison] = poison_images(data, poison, config.seed)
            if poison != "none":
                rows.append((poison, poisoned_cache[poison][picks]))
        settings = _settings(data, poison, defense, model, config, workers)
        old = _reusable(path, settings) if resume else None
        if old is not None:
            print(f"{poison} / {defense}: reusing {path}")
            result = old
            ctx = Context(data.num_classes, data.image_shape, config.seed, poisoned_cache[poison], data.y_train)
            examples = {"poisoned": poisoned_cache[poison][picks],
                        "defended": make_defense(defense, ctx)(poisoned_cache[poison][picks])}
        else:
            result, examples = run_condition(data, poison, defense, model, config, device, workers,
                                             poisoned=poisoned_cache[poison], verbose=verbose)
            if is_main_process():
                write_json(path, result)
        results.append(result)
        if defense != "none" and not torch.equal(examples["defended"], examples["poisoned"]):
            rows.append((f"{poison} + {defense}", examples["defended"]))
        print(f"{poison} / {defense}: peak {result['peak_accuracy']:.1%} (epoch "
              f"{result['peak_epoch']}), final {result['final_accuracy']:.1%}, {result['seconds']:.0f} s"
              + report.linear_note(result))
    if is_main_process():
        write_report(results, rows, out, title, data, notes or [])
    return results


def write_report(results: list[dict], rows: list, out: Path, title: str, data: ImageDataset,
                 notes: list[str]) -> None:
    table = report.markdown_table(results)
    write_json(out / "results.json", {"schema": report.MATRIX_SCHEMA, "runs": results,
                                             "notes": notes})
    report.plot_curves(results, out / "curves.png")
    report.plot_examples(rows, out / "examples.png")
    r0 = results[0]
    text = [f"# {title}", "",
            f"Data: {data.source}: {len(data.x_train)} training / {len(data.x_test)} test images, "
            f"{data.num_classes} classes. Model: {r0['model']}, {r0['epochs']} epochs, batch "
            f"{r0['config']['batch_size']}, SGD lr {r0['config']['lr']}, device {r0['device']}.",
            "", "Clean test accuracy after training on the (poisoned, defended) training set; "
            "peak over epochs (with its epoch) and final.", "", table, ""]
    text += [f"- {n}" for n in notes] + ([""] if notes else [])
    text += ["![accuracy per epoch](curves.png)", "",
             "Examples (first training image of each class):", "", "![examples](examples.png)", ""]
    write_text(out / "README.md", "\n".join(text))
    print("\n" + table + "\n")
    print(f"wrote {out / 'README.md'}, {out / 'results.json'}, curves.png, examples.png")
