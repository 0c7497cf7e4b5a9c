"""Models of the evaluation protocol (DESIGN §4): ResNet-18 in its CIFAR variant, and a
small airbench-style CNN that trains in seconds per epoch on a CPU."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for 32x32 inputs: 3x3 stem with stride 1 and no max-pool (the variant the
    poisoning papers train)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, num_classes)

    def features(self, x):
        """The penultimate layer: pooled 512-d features before the classifier."""
        return torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1)

    def forward(self, x):
        return self.fc(self.features(x))


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU()]


class SmallCNN(nn.Sequential):
    """airbench-style: a conv stem, then three groups (conv, max-pool, conv) of widths
    32/64/128, global max-pool, a linear head with scaled-down logits (as airbench)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3,
                 widths: tuple[int, int, int] = (32, 64, 128), logit_scale: float = 1 / 8):
        layers: list[nn.Module] = _conv_bn(in_channels, 24)
        cin = 24
        for w in widths:
            conv1 = _conv_bn(cin, w)
            layers += [conv1[0], nn.MaxPool2d(2), *conv1[1:], *_conv_bn(w, w)]
            cin = w
        layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes, bias=False)]
        super().__init__(*layers)
        self.logit_scale = logit_scale

    def features(self, x):
        """The penultimate layer: the pooled features the linear head reads."""
        for layer in list(self)[:-1]:
            x = layer(x)
        return x

    def forward(self, x):
        return self[-1](self.features(x)) * self.logit_scale


MODELS: dict[str, Callable[..., nn.Module]] = {"resnet18": ResNet18, "small": SmallCNN}

# Nesterov momentum for the small CNN, as measured in DESIGN §4; plain momentum for
# ResNet-18, as the papers train it.
NESTEROV = {"resnet18": False, "small": True}


def load_factory(spec: str) -> Callable[..., nn.Module]:
    """'package.module:factory' -> the factory, imported (the user's own model)."""
    import importlib
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"model: expected one of {sorted(MODELS)} or 'package.module:factory', "
                         f"got {spec!r}")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"model: cannot import module {module_name!r} of {spec!r}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"model: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"model: {spec!r} is not callable")
    return obj


def model_name(model) -> str:
    """The name a run records for a model spec or factory."""
    if isinstance(model, str):
        return model
    return f"{getattr(model, '__module__', '?')}:{getattr(model, '__qualname__', repr(model))}"


def build_model(model, num_classes: int, in_channels: int = 3) -> nn.Module:
    """model: 'small', 'resnet18', 'package.module:factory' or a factory. A factory is
    called as factory(num_classes=..., in_channels=...) and must return an nn.Module
    mapping NCHW float images to [N, num_classes] logits."""
    if callable(model) and not isinstance(model, str):
        factory = model
    elif isinstance(model, str) and model in MODELS:
        factory = MODELS[model]
    elif isinstance(model, str) and ":" in model:
        factory = load_factory(model)
    else:
        raise ValueError(f"model: expected one of {sorted(MODELS)}, 'package.module:factory' "
                         f"or a callable, got {model!r}")
    net = factory(num_classes=num_classes, in_channels=in_channels)
    if not isinstance(net, nn.Module):
        raise ValueError(f"model: the factory {model_name(model)} returned "
                         f"{type(net).__name__}, expected a torch.nn.Module")
    return net
