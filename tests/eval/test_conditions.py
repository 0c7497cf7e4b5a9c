"""Every registered condition's wiring, spec parsing, and the errors for unknown and
unavailable names and bad parameters."""
import pytest
import torch
import torch.nn.functional as F

from poisonkit.data import synthetic_images
from poisonkit.defenses.jpeg import jpeg_roundtrip
from poisonkit.eval.conditions import (DEFENSES, POISONS, UNAVAILABLE_DEFENSES, UNAVAILABLE_POISONS,
                                       ConditionError, ConditionUnavailable, Context, Defense,
                                       is_available, make_defense, make_poison, parse_spec)
from poisonkit.transforms import ClasswiseBlur, Sharpen

CTX = Context(num_classes=10, image_shape=(3, 32, 32))


@pytest.fixture(scope="module")
def batch():
    return synthetic_images(12)


def test_registries_and_registration_points_are_disjoint():
    assert not set(POISONS) & set(UNAVAILABLE_POISONS)
    assert not set(DEFENSES) & set(UNAVAILABLE_DEFENSES)


@pytest.mark.parametrize("spec, expected", [
    ("jpeg", ("jpeg", [], {})), ("jpeg:10", ("jpeg", [10], {})),
    ("pgd:eps=4,steps=2", ("pgd", [], {"eps": 4, "steps": 2})),
    ("rsk:std=0.2,padding=reflect", ("rsk", [], {"std": 0.2, "padding": "reflect"})),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


def test_no_poison(batch):
    assert make_poison("none", CTX) is None


def test_blur_poison_is_the_reference_classwise_blur(batch):
    x, y = batch
    i = torch.arange(len(x))
    assert torch.equal(make_poison("blur", CTX)(x, y, i), ClasswiseBlur(10)(x, y)[0])
    assert not torch.equal(make_poison("blur:key=1", CTX)(x, y, i), ClasswiseBlur(10)(x, y)[0])


def test_ar_poison_is_keyed_by_sample_index(batch):
    from poisonkit.transforms import ARPoison
    x, y = batch
    i = torch.arange(len(x))
    poisoned = make_poison("ar", CTX)(x, y, i)
    # the reference's published coefficients by default, a sampled set on request
    assert torch.equal(poisoned, ARPoison.preset("cifar10-published", key=0)(x, y, i)[0])
    assert torch.equal(make_poison("ar:coefficients=sampled", CTX)(x, y, i),
                       ARPoison(10, key=0, seed=0)(x, y, i)[0])
    # the same sample at another position in the set gets another perturbation
    assert not torch.equal(make_poison("ar", CTX)(x, y, i + 1), poisoned)
    assert not torch.equal(make_poison("ar:key=3", CTX)(x, y, i), poisoned)


def test_every_defense_keeps_the_image_geometry_or_a_valid_filter_size(batch):
    x, y = batch
    ctx = Context(num_classes=10, image_shape=(3, 32, 32), train_images=x, train_labels=y)
    for name in DEFENSES:
        out = make_defense(name, ctx)(x)
        assert out.shape in (x.shape, (12, 3, 30, 30)), name
        assert out.dtype in (torch.uint8, torch.float32), name


def test_no_defense_is_the_identity(batch):
    d = make_defense("none", CTX)
    assert torch.equal(d(batch[0]), batch[0]) and d.adversary is None and not d.apply_to_test


def test_ssk_is_valid_sharpening_left_for_the_crop_to_pad(batch):
    x, _ = batch
    out = make_defense("ssk", CTX)(x)
    torch.testing.assert_close(out, Sharpen(padding="valid")(x.float() / 255))
    assert make_defense("ssk", CTX).protocol == "rskff"


def test_rsk_ff_reflect_variant_pads_back_and_the_reference_does_not(batch):
    x, _ = batch
    torch.manual_seed(3)
    ref = make_defense("rsk+ff", CTX)(x)
    torch.manual_seed(3)
    variant = make_defense("rsk+ff-reflect", CTX)(x)
    assert ref.shape == (12, 3, 30, 30) and variant.shape == x.shape
    torch.testing.assert_close(variant, F.pad(ref, (1, 1, 1, 1), mode="reflect"))


def test_rsk_draws_fresh_kernels_at_every_call(batch):
    x, _ = batch
    torch.manual_seed(0)  # rsk draws from the global RNG: the mean check below depends on the draw
    d = make_defense("rsk", CTX)
    a, b = d(x), d(x)
    assert a.dtype == torch.float32 and not torch.equal(a, b)
    assert (a - x[..., 1:-1, 1:-1] / 255).abs().mean() < 0.1  # a sharpened image, not noise


def test_jpeg_defense(batch):
    x, _ = batch
    assert torch.equal(make_defense("jpeg:25", CTX)(x), jpeg_roundtrip(x, 25))
    assert torch.equal(make_defense("jpeg", CTX)(x), jpeg_roundtrip(x, 10))


def test_grayscale_defense_is_pil_grayscale_on_training_images_only_by_default(batch):
    import numpy as np
    from PIL import Image
    x, _ = batch
    d = make_defense("grayscale", CTX)
    out = d(x)
    assert not d.apply_to_test and d.protocol == "iss" and make_defense("grayscale:test=1", CTX).apply_to_test
    for img, got in zip(x, out):  # the reference's transforms.Grayscale(3) on a PIL image
        pil = Image.fromarray(img.permute(1, 2, 0).numpy()).convert("L").convert("RGB")
        assert torch.equal(got, torch.from_numpy(np.array(pil)).permute(2, 0, 1))


def test_pgd_defense_is_an_adversary_with_pixel_units(batch):
    d = make_defense("pgd:eps=4,steps=3", CTX)
    assert d.transform is None and torch.equal(d(batch[0]), batch[0])
    assert d.adversary.eps == pytest.approx(4 / 255) and d.adversary.steps == 3
    assert make_defense("pgd", CTX).adversary.eps == pytest.approx(8 / 255)


def test_pgd_presets_are_the_reference_attacks_and_protocols():
    cuda, madry = make_defense("pgd:cuda", CTX), make_defense("pgd:madry", CTX)
    assert (cuda.adversary.eps, cuda.adversary.step, cuda.adversary.steps, cuda.adversary.start) == \
        (0.015, pytest.approx(0.015 / 10 * 1.5), 10, "uniform") and cuda.protocol == "cuda"
    assert (madry.adversary.eps, madry.adversary.step, madry.adversary.start) == (0.031, 0.007, "gaussian")
    assert madry.protocol == "iss" and make_defense("pgd:cuda,steps=5", CTX).adversary.steps == 5
    with pytest.raises(ConditionError, match="preset"):
        make_defense("pgd:fgsm", CTX)


def test_defense_pads_a_smaller_output_back_only_when_asked():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    out = Defense(lambda b: b[..., 1:-1, 1:-1], restore="reflect")(x)
    torch.testing.assert_close(out, F.pad(x[..., 1:-1, 1:-1], (1, 1, 1, 1), mode="reflect"))
    assert Defense(lambda b: b[..., 1:-1, 1:-1])(x).shape == (2, 3, 4, 4)


def test_unknown_names_are_errors():
    with pytest.raises(ConditionError, match=r"poison: unknown name 'cuda'.*'blur'"):
        make_poison("cuda", CTX)
    with pytest.raises(ConditionError, match=r"defense: unknown name 'blurr'.*'jpeg'"):
        make_defense("blurr", CTX)
    with pytest.raises(ConditionError, match="non-empty"):
        make_defense("", CTX)


def test_lsp_poison_is_the_keyed_lsp_poison(batch):
    from poisonkit.keys import philox_key
    from poisonkit.poisons.lsp import LSPPoison
    x, y = batch
    i = torch.arange(len(x))
    poisoned = make_poison("lsp", CTX)(x, y, i)
    assert torch.equal(poisoned, LSPPoison(10, key=philox_key(0)).apply(x, y, i))
    assert not torch.equal(make_poison("lsp:key=3", CTX)(x, y, i), poisoned)


def test_ops_poison_searches_the_training_set(batch):
    from poisonkit.poisons.one_pixel import OnePixelShortcut
    x, y = batch
    ctx = Context(10, (3, 32, 32), train_images=x, train_labels=y)
    poisoned = make_poison("ops", ctx)(x, y, torch.arange(len(x)))
    assert torch.equal(poisoned, OnePixelShortcut.search(x, y, 10).apply(x, y))
    assert ((poisoned != x).any(1).flatten(1).sum(1) <= 1).all()  # at most one pixel each
    with pytest.raises(ConditionError, match="training set"):
        make_poison("ops", CTX)


@pytest.mark.parametrize("spec", ["blur", "ar", "lsp", "ops"])
def test_ratio_poisons_a_key_derived_share(batch, spec):
    x, y = batch
    x, y = x.repeat(4, 1, 1, 1), y.repeat(4)
    i = torch.arange(len(x))
    ctx = Context(10, (3, 32, 32), train_images=x, train_labels=y)
    full = make_poison(spec, ctx)(x, y, i)
    part = make_poison(f"{spec}:ratio=0.5,key=3", ctx)(x, y, i)
    changed = (part != x).flatten(1).any(1)
    assert 0 < int(changed.sum()) < len(x)
    assert torch.equal(part, make_poison(f"{spec}:ratio=0.5,key=3", ctx)(x, y, i))
    if spec != "blur":  # blur's key also picks its kernels
        same_key = make_poison(f"{spec}:key=3", ctx)(x, y, i)
        assert torch.equal(part[changed], same_key[changed])
    assert not torch.equal(full, x)
    with pytest.raises(ValueError, match="ratio"):
        make_poison(f"{spec}:ratio=1.5", ctx)


@pytest.mark.parametrize("kind", ["poison", "defense"])
def test_unavailable_conditions_raise_with_the_reason(kind, monkeypatch):
    # A registration point for an op not in this build (patched in: every op has landed).
    table = UNAVAILABLE_POISONS if kind == "poison" else UNAVAILABLE_DEFENSES
    monkeypatch.setitem(table, "future-op", "its op is not merged into this build")
    make = make_poison if kind == "poison" else make_defense
    with pytest.raises(ConditionUnavailable, match="not merged"):
        make("future-op", CTX)
    pair = ("future-op", "none") if kind == "poison" else ("none", "future-op")
    assert not is_available(*pair)


def test_projection_defense_removes_the_fitted_span(batch, tmp_path):
    from poisonkit.defenses.projection import fit
    x, y = batch
    ctx = Context(num_classes=10, image_shape=(3, 32, 32), train_images=x, train_labels=y)
    defense = make_defense("projection:epochs=2", ctx)
    out = defense(x)
    assert out.dtype == torch.float32 and not make_defense("projection", ctx).apply_to_test
    assert make_defense("projection:epochs=1", ctx).protocol == "projection-step2"
    assert make_defense("projection:epochs=1,recipe=0", ctx).protocol == "harness"
    projection = fit((x, y), 10, epochs=2, seed=0, progress=False)
    # the linear model's train accuracy goes into the run's result, beside the accuracy
    assert defense.info == {"linear_train_accuracy": projection.train_accuracy}
    torch.testing.assert_close(out, projection.apply(x), atol=1e-5, rtol=0)
    coeffs = out.flatten(1) @ projection.Q
    assert coeffs.abs().max() < 1e-3  # orthogonal to every weight row's direction


def test_projection_defense_loads_and_checks_a_saved_fit(batch, tmp_path):
    from poisonkit.defenses.projection import fit
    x, y = batch
    small = fit((x[:, :, :16, :16].contiguous(), y), 10, epochs=1, progress=False)
    small.save(tmp_path / "p16.pt")
    with pytest.raises(ConditionError, match=r"fitted on images of shape \(3, 16, 16\)"):
        make_defense(f"projection:path={tmp_path / 'p16.pt'}", CTX)
    with pytest.raises(ConditionError, match="needs the training set"):
        make_defense("projection", CTX)


@pytest.mark.parametrize("spec, match", [("jpeg:quality=0", "quality"), ("jpeg:10,20", "bad parameters"),
                                         ("rsk:sigma=1", "bad parameters.*'rsk' takes"),
                                         ("rsk:padding=wrap", "padding"), ("pgd:eps=-1", "eps")])
def test_bad_parameters_are_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        make_defense(spec, CTX)


@pytest.mark.parametrize("spec", ["em:steps=1,train_steps=1,max_iterations=1",
                                  "em-class:steps=1,train_steps=1,max_iterations=1",
                                  "tap:steps=1,train_epochs=0"])
def test_crafted_poisons_craft_on_the_training_set(batch, spec):
    x, y = synthetic_images(20)
    ctx = Context(10, (3, 32, 32), 0, x, y)
    poisoned = make_poison(spec, ctx)(x, y, torch.arange(len(x)))
    assert poisoned.dtype == torch.uint8 and poisoned.shape == x.shape
    assert 0 < (poisoned.int() - x.int()).abs().max() <= 8
    with pytest.raises(ConditionError, match="needs the training set"):
        make_poison(spec, CTX)
