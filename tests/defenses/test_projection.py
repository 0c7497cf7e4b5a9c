"""Orthogonal projection defense: fitting, the basis, save/load, the transform, the CLI,
and the effect on a real class-wise poison (small, fast version of the experiment)."""
from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from poisonkit import ops
from poisonkit.cli import main
from poisonkit.defenses.projection import Projection, basis_of, fit
from poisonkit.transforms import ClasswiseBlur, OrthogonalProjection

FAST = dict(epochs=3, milestones=(2,), batch_size=128, progress=False)


@pytest.fixture(scope="module")
def subset(cifar):
    """200 real images per class (2000), in the .npz's class-sorted order."""
    idx = torch.cat([torch.arange(k * 1000, k * 1000 + 200) for k in range(10)])
    return cifar["x_train"][idx], cifar["y_train"][idx]


@pytest.fixture(scope="module")
def fitted(subset):
    return fit(subset, 10, **FAST)


def flat(x: torch.Tensor) -> torch.Tensor:
    x = x.double() / 255 if x.dtype == torch.uint8 else x.double()
    return x.reshape(len(x), -1)


def test_basis_is_orthonormal(fitted):
    Q = fitted.Q
    assert Q.dtype == torch.float32 and Q.shape == (3072, 10)
    torch.testing.assert_close(Q.T @ Q, torch.eye(10), atol=1e-5, rtol=0)
    assert fitted.image_shape == (3, 32, 32) and fitted.weight.shape == (10, 3072)
    assert 0.0 <= fitted.train_accuracy <= 1.0


def test_basis_spans_the_weight_rows(gen):
    w = torch.randn(7, 300, generator=gen) * torch.rand(7, 1, generator=gen) * 10
    Q = basis_of(w)
    # Projector onto the row space, from the pseudo-inverse (independent of QR).
    w64 = w.double()
    expected = w64.T @ torch.linalg.pinv(w64 @ w64.T) @ w64
    torch.testing.assert_close(Q @ Q.T, expected, atol=1e-10, rtol=0)
    with pytest.raises(ValueError, match="non-zero"):
        basis_of(torch.cat([w, torch.zeros(1, 300)]))


def test_projected_images_are_orthogonal_to_every_weight_row(fitted, subset):
    x = subset[0][::40]
    out = fitted.apply(x)
    w = fitted.weight.double()
    scores = flat(out) @ w.T  # what the linear model sees of the projected images
    scale = flat(x).norm(dim=1, keepdim=True) * w.norm(dim=1)
    assert (scores.abs() / scale).max() < 1e-5
    torch.testing.assert_close(fitted.apply(out), out, atol=1e-5, rtol=0)


def test_fit_is_deterministic_and_accepts_every_input_form(subset, tmp_path):
    x, y = subset[0][::10], subset[1][::10]
    a = fit((x, y), 10, **FAST)
    b = fit((x.float() / 255, y), 10, **FAST)
    torch.testing.assert_close(a.Q, b.Q, atol=1e-5, rtol=0)
    dataset = torch.utils.data.TensorDataset(x, y)
    c = fit(dataset, 10, **FAST)
    assert torch.equal(a.Q, c.Q) and a.train_accuracy == c.train_accuracy
    path = tmp_path / "small.npz"
    np.savez(path, x_train=x.permute(0, 2, 3, 1).numpy(), y_train=y.numpy(),
             x_test=x[:2].permute(0, 2, 3, 1).numpy(), y_test=y[:2].numpy())
    d = fit(str(path), 10, **FAST)
    assert torch.equal(a.Q, d.Q)
    assert not torch.equal(a.Q, fit((x, y), 10, seed=1, **FAST).Q)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(num_classes=0), ValueError, "num_classes"),
    (dict(num_classes=5), ValueError, r"labels must lie in \[0, 5\)"),
    (dict(num_classes=10, epochs=0), ValueError, "epochs"),
    (dict(num_classes=10, lr=float("nan")), ValueError, "lr"),
    (dict(num_classes=10, batch_size=0), ValueError, "batch_size"),
    (dict(num_classes=10, milestones=(0,)), ValueError, "milestones"),
])
def test_fit_bad_arguments(subset, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit((subset[0][::100], subset[1][::100]), **kwargs)


def test_fit_bad_data(tmp_path):
    x = torch.zeros(4, 3, 4, 4, dtype=torch.uint8)
    y = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="no images"):
        fit((x[:0], y[:0]), 2)
    with pytest.raises(ValueError, match="uint8 or float32 NCHW"):
        fit((x.double(), y), 2)
    with pytest.raises(ValueError, match="labels must be integers"):
        fit((x, y.float()), 2)
    with pytest.raises(ValueError, match="NaN"):
        fit((torch.full((4, 3, 4, 4), float("nan")), y), 2)
    with pytest.raises(FileNotFoundError):
        fit(str(tmp_path / "missing.npz"), 2)
    with pytest.raises(TypeError, match="data"):
        fit(42, 2)


def test_save_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "projection.pt")
    assert not list(tmp_path.glob("*.tmp"))
    loaded = Projection.load(path)
    assert torch.equal(loaded.Q, fitted.Q) and torch.equal(loaded.weight, fitted.weight)
    assert loaded.image_shape == fitted.image_shape
    assert loaded.train_accuracy == fitted.train_accuracy
    assert loaded.fit_args == fitted.fit_args and loaded.fit_args["epochs"] == 3
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(loaded.apply(x), fitted.apply(x))


def test_load_refuses_bad_files(fitted, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such projection"):
        Projection.load(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("not a projection")
    with pytest.raises(ValueError, match="not a saved projection"):
        Projection.load(tmp_path / "text.pt")
    torch.save({"Q": fitted.Q}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a saved projection"):
        Projection.load(tmp_path / "other.pt")
    good = torch.load(fitted.save(tmp_path / "good.pt"), weights_only=True)
    for key, value, match in [("Q", good["Q"][:-1], r"expected shape \[3072, K\]"),
                              ("image_shape", [3, 32, 31], r"expected shape \[2976, K\]"),
                              ("weight", good["weight"][:, :10], "weight"),
                              ("Q", good["Q"] * 2, "not orthonormal"),
                              ("version", 99, "version")]:
        torch.save({**good, key: value}, tmp_path / "bad.pt")
        with pytest.raises(ValueError, match=match):
            Projection.load(tmp_path / "bad.pt")


def test_projection_refuses_nan_basis(fitted):
    Q = fitted.Q.clone()
    Q[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        Projection(Q, fitted.image_shape, 0.5, fitted.weight)


def test_transform(fitted, tmp_path):
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    t = OrthogonalProjection(fitted)
    assert torch.equal(t(x), ops.project_out(x, fitted.Q))
    assert torch.equal(t(x[1]), ops.project_out(x[1:2], fitted.Q)[0])
    clamped = OrthogonalProjection(fitted.save(tmp_path / "p.pt"), clamp=True)(x)
    assert torch.equal(clamped, ops.project_out(x, fitted.Q, clamp=True))
    pil = PIL.Image.fromarray(x[0].permute(1, 2, 0).numpy())
    out = t(pil)
    assert isinstance(out, PIL.Image.Image)
    assert torch.equal(torch.from_numpy(np.array(out)).permute(2, 0, 1), clamped[0])
    with pytest.raises(ValueError, match=r"shape \(3, 32, 32\)"):
        t(torch.zeros(3, 28, 28, dtype=torch.uint8))


def test_cli_fit_projection(subset, tmp_path, capsys):
    x, y = subset[0][::20], subset[1][::20]
    data = tmp_path / "poisoned.npz"
    np.savez(data, x_train=x.permute(0, 2, 3, 1).numpy(), y_train=y.numpy(),
             x_test=x[:2].permute(0, 2, 3, 1).numpy(), y_test=y[:2].numpy())
    out = tmp_path / "projection.pt"
    assert main(["fit-projection", "--data", str(data), "--out", str(out), "--epochs", "2",
                 "--milestones", "1", "--batch-size", "32"]) == 0
    loaded = Projection.load(out)
    assert loaded.Q.shape == (3072, 10) and loaded.fit_args["num_images"] == len(x)
    assert "training accuracy" in capsys.readouterr().out


def test_projection_removes_a_classwise_poison(subset):
    """The experiment in small: a linear model fits the class-wise blur poison far better
    than clean data; after projection a fresh linear model does no better than on clean."""
    x, y = subset
    poisoned, _ = ClasswiseBlur()(x, y)
    settings = dict(epochs=5, milestones=(3, 4), batch_size=128, progress=False)
    clean = fit((x, y), 10, **settings).train_accuracy
    projection = fit((poisoned, y), 10, **settings)
    refit = fit((projection.apply(poisoned), y), 10, **settings).train_accuracy
    assert projection.train_accuracy > clean + 0.1
    assert refit < clean
