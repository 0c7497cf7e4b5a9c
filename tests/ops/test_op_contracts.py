"""The contract of every op in poisonkit.ops, one parametrised table: torch.library.opcheck
(schema, fake kernel, autograd registration, AOT dispatch), torch.compile(fullgraph=True)
equal to eager, on contiguous, channels_last and non-contiguous images where the op takes
images, on CPU and (requires_cuda) CUDA; gradcheck of the ops with a backward formula."""
from __future__ import annotations

import pytest
import torch

from poisonkit import ops
from poisonkit._lowpass_bases import lowpass_factors
from tests.conftest import requires_cuda

LAYOUTS = {
    "contiguous": lambda x: x,
    "channels_last": lambda x: x.contiguous(memory_format=torch.channels_last),
    "strided": lambda x: torch.cat([x, x], dim=3)[..., ::2],  # same values, stride 2 along W
}


def images(dtype, shape, gen):
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    return x if dtype == torch.uint8 else x.float() / 255


def ar_coeffs(gen, k=4, c=3):
    # stable AR coefficients: 8 positive taps summing to 1
    b = torch.rand(k, c, 3, 3, generator=gen) + 0.1
    b[..., 2, 2] = 0
    return b / b.sum((-1, -2), keepdim=True)


def orthonormal(d, k, gen):
    return torch.linalg.qr(torch.randn(d, k, generator=gen))[0]


LABELS, INDICES = torch.tensor([0, 3, 1]), torch.tensor([7, 0, 12])

# op name -> {case id: f(x or None, gen) -> the op's arguments}; cases taking x get every
# layout of a [3, 3, 8, 8] batch of the dtype in the id.
IMAGE_CASES = {
    "filter2d": {
        "zeros": lambda x, g: (x, torch.rand(3, 3, 3, generator=g), "zeros", "none", "nearest",
                               True),
        "valid-max-trunc": lambda x, g: (x, torch.rand(3, 3, 5, generator=g), "valid", "max",
                                         "truncate", False),
        "reflect-per-channel": lambda x, g: (x, torch.rand(3, 3, 3, 3, generator=g), "reflect",
                                             "none", "nearest", True),
    },
    "project_out": {
        "clamp": lambda x, g: (x, orthonormal(192, 4, g), True),
        "float-out": lambda x, g: (x, orthonormal(192, 4, g), False),
    },
    "lowpass": {
        "dct-square": lambda x, g: (x, *lowpass_factors(8, 8, 0.5, "dct", "square"), True),
        "fft-disk": lambda x, g: (x, *lowpass_factors(8, 8, 0.5, "fft", "disk"), True),
    },
    "ar_poison": {"l2": lambda x, g: (x, ar_coeffs(g), LABELS, INDICES, 9, 4, 1.0, 2.0)},
    "ar_filter": {"": lambda x, g: (x, ar_coeffs(g))},
    "lsp_poison": {"": lambda x, g: (x, *ops.lsp_classes(5, 4, 12), LABELS, INDICES, 9, 4,
                                     6 / 255)},
    "one_pixel_moments": {"": lambda x, g: (x, LABELS, 4)},
    "one_pixel_apply": {"": lambda x, g: (x, LABELS, torch.tensor([3, 5, 0, 63]),
                                          torch.rand(4, 3, generator=g))},
}

OTHER_CASES = {
    "ar_canvas": {"": lambda g: (INDICES, 3, 3, 6, 7)},
    "ar_generate": {
        "l2": lambda g: (ar_coeffs(g), LABELS, INDICES, 9, 8, 8, 4, 1.0, 2.0),
        "unscaled": lambda g: (ar_coeffs(g), LABELS, INDICES, 9, 5, 6, 2, None, 2.0),
    },
    "rsk_kernels": {"": lambda g: (torch.tensor(3), INDICES, 2, 2.5, 0.1)},
    "lsp_classes": {"": lambda g: (5, 4, 12, 10.0)},
    "lsp_generate": {"": lambda g: (*ops.lsp_classes(5, 4, 12), LABELS, INDICES, 9, 3, 8, 8, 4,
                                    6 / 255)},
    "one_pixel_search": {"": lambda g: (*ops.one_pixel_moments(images(torch.uint8, (6, 3, 4, 4),
                                                                      g),
                                                               torch.tensor([0, 1, 1, 0, 2, 2]),
                                                               3), 255.0)},
}


def has_cuda_kernel(op: str) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"poisonkit::{op}", "CUDA")


def _cases():
    for device in ("cpu", "cuda"):
        marks = [requires_cuda] if device == "cuda" else []
        for op, table in IMAGE_CASES.items():
            for case in table:
                for dtype in (torch.uint8, torch.float32):
                    for layout in LAYOUTS:
                        yield pytest.param(op, case, dtype, layout, device, marks=marks,
                                           id=f"{op}-{case}-{str(dtype)[6:]}-{layout}-{device}")
        for op, table in OTHER_CASES.items():
            for case in table:
                yield pytest.param(op, case, None, None, device, marks=marks,
                                   id=f"{op}-{case}-{device}")


CASES = list(_cases())


def make_args(op, case, dtype, layout, device):
    gen = torch.Generator().manual_seed(1234)
    if dtype is None:
        args = OTHER_CASES[op][case](gen)
    else:
        x = LAYOUTS[layout](images(dtype, (3, 3, 8, 8), gen))
        args = IMAGE_CASES[op][case](x, gen)
    if device == "cuda":
        if not has_cuda_kernel(op):
            pytest.skip(f"{op} runs on the CPU only")
        # one_pixel_search and rsk_kernels' seed are read on the host: the rest moves
        args = tuple(a.to(device) if isinstance(a, torch.Tensor) and a.dim() > 0 else a
                     for a in args)
    return args


def test_every_op_has_cases():
    registered = {name.split("::")[1] for name in torch._C._dispatch_get_all_op_names()
                  if name.startswith("poisonkit::")}
    assert registered == set(IMAGE_CASES) | set(OTHER_CASES)


@pytest.mark.parametrize("op,case,dtype,layout,device", CASES)
def test_opcheck(op, case, dtype, layout, device):
    torch.library.opcheck(getattr(torch.ops.poisonkit, op).default,
                          make_args(op, case, dtype, layout, device))


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("op,case,dtype,layout,device", CASES)
def test_fullgraph_compile_equals_eager(op, case, dtype, layout, device):
    torch._dynamo.reset()
    args = make_args(op, case, dtype, layout, device)
    fn = getattr(torch.ops.poisonkit, op).default
    eager = as_tuple(fn(*args))
    compiled = as_tuple(torch.compile(lambda *a: fn(*a), fullgraph=True)(*args))
    assert len(eager) == len(compiled)
    for e, c in zip(eager, compiled):
        assert e.dtype == c.dtype and e.shape == c.shape and e.stride() == c.stride()
        assert torch.equal(e, c)


# The linear ops' backward against finite differences (float32: a linear map's central
# difference is exact up to rounding, hence the loose eps and tolerances).
GRAD_CASES = {
    "filter2d-zeros": lambda x, g: ops.filter2d(x, torch.rand(3, 3, 5, generator=g), "zeros",
                                                clamp=False),
    "filter2d-valid": lambda x, g: ops.filter2d(x, torch.rand(3, 3, 3, 3, generator=g), "valid",
                                                clamp=False),
    "lowpass-dct": lambda x, g: ops.lowpass(x, 0.5, clamp=False),
    "lowpass-fft-disk": lambda x, g: ops.lowpass(x, 0.5, "fft", "disk", clamp=False),
    "project_out": lambda x, g: ops.project_out(x, orthonormal(192, 4, g)),
}


@pytest.mark.filterwarnings("ignore:Input #0 requires gradient and is not a double")
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", GRAD_CASES)
def test_gradcheck(name, layout):
    gen = torch.Generator().manual_seed(1234)
    x = LAYOUTS[layout](images(torch.float32, (3, 3, 8, 8), gen)).requires_grad_()
    f = GRAD_CASES[name]
    assert torch.autograd.gradcheck(lambda x: f(x, torch.Generator().manual_seed(5)), (x,),
                                    eps=1e-2, atol=1e-3, rtol=1e-3)
