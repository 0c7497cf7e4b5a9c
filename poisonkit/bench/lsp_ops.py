"""LSP and OPS: the OPS search against the reference's per-position loop (perturb.py
pixel_search) on the 10k CIFAR set, and applying each poison against the peers a user
would write (torch indexing/add on a stored perturbation array, the reference's numpy
arithmetic), interleaved in the same run. `python -m poisonkit.bench.lsp_ops`."""
from __future__ import annotations

import time

import numpy as np
import torch

from poisonkit.poisons.lsp import LSPPoison
from poisonkit.poisons.one_pixel import OnePixelShortcut

from .common import interleaved_images_per_second, load_cifar, spread, write_results


def reference_pixel_search(images_hwc: np.ndarray, targets: np.ndarray, num_classes: int):
    """The reference's pixel_search (sparsity 1), its loops and numpy calls as written: the
    [position, colour] pair of each class, and the last class's scores. One change: a stable
    argsort (the reference's default sort leaves tied scores in no fixed order)."""
    H, W, C = images_hwc.shape[1:]
    pts = []
    for i in range(num_classes):
        img = images_hwc[targets == i] / 255
        score = np.zeros((H * W, 2**C), dtype=float)
        for point in range(len(score)):
            x, y = point // H, point % H
            for value in range(2**C):
                colour = np.array([(value >> (C - 1 - c)) & 1 for c in range(C)], dtype=float)
                if [point, value] in pts:
                    score[point, value] = 0
                else:
                    score[point, value] = (np.mean(np.abs(colour - img[:, x, y, :]))
                                           / np.std(np.abs(colour - img[:, x, y, :])))
        ranking = np.unravel_index(np.argsort(score, axis=None, kind="stable"), score.shape)
        pts.append([int(ranking[0][-1]), int(ranking[1][-1])])
    return pts, score


def ops_search(x: torch.Tensor, y: torch.Tensor) -> OnePixelShortcut:
    return OnePixelShortcut.search(x, y, 10)


def _apply_rows(x: torch.Tensor, y: torch.Tensor, size: int, batch: int):
    """LSP and OPS applied to a stored uint8 batch of size x size images vs the peers, plus the
    poisons and batch (the one-image-per-call rows reuse them)."""
    xb, yb = spread(x, y, batch)
    idx = torch.arange(batch)
    if size != x.shape[-1]:
        xb = torch.nn.functional.interpolate(xb.float(), size=(size, size), mode="bilinear",
                                             antialias=False).round_().clamp_(0, 255)
        xb = xb.to(torch.uint8)
    lsp = LSPPoison(10, key=1)
    noise = lsp.perturbation(yb, idx, 3, size, size)  # what a stored-array peer keeps in memory
    noise_hwc = noise.permute(0, 2, 3, 1).numpy().astype(np.float32)
    xb_hwc = xb.permute(0, 2, 3, 1).numpy()
    # at 32x32 the classes' pixels come from the whole set; at 224x224 from the batch itself
    search_x, search_y = (x, y) if size == x.shape[-1] else (xb, yb)
    ops_poison = OnePixelShortcut.search(search_x, search_y, 10)
    rows_t, cols_t = ops_poison.rows, ops_poison.cols
    colour255 = (ops_poison.colours * 255).to(torch.uint8)
    pert_hwc = np.zeros_like(xb_hwc, dtype=np.float64)  # the reference's perturbation array
    pert_hwc[np.arange(batch), rows_t[yb].numpy(), cols_t[yb].numpy()] = (
        ops_poison.colours[yb].numpy() - xb_hwc[np.arange(batch), rows_t[yb].numpy(),
                                                cols_t[yb].numpy()] / 255)

    def torch_add():
        return (xb.float() / 255 + noise[idx]).clamp_(0, 1).mul_(255).to(torch.uint8)

    def torch_pixel():
        out = xb.clone()
        out[torch.arange(batch), :, rows_t[yb], cols_t[yb]] = colour255[yb]
        return out

    def numpy_add(pert):
        return np.clip((xb_hwc / 255 + pert) * 255, 0, 255).astype(np.uint8)

    # each poison interleaved with its own peers (not with the other poison's float64 arrays)
    rates = interleaved_images_per_second({
        "lsp ours": lambda: lsp(xb, yb, idx),
        "lsp torch": torch_add,
        "lsp numpy": lambda: numpy_add(noise_hwc),
    }, batch)
    rates |= interleaved_images_per_second({
        "ops ours": lambda: ops_poison(xb, yb, idx),
        "ops torch": torch_pixel,
        "ops numpy": lambda: numpy_add(pert_hwc),
    }, batch)
    rows = []
    for name in ("lsp", "ops"):
        case = f"{name.upper()} apply, batch {batch} uint8 {size}x{size}x3"
        ours_name = {"lsp": "poisonkit LSPPoison (CPU, perturbation generated per call)",
                     "ops": "poisonkit OnePixelShortcut (CPU)"}[name]
        rows += [{"case": case, "impl": ours_name, "images_per_s": rates[f"{name} ours"],
                  "batch": batch},
                 {"case": case, "impl": "torch indexing/add on a stored perturbation array",
                  "images_per_s": rates[f"{name} torch"], "batch": batch},
                 {"case": case, "impl": "reference numpy arithmetic (float64, stored array)",
                  "images_per_s": rates[f"{name} numpy"], "batch": batch}]
    return rows, lsp, ops_poison, noise, xb, yb


def main(quick: bool = False) -> None:
    torch.set_num_threads(2)
    x, y = load_cifar(10_000)
    rows = []

    # ---- OPS search over the whole set (images/s = dataset size / search time)
    n_ref = 2_000 if quick else 10_000  # the reference loop costs ~1 s per 1k images here
    start = time.perf_counter()
    expected, _ = reference_pixel_search(x[:n_ref].permute(0, 2, 3, 1).numpy(),
                                         y[:n_ref].numpy(), 10)
    ref_rate = n_ref / (time.perf_counter() - start)
    ours = ops_search(x[:n_ref], y[:n_ref])
    found = [[int(r) * 32 + int(c), int(v)] for r, c, v in zip(
        ours.rows, ours.cols, (ours.colours * torch.tensor([4.0, 2.0, 1.0])).sum(1))]
    same = found == [[int(p), int(v)] for p, v in expected]
    ours_rate = interleaved_images_per_second({"ours": lambda: ops_search(x, y)}, len(x))["ours"]
    case = f"OPS search, {n_ref:,} / 10,000 images 32x32x3"
    rows += [{"case": case, "impl": "poisonkit one_pixel_moments + one_pixel_search (CPU)",
              "images_per_s": ours_rate, "same_choice_as_reference": same},
             {"case": case, "impl": "reference pixel_search loop (numpy)", "images_per_s": ref_rate,
              "images_timed": n_ref}]

    # ---- applying the poisons to a stored uint8 batch: CIFAR size, and ImageNet size
    # (the CIFAR images upscaled bilinearly to 224x224: the same kernels at 49x the pixels)
    apply_rows, lsp, ops_poison, noise, xb, yb = _apply_rows(x, y, 32, 1024)
    rows += apply_rows
    rows += _apply_rows(x, y, 224, 32 if quick else 128)[0]
    rows_t, cols_t = ops_poison.rows, ops_poison.cols
    colour255 = (ops_poison.colours * 255).to(torch.uint8)

    # ---- one sample per call, as a Dataset's __getitem__ runs it in a DataLoader worker
    one, label, index = xb[0], int(yb[0]), 0
    rates = interleaved_images_per_second({
        "lsp ours": lambda: lsp(one, label, index),
        "lsp torch": lambda: (one.float() / 255 + noise[index]).clamp_(0, 1).mul_(255).to(torch.uint8),
        "ops ours": lambda: ops_poison(one, label, index),
        "ops torch": lambda: one.clone().index_put_((torch.arange(3), rows_t[label], cols_t[label]),
                                                    colour255[label]),
    }, 1)
    for name, case in (("lsp", "LSP apply, 1 image/call"), ("ops", "OPS apply, 1 image/call")):
        rows += [{"case": case, "impl": f"poisonkit ({name.upper()}, CPU)",
                  "images_per_s": rates[f"{name} ours"], "batch": 1},
                 {"case": case, "impl": "torch indexing/add on a stored perturbation array",
                  "images_per_s": rates[f"{name} torch"], "batch": 1}]
    write_results("lsp_ops", rows, "LSP and OPS: search and apply (images/s)",
                  notes="2 torch threads, a shared 2-core machine under load from other jobs: "
                        "absolute numbers are noisy, the ratios (peers interleaved round by round "
                        "in the same run) are the measurement. The reference search loop is "
                        "timed once; 'same_choice_as_reference' in the JSON records whether "
                        "both searches chose the same pixels. Targets: OPS search >= 100x the "
                        "reference loop; LSP and OPS apply >= 1.0x the best peer.")


if __name__ == "__main__":
    main()
