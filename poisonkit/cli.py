"""The `poisonkit` command (also `python -m poisonkit`)."""
from __future__ import annotations

import argparse
import itertools
import sys


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _add_training_args(p: argparse.ArgumentParser, epochs: int) -> None:
    from .eval.models import MODELS
    p.add_argument("--model", default="small", choices=sorted(MODELS),
                   help="small: airbench-style CNN for CPUs; resnet18: the papers' model")
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
    from .eval.models import NESTEROV
    from .eval.run import check_conditions, init_distributed, run_matrix
    from .eval.train import TrainConfig
    conditions = list(itertools.product(args.poison or ["none"], args.defense or ["none"]))
    check_conditions(conditions)  # fail on a bad name before loading data
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         nesterov=NESTEROV[args.model], seed=args.seed)
    init_distributed()
    data = load_dataset(args.data)
    if args.train_subset or args.test_subset:
        data = data.subset(args.train_subset, args.test_subset, seed=args.seed)
    run_matrix(conditions, data, args.out or "out/eval", model=args.model, config=config,
               device=args.device, workers=args.workers, resume=args.resume)
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
    from .data import load_npz
    from .defenses.projection import fit
    data = load_npz(args.data)
    x, y = data["x_train"], data["y_train"]
    num_classes = args.num_classes if args.num_classes is not None else int(y.max()) + 1
    projection = fit((x, y), num_classes, epochs=args.epochs, lr=args.lr,
                     milestones=tuple(args.milestones), batch_size=args.batch_size,
                     device=args.device, seed=args.seed)
    projection.save(args.out)
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
    from .poisons.export import poison_dataset
    out = poison_dataset(args.data, args.out, method=args.method, fmt=args.format, key=args.key,
                         eps=args.eps,
                         p=float(args.p), crop=args.crop, seed=args.seed,
                         coefficients=args.coefficients, batch_size=args.batch_size,
                         force=args.force, options=args.options)
    print(f"wrote {out} and {out.parent / 'manifest.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .bench.common import DEFAULT_OUT
    from .demo import EPOCHS
    from .eval.conditions import DEFENSES, POISONS, UNAVAILABLE_DEFENSES, UNAVAILABLE_POISONS
    from .poisons.export import METHODS
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
    ev.set_defaults(func=_eval)

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
    proj.add_argument("--num-classes", type=int, default=None, help="default: max label + 1")
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
    poison.add_argument("--method", required=True, choices=METHODS)
    poison.add_argument("--data", required=True,
                        help="source .npz (x_train, y_train, ...) or ImageFolder directory")
    poison.add_argument("--format", default=None, choices=("npz", "png"),
                        help="output: npz (npz sources, the default) or a PNG ImageFolder")
    poison.add_argument("--out", required=True, help="output folder (not the source's)")
    poison.add_argument("--key", type=int, default=0, help="AR, em, tap: the owner's secret key")
    poison.add_argument("--options", default="",
                        help="em, em-class, tap: parameters as in eval (steps=5,model=small,"
                             "state=PRIVATE/em.pt: a resumable checkpoint that holds the secret "
                             "perturbation; keep it out of the published folder)")
    poison.add_argument("--eps", type=float, default=1.0, help="AR: perturbation norm")
    poison.add_argument("--p", default="2", choices=("2", "inf"), help="AR: norm (2 or inf)")
    poison.add_argument("--crop", type=int, default=4, help="AR: rows/cols cropped")
    poison.add_argument("--seed", type=int, default=0,
                        help="coefficient (AR) or kernel (classwise-blur) seed")
    poison.add_argument("--coefficients", default=None, help="AR: saved coefficient set")
    poison.add_argument("--batch-size", type=int, default=1024)
    poison.add_argument("--force", action="store_true", help="replace an earlier poisoned copy")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    from .eval.conditions import ConditionError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConditionError, FileNotFoundError) as e:
        print(f"poisonkit {args.command}: error: {e}", file=sys.stderr)
        return 2
