"""The supervised comparison: the eval models' features() is the layer their classifier
reads, and a saved classifier predicts as the trained one."""
import pytest
import torch

from poisonkit.attribution.supervised import load_supervised, predict, train_supervised
from poisonkit.eval.models import ResNet18, SmallCNN
from poisonkit.eval.train import TrainConfig


@pytest.mark.parametrize("model", [SmallCNN, ResNet18])
def test_features_is_the_penultimate_layer(model):
    torch.manual_seed(0)
    net = model(num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    scale = getattr(net, "logit_scale", 1.0)
    head = net[-1] if isinstance(net, SmallCNN) else net.fc
    torch.testing.assert_close(net(x), head(net.features(x)) * scale)


def test_saved_classifier_predicts_as_trained(tmp_path):
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(64) % 4
    net, state = train_supervised(x, y, 4, tmp_path / "c.pt", config=TrainConfig(epochs=1, batch_size=32))
    loaded, saved = load_supervised(tmp_path / "c.pt")
    assert saved["image_shape"] == [3, 32, 32] and saved["num_classes"] == 4
    assert torch.equal(predict(net, x), predict(loaded, x))
    with pytest.raises(ValueError, match="not a supervised checkpoint"):
        torch.save({"x": 1}, tmp_path / "other.pt")
        load_supervised(tmp_path / "other.pt")
