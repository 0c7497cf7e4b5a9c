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


def test_imagenet_recipe_against_a_hand_written_reference(cifar):
    """ImageNet-100 as issue 16 gives the reference's recipe: Resize(256), CenterCrop(224)
    (IMAGENET_PREPROCESS), then the AR perturbation of a 226x226 canvas cropped by 2 from the
    published CIFAR-100 set, L2 eps 7 ('imagenet100-published'), added and clamped. Reference:
    PIL's bilinear resize of the shorter side and the centre box by hand; the AR process in
    float64 loops (tests.ops.test_ar.reference_generate) on the op's own canvas draws."""
    from PIL import Image

    from poisonkit import ops
    from poisonkit.poisons.ar_published import IMAGENET_PREPROCESS
    from tests.ops.test_ar import reference_generate

    big = torch.nn.functional.interpolate(cifar["x_train"][:1].float(), size=(300, 340),
                                          mode="bilinear").round().clamp(0, 255).byte()[0]
    x = IMAGENET_PREPROCESS(big)
    pil = Image.fromarray(big.permute(1, 2, 0).numpy())
    w = int(256 * 340 / 300)  # the shorter side to 256, the other in proportion (floored)
    top, left = round((256 - 224) / 2), round((w - 224) / 2)
    hand = np.asarray(pil.resize((w, 256), Image.BILINEAR))[top:top + 224, left:left + 224]
    diff = np.abs(x.permute(1, 2, 0).numpy().astype(int) - hand.astype(int))
    # torchvision's antialiased tensor resize and PIL's agree to a level or two (rounding)
    assert x.shape == (3, 224, 224) and diff.max() <= 2 and (diff > 0).mean() < 0.05

    poison = ARPoison.preset("imagenet100-published", key=5)
    assert (poison.crop, poison.eps, poison.num_classes) == (2, 7.0, 100)
    labels, indices = torch.tensor([42]), torch.tensor([7])
    out = poison.apply(x[None], labels, indices)
    canvas = ops.ar_canvas(indices, poison.philox_key, 3, 226, 226)
    delta = reference_generate(canvas, poison.coeffs, labels, 2, 7.0, 2)
    expected = torch.floor((x[None].double() / 255 + delta).clamp(0, 1) * 255 + 0.5)
    err = (out.double() - expected).abs()
    assert err.max() <= 1 and (err > 0).double().mean() < 1e-3
