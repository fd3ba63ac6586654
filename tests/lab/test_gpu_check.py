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
    lines = (tmp_path / "gpu-cpu-dry-run.log").read_text().splitlines()
    assert sum(line.endswith(" img/s") for line in lines) == 2  # one throughput line per architecture
    assert record["schema"] == gpu_check.SCHEMA and record["dry_run"] is True and record["device"]["type"] == "cpu"
    assert set(record["throughput"]) == {"resnet18", "mobilenet_v3"} and min(record["throughput"].values()) > 0
    assert record["errors"] == {}
    assert record["sync_free"] == {"checked": False, "ok": None, "error": None}  # nothing to check without CUDA
    # No autocast on the CPU: the fp32 predictions and the autocast path must agree exactly.
    assert record["evaluation"]["autocast"] == "None" and record["evaluation"]["max_abs_difference"] == 0.0
    batch = record["sizes"]["batch_size"]
    assert record["fit"]["images"] == 4 * batch and record["fit"]["evaluations"] == 2 and record["fit"]["kept"] == 1
    assert not list(tmp_path.glob("work*"))  # scratch data stays out of the results folder
    # the train stage script end to end (no DVC, no dvclive needed), two DDP ranks, the packed processes
    stage = record["train_stage"]
    assert stage["ok"] is True and stage["kept_checkpoints"] == 1 and stage["device"] == "cpu", stage
    assert set(stage["seconds"]) == {"preprocess", "split", "normalization", "init", "train"}
    ddp = record["ddp"]
    # the global batch split over 2 ranks, four steps with two evaluations
    assert ddp["ok"] is True and ddp["world"] == 2 and ddp["backend"] == "gloo", ddp
    assert ddp["images"] == 4 * batch and ddp["evaluations"] == 2, ddp
    assert set(record["packed"]) == {"resnet18", "mobilenet_v3"}
    for row in record["packed"].values():
        assert row["processes"] == gpu_check.DRY_SIZES.packed and row["images_per_second"] > 0
    paper = record["time_to_paper"]
    assert paper["runs"]["resnet18"] == 6 and sum(paper["runs"].values()) == 48  # 2 inits + 4 truncations
    assert paper["ideal_hours"] > 0 and "expected_hours" not in paper  # img/s measured for 2 of the 16


def test_time_to_paper_against_the_flops_ideal():
    from cxrtransfer.models.flops import read_flops_table  # the committed table (tests/models/test_flops.py)
    table = read_flops_table()
    archs = table.index.get_level_values("arch")
    throughput = {a: 1000.0 for a in archs}
    record = gpu_check.time_to_paper(throughput, {}, "NVIDIA H200")
    runs = {a: 2 + 4 * (a in ("densenet121", "mnasnet", "resnet18", "efficientnet_b0")) for a in archs}
    assert record["runs"] == runs and record["peak"] == "h200" and record["images_per_run"] == 3 * 223_414
    assert record["peak_matched"] is True and gpu_check.time_to_paper({}, {}, "Tesla T4")["peak_matched"] is False
    flop = sum(n * 3 * 223_414 * table.loc[(a, 320), "training_gflop"] * 1e9 for a, n in runs.items())
    assert record["ideal_hours"] == pytest.approx(flop / 989.4e12 / 3600, abs=0.01)
    assert record["expected_hours"] == pytest.approx(48 * 3 * 223_414 / 1000 / 3600, abs=0.01)
    assert "expected_hours_packed" not in record  # no packed figures for every architecture
    assert gpu_check.peak_for("NVIDIA H100 80GB HBM3") == "h100-sxm" and gpu_check.peak_for("Tesla T4") == "h100-sxm"


def test_stage_commands_are_dvc_yamls():
    """The train stage run of gpu-check passes the arguments dvc.yaml passes (its paths, relative)."""
    import yaml  # the pipeline file, read as DVC reads it
    stages = yaml.safe_load((gpu_check.REPO / "dvc.yaml").read_text())["stages"]
    for name, command in gpu_check.stage_commands(gpu_check.REPO):
        key = {"init": "init_random", "train": "train_random"}.get(name, name)
        declared = {a for a in stages[key]["cmd"].split() if a.startswith("--")}
        used = {a for a in command if a.startswith("--")}
        assert declared - {"--source-cache", "--state"} <= used, (name, declared - used)


def test_gpu_sizes_are_the_papers():
    assert gpu_check.GPU_SIZES.image_size == 320 and gpu_check.GPU_SIZES.batch_size == 16
    assert len(gpu_check.GPU_SIZES.architectures) == 16
