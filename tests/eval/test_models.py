import pytest
import torch

from poisonkit.eval.models import MODELS, build_model


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("channels, classes", [(3, 10), (1, 7)])
def test_models_give_logits(name, channels, classes):
    model = build_model(name, classes, channels).eval()
    assert model(torch.rand(2, channels, 32, 32)).shape == (2, classes)


def test_unknown_model_is_an_error():
    with pytest.raises(ValueError, match="model: expected one of"):
        build_model("vgg", 10)
