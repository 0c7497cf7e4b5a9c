"""Every protocol's transform order and geometry on a tiny batch, against a hand-written
per-image torchvision pipeline of the reference (same random draws replayed)."""
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from poisonkit.data import synthetic_images
from poisonkit.eval.augment import CIFAR_MEAN, CIFAR_STD, REFERENCE_STD
from poisonkit.eval.conditions import Context, make_defense
from poisonkit.eval.protocols import PROTOCOLS, get_protocol, train_view
from poisonkit.defenses.sharpen import rsk_kernels

CTX = Context(num_classes=10, image_shape=(3, 32, 32))
N = 6


@pytest.fixture(scope="module")
def images():
    return synthetic_images(N)[0]


def crop_draws(seed: int, n: int, side: int, out: int = 32, padding: int = 4):
    """The draws of augment.crop_flip, in its documented order."""
    g = torch.Generator().manual_seed(seed)
    span = side + 2 * padding - out + 1
    dy = torch.randint(0, span, (n, 1), generator=g)
    dx = torch.randint(0, span, (n, 1), generator=g)
    flip = torch.rand(n, 1, generator=g) < 0.5
    return [(int(a), int(b), bool(f)) for a, b, f in zip(dy, dx, flip)]


def random_crop_flip(img, draw, padding=4, size=32):
    """transforms.RandomCrop(size, padding) + RandomHorizontalFlip with given draws
    (works on tensors and PIL images, as torchvision's functional API does)."""
    i, j, flip = draw
    img = TF.crop(TF.pad(img, padding), i, j, size, size)
    return TF.hflip(img) if flip else img


def dct_matrix(n):
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    c = np.sqrt(2 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    c[0] /= np.sqrt(2)
    return torch.tensor(c, dtype=torch.float64)


def reference_sharpen_dct(im, kernel, percentage=30):
    """util.py sharpen_image (conv2d groups=3, no padding, clamp) then get_dct_image
    (orthonormal DCT rows and columns, keep the top-left int(H * p / 100) block, clamp)."""
    w = kernel.view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    s = F.conv2d(im, w, groups=3).clamp(0, 1).double()
    c = dct_matrix(s.shape[-1])
    coef = c @ s @ c.T
    r = int(s.shape[-1] * percentage / 100)
    mask = torch.zeros_like(coef)
    mask[:, :r, :r] = 1
    return (c.T @ (coef * mask) @ c).clamp(0, 1).float()


def test_every_protocol_is_named_and_sourced():
    for name, p in PROTOCOLS.items():
        assert p.name == name and len(p.source) > 40
    with pytest.raises(ValueError, match="protocol"):
        get_protocol("kuangliu")


def test_rsk_ff_reference_geometry(images):
    """ToTensor -> RSK (valid, 32->30) -> FF -> RandomCrop(32, padding=4) zero-padded ->
    flip -> Normalize(0.2023 std): a >= 2 px black frame on every training image."""
    d = make_defense("rsk+ff", CTX)
    torch.manual_seed(5)
    out = train_view(d, get_protocol(d.protocol), images, torch.Generator().manual_seed(9))
    torch.manual_seed(5)
    kernels = rsk_kernels(N, 2.5, 0.1)
    for img, k, draw, got in zip(images, kernels, crop_draws(9, N, 30), out):
        ref = reference_sharpen_dct(TF.to_tensor(img.permute(1, 2, 0).numpy()), k)
        ref = TF.normalize(random_crop_flip(ref, draw), CIFAR_MEAN, REFERENCE_STD)
        torch.testing.assert_close(got, ref, atol=2e-5, rtol=0)
    zero = TF.normalize(torch.zeros(3, 1, 1), CIFAR_MEAN, REFERENCE_STD)
    for got in out:  # the frame: >= 2 of the 38 - 30 = 8 padded rows survive any crop
        rows = [r for r in range(32) if torch.allclose(got[:, r], zero[:, 0].expand(3, 32))]
        assert len(rows) >= 2
    assert get_protocol(d.protocol).grad_clip == 5.0


def test_rsk_ff_reflect_variant_geometry(images):
    d = make_defense("rsk+ff-reflect", CTX)
    torch.manual_seed(5)
    out = train_view(d, get_protocol(d.protocol), images, torch.Generator().manual_seed(9))
    torch.manual_seed(5)
    kernels = rsk_kernels(N, 2.5, 0.1)
    for img, k, draw, got in zip(images, kernels, crop_draws(9, N, 32), out):
        ref = reference_sharpen_dct(TF.to_tensor(img.permute(1, 2, 0).numpy()), k)
        ref = F.pad(ref[None], (1, 1, 1, 1), mode="reflect")[0]
        ref = TF.normalize(random_crop_flip(ref, draw), CIFAR_MEAN, REFERENCE_STD)
        torch.testing.assert_close(got, ref, atol=2e-5, rtol=0)


@pytest.mark.parametrize("spec", ["grayscale", "jpeg:10"])
def test_iss_pipeline_on_pil_images(images, spec):
    """aug_train(): Grayscale(3) / JPEG on the PIL image -> RandomCrop(32, padding=4) ->
    flip -> ToTensor, no Normalize."""
    d = make_defense(spec, CTX)
    out = train_view(d, get_protocol(d.protocol), images, torch.Generator().manual_seed(2))
    for img, draw, got in zip(images, crop_draws(2, N, 32), out):
        pil = Image.fromarray(img.permute(1, 2, 0).numpy())
        if spec == "grayscale":
            pil = T.Grayscale(3)(pil)
        ref = TF.to_tensor(random_crop_flip(pil, draw))
        if spec == "grayscale":
            torch.testing.assert_close(got, ref, atol=0, rtol=0)
        else:  # PIL's and torchvision's libjpeg builds may differ by a level or two
            buf = io.BytesIO()
            pil.save(buf, "JPEG", quality=10)
            ref = TF.to_tensor(random_crop_flip(Image.open(buf), draw))
            assert (got - ref).abs().max() <= 8 / 255 and (got - ref).abs().mean() < 1 / 255


@pytest.mark.parametrize("spec, std", [("pgd:cuda", None), ("pgd:madry", None), ("none", CIFAR_STD)])
def test_crop_flip_protocols_without_a_transform(images, spec, std):
    """CUDA and ISS (pgd:madry): ToTensor only (no Normalize); the harness: Normalize with
    the true std."""
    d = make_defense(spec, CTX)
    out = train_view(d, get_protocol(d.protocol), images, torch.Generator().manual_seed(4))
    for img, draw, got in zip(images, crop_draws(4, N, 32), out):
        ref = random_crop_flip(TF.to_tensor(img.permute(1, 2, 0).numpy()), draw)
        ref = ref if std is None else TF.normalize(ref, CIFAR_MEAN, std)
        torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)


def test_ar_protocol_normalises_with_the_reference_constants(images):
    out = train_view(make_defense("none", CTX), get_protocol("ar"), images, torch.Generator().manual_seed(1))
    for img, draw, got in zip(images, crop_draws(1, N, 32), out):
        ref = random_crop_flip(TF.to_tensor(img.permute(1, 2, 0).numpy()), draw)
        torch.testing.assert_close(got, TF.normalize(ref, CIFAR_MEAN, REFERENCE_STD), atol=1e-6, rtol=0)


def reference_step2(x):
    """The step-2 chain per [0, 1] image as the reference composes it (torchvision v1
    transforms; global RNG seeded 11), then crop and flip (crop_draws seed 6), Normalize."""
    torch.manual_seed(11)
    chain = T.Compose([T.RandomRotation(10), T.RandomAffine(0, shear=10, scale=(0.8, 1.2)),
                       T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2)])
    return [TF.normalize(random_crop_flip(chain(img), draw), CIFAR_MEAN, REFERENCE_STD)
            for img, draw in zip(x, crop_draws(6, N, 32))]


def test_projection_step2_chain_order(images):
    """RandomRotation(10) -> RandomAffine(0, shear=10, scale=(0.8, 1.2)) -> ColorJitter(0.2,
    0.2, 0.2) -> RandomCrop(32, padding=4) -> flip -> Normalize, per image, torchvision v1
    transforms as the reference composes them (same global-RNG draws)."""
    proto = get_protocol("projection-step2")
    x = images.float() / 255
    torch.manual_seed(11)
    out = train_view(lambda b: b, proto, x, torch.Generator().manual_seed(6))
    for got, ref in zip(out, reference_step2(x)):
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    assert dict(proto.recipe) == {"batch_size": 128, "weight_decay": 1e-4, "nesterov": False,
                                  "schedule": "multistep"}
    assert (proto.cutmix_prob, proto.cutmix_beta, proto.grad_clip) == (0.5, 1.0, None)


def test_projection_step2_trains_on_the_projected_images(images, tmp_path):
    """The reference projects the stored training set (x - Q Q^T x on flattened [0, 1]
    images, Q from the unit-norm weight rows, no clamp), then runs the step-2 chain."""
    from poisonkit.defenses.projection import fit
    fitted = fit((images, torch.arange(N) % 10), 10, epochs=1, seed=0, progress=False)
    fitted.save(tmp_path / "p.pt")
    d = make_defense(f"projection:path={tmp_path / 'p.pt'}", CTX)
    proto = get_protocol(d.protocol)
    assert proto.name == "projection-step2"
    torch.manual_seed(11)
    out = train_view(d, proto, images, torch.Generator().manual_seed(6))
    w = fitted.weight.double()
    q, _ = torch.linalg.qr((w / w.norm(dim=1, keepdim=True)).T)
    flat = images.double().flatten(1) / 255
    projected = (flat - flat @ q @ q.T).float().view(images.shape)
    assert projected.min() < 0 or projected.max() > 1  # so a clamp before the chain would show
    for got, ref in zip(out, reference_step2(projected)):
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)


class OneBatch(list):
    """A loader of given batches (no DataLoader: its iterator draws from the global RNG)."""
    sampler = None


class InputRecorder(torch.nn.Module):
    """A linear model that keeps every training-mode input it is given."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 32 * 32, 10)
        self.inputs = []

    def forward(self, x):
        if self.training:
            self.inputs.append(x.detach().clone())
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("spec, protocol", [("none", "harness"), ("rsk+ff", "rskff"),
                                            ("rsk+ff-reflect", "rskff"), ("grayscale", "iss"),
                                            ("none", "ar"), ("none", "cuda"),
                                            ("none", "projection-step2")])
def test_the_training_loop_feeds_the_model_what_train_view_checks(images, spec, protocol, monkeypatch):
    """train() composes a protocol as train_view (which the tests above check against the
    references): the loader's defended batch -> augment (same generator draws) -> prep."""
    from poisonkit.eval import train as train_module
    monkeypatch.setattr(train_module, "cutmix", lambda x, y, prob, beta, rng: (x, y, y, 1.0))
    defended = make_defense(spec, CTX)(images)
    proto = get_protocol(protocol)
    model = InputRecorder()
    torch.manual_seed(3)  # the step-2 chain draws from the global generator
    loader = OneBatch([(defended, torch.arange(N) % 10)])
    train_module.train(model, loader, images, torch.arange(N) % 10,
                       train_module.TrainConfig(epochs=1, batch_size=N), torch.device("cpu"),
                       verbose=False, protocol=proto)
    torch.manual_seed(3)
    expected = train_view(lambda b: defended, proto, images, torch.Generator().manual_seed(0))
    assert len(model.inputs) == 1
    torch.testing.assert_close(model.inputs[0], expected, atol=1e-6, rtol=0)
