"""The `poisonkit` command (also `python -m poisonkit`)."""
from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    run_demo(args.out, args.data)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poisonkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="apply the poisons and defenses to real images and "
                                       "write a picture and a short report")
    demo.add_argument("--out", default="out/demo", help="output folder")
    demo.add_argument("--data", default=None,
                      help=".npz with x_train/y_train (default: $POISONKIT_DATA)")
    demo.set_defaults(func=_demo)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
