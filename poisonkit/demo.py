"""`poisonkit demo`: poison and defend real images, write a picture and a short report.
(The evaluation matrix joins this when the harness lands.)"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from .data import data_path, load_npz, synthetic_images
from .transforms import ClasswiseBlur, RandomSharpen, Sharpen


def _images(data) -> tuple[torch.Tensor, torch.Tensor, str]:
    path = data_path(data)
    if path is not None and path.is_file():
        d = load_npz(path)
        return d["x_train"], d["y_train"], str(path)
    print("demo: no dataset found (--data or POISONKIT_DATA); using procedural images")
    x, y = synthetic_images(512)
    return x, y, "procedural images"


def run_demo(out: str, data: str | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    x, y, source = _images(data)
    blur = ClasswiseBlur(num_classes=int(y.max()) + 1)
    start = time.perf_counter()
    poisoned, _ = blur(x, y)
    rate = len(x) / (time.perf_counter() - start)
    sharpened = RandomSharpen(seed=0, padding="reflect")(poisoned)
    ssk = Sharpen(padding="reflect")(poisoned)

    # One example per class: clean, poisoned, RSK-sharpened poison, SSK-sharpened poison.
    picks = torch.stack([torch.nonzero(y == k)[0, 0] for k in range(int(y.max()) + 1)])
    rows = [x[picks], poisoned[picks], sharpened[picks], ssk[picks]]
    grid = make_grid(torch.cat(rows), nrow=len(picks), padding=2, pad_value=255)
    plt.figure(figsize=(len(picks), 4.4))
    plt.imshow(grid.permute(1, 2, 0).numpy())
    plt.axis("off")
    plt.title("rows: clean / class-wise blur poison / + RSK / + SSK")
    picture = out_dir / "filters.png"
    plt.savefig(picture, bbox_inches="tight", dpi=120)
    plt.close()
    report = out_dir / "README.md"
    report.write_text(f"# poisonkit demo\n\nImages: {source} ({len(x)} images).\n\n"
                      f"Class-wise blur poison: {rate:,.0f} images/s on this machine.\n\n"
                      f"![filters](filters.png)\n")
    print(f"class-wise blur poison on {len(x)} images: {rate:,.0f} images/s")
    print(f"wrote {picture} and {report}")
