"""`poisonkit attribute`: which training images does each query rest on? Every argument
(backbone weights, query images and their size, k, the output folder) is checked before a
backbone trains or an embedding is computed; the report folder is written under a staging
name and renamed into place (poisonkit._staging)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

BACKBONES = ("pixels", "simclr:CHECKPOINT", "supervised:CHECKPOINT", "torchvision:ARCH:WEIGHTS",
             "timm:ARCH:WEIGHTS")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "poisonkit" / "embeddings"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("attribute", help="find the training images each query's prediction rests on "
                                         "(nearest neighbours in a backbone's feature space)")
    p.add_argument("--data", required=True, help="training set: .npz, ImageFolder with train/, cifar10, ...")
    p.add_argument("--backbone", required=True,
                   help=f"one of {', '.join(BACKBONES)}. simclr / supervised: a checkpoint of "
                        "poisonkit.attribution, trained on --data (resumably) when the file does not "
                        "exist yet; torchvision / timm: a state dict on local disk (no downloads)")
    p.add_argument("--query", required=True,
                   help="test:SEL or train:SEL (SEL: all, 3, 0-9 or 1,5,8: images of --data), or an "
                        "image file or a folder of image files")
    p.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    p.add_argument("--out", required=True, help="report folder (report.json, report.md, neighbours.png)")
    p.add_argument("--force", action="store_true", help="replace an existing report folder")
    p.add_argument("--poison", default=None,
                   help="poison the training set in memory first with an eval condition (e.g. "
                        "'blur:ratio=0.3'); the report gives the poisoned share of the neighbours")
    p.add_argument("--restrict", choices=("none", "predicted"), default="none",
                   help="predicted: only training images of the class the classifier predicts")
    p.add_argument("--classifier", default=None,
                   help="supervised checkpoint giving the predicted class (default: the backbone, "
                        "when it is supervised:)")
    p.add_argument("--method", choices=("exact", "faiss"), default="exact",
                   help="exact: chunked matmul + top-k in torch; faiss: IndexFlatIP")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help="embedding cache folder ('none': no cache)")
    p.add_argument("--epochs", type=_positive, default=10, help="epochs when training a supervised backbone")
    p.add_argument("--ssl-epochs", type=_positive, default=50, help="epochs when training a SimCLR backbone")
    p.add_argument("--ssl-arch", choices=("small", "resnet18"), default="small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _selection(text: str, n: int) -> torch.Tensor:
    try:
        if text == "all":
            idx = list(range(n))
        elif "-" in text:
            a, b = (int(v) for v in text.split("-"))
            idx = list(range(a, b + 1))
        else:
            idx = [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"query: cannot parse the selection {text!r}; expected all, 3, 0-9 or 1,5,8") from None
    if not idx or min(idx) < 0 or max(idx) >= n:
        raise ValueError(f"query: selection {text!r} is empty or outside 0..{n - 1}")
    return torch.tensor(idx)


def load_queries(spec: str, data) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(uint8 NCHW images, labels or None) named by --query."""
    split, sep, sel = spec.partition(":")
    if sep and split in ("test", "train") and not os.path.exists(spec):
        x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
        idx = _selection(sel, len(x))
        return x[idx], y[idx]
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.v2.functional import pil_to_tensor
    path = Path(spec)
    files = sorted(f for f in path.iterdir() if f.is_file()) if path.is_dir() else [path]
    if not path.exists() or not files:
        raise ValueError(f"query: {spec} is neither test:SEL / train:SEL nor an image file or a "
                         "non-empty folder of images")
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                images.append(pil_to_tensor(im.convert("RGB")))
        except (OSError, UnidentifiedImageError) as e:
            raise ValueError(f"query: cannot read image {f} ({e})") from None
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        raise ValueError(f"query: images differ in size ({sorted(shapes)}); resize them to one size")
    return torch.stack(images), None


class BackboneSpec:
    """--backbone parsed; files that exist are read at once (an unreadable one fails here)."""

    def __init__(self, spec: str):
        from .backbones import pretrained_backbone
        kind, _, rest = spec.partition(":")
        self.kind, self.path, self.backbone, self.classifier = kind, None, None, None
        if kind == "pixels" and not rest:
            return
        if kind in ("simclr", "supervised") and rest:
            self.path = Path(rest)
            if self.path.exists():
                self._load()
            return
        if kind in ("torchvision", "timm") and rest.count(":") >= 1:
            arch, _, weights = rest.partition(":")
            self.path = Path(weights)
            self.backbone = pretrained_backbone(kind, arch, weights)
            return
        raise ValueError(f"backbone: expected one of {', '.join(BACKBONES)}, got {spec!r}")

    def _load(self) -> None:
        from .ssl import load_simclr
        from .supervised import load_supervised, supervised_backbone
        if self.kind == "simclr":
            self.backbone = load_simclr(self.path)[0]
        else:
            self.classifier, state = load_supervised(self.path)
            self.backbone = supervised_backbone(self.classifier, state)

    def build(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int, args) -> None:
        """Trains the missing simclr / supervised checkpoint on the training images."""
        from .backbones import pixel_backbone
        if self.kind == "pixels":
            self.backbone = pixel_backbone(tuple(images.shape[1:]))
        elif self.backbone is None and self.kind == "simclr":
            from .ssl import SimCLRConfig, train_simclr
            train_simclr(images, self.path, SimCLRConfig(arch=args.ssl_arch, epochs=args.ssl_epochs,
                                                         seed=args.seed), device=args.device)
            self._load()
        elif self.backbone is None:
            from ..eval.models import NESTEROV
            from ..eval.train import TrainConfig
            from .supervised import train_supervised
            train_supervised(images, labels, num_classes, self.path, config=TrainConfig(
                epochs=args.epochs, nesterov=NESTEROV["small"], seed=args.seed), device=args.device,
                verbose=True)
            self._load()


def run(args: argparse.Namespace) -> int:
    from .._outputs import check_inputs_apart, check_output_folder
    from ..eval.conditions import check_spec
    from .._staging import Staging
    from ..data import load_dataset
    from . import report
    from .attribute import attribute
    from .knn import check_args
    from .supervised import load_supervised, predict
    try:  # the PNG grid is drawn at the end: a missing plotting library fails first
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError("out: the report's PNG grid needs matplotlib (pip install 'poisonkit[eval]')") from None
    backbone = BackboneSpec(args.backbone)              # unreadable weights fail here
    if args.poison is not None:
        check_spec("poison", args.poison)
    classifier, classifier_shape = None, None
    if args.classifier is not None:
        classifier, state = load_supervised(args.classifier)
        classifier_shape = tuple(state["image_shape"])
    if args.restrict == "predicted" and classifier is None and backbone.kind != "supervised":
        raise ValueError("restrict: 'predicted' needs --classifier (a supervised checkpoint) "
                         "or a supervised: backbone")
    data = load_dataset(args.data, download=False)
    queries, query_labels = load_queries(args.query, data)
    if tuple(queries.shape[1:]) != tuple(data.x_train.shape[1:]):
        raise ValueError(f"query: images of shape {tuple(queries.shape[1:])} differ from the training "
                         f"images' {tuple(data.x_train.shape[1:])} (CxHxW)")
    if backbone.backbone is not None:
        backbone.backbone.check_shape(data.x_train.shape, "data")
        backbone.backbone.check_shape(queries.shape, "query")
    if classifier_shape is not None and classifier_shape != tuple(data.x_train.shape[1:]):
        raise ValueError(f"classifier: trained on images of shape {classifier_shape}, the data's are "
                         f"{tuple(data.x_train.shape[1:])}")
    check_args(len(queries), len(data.x_train), args.k, None, None)
    inputs = [p for p in (args.data, backbone.path if backbone.backbone is not None else None,
                          args.classifier, args.query) if p is not None and os.path.exists(p)]
    out = check_output_folder(args.out, inputs, force=args.force)
    if backbone.path is not None and not backbone.path.exists():   # to be trained: not into --out
        check_inputs_apart(out, [backbone.path], what="backbone")
    train_images, poisoned = data.x_train, None
    if args.poison is not None:
        from ..eval.run import poison_images
        train_images = poison_images(data, args.poison, args.seed)
        poisoned = (train_images != data.x_train).flatten(1).any(1)
    backbone.build(train_images, data.y_train, data.num_classes, args)
    classifier = classifier if classifier is not None else backbone.classifier
    classes = predict(classifier, queries) if args.restrict == "predicted" else None
    result = attribute(backbone.backbone, train_images, queries, args.k,
                       train_labels=None if classes is None else data.y_train, query_classes=classes,
                       method=args.method, cache_dir=None if args.cache == "none" else args.cache,
                       device=args.device, verbose=True)
    meta = {"data": data.source, "train_images": len(train_images), "query": args.query,
            "poison": args.poison, "method": args.method, "restrict": args.restrict}
    built = report.build(result, data.y_train, query_labels, poisoned, meta)
    with Staging(out) as stage:
        report.write(stage.path, built, queries, train_images, result, poisoned)
        stage.publish()
    print(report.markdown(built))
    print(f"wrote {out}/report.json, report.md, neighbours.png")
    return 0
