"""torch.compile(fullgraph=True) of every transform equals eager."""
from __future__ import annotations

import pytest
import torch

from poisonkit.defenses.projection import Projection
from poisonkit.transforms import (RSKFF, ARPoison, ClasswiseBlur, LowPass, OrthogonalProjection,
                                  RandomSharpen, Sharpen)

CASES = {
    "sharpen": lambda: Sharpen(),
    "sharpen-reflect": lambda: Sharpen(padding="reflect"),
    "lowpass-dct": lambda: LowPass(),
    "lowpass-fft-disk": lambda: LowPass(basis="fft", shape="disk"),
    "classwise-blur": lambda: ClasswiseBlur(seed=0),
    "ar": lambda: ARPoison(10, key=3),
    "ar-partial": lambda: ARPoison(10, key=3, ratio=0.5),
}


# Every case in uint8, the float path of each op family once (compiles are slow on CPU).
PARAMS = [(name, torch.uint8) for name in CASES] + [
    (name, torch.float32) for name in ("sharpen", "lowpass-fft-disk", "classwise-blur", "ar-partial")]


@pytest.mark.parametrize("name,dtype", PARAMS)
def test_fullgraph_compile_equals_eager(name, dtype, gen):
    torch._dynamo.reset()
    t = CASES[name]()
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=gen)
    x = x if dtype == torch.uint8 else x.float() / 255
    args = (x, torch.tensor([0, 3, 5, 9]), torch.arange(40, 44))
    args = args if "ar" in name or "blur" in name else args[:1]
    eager, compiled = t(*args), torch.compile(t, fullgraph=True)(*args)
    if isinstance(eager, tuple):
        eager, compiled = eager[0], compiled[0]
    assert torch.equal(eager, compiled)


def test_projection_compiles(gen):
    torch._dynamo.reset()
    Q, _ = torch.linalg.qr(torch.randn(3 * 8 * 8, 5, generator=gen))
    t = OrthogonalProjection(Projection(Q=Q, image_shape=(3, 8, 8), weight=torch.zeros(5, 192),
                                        train_accuracy=0.0))
    x = torch.rand(3, 3, 8, 8, generator=gen)
    assert torch.equal(torch.compile(t, fullgraph=True)(x), t(x))


@pytest.mark.parametrize("make", [RandomSharpen, RSKFF])
def test_random_sharpening_compiles_with_the_global_rng(make):
    """Drawn from torch's global RNG (the default) the kernels trace into the graph;
    fallback_random makes inductor draw the eager numbers so the two can be compared."""
    torch._dynamo.reset()
    t = make()
    x = torch.rand(2, 3, 32, 32)
    torch.manual_seed(5)
    eager = t(x)
    with torch._inductor.config.patch(fallback_random=True):
        compiled = torch.compile(t, fullgraph=True)
        torch.manual_seed(5)
        assert torch.equal(compiled(x), eager)
