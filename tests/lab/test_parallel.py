"""`cxrtransfer parallel`'s GPU assignment with a faked list of GPUs (no CUDA needed)."""

from __future__ import annotations

import subprocess

import pytest

from cxrtransfer.errors import InputError, PipelineError
from cxrtransfer.lab import gpu_plan, parallel


def test_visible_gpus_come_from_cuda_visible_devices_else_nvidia_smi():
    assert gpu_plan.visible_gpus({"CUDA_VISIBLE_DEVICES": "2,5"}, query=lambda: "0\n1\n") == ["2", "5"]
    assert gpu_plan.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, query=lambda: "0\n") == []
    assert gpu_plan.visible_gpus({}, query=lambda: "0\n1\n2\n3\n") == ["0", "1", "2", "3"]
    assert gpu_plan.visible_gpus({}, query=lambda: "") == []


def test_one_lane_per_gpu_longest_stage_first():
    stages = {"a": (1, 3.0), "b": (1, 2.0), "c": (1, 2.0), "d": (1, 1.0)}
    [phase] = gpu_plan.assign_lanes(stages, ["0", "1"])
    # LPT by hand: a (3) -> GPU 0; b (2) -> GPU 1; c (2) -> GPU 1 (2 < 3); d (1) -> GPU 0 (3 < 4)
    assert [(lane.gpus, lane.stages, lane.hours) for lane in phase] == [
        (("0",), ["a", "d"], 4.0), (("1",), ["b", "c"], 4.0)]


def test_stages_of_unknown_cost_are_spread_evenly():
    [phase] = gpu_plan.assign_lanes({f"s{i}": (1, 0.0) for i in range(5)}, ["0", "1"])
    assert [lane.stages for lane in phase] == [["s0", "s2", "s4"], ["s1", "s3"]]


def test_packing_puts_several_models_on_each_gpu():
    stages = {f"s{i}": (1, 1.0) for i in range(8)}
    [phase] = gpu_plan.assign_lanes(stages, ["0", "1"], models_per_gpu=4)
    assert [lane.gpus for lane in phase] == [("0",)] * 4 + [("1",)] * 4
    assert sorted(s for lane in phase for s in lane.stages) == sorted(stages)
    assert [len(lane.stages) for lane in phase] == [1] * 8


def test_a_two_device_stage_gets_two_gpus_of_its_own():
    stages = {"one_a": (1, 1.0), "one_b": (1, 1.0), "two_a": (2, 5.0), "two_b": (2, 4.0), "two_c": (2, 1.0)}
    single, double = gpu_plan.assign_lanes(stages, ["0", "1", "2", "3", "4"], models_per_gpu=3)
    assert {lane.gpus for lane in single} == {("0",), ("1",), ("2",), ("3",), ("4",)} and len(single) == 15
    # five GPUs: two disjoint pairs, never packed, GPU 4 left out of the 2-GPU phase
    assert [(lane.gpus, lane.stages) for lane in double] == [(("0", "1"), ["two_a"]), (("2", "3"), ["two_b", "two_c"])]


def test_more_devices_than_gpus_is_one_clear_error():
    with pytest.raises(InputError, match="train_x@big asks for train.devices = 4 GPUs; this machine shows 2"):
        gpu_plan.assign_lanes({"train_x@big": (4, 1.0)}, ["0", "1"])
    with pytest.raises(InputError, match="models-per-gpu"):
        gpu_plan.assign_lanes({"a": (1, 1.0)}, ["0"], models_per_gpu=0)


def test_without_gpus_the_stages_go_to_cpu_workers():
    [phase] = gpu_plan.assign_lanes({"a": (1, 1.0), "b": (2, 1.0), "c": (1, 1.0)}, [], cpu_workers=2)
    assert [lane.gpus for lane in phase] == [(), ()] and sum(len(lane.stages) for lane in phase) == 3


def test_each_worker_sees_exactly_its_gpus(monkeypatch):
    seen: dict[str, str] = {}

    def fake_run(command, env):
        seen[command[-1]] = env["CUDA_VISIBLE_DEVICES"]
        return subprocess.CompletedProcess(command, 0)
    monkeypatch.setattr(parallel.subprocess, "run", fake_run)
    stages = {"single_a": (1, 2.0), "single_b": (1, 1.0), "pair": (2, 1.0)}
    parallel.run_lanes(gpu_plan.assign_lanes(stages, ["3", "7"], models_per_gpu=1), ["dvc"])
    assert seen == {"single_a": "3", "single_b": "7", "pair": "3,7"}
    parallel.run_workers(["init_a", "init_b"], 2, ["3", "7"], ["dvc"])
    assert seen["init_a"] in ("3", "7") and seen["init_b"] in ("3", "7")  # one GPU each, whichever worker


def test_a_failed_stage_names_its_gpus(monkeypatch):
    monkeypatch.setattr(parallel.subprocess, "run", lambda command, env: subprocess.CompletedProcess(command, 2))
    with pytest.raises(PipelineError, match=r"GPU 0,1: `dvc repro pair` failed \(exit 2\)"):
        parallel.run_lanes(gpu_plan.assign_lanes({"pair": (2, 1.0)}, ["0", "1"]), ["dvc"])


def test_plan_lines_name_every_lane():
    lines = gpu_plan.plan_lines(gpu_plan.assign_lanes({"a": (1, 2.5), "b": (2, 1.0)}, ["0", "1"]))
    assert lines[0].split()[:4] == ["GPU", "0", "2.5", "h"] and "a" in lines[0]
    assert any(line.split()[:2] == ["GPU", "0,1"] and line.endswith("b") for line in lines)
