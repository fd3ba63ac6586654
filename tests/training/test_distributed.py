"""DistributedDataParallel on 2 CPU processes (gloo) equals one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cxrtransfer.errors import InputError, TrainingError
from cxrtransfer.training import distributed

HERE = Path(__file__).parent
REPO = Path(__file__).resolve().parents[2]
WORKER = HERE / "ddp_worker.py"
TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def launch(args: list[str]) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def single_and_ddp(tmp_path: Path, mode: str) -> tuple[Path, Path]:
    """The worker alone on the global batch of 16, and under torchrun as 2 processes of 8."""
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    launch([str(WORKER), str(single), "16", mode])
    launch([*TORCHRUN, str(WORKER), str(ddp), "16", mode])
    return single, ddp


def history(folder: Path) -> list[dict]:
    return json.loads((folder / "history.json").read_text())


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    single, ddp = single_and_ddp(tmp_path, "tiny")
    # same evaluation cadence in images (a step counts both processes' images); the logged loss is the
    # global batch's (the mean over ranks), not rank 0's alone
    assert [h["step"] for h in history(single)] == [h["step"] for h in history(ddp)] == [48, 96]
    assert [h["train_loss"] for h in history(ddp)] == pytest.approx([h["train_loss"] for h in history(single)],
                                                                    rel=1e-5)
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


@pytest.mark.slow
def test_ddp_gradients_are_those_of_the_global_batch_loss(tmp_path):
    """SGD (a wrong gradient scale changes every step, unlike Adam) on labels whose labelled cells differ
    between the ranks (uncertain cells ignored, blanks masked): the loss, the first step's gradients and
    the weights after 3 steps of 2 x 8 images equal those of one process on the 16 images, to 1e-6.
    Each rank's own mean loss, or gradients summed instead of averaged, would differ."""
    single, ddp = single_and_ddp(tmp_path, "gradient")
    one = json.loads((single / "rank0.json").read_text())
    ranks = [json.loads((ddp / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert one["broadcast_buffers"] is None and ranks[0]["broadcast_buffers"] is False   # SyncBatchNorm beside
    # the premise: the ranks' labelled cells differ at every step, and add up to the single process's
    assert all(a != b for a, b in zip(ranks[0]["labelled_cells"], ranks[1]["labelled_cells"]))
    assert [a + b for a, b in zip(ranks[0]["labelled_cells"], ranks[1]["labelled_cells"])] == one["labelled_cells"]
    a, b = load_file(str(single / "final.safetensors")), load_file(str(ddp / "final.safetensors"))
    assert {"grad.fc.weight", "grad.conv.weight", "grad.bn.weight", "fc.weight"} <= set(a) == set(b)
    for key in sorted(a, key=lambda k: (not k.startswith("grad."), k)):   # the first step's gradients first
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=1e-5, msg=key)
    assert len(one["losses"]) == 3
    assert ranks[0]["losses"] == ranks[1]["losses"] == pytest.approx(one["losses"], rel=1e-6, abs=1e-6)


@pytest.mark.slow
def test_a_nan_on_one_rank_stops_every_rank_with_one_message(tmp_path):
    """Rank 1's targets are NaN, rank 0's are finite: both ranks stop at the first evaluation's check (no
    rank waits in a collective for the other: the timeout would fail the test), and the relaunching
    process reports one line."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    command = [sys.executable, "-c", "import sys; from cxrtransfer.training import distributed; "
               "distributed.relaunch_under_torchrun(2, sys.argv[1], sys.argv[2:])",
               str(WORKER), str(tmp_path / "nan"), "16", "nan"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last == ("cxrtransfer.errors.TrainingError: loss is nan in the 3 steps before 48 images (epoch 1); "
                    "lower train.lr (0.003) or check the inputs (stopped all 2 torchrun processes)"), done.stderr[-3000:]
    assert not (tmp_path / "nan" / "final.safetensors").exists()


def test_the_global_batch_splits_evenly_or_is_refused():
    assert distributed.Distributed(rank=1, world=4).per_rank_batch(16) == 4
    assert distributed.Distributed().per_rank_batch(16) == 16
    with pytest.raises(InputError, match=r"train.batch_size 16 is the global batch: it must split evenly over "
                                         r"train.devices 3 processes"):
        distributed.Distributed(rank=0, world=3).per_rank_batch(16)


def test_one_process_loss_is_the_plain_mean_and_needs_no_process_group():
    total, count = torch.tensor(6.0), torch.tensor(4.0)
    world = distributed.Distributed()
    assert world.global_mean_loss(total, count).item() == 1.5
    assert world.mean_over_ranks(total) is total
    world.close()   # nothing to destroy: no process group was created


def test_a_failed_relaunch_without_an_error_line_says_so(tmp_path):
    script = tmp_path / "crash.py"
    script.write_text("import os, sys\nsys.exit(3 if os.environ['RANK'] == '1' else 0)\n")
    with pytest.raises(TrainingError, match=r"torchrun with 2 processes failed \(exit 1\); its output is above"):
        distributed.relaunch_under_torchrun(2, str(script), [])


def test_cuda_ranks_bind_nccl_to_their_gpu_and_close_what_they_opened(monkeypatch):
    """init_process_group gets device_id on CUDA (gloo on CPU gets none); close() destroys only a group this
    process created (torch.distributed mocked: no GPU, no second process)."""
    calls = []
    state = {"initialized": False}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: state["initialized"])
    monkeypatch.setattr(torch.distributed, "init_process_group",
                        lambda *a, **k: calls.append(("init", a, k)) or state.update(initialized=True))
    monkeypatch.setattr(torch.distributed, "destroy_process_group",
                        lambda: calls.append(("destroy",)) or state.update(initialized=False))
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    gpu = torch.device("cuda", 1)
    world = distributed.Distributed.from_env(gpu)
    assert (world.rank, world.world, world.owned) == (1, 2, True)
    assert calls == [("init", ("nccl",), {"device_id": gpu})]
    world.close()
    world.close()   # a second close (an exit path after another) does nothing
    assert calls[1:] == [("destroy",)]
    distributed.Distributed.from_env(torch.device("cpu"))
    assert calls[2] == ("init", ("gloo",), {})
    joined = distributed.Distributed.from_env(torch.device("cpu"))   # a group someone else opened
    joined.close()
    assert not joined.owned and calls[3:] == []
