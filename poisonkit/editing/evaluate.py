"""Robustness of a protection over purifications: every condition (a purification spec)
is measured on all images in batches and its result saved on its own (atomically), so a
killed evaluation resumes at the first unfinished condition."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .._io import write_json
from .attack import target_latent, to_signed
from .metrics import Probe, condition_metrics, summarize
from .protect import fingerprint, check_images
from .purify import purification
from .vae import check_vae_input


def condition_file(folder: Path, spec: str) -> Path:
    return folder / (re.sub(r"[^A-Za-z0-9.]+", "_", spec) + ".json")


def evaluate(clean: torch.Tensor, protected: torch.Tensor, vae, specs: list[str],
             out: str | os.PathLike, *, target="grey", batch_size: int = 64,
             device: str | torch.device = "cpu", vae_name: str = "", resume: bool = False,
             progress: bool = True) -> dict[str, dict]:
    """Measures each purification spec (see purify) on uint8 NCHW clean images and their
    protected copies; writes OUT/conditions/<spec>.json per condition and returns
    {spec: summary} (metrics.summarize). 'none' is always measured (the baseline of
    `remaining`). With resume, conditions already in OUT for the same images, VAE and
    named target are read back instead of measured."""
    check_images(clean)
    check_images(protected)
    if clean.dtype != torch.uint8 or protected.dtype != torch.uint8 or clean.shape != protected.shape:
        raise ValueError(f"images: clean and protected must be uint8 NCHW of one shape, got "
                         f"{clean.dtype} {tuple(clean.shape)} and {protected.dtype} "
                         f"{tuple(protected.shape)}")
    check_vae_input(vae, tuple(clean.shape))
    specs = ["none"] + [s for s in dict.fromkeys(specs) if s != "none"]
    functions = {spec: purification(spec) for spec in specs}  # bad specs fail before work
    probe = Probe(vae, device)
    key = {"images": fingerprint(clean), "protected": fingerprint(protected), "vae": vae_name,
           "target": target if isinstance(target, str) else "tensor"}
    target = target_latent(probe.latent, target, to_signed(clean[:1]).to(probe.device)) \
        if not isinstance(target, torch.Tensor) else target.to(probe.device)
    folder = Path(out) / "conditions"
    folder.mkdir(parents=True, exist_ok=True)

    per_image, results = {}, {}
    for spec in tqdm(specs, desc="eval-editing", unit="condition", disable=not progress):
        path = condition_file(folder, spec)
        if resume and path.is_file():
            saved = json.loads(path.read_text())
            if saved.get("key") == key and saved.get("spec") == spec:
                per_image[spec] = {k: torch.tensor(v) for k, v in saved["per_image"].items()}
                continue
        fn, rows = functions[spec], []
        for start in range(0, len(clean), batch_size):
            x, x_adv = clean[start:start + batch_size], protected[start:start + batch_size]
            rows.append(condition_metrics(probe, x, x_adv, fn(x), fn(x_adv), target))
        per_image[spec] = {k: torch.cat([r[k] for r in rows]) for k in rows[0]}
        write_json(path, {"spec": spec, "key": key,
                          "per_image": {k: v.tolist() for k, v in per_image[spec].items()}})
    baseline = {k: float(v.mean()) for k, v in per_image["none"].items()}
    for spec in specs:
        results[spec] = summarize(per_image[spec], baseline)
    return results
