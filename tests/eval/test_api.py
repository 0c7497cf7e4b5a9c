"""A model factory from a user's own module trains, through the Python API and the CLI."""
import json
import textwrap

import pytest
import torch

from poisonkit.cli import main
from poisonkit.data import synthetic_dataset
from poisonkit.eval import evaluate
from poisonkit.eval.models import build_model

USER_MODULE = '''
import torch
from torch import nn

BUILT = []  # (network, a copy of its initial first-layer weights), for the test to inspect

def tiny_net(num_classes, in_channels):
    net = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))
    BUILT.append((net, net[0].weight.detach().clone()))
    return net

def not_a_module(num_classes, in_channels):
    return "a string"
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_models"


def test_evaluate_trains_a_model_factory_from_a_user_module(user_module, tmp_path):
    data = synthetic_dataset(train=64, test=32, size=16)
    results = evaluate(f"{user_module}:tiny_net", data, poisons=["none", "blur"], epochs=1,
                       probe="dfr")
    assert [r["poison"] for r in results] == ["none", "blur"]
    assert all(r["model"] == "my_models:tiny_net" and len(r["train_loss"]) == 1 for r in results)
    assert all("accuracy" in r["probe_result"] for r in results)
    import my_models  # the user's own networks were built and trained (weights moved)
    assert len(my_models.BUILT) == 2
    assert all(not torch.equal(net[0].weight.detach(), initial) for net, initial in my_models.BUILT)
    # a callable works as well as its 'module:name'
    again = evaluate(my_models.tiny_net, data, epochs=1, out=tmp_path / "out")
    assert again[0]["model"] == "my_models:tiny_net" and (tmp_path / "out" / "results.json").is_file()


def test_cli_model_factory(user_module, tmp_path):
    rc = main(["eval", "--model", f"{user_module}:tiny_net", "--data", "synthetic", "--train-subset", "64",
               "--test-subset", "32", "--epochs", "1", "--out", str(tmp_path / "out")])
    assert rc == 0
    run = json.loads((tmp_path / "out" / "results.json").read_text())["runs"][0]
    assert run["model"] == "my_models:tiny_net"


def test_bad_model_factories_are_errors(user_module, capsys):
    with pytest.raises(ValueError, match="returned str"):
        build_model(f"{user_module}:not_a_module", 10)
    with pytest.raises(ValueError, match="no attribute"):
        build_model(f"{user_module}:missing", 10)
    assert main(["eval", "--model", "vgg", "--epochs", "1"]) == 2
    assert "package.module:factory" in capsys.readouterr().err
