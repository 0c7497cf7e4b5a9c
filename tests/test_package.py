"""The package as a user gets it. Fast: pins in one place (requirements.txt groups =
pyproject's build requirements = the built metadata's Requires-Dist), the version single-
sourced. Slow (CI; POISONKIT_SKIP_PACKAGE_TEST=1 skips it): the wheel is built, installed
into a fresh venv outside the checkout, and from another folder `poisonkit --version`, a
transform on an image and a DALI CPU pipeline with a poisonkit operator run."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

import poisonkit

ROOT = Path(__file__).resolve().parents[1]
SKIP_ENV = "POISONKIT_SKIP_PACKAGE_TEST"
GROUPS = {"build", "runtime", "dali", "bench", "eval", "attribution", "editing", "test"}


def pins() -> dict[str, list[str]]:
    """requirements.txt by group, read independently of setup.py's reader."""
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+==[A-Za-z0-9_.+]+)\s+#\s*([a-z ]+)", line)
        assert match, f"requirements.txt: {line!r} is not 'name==version  # groups'"
        assert set(match[2].split()) <= GROUPS, line
        for group in match[2].split():
            groups[group].append(match[1])
    return groups


def requires_dist(metadata: str) -> dict[str, list[str]]:
    """METADATA's Requires-Dist by extra ('runtime' for unconditional ones)."""
    found: dict[str, list[str]] = {}
    for value in re.findall(r"^Requires-Dist: (.+)$", metadata, re.M):
        requirement, _, marker = value.partition(";")
        extra = re.search(r'extra == "([a-z]+)"', marker)
        found.setdefault(extra[1] if extra else "runtime", []).append(requirement.strip())
    return {k: sorted(v) for k, v in found.items()}


def test_build_requirements_are_requirements_txt_build_pins():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert sorted(pyproject["build-system"]["requires"]) == sorted(pins()["build"])
    assert "torch==2.14.1" in pins()["build"] and "torch==2.14.1" in pins()["runtime"]


def test_metadata_dependencies_and_version_come_from_one_place(tmp_path):
    # setuptools' own metadata step, as pip runs it before a build (no compilation)
    code = ("import sys; from setuptools import build_meta; "
            "print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    info = tmp_path / out
    metadata = (info / "METADATA").read_text()
    assert re.search(r"^Version: (.+)$", metadata, re.M)[1] == poisonkit.__version__
    expected = {k: sorted(v) for k, v in pins().items() if k != "build" and v}
    assert requires_dist(metadata) == expected
    assert "poisonkit = poisonkit.cli:main" in (info / "entry_points.txt").read_text()


# ---- the wheel in a fresh venv (slow)

wheel_test = pytest.mark.skipif(os.environ.get(SKIP_ENV) == "1",
                                reason=f"{SKIP_ENV}=1 (CI runs it)")

USE = r'''
import json, sys
from pathlib import Path
import numpy as np
import torch
import poisonkit
from poisonkit import dali as pkdali
from poisonkit.transforms import Sharpen

image = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 32, 32), np.uint8))
sharpened = Sharpen()(image)  # SSK, 'valid' padding
# independent SSK: c = 2.5, n = (c - 1) / 4, depthwise, no padding, clamp, round
n = 1.5 / 4
k = torch.tensor([[0, -n, 0], [-n, 2.5, -n], [0, -n, 0]]).expand(3, 1, 3, 3)
ref = torch.nn.functional.conv2d(image[None].double(), k.double(), groups=3)[0]
ref = ref.clamp(0, 255).round().to(torch.uint8)
assert sharpened.shape == (3, 30, 30) and sharpened.dtype == torch.uint8
assert (sharpened.int() - ref.int()).abs().max() <= 1

plugin = pkdali.load()
from nvidia.dali import fn, pipeline_def

@pipeline_def(batch_size=1, num_threads=1, device_id=None)
def pipe():
    images = fn.external_source(source=lambda: [image.permute(1, 2, 0).numpy().copy()],
                                batch=True, layout="HWC")
    return pkdali.sharpen(images)

p = pipe()
p.build()
(out,) = p.run()
assert np.array_equal(np.array(out[0]), sharpened.permute(1, 2, 0).numpy())
print(json.dumps({"package": poisonkit.__file__, "plugin": str(plugin)}))
'''


def run(cmd, **kw) -> tuple[str, float]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert done.returncode == 0, f"{cmd}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout, time.perf_counter() - start


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from the checkout as `pip wheel .` does, reusing the checkout's
    objects (build/), so only what changed is compiled."""
    dist = tmp_path_factory.mktemp("dist")
    _, seconds = run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                      "-q", "-w", str(dist), str(ROOT)])
    (path,) = dist.glob("poisonkit-*.whl")
    print(f"\nwheel {path.name}: {path.stat().st_size / 2**20:.1f} MiB, built in {seconds:.0f} s")
    return path


@wheel_test
def test_wheel_holds_the_extension_plugin_and_bench_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert any(re.fullmatch(r"poisonkit/_C\..*\.so", n) for n in names)
    assert "poisonkit/dali/lib/libpoisonkit_dali.so" in names
    assert "poisonkit/bench/run_all.py" in names
    assert "poisonkit/poisons/data/ar-cifar10-published.json" in names  # package data
    assert not [n for n in names if n.split("/")[0] in ("tests", "benchmarks", "csrc", "build")]


@wheel_test
def test_wheel_installs_and_runs_in_a_fresh_venv(wheel, tmp_path):
    venv, elsewhere = tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    run([sys.executable, "-m", "venv", str(venv)])
    _, seconds = run([venv / "bin" / "pip", "install", "-q", f"{wheel}[dali]"])
    print(f"\ninstalled {wheel.name}[dali] into a fresh venv in {seconds:.0f} s")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "POISONKIT_DALI_PLUGIN", "VIRTUAL_ENV")}
    version, _ = run([venv / "bin" / "poisonkit", "--version"], cwd=elsewhere, env=env)
    assert version.strip() == f"poisonkit {poisonkit.__version__}"
    out, _ = run([venv / "bin" / "python", "-c", USE], cwd=elsewhere, env=env)
    where = json.loads(out.strip().splitlines()[-1])
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert Path(where["package"]).is_relative_to(site)  # not the checkout
    assert where["plugin"] == str(site / "poisonkit" / "dali" / "lib" / "libpoisonkit_dali.so")
