"""An ImageNet-style JPEG loader: decode 224x224 JPEG files -> class-wise blur poison ->
RSK+FF -> random crop 192 + flip -> normalize, through (a) a torch DataLoader with workers
and (b) a DALI CPU pipeline (fn.readers.file + fn.decoders.image + fn.poisonkit.*), each
against its bare loader (decode + crop/flip + normalize only) and against the reference's
ops (conv2d class-wise blur, conv2d RSK, scipy DCT; per sample). Reported as % of the
bare loader's throughput.

The JPEGs are real CIFAR-10 training images upscaled bilinearly to 224x224 and saved at
quality 90 in one folder per class (ImageNet's layout), made in a temporary folder at
each run: upscaled 32x32 content, not ImageNet photos (decoding cost is that of a 224x224
JPEG; the content is smoother than a photo's). All variants are interleaved round by
round in the same run, best of the rounds, since the machine is shared.
Run: poisonkit bench --only jpeg_loader"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .common import images_per_second, load_cifar, write_results
from .loader import BLUR, DEFENSE, reference_poison_and_defend
from .lowpass import resized

SIZE, CROP, WORKERS, BATCH = 224, 192, 2, 64
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
AUGMENT = v2.Compose([v2.RandomCrop(CROP), v2.RandomHorizontalFlip(),
                      v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
MODES = ("bare", "poisonkit", "reference")


def write_jpeg_folder(root: Path, n: int) -> None:
    """n CIFAR-10 training images upscaled to SIZE x SIZE as root/class_<k>/<i>.jpg."""
    x, y = load_cifar(n)
    big = resized(x, SIZE).permute(0, 2, 3, 1).numpy()
    for i, (img, label) in enumerate(zip(big, y.tolist())):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(img).save(folder / f"{i:05d}.jpg", quality=90)


def poison_and_defend(img: torch.Tensor, label: int, mode: str) -> torch.Tensor:
    """uint8 CHW -> uint8 CHW: the poison and RSK+FF (reflect-padded back to the input
    size) with poisonkit's transforms or the reference's ops; unchanged for 'bare'."""
    if mode == "poisonkit":
        return DEFENSE(BLUR(img, label)[0])
    if mode == "reference":
        return reference_poison_and_defend(img, label)
    return img


class JpegFolder(Dataset):
    def __init__(self, root: Path, mode: str):
        self.files = sorted(root.glob("class_*/*.jpg"))
        self.labels = [int(f.parent.name.split("_")[1]) for f in self.files]
        self.mode = mode

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        with PIL.Image.open(self.files[i]) as im:
            img = TF.pil_to_tensor(im.convert("RGB"))
        return AUGMENT(poison_and_defend(img, self.labels[i], self.mode)), self.labels[i]


def torch_loader(root: Path, mode: str) -> DataLoader:
    """Persistent workers: the epochs timed do not include starting them."""
    return DataLoader(JpegFolder(root, mode), batch_size=BATCH, num_workers=WORKERS, shuffle=True,
                      persistent_workers=True)


def epoch_rate(loader: DataLoader) -> float:
    """Images/s of one epoch, after a warm-up epoch."""
    return images_per_second(lambda: sum(len(b[1]) for b in loader), len(loader.dataset),
                             min_time=0.0, repeats=1)


def dali_pipeline(root: Path, mode: str):
    from nvidia.dali import fn, pipeline_def, types

    from poisonkit import dali as pkdali

    def reference(image: np.ndarray, label: np.ndarray) -> np.ndarray:
        chw = torch.from_numpy(image).permute(2, 0, 1)
        return poison_and_defend(chw, int(label[0]), "reference").permute(1, 2, 0).numpy().copy()

    python_op = mode == "reference"

    @pipeline_def(batch_size=BATCH, num_threads=WORKERS, device_id=None, seed=0,
                  exec_async=not python_op, exec_pipelined=not python_op)
    def pipe():
        jpegs, labels = fn.readers.file(file_root=str(root), random_shuffle=True, name="reader")
        x = fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)
        if mode == "poisonkit":
            x = pkdali.classwise_blur(x, labels, BLUR.kernels)
            x = pkdali.sharpen(x, std=0.1, padding="valid", seed=0)
            x = pkdali.lowpass(x, keep=0.3)
        elif mode == "reference":
            x = fn.python_function(x, labels, function=reference)
        x = fn.crop_mirror_normalize(
            x, dtype=types.FLOAT, output_layout="CHW", crop=(CROP, CROP),
            crop_pos_x=fn.random.uniform(range=(0.0, 1.0)),
            crop_pos_y=fn.random.uniform(range=(0.0, 1.0)), mirror=fn.random.coin_flip(),
            mean=[255 * m for m in MEAN], std=[255 * s for s in STD])
        return x, labels

    p = pipe()
    p.build()
    return p


def main(quick: bool = False) -> None:
    torch.set_num_threads(1)  # each DataLoader worker: one thread
    n, rounds = (256, 1) if quick else (512, 2)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_jpeg_folder(root, n)
        pipes = {mode: dali_pipeline(root, mode) for mode in MODES}
        loaders = {mode: torch_loader(root, mode) for mode in MODES}
        best: dict[tuple, float] = {}
        for r in range(rounds):
            for mode in MODES:
                for loader, rate_of in (("torch", lambda: epoch_rate(loaders[mode])),
                                        ("dali", lambda: images_per_second(pipes[mode].run, BATCH))):
                    rate = rate_of()
                    best[loader, mode] = max(best.get((loader, mode), 0.0), rate)
                    print(f"round {r + 1} {loader:6s} {mode:10s} {rate:10,.0f} images/s", flush=True)
        del pipes, loaders
    load = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    names = {"torch": f"torch DataLoader, {WORKERS} workers", "dali": f"DALI CPU, {WORKERS} threads"}
    impls = {"bare": "bare loader",
             "poisonkit": "poisonkit ops", "reference": "reference ops (conv2d, scipy DCT)"}
    rows = []
    for loader, name in names.items():
        for mode in MODES:
            rate = best[loader, mode]
            # the bare loader does less work: its own case, a ceiling rather than a peer
            work = "decode + crop/flip + normalize only" if mode == "bare" else \
                "decode + blur poison + RSK+FF + crop/flip + normalize"
            rows.append({"case": f"JPEG {SIZE}x{SIZE} {work}, {name}", "loader": name,
                         "impl": impls[mode],
                         "images_per_s": rate,
                         "pct_of_bare_loader": round(100 * rate / best[loader, "bare"], 1)})
    table = ["| loader | variant | % of bare loader |", "|---|---|---:|"]
    table += [f"| {r['loader']} | {r['impl']} | {r['pct_of_bare_loader']:.1f}% |"
              for r in rows]
    write_results("jpeg_loader", rows, "JPEG ImageNet-style loader: % of the bare loader",
                  notes=f"{n} real CIFAR-10 training images upscaled bilinearly to {SIZE}x{SIZE}, "
                        "saved as quality-90 JPEG files in class folders (not ImageNet photos). "
                        f"Batch {BATCH}. poisonkit in DALI: fn.poisonkit.classwise_blur, "
                        "sharpen (RSK, 'valid'), lowpass at 222x222 (no pad back: the 192 crop "
                        "follows); in the torch loader: ClasswiseBlur and RSKFF (pad back to 224) "
                        "per sample in the workers. Reference ops: the research scripts' "
                        "per-image conv2d and scipy DCT (a Python function operator in DALI, "
                        "which forces its synchronous executor). Variants interleaved in the "
                        f"same run, best of {rounds} round(s); the machine was shared with other "
                        f"jobs (1-min load average {load}, {os.cpu_count()} cores): compare "
                        "rows of this run.\n\n" + "\n".join(table))


if __name__ == "__main__":
    main("--quick" in sys.argv)
