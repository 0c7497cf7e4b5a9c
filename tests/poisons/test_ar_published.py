"""The shipped published AR coefficient sets and the loader of the reference's formats."""
from pathlib import Path

import numpy as np
import pytest
import torch

from poisonkit.poisons.ar import detect
from poisonkit.poisons.ar_published import PUBLISHED, load_coefficients, published_coefficients
from poisonkit.transforms import ARPoison

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ar-published"


@pytest.mark.parametrize("name, classes", [("cifar10-published", 10), ("cifar100-published", 100)])
def test_published_sets_are_the_shared_arrays_exactly(name, classes):
    path = SHARED / f"ar-{name}.npy"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    ours = published_coefficients(name)
    assert torch.equal(ours.coeffs, torch.from_numpy(np.load(path)))
    assert ours.coeffs.shape == (classes, 3, 3, 3) and "MIT" in ours.metadata["license"]
    assert torch.equal(load_coefficients(path).coeffs, ours.coeffs)


def test_published_sets_are_ar_coefficients():
    for name in PUBLISHED:
        c = published_coefficients(name).coeffs
        assert (c[..., 2, 2] == 0).all()
        assert (c.flatten(2).sum(-1) - 1).abs().max() < 1e-3  # the source's 4-decimal printing


def test_reference_list_of_tensors_format(tmp_path):
    """params-classes-100-mr-3.pt: torch.save of a list of K [3, 3, 3] tensors."""
    coeffs = published_coefficients("cifar10-published").coeffs
    torch.save(list(coeffs), tmp_path / "params.pt")
    assert torch.equal(load_coefficients(tmp_path / "params.pt").coeffs, coeffs)
    torch.save([coeffs[0], coeffs[1, :2]], tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="one shape"):
        load_coefficients(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        load_coefficients(tmp_path / "missing.pt")


def test_published_presets():
    p = ARPoison.preset("cifar10-published")
    assert torch.equal(p.coeffs, published_coefficients("cifar10-published").coeffs)
    assert (p.eps, p.crop) == (1.0, 4)
    big = ARPoison.preset("imagenet100-published")
    assert big.num_classes == 100 and big.crop == 2
    # each class's perturbation is recognised by its own AR filter (the reference's oracle)
    labels = torch.arange(10)
    delta = p.perturbation(labels, torch.arange(10), 32, 32)
    assert torch.equal(detect(delta, p.coeffs), labels)
    with pytest.raises(ValueError, match="published coefficients"):
        published_coefficients("svhn-published")
