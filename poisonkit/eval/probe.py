"""Deep feature reweighting (DFR) as a probe ('What can we learn from unlearnable
datasets?', Sandoval-Segura et al.; learn-from-unlearnable dfr_step_2.py): after training
on poisoned data, retrain only the last linear layer on a small *clean* set and measure
clean test accuracy. High accuracy means the network learned useful features despite the
poison.

The clean set is a held-out part of the training split (dfr_split): those images are
removed from the (poisoned) training set before training and kept clean; the test set is
only used to measure the refitted head. The reference uses 5000 clean CIFAR-10 training
images (10%), LBFGS lr 0.5 for 15 passes over batches of 1024 with the model in train()
mode and training augmentation, starting from the trained head. poisonkit fits the head on
features extracted once in eval() mode from unaugmented images, full-batch LBFGS from the
trained head: deterministic and cheap on a CPU (stated deviation).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .augment import to_unit

DFR_FRACTION = 0.1   # the reference's 5000 of 50000 training images


def dfr_split(n: int, fraction: float = DFR_FRACTION, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, held-out indices) of a seeded random split of n training images,
    round(fraction * n) held out (at least 1 and at most n - 1), both sorted."""
    if not 0 < fraction < 1:
        raise ValueError(f"dfr fraction: expected a number in (0, 1), got {fraction!r}")
    held = min(max(1, round(fraction * n)), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[held:].sort().values, perm[:held].sort().values


def last_linear(model: nn.Module) -> nn.Linear:
    """The model's head: its last nn.Linear module (in registration order)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("dfr: the model has no nn.Linear layer to reweight")
    return linears[-1]


@torch.no_grad()
def head_inputs(model: nn.Module, images: torch.Tensor, prep: Callable, batch_size: int = 500,
                transform: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(features entering the head, the model's logits) for uint8 images, eval() mode."""
    head = last_linear(model)
    device = next(model.parameters()).device
    feats, logits = [], []
    hook = head.register_forward_hook(lambda m, inp, out: feats.append(inp[0].float().flatten(1).cpu()))
    model.eval()
    try:
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size]
            x = transform(x) if transform is not None else x
            logits.append(model(prep(to_unit(x.to(device)))).float().cpu())
    finally:
        hook.remove()
    return torch.cat(feats), torch.cat(logits)


def fit_head(features: torch.Tensor, labels: torch.Tensor, head: nn.Linear,
             max_iter: int = 200) -> nn.Linear:
    """A copy of `head` refitted by full-batch LBFGS (cross-entropy) on (features, labels)."""
    new = nn.Linear(head.in_features, head.out_features, bias=head.bias is not None)
    new.load_state_dict({k: v.detach().float().cpu() for k, v in head.state_dict().items()})
    opt = torch.optim.LBFGS(new.parameters(), lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(new(features), labels)
        loss.backward()
        return loss
    opt.step(closure)
    return new


def dfr_probe(model: nn.Module, clean_images: torch.Tensor, clean_labels: torch.Tensor,
              test_images: torch.Tensor, test_labels: torch.Tensor, prep: Callable,
              test_transform: Callable | None = None) -> dict:
    """Refits the head on the clean held-out images; returns its clean test accuracy and
    the held-out set's size. The head's output must be the model's output (up to a
    positive scale, as the small CNN's logit scale): checked on the held-out images."""
    feats, logits = head_inputs(model, clean_images, prep)
    head = last_linear(model)
    with torch.no_grad():
        bias = None if head.bias is None else head.bias.detach().float().cpu()
        direct = F.linear(feats, head.weight.detach().float().cpu(), bias)
    if not torch.equal(direct.argmax(1), logits.argmax(1)):
        raise ValueError("dfr: the model's output is not its last nn.Linear's output (up to a "
                         "positive scale); DFR needs the head to be the last layer")
    new = fit_head(feats, clean_labels, head)
    test_feats, _ = head_inputs(model, test_images, prep, transform=test_transform)
    with torch.no_grad():
        accuracy = (new(test_feats).argmax(1) == test_labels).float().mean().item()
        heldout_fit = (new(feats).argmax(1) == clean_labels).float().mean().item()
    return {"name": "dfr", "heldout": len(clean_images), "accuracy": accuracy,
            "heldout_train_accuracy": heldout_fit}
