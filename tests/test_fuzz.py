"""The atheris fuzz targets (fuzz/fuzz_*.py) run in CI for a few thousand inputs each:
any exception other than GlassnetError, a crash, a hang or a memory blow-up fails.
``python fuzz/run.py --runs 200000`` runs them longer (docs/reliability.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="coverage-guided fuzzing needs atheris (test extra)")

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
#: Inputs per target in CI: about 30 s in all (the worksheet marker is the slow one).
RUNS = {"spec": 10000, "worksheet": 1500, "model": 10000, "torch": 10000}


@pytest.mark.parametrize("target", sorted(RUNS))
def test_fuzz_target_runs_clean(target, tmp_path):
    if target == "torch":
        pytest.importorskip("safetensors", reason="PyTorch model files are safetensors")
    cmd = [sys.executable, str(FUZZ / "run.py"), target, "--runs", str(RUNS[target])]
    cmd += ["--artifacts", str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    row = next(line for line in result.stdout.splitlines() if line.startswith(target))
    assert row.split()[1] == str(RUNS[target]) and row.endswith("clean"), row
