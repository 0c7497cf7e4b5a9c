"""The `poisonkit` command (also `python -m poisonkit`)."""
from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    run_demo(args.out, args.data)
    return 0


def _poison(args: argparse.Namespace) -> int:
    from .poisons.export import poison_dataset
    out = poison_dataset(args.data, args.out, method=args.method, fmt=args.format, key=args.key,
                         eps=args.eps,
                         p=float(args.p), crop=args.crop, seed=args.seed,
                         coefficients=args.coefficients, batch_size=args.batch_size,
                         force=args.force)
    print(f"wrote {out} and {out.parent / 'manifest.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poisonkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="apply the poisons and defenses to real images and "
                                       "write a picture and a short report")
    demo.add_argument("--out", default="out/demo", help="output folder")
    demo.add_argument("--data", default=None,
                      help=".npz with x_train/y_train (default: $POISONKIT_DATA)")
    demo.set_defaults(func=_demo)
    poison = sub.add_parser("poison", help="write a poisoned copy of an .npz dataset (its "
                                           "training split) or an ImageFolder, with a manifest")
    poison.add_argument("--method", required=True, choices=("ar", "classwise-blur"))
    poison.add_argument("--data", required=True,
                        help="source .npz (x_train, y_train, ...) or ImageFolder directory")
    poison.add_argument("--format", default=None, choices=("npz", "png"),
                        help="output: npz (npz sources, the default) or a PNG ImageFolder")
    poison.add_argument("--out", required=True, help="output folder (not the source's)")
    poison.add_argument("--key", type=int, default=0, help="AR: the owner's secret key")
    poison.add_argument("--eps", type=float, default=1.0, help="AR: perturbation norm")
    poison.add_argument("--p", default="2", choices=("2", "inf"), help="AR: norm (2 or inf)")
    poison.add_argument("--crop", type=int, default=4, help="AR: rows/cols cropped")
    poison.add_argument("--seed", type=int, default=0,
                        help="coefficient (AR) or kernel (classwise-blur) seed")
    poison.add_argument("--coefficients", default=None, help="AR: saved coefficient set")
    poison.add_argument("--batch-size", type=int, default=1024)
    poison.add_argument("--force", action="store_true", help="replace an earlier poisoned copy")
    poison.set_defaults(func=_poison)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
