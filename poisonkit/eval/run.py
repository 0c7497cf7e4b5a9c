"""Runs conditions end to end: poison the stored training images once, defend them in the
loader, train, record clean test accuracy; then write per-run JSON, the matrix JSON, a
markdown report and the plots."""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import os
import re
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from .._io import write_json, write_text
from ..keys import key_id
from ..data import ImageDataset, PoisonedTensorDataset, apply_in_chunks, make_loader
from . import report
from .conditions import ConditionError, Context, check_spec, make_defense, make_poison
from .models import NESTEROV, build_model, model_name
from .probe import dfr_probe, dfr_split
from .protocols import get_protocol
from .train import TrainConfig, epochs_to, train

PROBES = ("dfr",)


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


# --resume compares this fingerprint of the data, not only its name and sizes.
CONTENT_HASH = ("sha256 over each split's shape and dtype, all labels and every k-th byte of "
                "the images (k = ceil(size / 2^22))")


def content_hash(data: ImageDataset) -> str:
    h = hashlib.sha256()
    for t in (data.x_train, data.y_train, data.x_test, data.y_test):
        flat = t.contiguous().view(-1)
        step = max(1, -(-flat.numel() // (1 << 22))) if t.dtype == torch.uint8 else 1
        h.update(f"{tuple(t.shape)} {t.dtype} {step};".encode())
        h.update(flat[::step].contiguous().numpy().tobytes())
    return h.hexdigest()


def _data_record(data: ImageDataset, digest: str) -> dict:
    return {"source": data.source, "train": len(data.x_train), "test": len(data.x_test),
            "num_classes": data.num_classes, "image_shape": list(data.image_shape),
            "content_sha256": digest, "content_hash": CONTENT_HASH}


def public_spec(kind: str, spec: str, salt: bytes) -> str:
    """The condition as outputs may show it: a `key` parameter (named or positional)
    becomes a short salted id (keys.key_id), so results.json, README.md, plots and run
    file names never hold a key."""
    factory, args, kwargs = check_spec(kind, spec)
    bound = inspect.signature(factory).bind(None, *args, **kwargs).arguments
    if "key" not in bound:
        return spec
    params = list(bound.items())[1:]
    name = spec.strip().partition(":")[0]
    return f"{name}:" + ",".join(f"{k}=#{key_id(v, salt)}" if k == "key" else f"{k}={v}"
                                 for k, v in params)


def _settings(data: ImageDataset, poison: str, defense: str, model, config: TrainConfig,
              workers: int, protocol: str | None = None, probe: str | None = None) -> dict:
    """What determines a run's result (and so whether a finished run can be reused); the
    conditions' keys appear only as ids salted with the data's content hash.
    protocol: the forced protocol ('auto': the defense's own)."""
    digest = content_hash(data)
    salt = bytes.fromhex(digest)
    return {"poison": public_spec("poison", poison, salt),
            "defense": public_spec("defense", defense, salt), "model": model_name(model),
            "epochs": config.epochs, "data": _data_record(data, digest),
            "config": {**asdict(config), "workers": workers},
            "protocol_override": protocol or "auto", "probe": probe or "none"}


def check_run_options(protocol: str | None, probe: str | None) -> None:
    if protocol is not None:
        get_protocol(protocol)
    if probe is not None and probe not in PROBES:
        raise ValueError(f"probe: expected one of {PROBES}, got {probe!r}")


def example_picks(labels: torch.Tensor, count: int = 10) -> torch.Tensor:
    """Index of the first training image of each of the first `count` classes."""
    classes = labels.unique()[:count]
    return torch.stack([torch.nonzero(labels == k)[0, 0] for k in classes])


def _built(kind: str, spec: str, make):
    """make() with a factory's own error (e.g. jpeg:200) reported as a ConditionError."""
    try:
        return make()
    except ConditionError:
        raise
    except (ValueError, TypeError) as e:
        raise ConditionError(f"{kind} {spec!r}: {e}") from e


def poison_images(data: ImageDataset, poison: str, seed: int = 0) -> torch.Tensor:
    """The training images with `poison` applied (the stored images for 'none')."""
    fn = _built("poison", poison, lambda: make_poison(  # crafted poisons (EM, TAP) need the set
        poison, Context(data.num_classes, data.image_shape, seed, data.x_train, data.y_train)))
    if fn is None:
        return data.x_train
    return apply_in_chunks(fn, data.x_train, data.y_train, desc=f"poison {poison}")


def run_condition(data: ImageDataset, poison: str, defense: str, model="small",
                  config: TrainConfig | None = None, device: str = "auto", workers: int = 0,
                  poisoned: torch.Tensor | None = None, verbose: bool = True,
                  protocol: str | None = None, probe: str | None = None) -> tuple[dict, dict]:
    """Trains one condition. Returns (result record, example images {'poisoned', 'defended'}
    for the first image of each class). poisoned: the training images already poisoned
    with `poison` (to share one poisoning between conditions). model: a name,
    'package.module:factory' or a factory. protocol: force a training protocol
    (protocols.PROTOCOLS) instead of the defense's own; its recipe overrides config.
    probe 'dfr': hold out a clean 10% of the training set, then report DFR accuracy."""
    config = config or TrainConfig(nesterov=NESTEROV.get(model, False) if isinstance(model, str) else False)
    settings = _settings(data, poison, defense, model, config, workers, protocol, probe)
    dev = resolve_device(device)
    check_conditions([(poison, defense)])
    check_run_options(protocol, probe)
    start = time.perf_counter()
    if poisoned is None:
        poisoned = poison_images(data, poison, config.seed)
    labels, picks = data.y_train, example_picks(data.y_train)
    examples_poisoned = poisoned[picks]
    if probe == "dfr":  # the held-out images are never trained on, poisoned or clean
        keep, held = dfr_split(len(poisoned), seed=config.seed)
        poisoned, labels = poisoned[keep], labels[keep]
    torch.manual_seed(config.seed)  # same initial weights and draws for every condition
    ctx = Context(data.num_classes, data.image_shape, config.seed, poisoned, labels)
    defense_obj = make_defense(defense, ctx)
    proto = get_protocol(protocol or defense_obj.protocol)
    config = replace(config, **dict(proto.recipe))
    dataset = PoisonedTensorDataset(poisoned, labels, transform=defense_obj)
    loader = make_loader(dataset, config.batch_size, shuffle=True, workers=workers,
                         pin_memory=dev.type == "cuda", seed=config.seed)
    net = build_model(model, data.num_classes, data.image_shape[0]).to(dev)
    test_transform = defense_obj if defense_obj.apply_to_test else None
    history = train(net, loader, data.x_test, data.y_test, config, dev,
                    adversary=defense_obj.adversary, test_transform=test_transform,
                    verbose=verbose and is_main_process(), desc=f"{settings['poison']} / {settings['defense']}",
                    protocol=proto)
    result = {
        "schema": report.SCHEMA, **settings, "effective_config": asdict(config),
        "device": str(dev), **defense_obj.info, "protocol": proto.name, "protocol_source": proto.source,
        **asdict(history), "peak_accuracy": history.peak_accuracy,
        "peak_epoch": history.peak_epoch, "final_accuracy": history.final_accuracy,
        "epochs_to_90": epochs_to(history.train_accuracy, 0.9),
        "epochs_to_99": epochs_to(history.train_accuracy, 0.99),
    }
    if probe == "dfr":
        prep = lambda x: proto.prep(x).contiguous(memory_format=torch.channels_last)
        result["probe_result"] = {
            **dfr_probe(net, data.x_train[held], data.y_train[held], data.x_test, data.y_test,
                        prep, test_transform),
            "split": f"a seeded random {len(held)} of the {len(data.x_train)} training images "
                     f"(seed {config.seed}), clean, removed from training; never the test set"}
    result["seconds"] = time.perf_counter() - start
    examples = {"poisoned": examples_poisoned, "defended": defense_obj(examples_poisoned)}
    return report.validate_result(result), examples


def check_defenses(conditions: list[tuple[str, str]], data: ImageDataset,
                   poisoned: dict[str, torch.Tensor], seed: int) -> None:
    """Builds every condition's defense once on a small slice of its poisoned training set
    (a projection fits in milliseconds there) and discards it, so a bad parameter fails
    before the first condition trains rather than after it."""
    n = min(64, len(data.x_train))
    for poison, defense in dict.fromkeys(conditions):
        ctx = Context(data.num_classes, data.image_shape, seed, poisoned[poison][:n],
                      data.y_train[:n])
        # silent: the trial fit's accuracy (stdout) and progress bar (stderr) describe 64
        # images, and read like the real fit's
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            _built("defense", defense, lambda: make_defense(defense, ctx))


def _reusable(path: Path, expected: dict) -> dict | None:
    """A finished run's record, if it exists, is well-formed and has the same settings."""
    try:
        old = report.validate_result(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
    return old if all(old[k] == v for k, v in expected.items()) else None


def run_matrix(conditions: list[tuple[str, str]], data: ImageDataset, out: str | os.PathLike,
               model="small", config: TrainConfig | None = None, device: str = "auto",
               workers: int = 0, resume: bool = False, title: str = "poisonkit evaluation",
               notes: list[str] | None = None, verbose: bool = True,
               protocol: str | None = None, probe: str | None = None) -> list[dict]:
    """Runs every (poison, defense) condition, writes out/runs/*.json as each finishes,
    then out/results.json, out/README.md, out/curves.png, out/examples.png and
    out/speed.png (peak accuracy vs epochs to 99% train accuracy)."""
    check_conditions(conditions)
    check_run_options(protocol, probe)
    config = config or TrainConfig(nesterov=NESTEROV.get(model, False) if isinstance(model, str) else False)
    out = Path(out)
    picks = example_picks(data.y_train)
    results, rows, poisoned_cache = [], [("clean", data.x_train[picks])], {}
    for poison, _ in conditions:  # every poison and defense built before any training
        if poison not in poisoned_cache:
            poisoned_cache[poison] = poison_images(data, poison, config.seed)
    check_defenses(conditions, data, poisoned_cache, config.seed)
    for poison, defense in conditions:
        settings = _settings(data, poison, defense, model, config, workers, protocol, probe)
        shown = settings["poison"]
        if poison != "none" and shown not in dict(rows):
            rows.append((shown, poisoned_cache[poison][picks]))
        path = out / "runs" / f"{_slug(shown, settings['defense'])}.json"
        old = _reusable(path, settings) if resume else None
        if old is not None:
            print(f"{shown} / {settings['defense']}: reusing {path}")
            result = old
            ctx = Context(data.num_classes, data.image_shape, config.seed, poisoned_cache[poison], data.y_train)
            examples = {"poisoned": poisoned_cache[poison][picks],
                        "defended": make_defense(defense, ctx)(poisoned_cache[poison][picks])}
        else:
            result, examples = run_condition(data, poison, defense, model, config, device, workers,
                                             poisoned=poisoned_cache[poison], verbose=verbose,
                                             protocol=protocol, probe=probe)
            if is_main_process():
                write_json(path, result)
        results.append(result)
        if defense != "none" and not torch.equal(examples["defended"], examples["poisoned"]):
            rows.append((f"{shown} + {settings['defense']}", examples["defended"]))
        if is_main_process():
            print(f"{shown} / {settings['defense']}: peak {result['peak_accuracy']:.1%} (epoch "
                  f"{result['peak_epoch']}), final {result['final_accuracy']:.1%}, "
                  f"{result['seconds']:.0f} s" + report.linear_note(result))
    if is_main_process():
        write_report(results, rows, out, title, data, notes or [])
    return results


def write_report(results: list[dict], rows: list, out: Path, title: str, data: ImageDataset,
                 notes: list[str]) -> None:
    table = report.markdown_table(results)
    write_json(out / "results.json", {"schema": report.MATRIX_SCHEMA, "runs": results,
                                             "notes": notes})
    report.plot_curves(results, out / "curves.png")
    report.plot_speed(results, out / "speed.png")
    report.plot_examples(rows, out / "examples.png")
    r0 = results[0]
    text = [f"# {title}", "",
            f"Data: {data.source}: {len(data.x_train)} training / {len(data.x_test)} test images, "
            f"{data.num_classes} classes. Model: {r0['model']}, {r0['epochs']} epochs, batch "
            f"{r0['config']['batch_size']}, SGD lr {r0['config']['lr']}, device {r0['device']} "
            f"(a protocol's recipe may override these: see each run's effective_config).",
            "", "Clean test accuracy after training on the (poisoned, defended) training set; "
            "peak over epochs (with its epoch) and final.", "", table, ""]
    text += [f"- {n}" for n in notes] + ([""] if notes else [])
    text += ["![accuracy per epoch](curves.png)", "",
             "Peak test accuracy vs epochs to 99% training accuracy and vs the last epoch's "
             "training loss ('poisons that are learned faster are more effective'):", "", "![peak vs speed](speed.png)", "",
             "Examples (first training image of each class):", "", "![examples](examples.png)", ""]
    write_text(out / "README.md", "\n".join(text))
    print("\n" + table + "\n")
    print(f"wrote {out / 'README.md'}, {out / 'results.json'}, curves.png, examples.png")
