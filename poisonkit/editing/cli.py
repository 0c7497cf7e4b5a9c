"""`poisonkit protect-edit` and `poisonkit eval-editing`: argparse and handlers
(poisonkit.cli adds them with add_commands)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

STAND_IN = "stand-in"
PROTECTED_FILE = "protected.npz"
PROTECT_RECORD = "protect.json"


def _vae(args: argparse.Namespace, data) -> tuple[object, str]:
    """(vae, its name for records): --vae's folder, else the cached stand-in (trained on
    first use on --data's training images)."""
    from .vae import default_vae, load_vae
    if args.vae and args.vae != STAND_IN:
        return load_vae(args.vae), str(Path(args.vae).resolve())
    return default_vae(data), STAND_IN


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _protect_edit(args: argparse.Namespace) -> int:
    from .._io import atomic_write, write_json
    from .._outputs import check_output_folder
    from ..data.datasets import data_path, load_dataset
    from .attack import check_budget
    from .protect import protect
    from .vae import check_vae_input, tiny_vae
    check_budget(args.eps, args.step, args.iters)  # bad numbers fail before any loading
    source = data_path(args.data)
    if source is None:
        raise ValueError("data: pass --data (an .npz or ImageFolder) or set $POISONKIT_DATA")
    out = check_output_folder(args.out, [source], force=args.force, reuse=args.resume)
    dataset = load_dataset(source, download=False)
    images = getattr(dataset, f"x_{args.split}")
    images = images[:args.count] if args.count else images
    if not args.vae or args.vae == STAND_IN:  # before the stand-in's first-use training
        check_vae_input(tiny_vae(), tuple(images.shape))
    vae, vae_name = _vae(args, source)
    result = protect(images, vae, target=args.target, eps=args.eps, step=args.step,
                     iters=args.iters, seed=args.seed, batch_size=args.batch_size,
                     device=_device(args.device), state=out / "state", vae_name=vae_name)
    nhwc = lambda t: t.permute(0, 2, 3, 1).contiguous().numpy()
    atomic_write(out / PROTECTED_FILE,
                 lambda tmp: np.savez(open(tmp, "wb"), protected=nhwc(result.protected),
                                      clean=nhwc(images), indices=np.arange(len(images))))
    d = result.distances
    write_json(out / PROTECT_RECORD, {
        "data": str(source), "split": args.split, "count": len(images), "vae": vae_name,
        "target": args.target, "eps": args.eps, "step": args.step, "iters": args.iters,
        "seed": args.seed, "eps_in_255ths": args.eps * 127.5,
        "mean_latent_distance_to_target": {"start": float(d[0].mean()), "end": float(d[-1].mean())}})
    print(f"protected {len(images)} images (eps {args.eps} in [-1, 1] = {args.eps * 127.5:.2f}/255); "
          f"latent distance to the {args.target} target {float(d[0].mean()):.3f} -> "
          f"{float(d[-1].mean()):.3f}; wrote {out / PROTECTED_FILE}")
    return 0


def load_protected(folder: Path) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(clean, protected) uint8 NCHW and the protect record of a protect-edit folder."""
    npz, record = folder / PROTECTED_FILE, folder / PROTECT_RECORD
    if not npz.is_file() or not record.is_file():
        raise FileNotFoundError(f"protected: {folder} lacks {PROTECTED_FILE} / {PROTECT_RECORD}; "
                                "expected the output folder of `poisonkit protect-edit`")
    with np.load(npz) as f:
        nchw = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()
        return nchw(f["clean"]), nchw(f["protected"]), json.loads(record.read_text())


def _eval_editing(args: argparse.Namespace) -> int:
    from .._outputs import check_output_folder
    from .evaluate import evaluate
    from .metrics import Probe
    from .purify import default_specs, purification
    from .report import plot_grid, write_report
    specs = args.purify or default_specs()
    grid = args.grid or ["jpeg:75", "jpeg:30"]
    for spec in specs + grid:
        purification(spec)  # bad specs fail before loading anything
    protected_dir = Path(args.protected)
    clean, protected, record = load_protected(protected_dir)
    out = check_output_folder(args.out or protected_dir / "eval", [protected_dir / PROTECTED_FILE],
                              force=args.force, reuse=args.resume)
    if args.vae is None:
        args.vae = record["vae"]
    vae, vae_name = _vae(args, record.get("data"))
    pipe = None
    if args.pipeline:
        from .img2img import load_img2img
        pipe = load_img2img(args.pipeline, _device(args.device))
    device = _device(args.device)
    results = evaluate(clean, protected, vae, specs, out, target=record["target"],
                       batch_size=args.batch_size, device=device, vae_name=vae_name,
                       resume=args.resume)
    meta = {"title": f"{len(clean)} images, VAE {vae_name}, eps {record['eps']} "
                     f"({record['eps_in_255ths']:.2f}/255), {record['iters']} iterations",
            "images": len(clean), "vae": vae_name, "protected_with": record["vae"],
            "target": record["target"], "eps": record["eps"], "iters": record["iters"]}
    if pipe is not None:
        _add_edits(pipe, clean, protected, specs, results, args)
        meta["edit_similarity"] = ("PSNR/SSIM of edit(protected [+ purification]) vs edit(clean), "
                                   f"prompt {args.prompt!r}, strength {args.strength}, "
                                   f"{args.edit_steps} steps, seed {args.seed}")
    else:
        meta["edit_similarity"] = "not measured (no --pipeline img2img folder given)"
    paths = write_report(results, out, meta)
    paths["grid"] = plot_grid(Probe(vae, device), clean, protected, grid, out / "editing_grid.png")
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _add_edits(pipe, clean, protected, specs, results, args) -> None:
    """Edit similarity per condition, on the first --edit-count images."""
    from tqdm.auto import tqdm
    from .img2img import edit, edit_similarity
    from .purify import purification
    n = args.edit_count
    settings = dict(strength=args.strength, steps=args.edit_steps, seed=args.seed)
    reference = edit(pipe, clean[:n], args.prompt, **settings)
    for spec in tqdm(specs, desc="img2img edits", unit="condition"):
        edited = edit(pipe, purification(spec)(protected[:n]), args.prompt, **settings)
        results[spec].update(edit_similarity(edited, reference))


def _add_run_args(p: argparse.ArgumentParser, batch_size: int, resume_help: str) -> None:
    """The options both commands share: batching, device, resume, force."""
    from ..cli import _positive
    p.add_argument("--batch-size", type=_positive, default=batch_size)
    p.add_argument("--device", default="auto")
    p.add_argument("--resume", action="store_true", help=resume_help)
    p.add_argument("--force", action="store_true", help="write into a non-empty --out")


def add_commands(sub) -> None:
    """Adds protect-edit and eval-editing to poisonkit's subcommands."""
    from ..cli import _positive
    from .attack import DEFAULT_EPS, DEFAULT_ITERS, DEFAULT_STEP, TARGETS
    vae_help = ("a local diffusers AutoencoderKL folder (e.g. Stable Diffusion's vae/), loaded "
                "offline; default: poisonkit's small stand-in VAE, cached in $POISONKIT_CACHE or "
                "~/.cache/poisonkit and trained on first use on --data's training images")
    p = sub.add_parser("protect-edit", help="protect images against AI editing (PhotoGuard's "
                                            "encoder attack); resumable")
    p.add_argument("--data", default=None, help=".npz or ImageFolder (default $POISONKIT_DATA)")
    p.add_argument("--split", default="test", choices=("train", "test"),
                   help="which split's images to protect (default test: the stand-in VAE "
                        "trains on the training split)")
    p.add_argument("--count", type=_positive, default=None, help="protect the first COUNT images")
    p.add_argument("--out", required=True, help="output folder (protected.npz, protect.json, state/)")
    p.add_argument("--vae", default=None, help=vae_help)
    p.add_argument("--target", default="grey", choices=TARGETS,
                   help="latent to pull toward: a flat grey image's (PhotoGuard's demo) or zero "
                        "(its img2img notebook)")
    p.add_argument("--eps", type=float, default=DEFAULT_EPS,
                   help=f"L-inf budget in the VAE's [-1, 1] units ({DEFAULT_EPS} = "
                        f"{DEFAULT_EPS * 127.5:.2f}/255, PhotoGuard's img2img notebook)")
    p.add_argument("--step", type=float, default=DEFAULT_STEP, help="first step size ([-1, 1] units)")
    p.add_argument("--iters", type=int, default=DEFAULT_ITERS, help="PGD iterations")
    p.add_argument("--seed", type=int, default=0, help="random start seed")
    _add_run_args(p, batch_size=32, resume_help="reuse finished batches in OUT/state")
    p.set_defaults(func=_protect_edit)

    e = sub.add_parser("eval-editing", help="measure a protection under purifications (JPEG, "
                                            "low-pass, sharpening, chains): table, curves, grid")
    e.add_argument("--protected", required=True, help="a protect-edit output folder")
    e.add_argument("--out", default=None, help="output folder (default PROTECTED/eval)")
    e.add_argument("--purify", action="append", default=None,
                   help="repeatable purification spec: none, jpeg:Q, lowpass[:K], sharpen[:C], "
                        "chains joined by '+'; default none, JPEG 95..10, lowpass:0.5, lowpass:0.3, "
                        "sharpen and two chains")
    e.add_argument("--grid", action="append", default=None,
                   help="purifications shown in the image grid (default jpeg:75, jpeg:30)")
    e.add_argument("--vae", default=None, help="VAE to measure with (default: the one the images "
                                               "were protected with). " + vae_help)
    e.add_argument("--pipeline", default=None,
                   help="a local diffusers img2img pipeline folder: also edit the images and report "
                        "PSNR/SSIM of edits of protected vs clean images")
    e.add_argument("--prompt", default="a photo")
    e.add_argument("--strength", type=float, default=0.5)
    e.add_argument("--edit-steps", type=_positive, default=50)
    e.add_argument("--edit-count", type=_positive, default=8, help="images edited per condition")
    e.add_argument("--seed", type=int, default=1234, help="edit seed")
    _add_run_args(e, batch_size=64, resume_help="reuse finished conditions in OUT")
    e.set_defaults(func=_eval_editing)
