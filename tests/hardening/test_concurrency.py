"""The ops give the single-threaded results inside DataLoader workers (fork and spawn) and
when called from several Python threads at once."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from poisonkit import ops

SIZE, COUNT = 12, 48


class OpsOnEachSample(Dataset):
    """Every op on one CHW sample; at module level so spawn workers can unpickle it."""

    def __init__(self):
        gen = torch.Generator().manual_seed(7)
        self.images = torch.randint(0, 256, (COUNT, 3, SIZE, SIZE), dtype=torch.uint8, generator=gen)
        self.labels = torch.arange(COUNT) % 4
        self.kernels = torch.randn(COUNT, 3, 3, generator=gen)
        self.Q = torch.linalg.qr(torch.randn(3 * SIZE * SIZE, 5, generator=gen))[0]
        coeffs = torch.randn(4, 3, 3, 3, generator=gen)
        coeffs[..., 2, 2] = 0
        self.coeffs = 0.9 * coeffs / coeffs.abs().sum((-2, -1), keepdim=True)

    def __len__(self):
        return COUNT

    def __getitem__(self, i):
        x, label = self.images[i], self.labels[i]
        xf = x.float() / 255
        return {
            "filter2d": ops.filter2d(x, self.kernels[i], "reflect"),
            "filter2d_max": ops.filter2d(xf, self.kernels[i].abs(), normalize="max"),
            "project_out": ops.project_out(x, self.Q),
            "ar_poison": ops.ar_poison(x, self.coeffs, label, torch.tensor(i), key=2**63 + i),
            "ar_generate": ops.ar_generate(self.coeffs, label[None], torch.tensor([i]), 5, SIZE,
                                           SIZE)[0],
            "ar_filter": ops.ar_filter(xf, self.coeffs),
            "ar_canvas": ops.ar_canvas(torch.tensor([i]), 3, 3, 6, 6)[0],
        }


def collect(samples) -> dict[str, torch.Tensor]:
    samples = list(samples)
    if isinstance(samples[0]["filter2d"], torch.Tensor) and samples[0]["filter2d"].dim() == 4:
        return {k: torch.cat([s[k] for s in samples]) for k in samples[0]}
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


@pytest.fixture(scope="module")
def dataset():
    return OpsOnEachSample()


@pytest.fixture(scope="module")
def single_threaded(dataset):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return collect(dataset[i] for i in range(COUNT))
    finally:
        torch.set_num_threads(previous)


def assert_same(got, expected):
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.equal(got[name], expected[name]), name


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers(dataset, single_threaded, context):
    loader = DataLoader(dataset, batch_size=5, num_workers=2, multiprocessing_context=context)
    assert_same(collect(loader), single_threaded)


def test_python_threads(dataset, single_threaded):
    with ThreadPoolExecutor(max_workers=4) as pool:
        # Every sample three times over, interleaved across the threads.
        results = list(pool.map(dataset.__getitem__, list(range(COUNT)) * 3))
    for repeat in range(3):
        assert_same(collect(results[repeat * COUNT:(repeat + 1) * COUNT]), single_threaded)
