"""Backbones from local weights (offline), their shape checks and fingerprints."""
import pytest
import torch
import torchvision

from poisonkit.attribution.backbones import pretrained_backbone, pixel_backbone
from poisonkit.attribution.embed import embed


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "resnet18.pt"
    model = torchvision.models.resnet18(weights=None)
    torch.save(model.state_dict(), path)
    return path, model.eval()


def test_torchvision_model_from_a_local_file_gives_its_penultimate_features(resnet_weights):
    path, model = resnet_weights
    bb = pretrained_backbone("torchvision", "resnet18", path)
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    model.fc = torch.nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(bb(x), model((x - mean) / std))
    assert embed(bb, x).shape == (2, 512)


def test_fingerprint_follows_the_weights(resnet_weights, tmp_path):
    path, _ = resnet_weights
    a = pretrained_backbone("torchvision", "resnet18", path)
    assert a.fingerprint() == pretrained_backbone("torchvision", "resnet18", path).fingerprint()
    state = torch.load(path, weights_only=True)
    state["conv1.weight"][0, 0, 0, 0] += 1
    torch.save(state, tmp_path / "other.pt")
    assert pretrained_backbone("torchvision", "resnet18", tmp_path / "other.pt").fingerprint() != a.fingerprint()


def test_unreadable_or_wrong_weights_are_clear_errors(tmp_path, resnet_weights):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=f"backbone: cannot read weights file {bad}"):
        pretrained_backbone("torchvision", "resnet18", bad)
    with pytest.raises(FileNotFoundError, match="backbone: no such weights file"):
        pretrained_backbone("torchvision", "resnet18", tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="does not fit torchvision resnet34"):
        pretrained_backbone("torchvision", "resnet34", resnet_weights[0])
    with pytest.raises(ValueError, match="unknown torchvision model"):
        pretrained_backbone("torchvision", "no_such_net", resnet_weights[0])


def test_images_of_another_size_are_refused_naming_the_argument():
    bb = pixel_backbone((3, 32, 32))
    with pytest.raises(ValueError, match=r"query: images of shape 3x28x28 .* expects 3x32x32"):
        embed(bb, torch.zeros(2, 3, 28, 28, dtype=torch.uint8), what="query")
