"""The README's claim that a fresh clone reproduces the committed dvc.lock, for the demo's data stages.

A fresh `git clone` runs synthesize, preprocess and split with `dvc repro` (nothing pulled: no DVC cache
in the clone) and its dvc.lock entries for them must equal the committed ones: command, code and data
dependency hashes, params, and output hashes. Those stages' outputs do not depend on the CPU
(tests/e2e/test_reproducible.py runs them with the vector kernels switched off), so any difference is a
change of code, of the locked environment, or a dvc.lock committed without rerunning them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DATA_STAGES = ("synthesize", "preprocess", "split")


@pytest.mark.slow
def test_fresh_clone_reproduces_the_committed_data_stage_locks(tmp_path):
    committed = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    # stage commands call `python`: this environment's; the package imported from the clone
    env = {**os.environ, "PYTHONPATH": str(clone),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", *DATA_STAGES], cwd=clone, env=env,
                   check=True, capture_output=True, text=True)
    rerun = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    for stage in DATA_STAGES:
        assert rerun[stage] == committed[stage], stage
