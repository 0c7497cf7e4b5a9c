"""The `poisonkit` command (also `python -m poisonkit`)."""
from __future__ import annotations

import argparse
import itertools
import os
import sys


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _add_training_args(p: argparse.ArgumentParser, epochs: int) -> None:
    from .eval.models import MODELS
    p.add_argument("--model", default="small",
                   help=f"one of {sorted(MODELS)} (small: airbench-style CNN for CPUs; resnet18: "
                        "the papers' model) or your own 'package.module:factory', called as "
                        "factory(num_classes=..., in_channels=...)")
    p.add_argument("--epochs", type=_positive, default=epochs)
    p.add_argument("--data", default=None,
                   help="cifar10, cifar100, synthetic, an .npz or an ImageFolder folder "
                        "(default: $POISONKIT_DATA, else CIFAR-10, else procedural images)")
    p.add_argument("--out", default=None, help="output folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--train-subset", type=_positive, default=None, help="random training subset size")
    p.add_argument("--test-subset", type=_positive, default=None, help="random test subset size")
    p.add_argument("--resume", action="store_true",
                   help="reuse finished runs in OUT/runs whose settings match")


def _eval(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .eval.models import MODELS, NESTEROV, load_factory
    from .eval.run import check_conditions, check_run_options, init_distributed, run_matrix
    from .eval.train import TrainConfig
    from ._outputs import check_output_folder
    from .eval.conditions import parse_spec
    conditions = list(itertools.product(args.poison or ["none"], args.defense or ["none"]))
    check_conditions(conditions)  # fail on a bad name before loading data
    try:  # an unknown model or option fails before loading data too
        check_run_options(args.protocol, args.probe)
        if args.model not in MODELS:
            load_factory(args.model)
    except ValueError as e:
        print(f"poisonkit eval: error: {e}", file=sys.stderr)
        return 2
    specs = (args.poison or []) + (args.defense or [])
    inputs = [parse_spec(s)[2]["path"] for s in specs if "path" in parse_spec(s)[2]]
    if args.data and os.path.exists(args.data):
        inputs.append(args.data)
    out = check_output_folder(args.out or "out/eval", inputs, force=args.force, reuse=args.resume)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         nesterov=NESTEROV.get(args.model, False), seed=args.seed)
    init_distributed()
    data = load_dataset(args.data)
    if args.train_subset or args.test_subset:
        data = data.subset(args.train_subset, args.test_subset, seed=args.seed)
    run_matrix(conditions, data, out, model=args.model, config=config,
               device=args.device, workers=args.workers, resume=args.resume,
               protocol=args.protocol, probe=args.probe)
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from .eval.reproduce import reproduce
    reproduce(args.paper, args.scale, out=args.out, data=args.data, epochs=args.epochs,
              device=args.device, workers=args.workers, train_subset=args.train_subset,
              test_subset=args.test_subset, batch_size=args.batch_size)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    run_demo(args.out or "out/demo", args.data, epochs=args.epochs, model=args.model,
             device=args.device, workers=args.workers, resume=args.resume,
             train_subset=args.train_subset, test_subset=args.test_subset)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench.run_all import run
    try:
        run(args.out, quick=args.quick, only=args.only.split(",") if args.only else None)
    except ValueError as e:  # a bad --out / --only: a message, not a traceback
        print(f"poisonkit bench: error: {e}", file=sys.stderr)
        return 2
    return 0


def _fit_projection(args: argparse.Namespace) -> int:
    from ._labels import check_labels
    from ._outputs import check_output_file
    from .data import load_npz
    from .defenses.projection import fit
    out = check_output_file(args.out, inputs=[args.data], force=args.force)  # before the fit
    data = load_npz(args.data)
    x, y = data["x_train"], data["y_train"]
    num_classes = check_labels(y, None, args.num_classes)
    projection = fit((x, y), num_classes, epochs=args.epochs, lr=args.lr,
                     milestones=tuple(args.milestones), batch_size=args.batch_size,
                     device=args.device, seed=args.seed)
    projection.save(out)
    print(f"linear model training accuracy: {100 * projection.train_accuracy:.2f}% "
          f"({len(x)} images, {num_classes} classes; high means a linearly separable "
          f"shortcut, i.e. a class-wise poison)")
    print(f"wrote {args.out}: Q {tuple(projection.Q.shape)} for images {projection.image_shape}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .inspect import inspect_path, write_report
    try:
        report = inspect_path(args.data, seed=args.seed)
    except ValueError as e:  # bad data: a message, not a traceback
        print(f"poisonkit inspect: error: {e}", file=sys.stderr)
        return 2
    paths = write_report(report, args.out)
    print(paths["markdown"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 1 if report["flagged"] and args.fail_on_flag else 0


def _poison(args: argparse.Namespace) -> int:
    from .keys import parse_key
    from .poisons.export import default_key_file, poison_dataset
    options = {name: getattr(args, name)
               for name in ("eps", "p", "crop", "seed", "coefficients", "patch", "steps", "state")
               if getattr(args, name) is not None}
    out = poison_dataset(args.data, args.out, method=args.method, fmt=args.format,
                         key=None if args.key is None else parse_key(args.key),
                         key_file=args.key_file, num_classes=args.num_classes,
                         batch_size=args.batch_size, force=args.force, ratio=args.ratio,
                         **options)
    key_file = args.key_file or default_key_file(args.out)
    print(f"wrote {out} and {out.parent / 'manifest.json'} (publishable); key file {key_file} "
          "(private: keep it, do not publish it)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .attribution import cli as attribution_cli
    from .bench.common import DEFAULT_OUT
    from .demo import EPOCHS
    from .eval.conditions import DEFENSES, POISONS, UNAVAILABLE_DEFENSES, UNAVAILABLE_POISONS
    from .eval.protocols import PROTOCOLS
    from .eval.reproduce import PAPERS, SCALES
    from .poisons.export import METHODS as EXPORT_METHODS
    parser = argparse.ArgumentParser(prog="poisonkit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"poisonkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="train on poisoned / defended data, report peak and "
                                     "final clean test accuracy")
    ev.add_argument("--poison", action="append",
                    help=f"repeatable; one of {sorted(POISONS)} (awaiting their op: "
                         f"{sorted(UNAVAILABLE_POISONS)}); default none")
    ev.add_argument("--defense", action="append",
                    help=f"repeatable; one of {sorted(DEFENSES)} (awaiting their op: "
                         f"{sorted(UNAVAILABLE_DEFENSES)}), with parameters as name:value or "
                         "name:key=value,... (jpeg:10, pgd:eps=8,steps=10); default none")
    _add_training_args(ev, epochs=10)
    ev.add_argument("--batch-size", type=_positive, default=256)
    ev.add_argument("--lr", type=float, default=0.1)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--force", action="store_true",
                    help="write into a non-empty --out (its report files are replaced)")
    ev.add_argument("--probe", default=None, choices=("dfr",),
                    help="dfr: hold out a clean 10%% of the training set, then retrain only the "
                         "last linear layer on it and report its test accuracy (never the test set)")
    ev.add_argument("--protocol", default=None, choices=sorted(PROTOCOLS),
                    help="train every condition with this reference protocol (default: each "
                         "defense's own; see poisonkit.eval.protocols)")
    ev.set_defaults(func=_eval)

    rep = sub.add_parser("reproduce", help="run a seed paper's matrix with its protocol; table "
                                           "and PNG with the published number beside each measured one")
    rep.add_argument("paper", choices=sorted(PAPERS))
    rep.add_argument("--scale", default="cpu", choices=SCALES,
                     help="cpu: the shared 10k subset (or --data), small CNN; paper: full "
                          "CIFAR-10, ResNet-18, the paper's epochs (a GPU run)")
    rep.add_argument("--data", default=None, help="dataset (default: $POISONKIT_DATA / cifar10)")
    rep.add_argument("--out", default=None, help="output folder (default out/reproduce-PAPER-SCALE)")
    rep.add_argument("--epochs", type=_positive, default=None, help="override the scale's epochs")
    rep.add_argument("--device", default="auto")
    rep.add_argument("--workers", type=int, default=0)
    rep.add_argument("--batch-size", type=_positive, default=None, help="override the scale's batch size")
    rep.add_argument("--train-subset", type=_positive, default=None, help="random training subset size")
    rep.add_argument("--test-subset", type=_positive, default=None, help="random test subset size")
    rep.set_defaults(func=_reproduce)

    demo = sub.add_parser("demo", help="run the matrix of poisons and defenses, write a report")
    _add_training_args(demo, epochs=EPOCHS)
    demo.set_defaults(func=_demo)
    bench = sub.add_parser("bench", help="benchmark every op against its peers; writes "
                                         "results and a leaderboard to --out")
    bench.add_argument("--out", default=str(DEFAULT_OUT),
                       help=f"results folder (default ./{DEFAULT_OUT}; `make bench` names the "
                            "checkout's benchmarks/results)")
    bench.add_argument("--quick", action="store_true",
                       help="shorter timings (a few minutes); refuses a folder with full results")
    bench.add_argument("--only", default=None, help="comma-separated benchmark names")
    bench.set_defaults(func=_bench)
    proj = sub.add_parser("fit-projection", help="fit the orthogonal projection defense's "
                                                 "linear model on a (poisoned) .npz and save Q")
    proj.add_argument("--data", required=True, help=".npz with x_train/y_train")
    proj.add_argument("--out", required=True, help="output file (torch.save format, e.g. projection.pt)")
    proj.add_argument("--num-classes", type=_positive, default=None,
                      help="default: from the labels (which must then be 0..K-1)")
    proj.add_argument("--force", action="store_true", help="replace an existing --out file")
    proj.add_argument("--epochs", type=int, default=20)
    proj.add_argument("--lr", type=float, default=0.1)
    proj.add_argument("--milestones", type=int, nargs="*", default=[10, 15],
                      help="epochs after which the learning rate is multiplied by 0.1")
    proj.add_argument("--batch-size", type=int, default=1024)
    proj.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    proj.add_argument("--seed", type=int, default=0, help="initialisation and shuffle seed")
    proj.set_defaults(func=_fit_projection)
    poison = sub.add_parser("poison", help="write a poisoned copy of an .npz dataset (its "
                                           "training split) or an ImageFolder, with a manifest")
    poison.add_argument("--method", required=True, choices=sorted(EXPORT_METHODS))
    poison.add_argument("--data", required=True,
                        help="source .npz (x_train, y_train, ...) or ImageFolder directory "
                             "(class folders, or train/ and test/ or val/ folders of them)")
    poison.add_argument("--format", default=None, choices=("npz", "png"),
                        help="output: npz (npz sources, the default) or a PNG ImageFolder")
    poison.add_argument("--out", required=True, help="output folder (not the source's)")
    poison.add_argument("--key", default=None,
                        help="the owner's secret key (decimal or 0x-hex, < 2^128); default: "
                             "128 random bits. Written to the key file only")
    poison.add_argument("--key-file", default=None,
                        help="where to write the private key file (default: OUT.key.json "
                             "beside the output folder); never inside the published folder")
    poison.add_argument("--num-classes", type=_positive, default=None,
                        help="class count (default: from the data; labels must be 0..K-1)")
    poison.add_argument("--eps", type=float, default=None,
                        help="AR: perturbation norm (1.0); LSP: the L2 norm is eps * sqrt(C*H*W) "
                             "(6/255); em, em-class, tap: L-inf in 1/255 (8)")
    poison.add_argument("--patch", type=int, default=None, help="LSP: patch side (8; divides H, W)")
    poison.add_argument("--steps", type=int, default=None, help="em, tap: PGD steps")
    poison.add_argument("--state", default=None,
                        help="em, em-class, tap: private crafting checkpoint (resumable; it "
                             "holds the perturbation: keep it out of the published folder)")
    poison.add_argument("--p", default=None, choices=("2", "inf"), help="AR: norm (2 or inf)")
    poison.add_argument("--crop", type=int, default=None, help="AR: rows/cols cropped (4)")
    poison.add_argument("--seed", type=int, default=None,
                        help="coefficient (AR) or kernel (classwise-blur) seed; default: "
                             "derived from the key (seed 0 = the reference's public kernels)")
    poison.add_argument("--coefficients", default=None, help="AR: saved coefficient set")
    poison.add_argument("--ratio", type=float, default=1.0,
                        help="share of training samples poisoned, in [0, 1] (a key-derived "
                             "subset; the manifest lists the poisoned indices). Default 1")
    poison.add_argument("--batch-size", type=_positive, default=1024)
    poison.add_argument("--force", action="store_true",
                        help="replace an earlier poisoned copy and its key file")
    poison.set_defaults(func=_poison)
    insp = sub.add_parser("inspect", help="look for class-wise shortcuts (poisons) in a "
                                          "labelled dataset before training on it")
    insp.add_argument("--data", required=True,
                      help=".npz (x_train / y_train) or a folder of class folders (or with train/)")
    insp.add_argument("--out", default="out/inspect", help="output folder (default out/inspect)")
    insp.add_argument("--seed", type=int, default=0, help="linear model and label-shuffle seed")
    insp.add_argument("--fail-on-flag", action="store_true",
                      help="exit with status 1 when any signal is flagged (for scripts)")
    insp.set_defaults(func=_inspect)
    attribution_cli.add_parser(sub)  # `poisonkit attribute` (poisonkit/attribution/cli.py)
    from .editing.cli import add_commands as add_editing_commands
    add_editing_commands(sub)  # protect-edit, eval-editing
    return parser


def main(argv: list[str] | None = None) -> int:
    from ._staging import DestinationBusy
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, DestinationBusy) as e:  # bad input: a message, not a traceback
        print(f"poisonkit {args.command}: error: {e}", file=sys.stderr)
        return 2
