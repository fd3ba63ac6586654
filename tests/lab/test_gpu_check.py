"""`cxrtransfer gpu-check`: its CPU dry mode runs every step and writes the record a GPU run writes."""

from __future__ import annotations

import json

import pytest
import torch

from cxrtransfer.errors import PipelineError
from cxrtransfer.lab import cli, gpu_check


def test_without_cuda_it_stops_with_one_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(PipelineError, match="no CUDA device here"):
        cli.main(["gpu-check", "--out", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []


def test_result_names_the_device():
    assert gpu_check.result_name({"dry_run": False, "device": {"name": "NVIDIA H200 NVL"}}) == "gpu-nvidia-h200-nvl"
    assert gpu_check.result_name({"dry_run": True, "device": {"type": "cpu"}}) == "gpu-cpu-dry-run"


@pytest.mark.slow
def test_dry_run_measures_every_section_on_the_cpu(tmp_path):
    cli.main(["gpu-check", "--dry-run", "--out", str(tmp_path), "--architectures", "resnet18", "mobilenet_v3"])
    record = json.loads((tmp_path / "gpu-cpu-dry-run.json").read_text())
    assert (tmp_path / "gpu-cpu-dry-run.log").read_text().count("img/s") == 2
    assert record["schema"] == gpu_check.SCHEMA and record["dry_run"] is True and record["device"]["type"] == "cpu"
    assert set(record["throughput"]) == {"resnet18", "mobilenet_v3"} and min(record["throughput"].values()) > 0
    assert record["sync_free"] == {"checked": False, "ok": None, "error": None}  # nothing to check without CUDA
    # No autocast on the CPU: the fp32 predictions and the autocast path must agree exactly.
    assert record["evaluation"]["autocast"] == "None" and record["evaluation"]["max_abs_difference"] == 0.0
    batch = record["sizes"]["batch_size"]
    assert record["fit"]["images"] == 4 * batch and record["fit"]["evaluations"] == 2 and record["fit"]["kept"] == 1
    assert not list(tmp_path.glob("work*"))  # scratch data stays out of the results folder


def test_gpu_sizes_are_the_papers():
    assert gpu_check.GPU_SIZES.image_size == 320 and gpu_check.GPU_SIZES.batch_size == 16
    assert len(gpu_check.GPU_SIZES.architectures) == 16
