"""DistributedDataParallel on 2 CPU processes (gloo) equals one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).parent
REPO = Path(__file__).resolve().parents[2]


def launch(args: list[str], tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def single_and_ddp(tmp_path: Path, net: str) -> tuple[Path, Path]:
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    launch([str(HERE / "ddp_worker.py"), str(single), "16", net], tmp_path)
    launch(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            str(HERE / "ddp_worker.py"), str(ddp), "8", net], tmp_path)
    # same evaluation cadence in images (a step counts both processes' images)
    assert (single / "steps.txt").read_text() == (ddp / "steps.txt").read_text() == "48 96"
    return single, ddp


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    single, ddp = single_and_ddp(tmp_path, "tiny")
    a, b = load_file(str(single / "final.safetensors")), load_file(str(ddp / "final.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_synchronized_batchnorm_matches_the_doubled_batch(tmp_path):
    """With BatchNorm, 2 x 8 images equal 1 x 16 only if the statistics span both processes (SyncBatchNorm):
    weights and running statistics alike."""
    single, ddp = single_and_ddp(tmp_path, "batchnorm")
    a, b = load_file(str(single / "final.safetensors")), load_file(str(ddp / "final.safetensors"))
    assert {"bn.running_mean", "bn.running_var", "bn.weight"} <= set(a)
    assert a["bn.num_batches_tracked"].item() == b["bn.num_batches_tracked"].item() == 6
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
