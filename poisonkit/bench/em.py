"""Error-minimizing noise generation (sample-wise, one outer iteration: surrogate training
steps, the noise update over the whole set, the stop-condition pass): poisonkit's
ErrorMinimizing against the reference's loop re-written here from HanxunH/Unlearnable-
Examples (perturbation.sample_wise_perturbation, toolbox.PerturbationTool.min_min_attack):
per-sample Python loops building NumPy noise masks, a fresh optimizer and Variables per PGD
step, default (NCHW) memory format. Same model (the small CNN), same images, same steps;
interleaved repeats, images/s of crafting. `poisonkit bench --only em`."""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from poisonkit.poisons.crafting import build_surrogate
from poisonkit.poisons.em import ErrorMinimizing

from .common import load_cifar, write_results

EPS, STEP = 8 / 255, 0.8 / 255


def _mask(noise: torch.Tensor, shape) -> torch.Tensor:
    """The reference's per-sample noise placement (a full-image 'patch' here)."""
    mask = np.zeros(shape, np.float32)
    mask[:, :, :] = noise.cpu().numpy()
    return torch.from_numpy(mask)


def _min_min_attack(images, labels, model, noise, steps):
    perturb = torch.clamp(images + noise, 0, 1).requires_grad_(True)
    eta = noise
    for _ in range(steps):
        opt = torch.optim.SGD([perturb], lr=1e-3)
        opt.zero_grad()
        model.zero_grad()
        loss = F.cross_entropy(model(perturb), labels)
        perturb.retain_grad()
        loss.backward()
        eta = STEP * perturb.grad.data.sign() * (-1)
        perturb = (perturb.data + eta).requires_grad_(True)
        eta = torch.clamp(perturb.data - images.data, -EPS, EPS)
        perturb = torch.clamp(images.data + eta, 0, 1).requires_grad_(True)
    return perturb, eta


def reference_iteration(x: torch.Tensor, y: torch.Tensor, steps: int, train_steps: int,
                        batch: int) -> torch.Tensor:
    """One outer iteration of the reference's sample-wise loop on [0, 1] images x."""
    model = build_surrogate("small", 10, tuple(x.shape[1:]), key=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    noise = torch.zeros_like(x)
    batches = [(x[i:i + batch].clone(), y[i:i + batch]) for i in range(0, len(x), batch)]
    idx = 0
    for j in range(train_steps):
        images, labels = batches[j % len(batches)]
        images = images.clone()
        for i in range(len(images)):
            images[i] = images[i] + _mask(noise[(idx + i) % len(x)], images[i].shape)
        idx += len(images)
        model.train()
        for p in model.parameters():
            p.requires_grad = True
        opt.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    idx = 0
    for images, labels in batches:
        batch_noise, start = [], idx
        for i in range(len(images)):
            batch_noise.append(_mask(noise[idx], images[i].shape))
            idx += 1
        model.eval()
        for p in model.parameters():
            p.requires_grad = False
        _, eta = _min_min_attack(images, labels, model, torch.stack(batch_noise), steps)
        for i, delta in enumerate(eta):
            noise[start + i] = delta.detach().cpu().clone()
    errors, idx = 0, 0
    for images, labels in batches:   # the stop condition's pass
        images = images.clone()
        for i in range(len(images)):
            images[i] = images[i] + _mask(noise[idx], images[i].shape)
            idx += 1
        errors += (model(images).argmax(1) != labels).sum().item()
    return noise


def ours_iteration(x: torch.Tensor, y: torch.Tensor, steps: int, train_steps: int,
                   batch: int) -> torch.Tensor:
    em = ErrorMinimizing(10, steps=steps, train_steps=train_steps, max_iterations=1,
                         batch_size=batch, progress=False, device="cpu")
    return em.craft(x, y).delta


def main(quick: bool = False) -> None:
    torch.set_num_threads(2)
    n, steps, train_steps, batch, repeats = (128, 1, 1, 64, 1) if quick else (512, 3, 4, 128, 2)
    images, labels = load_cifar(10000)
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:n]
    x_uint8, y = images[pick], labels[pick]
    x = x_uint8.float() / 255
    times = {"ours": [], "reference": []}
    for _ in range(repeats):   # interleaved: the machine's load hits both alike
        for name, fn, data in (("reference", reference_iteration, x),
                               ("ours", ours_iteration, x_uint8)):
            start = time.perf_counter()
            fn(data, y, steps, train_steps, batch)
            times[name].append(time.perf_counter() - start)
            print(f"{name}: {times[name][-1]:.1f} s", flush=True)
    case = f"EM sample-wise, small CNN, {n} CIFAR images, {steps} PGD steps, {train_steps} train steps"
    rows = [{"case": case, "impl": "poisonkit ErrorMinimizing (CPU)",
             "images_per_s": n / min(times["ours"]), "seconds": times["ours"]},
            {"case": case, "impl": "reference loop (Unlearnable-Examples, re-written)",
             "images_per_s": n / min(times["reference"]), "seconds": times["reference"]}]
    write_results("em", rows, "Error-minimizing noise generation (images/s per outer iteration)",
                  notes=("One outer iteration (train steps + noise update over all images + "
                         "accuracy pass), best of interleaved repeats, 2 torch threads on a "
                         "2-core machine shared with other jobs: noisy. Target: >= 5x."))


if __name__ == "__main__":
    main()
