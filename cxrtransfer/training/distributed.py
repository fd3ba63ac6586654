"""DistributedDataParallel under torchrun: the process world, synchronized BatchNorm (with a CPU
stand-in for gloo, where torch's SyncBatchNorm refuses to run) and the relaunch of a stage script."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.distributed as dist
from timm.layers import convert_sync_batchnorm

from ..errors import InputError, TrainingError


@dataclass
class Distributed:
    """The torchrun world this process belongs to (world 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    owned: bool = False   # this process initialized the process group: close() destroys it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> "Distributed":
        """Join torchrun's process group; on CUDA bound to this rank's GPU (device_id), so NCCL
        creates its communicator there at once instead of guessing a device at the first collective."""
        world = int(os.environ.get("WORLD_SIZE", 1))
        if world <= 1:
            return cls()
        owned = not dist.is_initialized()
        if owned and device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        elif owned:
            dist.init_process_group("gloo")
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), owned=owned)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group this process created (every exit path of a run: fit's finally)."""
        if self.owned and dist.is_initialized():
            dist.destroy_process_group()
        self.owned = False

    def per_rank_batch(self, global_batch: int) -> int:
        """This process's share of the global batch (train.batch_size is the global batch, as in the paper)."""
        if global_batch % self.world:
            raise InputError(f"train.batch_size {global_batch} is the global batch: it must split evenly over "
                             f"train.devices {self.world} processes")
        return global_batch // self.world

    def global_mean_loss(self, total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """This rank's loss term such that DDP's average of the gradients over ranks is the gradient of the
        global batch's loss: the local sum over the labelled cells of ALL ranks, times the world (which
        DDP's average divides out). Ranks see different numbers of labelled cells (ignored uncertain and
        blank labels), so each rank's own mean would weight a cell by its rank's count. The all-reduce of
        the count stays on the device (no host sync); with one process it is the plain mean."""
        if self.world == 1:
            return total / count.clamp_min(1.0)
        count = count.detach().clone()
        dist.all_reduce(count)
        return total * self.world / count.clamp_min(1.0)

    def mean_over_ranks(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a per-rank tensor over every rank (a collective: every rank calls it at the same point)."""
        if self.world == 1:
            return value
        value = value.detach().clone()
        dist.all_reduce(value)
        return value / self.world


def sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """BatchNorm over the global batch: timm's SyncBatchNorm conversion on GPU (keeps BatchNormAct's
    activation); on CPU, where torch's SyncBatchNorm refuses to run, an all-reduce of the batch moments."""
    if device.type == "cuda":
        return convert_sync_batchnorm(model)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.forward = functools.partial(_gloo_synced_forward, module)
    return model


class _SumOverProcesses(torch.autograd.Function):
    """all_reduce(SUM) with its gradient: the sum's gradient is the sum of every process's gradient."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _gloo_synced_forward(bn: torch.nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """SyncBatchNorm's arithmetic on CPU: mean and biased variance of the global batch for the output,
    unbiased variance into the running statistics; gradients flow through the (differentiable) all-reduce."""
    if not bn.training:
        return type(bn).forward(bn, x)
    channels, dims = x.shape[1], [0, *range(2, x.ndim)]
    count = x.new_full((1,), x.numel() / channels)
    totals = _SumOverProcesses.apply(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
    n = totals[-1]
    mean = totals[:channels] / n
    var = totals[channels:2 * channels] / n - mean * mean
    with torch.no_grad():
        bn.num_batches_tracked.add_(1)
        factor = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        bn.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
        bn.running_var.mul_(1 - factor).add_(var.detach() * n / (n - 1), alpha=factor)
    shape = (1, channels) + (1,) * (x.ndim - 2)
    y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + bn.eps)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    if hasattr(bn, "act"):  # timm's BatchNormAct2d: norm, then drop and activation
        y = bn.act(bn.drop(y))
    return y


def is_main_process() -> bool:
    return int(os.environ.get("RANK", 0)) == 0


def relaunch_under_torchrun(devices: int, script: str, argv: Sequence[str]) -> None:
    """Run `script argv` as `devices` DistributedDataParallel processes (torchrun --standalone).

    The ranks' stderr is read here: on failure the first one-line `error:` of a rank (every rank stops
    at the same check, e.g. a non-finite loss) becomes this process's one error, not torchrun's traceback."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
               script, *argv]
    completed = subprocess.run(command, stderr=subprocess.PIPE, text=True)
    errors = [line[len("error: "):] for line in completed.stderr.splitlines() if line.startswith("error: ")]
    if completed.returncode == 0:
        sys.stderr.write(completed.stderr)
        return
    if errors:
        raise TrainingError(f"{errors[0]} (stopped all {devices} torchrun processes)")
    sys.stderr.write(completed.stderr)
    raise TrainingError(f"torchrun with {devices} processes failed (exit {completed.returncode}); its output is above")
