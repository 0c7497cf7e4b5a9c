"""benchmarks/gpu_check.sh on a machine without a GPU: it checks that everything it would
run exists, says no GPU is present and exits 0; a missing input fails its preflight."""
import os
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(torch.cuda.is_available(),
                                reason="with a GPU the script builds and runs: run it directly")


def run_script(**env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)


def test_checks_then_reports_no_gpu(cifar):
    proc = run_script()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "preflight ok" in proc.stdout
    assert "no GPU present" in proc.stdout


def test_a_missing_input_fails_the_preflight(tmp_path):
    proc = run_script(POISONKIT_DATA=str(tmp_path / "absent.npz"))
    assert proc.returncode == 1
    assert f"MISSING: test -f {tmp_path / 'absent.npz'}" in proc.stdout
    assert "no GPU present" not in proc.stdout
