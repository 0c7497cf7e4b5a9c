"""Does PhotoGuard's encoder attack survive JPEG (and poisonkit's low-pass, sharpening)?
Measured on the shared CIFAR-10 test images with poisonkit's stand-in VAE (cached; trained
on the training split on first use), through the same code as `poisonkit protect-edit` and
`poisonkit eval-editing`. Writes benchmarks/results/editing.{json,md,png} and
editing_grid.png; resumable (work files in --work). A few CPU-minutes on one thread.
Run: OMP_NUM_THREADS=1 python -m benchmarks.editing_experiment [--data PATH] [--count N]"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from poisonkit import ops
from poisonkit.bench.common import machine
from poisonkit.editing.attack import DEFAULT_EPS, DEFAULT_ITERS, DEFAULT_STEP
from poisonkit.editing.evaluate import evaluate
from poisonkit.editing.metrics import Probe
from poisonkit.editing.protect import protect
from poisonkit.editing.purify import default_specs
from poisonkit.editing.report import UNDONE_BELOW, plot_grid, undone_at, write_report
from poisonkit.editing.vae import TINY_NAME, TRAINING_RECORD, cache_dir, default_vae

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-10k.npz"
PAPER = ("Sandoval-Segura, Geiping & Goldstein (2023), 'JPEG Compressed Images Can Bypass "
         "Protections Against AI Editing': PhotoGuard-protected images saved as JPEG at common "
         "qualities are edited by Stable Diffusion much like unprotected ones; the perturbation "
         "is not robust to JPEG (qualitative finding, their Stable Diffusion setting).")


def low_frequency_share(clean: torch.Tensor, protected: torch.Tensor) -> dict[str, float]:
    """Share of the perturbation's energy inside the DCT low-pass blocks keeping half and
    30% of each axis's frequencies (white noise: 0.25 and 0.08): a perturbation made
    mostly of low frequencies survives JPEG, which quantizes high frequencies hardest."""
    delta = protected.float() / 255 - clean.float() / 255
    energy = delta.square().sum()
    return {f"keep {keep}": round(float(ops.lowpass(delta, keep, clamp=False).square().sum() / energy), 3)
            for keep in (0.5, 0.3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("POISONKIT_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--count", type=int, default=128, help="test images protected")
    parser.add_argument("--iters", type=int, default=DEFAULT_ITERS)
    parser.add_argument("--eps", type=float, default=DEFAULT_EPS)
    parser.add_argument("--step", type=float, default=DEFAULT_STEP)
    parser.add_argument("--stem", default="editing", help="result file names (STEM.json, ...)")
    parser.add_argument("--work", default="out/editing-experiment")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    work, started = Path(args.work), time.time()

    vae = default_vae(args.data)
    training = json.loads((cache_dir() / TINY_NAME / TRAINING_RECORD).read_text())
    from poisonkit.data import load_npz
    clean = load_npz(args.data)["x_test"][:args.count]
    t0 = time.time()
    result = protect(clean, vae, eps=args.eps, step=args.step, iters=args.iters,
                     batch_size=32, state=work / f"state-eps{args.eps}-it{args.iters}",
                     vae_name=TINY_NAME)
    attack_seconds = time.time() - t0
    specs = default_specs()
    results = evaluate(clean, result.protected, vae, specs, work / f"eval-eps{args.eps}-it{args.iters}",
                       vae_name=TINY_NAME, resume=True)
    d = result.distances
    meta = {"title": f"{len(clean)} CIFAR-10 test images, stand-in VAE, eps {args.eps} "
                     f"({args.eps * 127.5:.2f}/255), {args.iters} iterations, grey target",
            "images": len(clean), "vae": f"{TINY_NAME} (stand-in, not Stable Diffusion's VAE: "
                                        f"{training['config']['block_out_channels']} channels, 2x "
                                        "downsampling, 4x16x16 latents)",
            "vae_training": {k: training[k] for k in ("steps", "batch_size", "lr", "kl_weight",
                                                      "num_images", "final_l1_ema")},
            "attack": {"eps": args.eps, "eps_in_255ths": args.eps * 127.5, "step": args.step,
                       "iters": args.iters, "target": "grey", "latent": "latent_dist.mean",
                       "distance_start": float(d[0].mean()), "distance_end": float(d[-1].mean()),
                       "seconds_this_run": round(attack_seconds, 1)},
            "perturbation_energy_in_low_frequencies": low_frequency_share(clean, result.protected),
            "edit_similarity": "not measured (no Stable Diffusion img2img pipeline on this machine)",
            "paper": PAPER, "machine": machine(), "load_average": os.getloadavg(),
            "seconds_this_run": round(time.time() - started, 1)}
    out = Path(args.out)
    write_report(results, out, meta, stem=args.stem)
    plot_grid(Probe(vae), clean, result.protected, ["jpeg:75", "jpeg:30"], out / f"{args.stem}_grid.png")
    undone = undone_at(results)
    print((out / f"{args.stem}.md").read_text())
    print(f"undone (remaining < {UNDONE_BELOW}) from JPEG quality: {undone}")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
