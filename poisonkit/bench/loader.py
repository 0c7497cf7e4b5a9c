"""The full loader: decode -> poison -> defense -> augment -> collate, with DataLoader
workers, with and without poisonkit's ops, and with the reference's way of running the
same poison and defense. Images are stored PNG-encoded in memory, as on disk.
Run: python -m poisonkit.bench.loader"""
from __future__ import annotations

import io

import numpy as np
import PIL.Image
import scipy.fft
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from poisonkit.defenses.sharpen import rsk_kernels
from poisonkit.transforms import RSKFF, ClasswiseBlur

from . import filter2d_peers as peers
from .common import images_per_second, load_cifar, write_results

AUGMENT = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()])
BLUR = ClasswiseBlur(seed=0)
DEFENSE = RSKFF(restore_size=True)


def encode_png(x: torch.Tensor) -> list[bytes]:
    out = []
    for img in x.permute(0, 2, 3, 1).numpy():
        buf = io.BytesIO()
        PIL.Image.fromarray(img).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def decode(png: bytes) -> torch.Tensor:
    return TF.pil_to_tensor(PIL.Image.open(io.BytesIO(png)).convert("RGB"))


def reference_poison_and_defend(img: torch.Tensor, label: int) -> torch.Tensor:
    """The research scripts' way, one image at a time: conv2d class-wise blur with the max
    normalisation and numpy truncation, then random sharpening with conv2d and the DCT
    low-pass with scipy, reflect-padded back to 32x32."""
    poisoned = peers.classwise_reference_loop(img[None], torch.tensor([label]), BLUR.kernels)[0]
    x = torch.from_numpy(poisoned).permute(2, 0, 1).float().div_(255)[None]
    k = rsk_kernels(1)[0].expand(3, 1, 3, 3)
    x = F.conv2d(x, k, groups=3).clamp_(0, 1)[0].numpy()
    coeffs = scipy.fft.dctn(x, axes=(1, 2), norm="ortho")
    r = int(x.shape[1] * 0.3)
    mask = np.zeros_like(coeffs)
    mask[:, :r, :r] = 1
    x = np.clip(scipy.fft.idctn(coeffs * mask, axes=(1, 2), norm="ortho"), 0, 1)
    x = F.pad(torch.from_numpy(x)[None], (1, 1, 1, 1), mode="reflect")[0]
    return (x * 255 + 0.5).floor().to(torch.uint8)


class PngDataset(Dataset):
    def __init__(self, pngs: list[bytes], labels: torch.Tensor, mode: str):
        self.pngs, self.labels, self.mode = pngs, labels, mode

    def __len__(self) -> int:
        return len(self.pngs)

    def __getitem__(self, i: int):
        img, label = decode(self.pngs[i]), int(self.labels[i])
        if self.mode == "poisonkit":
            img = DEFENSE(BLUR(img, label)[0])
        elif self.mode == "reference":
            img = reference_poison_and_defend(img, label)
        return AUGMENT(img), label


def batch_collate_poisonkit(samples):
    """Poison and defend the collated batch in one op call each (per-batch transforms)."""
    images = torch.stack([s[0] for s in samples])
    labels = torch.tensor([s[1] for s in samples])
    return AUGMENT(DEFENSE(BLUR(images, labels)[0])), labels


def epoch_rate(dataset: Dataset, batch: int, workers: int, collate=None) -> float:
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=collate,
                        persistent_workers=workers > 0, shuffle=True)
    return images_per_second(lambda: sum(len(b[1]) for b in loader), len(dataset),
                             min_time=0.0, repeats=2)


def main(quick: bool = False) -> None:
    torch.set_num_threads(1)  # DataLoader workers run one thread each
    n = 1024 if quick else 4096
    x, y = load_cifar(n)
    pngs = encode_png(x)
    workers, batch = 2, 256
    case = f"decode PNG + poison + RSK+FF + crop/flip, {workers} workers"
    rows = []
    for mode, impl in [("poisonkit", "poisonkit (per sample, in workers)"),
                       ("reference", "reference ops (per sample, in workers)")]:
        rate = epoch_rate(PngDataset(pngs, y, mode), batch, workers)
        rows.append({"case": case, "impl": impl, "images_per_s": round(rate)})
        print(f"{impl:48s} {rate:10,.0f} images/s", flush=True)
    plain = PngDataset(pngs, y, "none")
    rate = epoch_rate(plain, batch, workers, collate=batch_collate_poisonkit)
    rows.append({"case": case, "impl": "poisonkit (per batch, in collate)", "images_per_s": round(rate)})
    base = epoch_rate(plain, batch, workers)
    rows.append({"case": "decode PNG + crop/flip only (no poison, no defense)",
                 "impl": "torchvision baseline", "images_per_s": round(base)})
    for r in rows[:3]:
        r["share_of_baseline"] = round(r["images_per_s"] / base, 3)
    write_results("loader", rows, "Full loader: decode, poison, defend, augment, collate",
                  notes=f"{n} CIFAR-10 images stored as PNG bytes; DataLoader with {workers} "
                        f"workers, batch {batch}. The baseline row is the same loader without "
                        "poison and defense: the ceiling set by decoding and augmentation.")


if __name__ == "__main__":
    main()
