"""torchvision v2 conformance of poisonkit's transforms: non-image entries of a sample
pass through bit-identical, numpy / channels-last inputs are refused, the functional
layer dispatches per type, and PoisonedDataset wraps an ImageFolder for a DataLoader."""
from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision import tv_tensors
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from poisonkit.data import PoisonedDataset
from poisonkit.defenses.sharpen import ssk_kernel
from poisonkit.transforms import (RSKFF, ARPoison, ClasswiseBlur, LowPass, RandomSharpen, Sharpen)
from poisonkit.transforms import functional as F


def sample(gen):
    image = tv_tensors.Image(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=gen))
    mask = tv_tensors.Mask(torch.randint(0, 3, (32, 32), dtype=torch.uint8, generator=gen))
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[2.0, 3.0, 20.0, 25.0]]), format="XYXY",
                                     canvas_size=(32, 32))
    points = tv_tensors.KeyPoints(torch.tensor([[4.0, 5.0]]), canvas_size=(32, 32))
    return {"image": image, "mask": mask, "boxes": boxes, "points": points, "label": 3, "index": 17}


def poisonkit_transforms():
    return [ARPoison(10, key=5), ClasswiseBlur(seed=0), Sharpen(padding="reflect"),
            RandomSharpen(padding="reflect", seed=1), LowPass(),
            RSKFF(padding="reflect", seed=2)]


def test_non_image_entries_pass_through_bit_identical(gen):
    s = sample(gen)
    before = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
    out = v2.Compose(poisonkit_transforms())(s)
    assert not torch.equal(out["image"], before["image"])
    assert isinstance(out["image"], tv_tensors.Image) and out["image"].shape == (3, 32, 32)
    for key in ("mask", "boxes", "points"):
        assert type(out[key]) is type(before[key]) and torch.equal(out[key], before[key])
    assert out["boxes"].canvas_size == (32, 32) and out["label"] == 3 and out["index"] == 17
    # and the full pipeline with torchvision's augmentations runs on the same sample
    full = v2.Compose([*poisonkit_transforms(), v2.RandomCrop(32, padding=4),
                       v2.ToDtype(torch.float32, scale=True)])(sample(gen))
    assert full["image"].dtype == torch.float32 and full["mask"].dtype == torch.uint8


def test_each_transform_on_each_image_type_matches_the_tensor_result(gen):
    x = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=gen)
    for t in [ClasswiseBlur(seed=0), Sharpen(), LowPass()]:
        args = (3,) if isinstance(t, ClasswiseBlur) else ()
        plain = t(x, *args)
        plain = plain[0] if args else plain
        image = t(tv_tensors.Image(x), *args)
        image = image[0] if args else image
        pil = t(PIL.Image.fromarray(x.permute(1, 2, 0).numpy()), *args)
        pil = pil[0] if args else pil
        assert isinstance(image, tv_tensors.Image) and torch.equal(image.as_subclass(torch.Tensor), plain)
        assert isinstance(pil, PIL.Image.Image)
        assert np.array_equal(np.asarray(pil), plain.permute(1, 2, 0).numpy())


@pytest.mark.parametrize("make", [lambda: Sharpen(), lambda: LowPass(), lambda: RSKFF(),
                                  lambda: ClasswiseBlur(), lambda: ARPoison(10, key=1)])
def test_numpy_and_channels_last_inputs_are_refused(make):
    t = make()
    extra = (1, 0) if isinstance(t, (ClasswiseBlur, ARPoison)) else ()
    with pytest.raises(TypeError, match="numpy"):
        t(np.zeros((32, 32, 3), np.uint8), *extra)
    with pytest.raises(ValueError, match="channels-last"):
        t(torch.zeros(32, 32, 3, dtype=torch.uint8), *extra)
    with pytest.raises(ValueError, match="channels-last"):
        t(tv_tensors.Image(torch.zeros(3, 32, 32)).permute(1, 2, 0).as_subclass(torch.Tensor), *extra)


def test_functionals_pass_geometry_through_and_refuse_numpy(gen):
    s = sample(gen)
    kernel = ssk_kernel()
    for key in ("mask", "boxes", "points"):
        assert F.sharpen(s[key], kernel) is s[key] and F.lowpass(s[key]) is s[key]
        assert F.classwise_blur(s[key], 1, torch.ones(10, 3, 3)) is s[key]
    assert F.sharpen(s["image"], kernel).shape == (3, 30, 30)
    with pytest.raises(TypeError, match="numpy"):
        F.lowpass(np.zeros((3, 32, 32), np.float32))
    with pytest.raises(TypeError, match="lowpass: expected a PIL image"):
        F.lowpass("not an image")


def test_random_sharpen_draws_in_make_params(gen):
    t = RandomSharpen(seed=3)
    x = torch.rand(5, 3, 16, 16)
    params = RandomSharpen(seed=3).make_params([x])
    assert params["kernels"].shape == (5, 3, 3)
    assert torch.equal(t(x), F.sharpen(x, params["kernels"]))


def _write_png_folder(root, gen, per_class=4, classes=3):
    for k in range(classes):
        (root / f"c{k}").mkdir(parents=True)
        for n in range(per_class):
            pixels = torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8, generator=gen).numpy()
            PIL.Image.fromarray(pixels).save(root / f"c{k}" / f"{n}.png")


@pytest.mark.parametrize("make", [lambda: ARPoison(3, key=11), lambda: ClasswiseBlur(3, seed=0)])
def test_poisoned_image_folder_through_workers_equals_poisoning_the_batch(tmp_path, gen, make):
    _write_png_folder(tmp_path, gen)
    poison = make()
    folder = ImageFolder(str(tmp_path))
    to_float = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    data = PoisonedDataset(folder, poison, transforms=to_float)
    loader = DataLoader(data, batch_size=5, num_workers=2)
    images, labels = map(torch.cat, zip(*loader))
    assert images.dtype == torch.float32 and images.shape == (12, 3, 32, 32)
    clean = torch.stack([torch.from_numpy(np.asarray(PIL.Image.open(p))).permute(2, 0, 1)
                         for p, _ in folder.samples])
    targets = torch.tensor(folder.targets)
    expected = to_float(poison.poison_batch(clean, targets, torch.arange(12)))
    assert torch.equal(labels, targets) and torch.equal(images, expected)


def test_poisoned_dataset_refuses_what_it_cannot_use():
    with pytest.raises(TypeError, match="base"):
        PoisonedDataset(object(), ClasswiseBlur())
    with pytest.raises(TypeError, match="poison"):
        PoisonedDataset([], lambda *a: a)
    with pytest.raises(TypeError, match="transforms"):
        PoisonedDataset([], ClasswiseBlur(), transforms=3)
