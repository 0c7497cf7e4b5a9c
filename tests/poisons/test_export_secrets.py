"""Whoever receives a published folder cannot regenerate the AR perturbation (issue 14,
finding 2): the manifest's key check used to be an unsalted 16-hex SHA-256 of str(key)
(default key 0; key 1234 found in 0.64 s) and ar_coefficients.pt shipped beside the
images, so subtracting the regenerated perturbation restored 98.9% of the pixels. Here an
attacker uses everything in the folder; the owner, with the key file, still can."""
import json

import numpy as np
import pytest
import torch

from poisonkit import keys
from poisonkit.data import load_npz
from poisonkit.poisons.ar import sample_coefficients
from poisonkit.poisons.export import default_key_file, poison_dataset
from poisonkit.transforms import ARPoison


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secrets")
    x = torch.from_numpy(np.random.default_rng(0).integers(40, 216, (60, 32, 32, 3), dtype=np.uint8))
    y = np.arange(60) % 10
    np.savez(tmp / "clean.npz", x_train=x.numpy(), y_train=y, x_test=x[:4].numpy(), y_test=y[:4])
    out = poison_dataset(tmp / "clean.npz", tmp / "pub", method="ar", progress=False)  # defaults
    return load_npz(tmp / "clean.npz"), out.parent, default_key_file(tmp / "pub")


def restored_fraction(clean, poisoned, poison) -> float:
    """Fraction of pixels exactly restored by subtracting `poison`'s perturbation."""
    delta = poison.perturbation(clean["y_train"], torch.arange(len(clean["y_train"])), 32, 32)
    guess = (poisoned.float() - delta * 255).round().clamp(0, 255)
    return (guess == clean["x_train"].float()).float().mean().item()


def test_the_folder_holds_nothing_that_regenerates_the_perturbation(published):
    clean, folder, key_file = published
    assert sorted(p.name for p in folder.iterdir()) == ["clean.npz", "manifest.json"]
    assert key_file.parent == folder.parent and folder not in key_file.parents
    manifest = json.loads((folder / "manifest.json").read_text())
    text = json.dumps(manifest)
    for secret in ("coefficients", "seed", "kernels", "key\"", "philox"):
        assert secret not in text, secret
    poisoned = load_npz(folder / "clean.npz")["x_train"]

    # The owner, with the key file, restores almost every pixel (the test can fail).
    record = keys.read_key_file(key_file)
    owner = ARPoison(torch.tensor(record["secrets"]["ar_coefficients"]),
                     key=keys.philox_key(record["key"]))
    assert restored_fraction(clean, poisoned, owner) > 0.9

    # The attacker: the key check resists small keys and every number in the manifest ...
    check = manifest["key_check"]
    guesses = list(range(24)) + [int(manifest["dataset_id"], 16), int(check["salt"], 16),
                                 int(check["hash"], 16)]
    assert not any(keys.matches(k, check) for k in guesses if k < 1 << 128)
    # ... and the reference's coefficient seeds with guessable keys restore nothing.
    for seed in (0,):
        coeffs = sample_coefficients(10, seed=seed, progress=False)
        for key in (0, 1, 1234, int(manifest["dataset_id"], 16) % (1 << 64)):
            attack = ARPoison(coeffs, key=key)
            assert restored_fraction(clean, poisoned, attack) < 0.5
