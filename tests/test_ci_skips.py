"""The CI skip hook: under CI=true a skipped test fails, except for the skips that cannot happen in CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = '''
import pytest

def test_needs_something_missing():
    pytest.skip("SLURM is not installed")

@pytest.mark.skipif(True, reason="torchxrayvision not installed")
def test_marked():
    pass

def test_cuda_only_skip():
    pytest.skip("this machine has CUDA")

def test_plain():
    assert True
'''


def run_sample(tmp_path: Path, ci: str | None) -> tuple[int, str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(REPO)
    if ci is not None:
        env["CI"] = ci
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                             "-p", "tests.ci_skips", "--rootdir", str(tmp_path), str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    return result.returncode, result.stdout


def test_skips_fail_under_ci(tmp_path):
    code, out = run_sample(tmp_path, "true")
    # a skip in the call fails the test; a skip mark (setup) errors it: either way the run exits non-zero
    assert code == 1 and "1 failed, 1 passed, 1 skipped, 1 error" in out, out
    assert "FAILED test_sample.py::test_needs_something_missing - skipped under CI=true" in out
    assert "ERROR test_sample.py::test_marked - skipped under CI=true" in out
    assert "SKIPPED [1] test_sample.py:12: this machine has CUDA" in out


def test_skips_stay_skips_outside_ci(tmp_path):
    code, out = run_sample(tmp_path, None)
    assert code == 0 and "1 passed, 3 skipped" in out, out
