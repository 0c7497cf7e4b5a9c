"""What EM and TAP share (poisonkit.poisons.crafting): bad input fails before any work,
and a crafting run killed with SIGKILL and rerun gives exactly the uninterrupted result."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from poisonkit.data import synthetic_images
from poisonkit.poisons.crafting import project
from poisonkit.poisons.em import ErrorMinimizing
from poisonkit.poisons.tap import TargetedAdversarial

ROOT = Path(__file__).resolve().parents[2]
TINY = {"batch_size": 16, "progress": False}
EM_TINY = {**TINY, "steps": 2, "train_steps": 2, "max_iterations": 3, "stop_accuracy": 1.0}
TAP_TINY = {**TINY, "steps": 2, "train_epochs": 1}
MAKERS = {"em": lambda **kw: ErrorMinimizing(10, **{**EM_TINY, **kw}),
          "em-class": lambda **kw: ErrorMinimizing(10, per_class=True, **{**EM_TINY, **kw}),
          "tap": lambda **kw: TargetedAdversarial(10, **{**TAP_TINY, **kw})}


@pytest.fixture(scope="module")
def tiny():
    return synthetic_images(40, 32, seed=5)


def test_project_keeps_the_ball_and_the_image_range():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 4, 4, generator=g)
    delta = project(x, torch.randn(8, 3, 4, 4, generator=g), 8 / 255)
    assert delta.abs().max() <= 8 / 255 + 1e-6
    assert (x + delta).min() >= 0 and (x + delta).max() <= 1


@pytest.mark.parametrize("method", sorted(MAKERS))
@pytest.mark.parametrize("eps", [0, -8 / 255, float("nan"), float("inf")])
def test_bad_eps_is_an_error(method, eps):
    with pytest.raises(ValueError, match="eps"):
        MAKERS[method](eps=eps)


@pytest.mark.parametrize("method", sorted(MAKERS))
def test_bad_data_is_an_error_before_any_work(method, tiny, tmp_path):
    x, y = tiny
    state = tmp_path / "state.pt"
    poison = MAKERS[method](state=state, checkpoint_seconds=0)
    with pytest.raises(ValueError, match="labels: classes \\[3\\] have no images"):
        keep = y != 3
        poison.craft(x[keep], y[keep])
    with pytest.raises(ValueError, match="model: 'small' does not fit images of shape"):
        poison.craft(x[:, :, :4, :4], y)   # three 2x2 max-pools cannot shrink a 4x4 image
    with pytest.raises(ValueError, match="labels: expected values in"):
        poison.craft(x, y + 1)
    with pytest.raises(TypeError, match="images"):
        poison.craft(x.double(), y)
    assert not state.exists()
    with pytest.raises(ValueError, match="model: expected one of"):
        MAKERS[method](model="vgg").craft(x, y)


@pytest.mark.parametrize("method", sorted(MAKERS))
def test_a_checkpoint_is_never_resumed_on_other_data_or_keys(method, tiny, tmp_path):
    x, y = tiny
    state = tmp_path / "state.pt"
    first = MAKERS[method](state=state, key=1).craft(x, y)
    again = MAKERS[method](state=state, key=1).craft(x, y)   # finished: loaded, not recrafted
    assert torch.equal(first.delta, again.delta) and first.history == again.history
    with pytest.raises(ValueError, match="state: .* other data, key or parameters"):
        MAKERS[method](state=state, key=2).craft(x, y)
    with pytest.raises(ValueError, match="state: .* other data, key or parameters"):
        MAKERS[method](state=state, key=1).craft(x.flip(0), y.flip(0))


CHILD = """
import os, signal, sys, torch
from poisonkit.data import synthetic_images
from poisonkit.poisons import crafting
sys.path.insert(0, {tests!r})
from test_crafting import MAKERS
method, state, out, kill = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "kill"
torch.set_num_threads(1)
if kill:   # SIGKILL right after the first checkpoint reaches the disk
    save = crafting.CraftedPoison._save
    def save_then_die(self, *args):
        save(self, *args)
        os.kill(os.getpid(), signal.SIGKILL)
    crafting.CraftedPoison._save = save_then_die
x, y = synthetic_images(40, 32, seed=5)
poison = MAKERS[method](state=state if state != "-" else None, checkpoint_seconds=0, key=7)
poison.craft(x, y)
torch.save({{"delta": poison.delta, "history": poison.history}}, out)
"""


def _child(method: str, state, out: Path, kill: bool) -> int:
    code = CHILD.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, method, str(state), str(out),
                           "kill" if kill else "run"], env=env, timeout=600).returncode


@pytest.mark.parametrize("method", ["em", "tap"])
def test_killed_crafting_resumes_to_the_uninterrupted_result(method, tmp_path):
    state = tmp_path / "state.pt"
    assert _child(method, state, tmp_path / "killed.pt", kill=True) == -signal.SIGKILL
    assert state.exists() and not (tmp_path / "killed.pt").exists()
    partial = torch.load(state, weights_only=True)
    assert not partial["done"] and partial["unit"] == 1
    assert _child(method, state, tmp_path / "resumed.pt", kill=False) == 0
    assert _child(method, "-", tmp_path / "straight.pt", kill=False) == 0
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    straight = torch.load(tmp_path / "straight.pt", weights_only=True)
    assert torch.equal(resumed["delta"], straight["delta"])
    assert resumed["history"] == straight["history"]
