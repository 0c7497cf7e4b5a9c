"""The counterfactual check of "A simple and efficient baseline for data attribution on
images" on a CPU: for a sample of test images, remove the k training images an attribution
method ranks first, retrain the small CNN from the same seed, and count how often the
test image's prediction changes and how much the retrained model's probability of the
originally predicted class drops (a continuous measure: a flip needs the drop to cross the
runner-up, so it averages over fewer queries than the drop does). Methods: SimCLR features (trained here), the supervised
features of the model trained on the full subset, pixel-space nearest neighbours, k random
images. A method whose removals flip more predictions than random ones found images the
prediction rests on.

Resumable: one JSON per cell (query, seed, k, method) under OUT/cells/, plus the
backbones' checkpoints under --state (default out/, not committed); OUT.json, OUT.md and OUT.png are
rebuilt from whatever cells exist.

    OMP_NUM_THREADS=1 nice -n 10 python -m benchmarks.attribution_counterfactual
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from poisonkit._io import write_json, write_text
from poisonkit.attribution.backbones import pixel_backbone
from poisonkit.attribution.embed import embed
from poisonkit.attribution.knn import knn
from poisonkit.attribution.ssl import SimCLRConfig, train_simclr
from poisonkit.attribution.supervised import (class_probabilities, load_supervised, supervised_backbone,
                                              train_supervised)
from poisonkit.data import load_dataset
from poisonkit.eval.train import TrainConfig

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("simclr", "supervised", "pixels", "random")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn):
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, {"wall_s": time.perf_counter() - wall, "cpu_s": cpu_seconds() - cpu}


def train_config(args, seed: int) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, nesterov=True, seed=seed)


def retrain(data, keep: torch.Tensor, queries: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Class probabilities [N, K] on the queries of the small CNN trained on data.x_train[keep]."""
    net, _ = train_supervised(data.x_train[keep], data.y_train[keep], data.num_classes, config=config,
                              test=(queries, torch.zeros(len(queries), dtype=torch.int64)))
    return class_probabilities(net, queries)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "../shared/data/cifar10-10k.npz"))
    ap.add_argument("--train", type=int, default=1000, help="random training subset size")
    ap.add_argument("--queries", type=int, default=16, help="test images attributed")
    ap.add_argument("--k", type=int, nargs="+", default=[25, 100])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=4, help="epochs of every retrain")
    ap.add_argument("--batch-size", type=int, default=32, help="of every retrain (small: more steps)")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--ssl-epochs", type=int, default=15)
    ap.add_argument("--out", default=str(RESULTS / "attribution_counterfactual"))
    ap.add_argument("--state", default=str(RESULTS.parents[1] / "out" / "attribution-counterfactual"),
                    help="backbone checkpoints and timings (not committed)")
    ap.add_argument("--summary-only", action="store_true",
                    help="rebuild OUT.json / .md / .png from the cells done so far, run no new cell")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    state_dir = Path(args.state)
    state_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(args.data).subset(train=args.train, test=1000, seed=0)
    g = torch.Generator().manual_seed(1234)
    pick = torch.randperm(len(data.x_test), generator=g)[:args.queries]
    queries, query_labels = data.x_test[pick], data.y_test[pick]

    # Backbones and their rankings, timed (the checkpoints make a rerun skip the training).
    timing_path = state_dir / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    ssl_cfg = SimCLRConfig(epochs=args.ssl_epochs, batch_size=256)
    (ssl, ssl_state), t = timed(lambda: train_simclr(data.x_train, state_dir / "simclr.pt", ssl_cfg,
                                                      checkpoint_seconds=30))
    timing.setdefault("simclr_train", t)
    baselines = {}
    for seed in args.seeds:  # the full-subset model of each seed: its predictions are the reference
        path = state_dir / f"full_seed{seed}_e{args.epochs}_b{args.batch_size}_lr{args.lr}.pt"
        if path.exists():
            state = torch.load(path, weights_only=True)
        else:
            config = train_config(args, seed)
            (net, state), t = timed(lambda: train_supervised(
                data.x_train, data.y_train, data.num_classes, checkpoint=path, config=config,
                test=(data.x_test, data.y_test)))
            timing.setdefault("supervised_train", t)
        net, state = load_supervised(path)
        baselines[seed] = (net, state, class_probabilities(net, queries))
    backbones = {"simclr": ssl, "supervised": supervised_backbone(*baselines[args.seeds[0]][:2]),
                 "pixels": pixel_backbone(tuple(data.x_train.shape[1:]))}
    kmax = max(args.k)
    rankings, knn_accuracy = {}, {}
    for name, bb in backbones.items():
        (ranked), t = timed(lambda: knn(embed(bb, queries), embed(bb, data.x_train), kmax)[1])
        rankings[name] = ranked
        timing[f"{name}_rank"] = t
        # how semantic the feature space is: 10-NN majority vote on the 1,000 test images
        votes = data.y_train[knn(embed(bb, data.x_test), embed(bb, data.x_train), 10)[1]]
        knn_accuracy[name] = float((votes.mode(1).values == data.y_test).float().mean())
    write_json(timing_path, timing)

    # seed-major: a cut run holds every method and k for its first queries under seed 0
    for seed in [] if args.summary_only else args.seeds:
        for q in range(len(queries)):
            base_prob, base_pred = baselines[seed][2][q].max(0)
            base_prob, base_pred = float(base_prob), int(base_pred)
            for k in args.k:
                for method in METHODS:
                    cell = out / "cells" / f"q{q}_s{seed}_k{k}_{method}.json"
                    if cell.exists():
                        continue
                    if method == "random":
                        rg = torch.Generator().manual_seed(10_000 * seed + 100 * q + k)
                        removed = torch.randperm(len(data.x_train), generator=rg)[:k]
                    else:
                        removed = rankings[method][q, :k]
                    keep = torch.ones(len(data.x_train), dtype=torch.bool)
                    keep[removed] = False
                    prob, t = timed(lambda: retrain(data, keep, queries[q:q + 1], train_config(args, seed))[0])
                    pred = int(prob.argmax())
                    removed_same_class = float((data.y_train[removed] == query_labels[q]).float().mean())
                    write_json(cell, {"query": q, "test_index": int(pick[q]), "label": int(query_labels[q]),
                                      "seed": seed, "k": k, "method": method, "base_prediction": base_pred,
                                      "prediction": pred, "flipped": pred != base_pred,
                                      "base_probability": base_prob,
                                      "probability_after": float(prob[base_pred]),
                                      "removed_same_class": removed_same_class, **t})
                    print(f"q{q} seed {seed} k {k} {method}: {base_pred} -> {pred} ({t['wall_s']:.0f} s)",
                          flush=True)
    summarize(out, state_dir, args, ssl_state, baselines, data, knn_accuracy)


def summarize(out: Path, state_dir: Path, args, ssl_state: dict, baselines: dict, data,
              knn_accuracy: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    # cells of an older run (no probabilities recorded) cannot enter the drop column
    cells = [c for c in (json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json")))
             if "probability_after" in c]
    groups = {}
    for c in cells:  # a cut run: only (query, seed, k) groups measured for every method count
        groups.setdefault((c["query"], c["seed"], c["k"]), []).append(c)
    cells = [c for g in groups.values() if len(g) == len(METHODS) for c in g]
    timing = json.loads((state_dir / "timing.json").read_text())
    table = {}
    for c in cells:
        table.setdefault((c["method"], c["k"]), []).append(c)
    rows = []
    for (method, k), cs in sorted(table.items(), key=lambda x: (x[0][1], METHODS.index(x[0][0]))):
        drops = torch.tensor([c["base_probability"] - c["probability_after"] for c in cs])
        flips = sum(c["flipped"] for c in cs) / len(cs)
        rows.append({"method": method, "k": k, "cells": len(cs),
                     "flip_rate": flips, "flip_rate_se": (flips * (1 - flips) / len(cs)) ** 0.5,
                     "probability_drop": float(drops.mean()),
                     "probability_drop_se": float(drops.std() / len(cs) ** 0.5) if len(cs) > 1 else None,
                     "removed_same_class": sum(c["removed_same_class"] for c in cs) / len(cs)})
    seeds = sorted(baselines)
    base = {s: baselines[s][2].argmax(1).tolist() for s in seeds}
    seed_flips = (sum(a != b for a, b in zip(base[seeds[0]], base[seeds[1]])) / len(base[seeds[0]])
                  if len(seeds) > 1 else None)
    done = sorted({c["query"] for c in cells})
    result = {"data": data.source, "train_images": len(data.x_train), "queries_planned": args.queries,
              "queries_done": len(done),
              "k": args.k, "seeds": args.seeds, "retrain_epochs": args.epochs,
              "simclr": {"config": ssl_state["config"], "losses": ssl_state["losses"]},
              "full_model_test_accuracy": {s: baselines[s][1]["test_accuracy"][-1] for s in seeds},
              "seed_to_seed_disagreement": seed_flips, "knn10_test_accuracy": knn_accuracy, "timing": timing, "rows": rows, "cells": cells}
    write_json(out.with_suffix(".json"), result)
    lines = ["# Counterfactual check of attribution methods (CPU scale)", "",
             f"{data.source}; {len(data.x_train)} training images; {len(done)} random test images "
             f"(of {args.queries} planned); "
             f"small CNN retrained {args.epochs} epochs (batch {args.batch_size}, lr {args.lr}) without each query's top-k "
             f"training images, same seed as the reference model; seeds {args.seeds}.", "",
             "flip rate: predictions changed (± binomial standard error); drop: the retrained model's "
             "probability of the originally predicted class, full-data model minus retrained (± standard "
             "error over the cells).", "",
             "| k | method | flip rate | probability drop | cells | removed images of the query's class |",
             "|---|---|---|---|---|---|"]
    se = lambda v: "" if v is None else f" ± {v:.3f}"
    lines += [f"| {r['k']} | {r['method']} | {r['flip_rate']:.0%} ± {r['flip_rate_se']:.0%} | "
              f"{r['probability_drop']:+.3f}{se(r['probability_drop_se'])} | {r['cells']} | "
              f"{r['removed_same_class']:.0%} |" for r in rows]
    lines += ["", "Time per method (ranking = embedding the training set and the queries + top-k; "
              "wall and CPU seconds, one thread, machine shared with other jobs):", "",
              "| step | wall s | CPU s |", "|---|---|---|"]
    lines += [f"| {name} | {t['wall_s']:.1f} | {t['cpu_s']:.1f} |" for name, t in timing.items()]
    acc = ", ".join(f"seed {s}: {a:.1%}" for s, a in result["full_model_test_accuracy"].items())
    lines += ["", f"Reference models (full subset, {args.epochs} epochs) test accuracy: {acc}. "
              f"Seed-to-seed disagreement on the queries: "
              f"{'-' if seed_flips is None else f'{seed_flips:.0%}'}.",
              f"SimCLR: {ssl_state['config']['arch']}, {ssl_state['config']['epochs']} epochs on the "
              f"{len(data.x_train)} training images, NT-Xent loss {ssl_state['losses'][0]:.3f} -> "
              f"{ssl_state['losses'][-1]:.3f}.",
              "10-NN test accuracy of each feature space (1,000 test images, majority vote of the "
              "10 nearest training images; how semantic the neighbours are): "
              + ", ".join(f"{n} {a:.1%}" for n, a in knn_accuracy.items()) + ".", ""]
    write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key, label in ((axes[0], "flip_rate", "prediction flip rate"),
                           (axes[1], "probability_drop", "drop in p(original prediction)")):
        for method in METHODS:
            pts = sorted((r["k"], r[key], r.get(f"{key}_se") or 0.0) for r in rows
                         if r["method"] == method)
            if pts:
                ks, values, errors = zip(*pts)
                ax.errorbar(ks, values, yerr=errors, marker="o", capsize=3, label=method)
        ax.set_xlabel("k training images removed")
        ax.set_ylabel(label)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
