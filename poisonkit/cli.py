"""The `poisonkit` command (also `python -m poisonkit`)."""
from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    run_demo(args.out, args.data)
    return 0


def _bench(args: argparse.Namespace) -> int:
    try:
        from benchmarks.run_all import run
    except ImportError as err:
        raise SystemExit("bench: run from a poisonkit source checkout (the benchmarks/ "
                         f"folder is not installed): {err}")
    run(quick=args.quick, only=args.only.split(",") if args.only else None)
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
    bench = sub.add_parser("bench", help="benchmark every op against its peers; writes "
                                         "benchmarks/results/ and a leaderboard")
    bench.add_argument("--quick", action="store_true", help="shorter timings (a few minutes)")
    bench.add_argument("--only", default=None, help="comma-separated benchmark names")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
