"""AR poison: sampler acceptance tests (re-checked independently with torch.conv2d),
save/load, detect, ARPoison on samples/batches/DataLoader workers, PoisonedDataset."""
import pytest
import torch
import torch.nn.functional as F
from torchvision import tv_tensors

from poisonkit import ops
from poisonkit.data import PoisonedDataset
from poisonkit.poisons.ar import ARCoefficients, detect, sample_coefficients
from poisonkit.transforms import AR_PRESETS, ARPoison


@pytest.fixture(scope="module")
def set10():
    return sample_coefficients(10, seed=0, progress=False)


@pytest.fixture(scope="module")
def set100():
    return sample_coefficients(100, seed=0, progress=False)


def assert_accepted(ar_set):
    """Replays every acceptance test of DESIGN 3.1 on the sampler's own trials (recorded
    candidate numbers), with responses from torch.conv2d rather than the ar_filter op."""
    meta, coeffs = ar_set.metadata, ar_set.coeffs
    assert torch.isfinite(coeffs).all()
    assert torch.all(coeffs[..., 2, 2] == 0)
    assert torch.allclose(coeffs.sum((-2, -1)), torch.ones(coeffs.shape[:2]), atol=1e-5)
    k_, trials = coeffs.shape[0], meta["trials"]
    labels = torch.arange(k_).repeat_interleave(trials)
    indices = (torch.tensor(meta["accepted_candidates"])[:, None] * trials
               + torch.arange(trials)).flatten()
    raw = ops.ar_generate(coeffs, labels, indices, meta["seed"], meta["size"], meta["size"],
                          meta["crop"], eps=None)
    assert torch.isfinite(raw).all()
    assert raw.flatten(1).norm(dim=1).max() <= meta["max_norm"]
    filters = coeffs.clone()
    filters[..., 2, 2] = -1
    resp = F.conv2d(raw, filters)  # [K * trials, K, H-2, W-2]
    # The response test runs on each class's last trial scaled to unit L2 norm (the
    # reference's generate(eps=1.0, p=2) output), against every earlier class's filter.
    last = raw.unflatten(0, (k_, trials))[:, -1]
    unit = last / last.flatten(1).norm(dim=1)[:, None, None, None]
    relu = F.conv2d(unit, filters).clamp_min(0).sum((-2, -1))  # [K, K]
    earlier = torch.arange(k_)[None, :] < torch.arange(k_)[:, None]
    assert relu[earlier].min() >= meta["min_response"] * (1 - 1e-4)
    own = resp[torch.arange(k_ * trials), labels]
    assert own.abs().amax() <= 1e-4 * raw.abs().amax()


def test_sampler_10_classes(set10):
    meta = set10.metadata
    assert set10.coeffs.shape == (10, 3, 3, 3)
    assert meta["min_response"] == 10 and meta["max_norm"] == 50
    assert sum(meta["rejections"].values()) + 10 == meta["candidates"]
    assert set(meta["rejections"]) == {"tiny_sum", "nonfinite", "norm", "response"}
    assert_accepted(set10)


def test_sampler_100_classes(set100):
    assert set100.coeffs.shape == (100, 3, 3, 3)
    assert set100.metadata["min_response"] == 3
    assert_accepted(set100)


def test_sampler_is_deterministic_and_seeded(set10):
    again = sample_coefficients(10, seed=0, block=1000, progress=False)  # other block size
    assert torch.equal(again.coeffs, set10.coeffs)
    assert again.metadata == set10.metadata  # same candidates examined, same rejections
    assert not torch.equal(sample_coefficients(10, seed=1, progress=False).coeffs, set10.coeffs)


def test_sampler_bad_input():
    with pytest.raises(ValueError, match="num_classes"):
        sample_coefficients(0)
    with pytest.raises(ValueError, match="seed"):
        sample_coefficients(10, seed=-1)
    with pytest.raises(RuntimeError, match="accepted after"):
        sample_coefficients(2, seed=0, max_norm=1e-6, max_candidates=50, progress=False)


def test_save_load_round_trip(set10, tmp_path):
    path = set10.save(tmp_path / "ar10.pt")
    loaded = ARCoefficients.load(path)
    assert torch.equal(loaded.coeffs, set10.coeffs)
    assert loaded.metadata == set10.metadata
    assert not list(tmp_path.glob("*.tmp"))


def test_nan_class_is_impossible(set10, tmp_path):
    bad = set10.coeffs.clone()
    bad[3, 1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"classes \[3\] contain NaN"):
        ARCoefficients(bad)
    torch.save({"coeffs": bad, "metadata": {}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="NaN"):
        ARCoefficients.load(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="NaN"):
        ARPoison(bad)
    with pytest.raises(FileNotFoundError):
        ARCoefficients.load(tmp_path / "missing.pt")


def test_detect_float_perturbations(set10):
    labels = torch.arange(500) % 10
    delta = ops.ar_generate(set10.coeffs, labels, torch.arange(500), 42, 32, 32)
    assert torch.equal(detect(delta, set10), labels)
    assert detect(delta[7], set10) == labels[7]


@pytest.mark.parametrize("name", ["set10", "set100"])
def test_detect_quantised_on_mid_grey(name, request):
    ar_set = request.getfixturevalue(name)
    k = ar_set.num_classes
    labels = torch.arange(1000) % k
    poison = ARPoison(ar_set, key=42)
    grey = torch.full((1000, 3, 32, 32), 128, dtype=torch.uint8)
    poisoned, _, _ = poison(grey, labels, torch.arange(1000))
    assert poisoned.dtype == torch.uint8
    accuracy = (detect(poisoned, ar_set) == labels).double().mean()
    assert accuracy >= 0.99


def test_arpoison_matches_definition_and_norms(set10, gen):
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels, indices = torch.arange(8), torch.arange(100, 108)
    poison = ARPoison(set10, eps=1.0, key=7)
    delta = ops.ar_generate(set10.coeffs, labels, indices, 7, 32, 32, 4, 1.0, 2)
    assert torch.allclose(delta.flatten(1).norm(dim=1), torch.ones(8), atol=1e-5)
    out, out_labels, out_indices = poison(x, labels, indices)
    expected = torch.floor((x / 255 + delta).clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    assert torch.equal(out, expected) and out_labels is labels and out_indices is indices
    xf = x.float() / 255
    outf = poison.poison_batch(xf, labels, indices)
    assert torch.allclose(outf, (xf + delta).clamp(0, 1))
    linf = ARPoison(set10, eps=8 / 255, p="inf", key=7)
    d = linf(torch.full((2, 3, 32, 32), 0.5), labels[:2], indices[:2])[0] - 0.5
    assert torch.allclose(d.abs().amax((1, 2, 3)), torch.full((2,), 8 / 255), atol=1e-6)


def test_arpoison_sample_equals_batch_and_keeps_type(set10):
    poison = ARPoison(set10, key=3)
    x = torch.rand(4, 3, 32, 32)
    labels, indices = torch.tensor([1, 2, 3, 4]), torch.tensor([9, 8, 7, 6])
    batch = poison.poison_batch(x, labels, indices)
    single, label, index = poison(x[2], 3, 7)
    assert torch.equal(single, batch[2]) and (label, index) == (3, 7)
    img, _, _ = poison(tv_tensors.Image(x[0]), 1, 9)
    assert isinstance(img, tv_tensors.Image) and torch.equal(img.as_subclass(torch.Tensor), batch[0])


def test_arpoison_bad_input(set10):
    poison = ARPoison(set10)
    with pytest.raises(ValueError, match="label"):
        poison(torch.rand(2, 3, 8, 8), torch.tensor([1]), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="indices"):
        poison(torch.rand(3, 8, 8), 1, 0.5)
    with pytest.raises(ValueError, match="channels"):
        poison(torch.rand(1, 8, 8), 1, 0)
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 10\)"):
        poison(torch.rand(3, 8, 8), 10, 0)
    with pytest.raises(ValueError, match="p"):
        ARPoison(set10, p=1)
    with pytest.raises(ValueError, match="eps"):
        ARPoison(set10, eps=-1)
    with pytest.raises(ValueError, match="preset"):
        ARPoison.preset("mnist")


def test_presets(set10):
    assert AR_PRESETS["stl10"]["size"] == 96 and AR_PRESETS["imagenet"]["crop"] == 2
    stl = ARPoison.preset("stl10", coefficients=set10, key=1)
    assert (stl.eps, stl.crop) == (3.0, 4)
    out = stl.poison_batch(torch.full((3, 96, 96), 0.5), 4, 11)
    assert (out - 0.5).norm().item() == pytest.approx(3.0, rel=1e-4)
    partial = ARPoison.preset("cifar10", coefficients=set10, key=1, ratio=0.25)
    assert partial.ratio == 0.25 and partial.eps == 1.0


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, n):
        self.x = torch.full((n, 3, 16, 16), 100, dtype=torch.uint8)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], i % 10


def test_poisoned_dataset_same_whatever_workers_and_batches(set10):
    data = PoisonedDataset(_Indexed(24), ARPoison(set10, key=5))
    assert len(data) == 24
    direct = torch.stack([data[i][0] for i in range(24)])
    for workers, batch in [(0, 5), (2, 7)]:
        loader = torch.utils.data.DataLoader(data, batch_size=batch, num_workers=workers)
        assert torch.equal(torch.cat([x for x, _ in loader]), direct)
    assert torch.equal(detect(direct, set10), torch.arange(24) % 10)
