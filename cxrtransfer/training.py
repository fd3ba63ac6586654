"""The one training loop: fine-tuning on CheXpert, truncated models and in-domain pretraining all use it.

Cadence is counted in images, as in the CheXpert reference code (`global_step += batch_size`):
evaluate and offer a checkpoint to the top-k keeper every `eval_every_images` images.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import checkpoints
from .auc import auroc
from .chexpert import MULTICLASS_CLASSES, evaluation_targets, policy_targets, study_level
from .errors import InputError, TrainingError
from .images import IMAGENET_MEAN, IMAGENET_STD


# ---------------------------------------------------------------- output layouts (what the logits mean)
class OutputLayout(Protocol):
    width: int

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor: ...


@dataclass
class ChexpertLayout:
    """One logit per binary task, three (negative, positive, uncertain) per U-MultiClass task."""

    policies: Sequence[str]
    slices: list[slice] = field(init=False)
    width: int = field(init=False)

    def __post_init__(self) -> None:
        self.slices, start = [], 0
        for policy in self.policies:
            n = MULTICLASS_CLASSES if policy == "multiclass" else 1
            self.slices.append(slice(start, start + n))
            start += n
        self.width = start

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked BCE for binary tasks, cross-entropy for U-MultiClass tasks; mean over labelled cells."""
        total = logits.new_zeros(())
        count = mask.sum().clamp_min(1.0)
        for j, (policy, sl) in enumerate(zip(self.policies, self.slices)):
            if policy == "multiclass":
                ce = F.cross_entropy(logits[:, sl].float(), targets[:, j].long(), reduction="none")
                total = total + (ce * mask[:, j]).sum()
            else:
                bce = F.binary_cross_entropy_with_logits(logits[:, sl.start].float(), targets[:, j], reduction="none")
                total = total + (bce * mask[:, j]).sum()
        return total / count

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """P(positive) per task; U-MultiClass: softmax over the (negative, positive) logits, keep positive."""
        columns = []
        for policy, sl in zip(self.policies, self.slices):
            if policy == "multiclass":
                columns.append(torch.softmax(logits[:, sl.start:sl.start + 2].float(), dim=1)[:, 1])
            else:
                columns.append(torch.sigmoid(logits[:, sl.start].float()))
        return torch.stack(columns, dim=1)


@dataclass
class ClassificationLayout:
    """Single-label multi-class (in-domain pretraining): cross-entropy over `width` classes."""

    width: int

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets[:, 0].long())

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=1)


# ---------------------------------------------------------------- batches straight from the (memory-mapped) cache
@dataclass
class ImageSet:
    """Rows of the image cache with their targets and loss mask."""

    images: np.ndarray          # (N_cache, S, S) uint8, memory-mapped, shared by every split
    rows: np.ndarray            # indices into `images`
    targets: np.ndarray         # (len(rows), T) float32
    mask: np.ndarray            # (len(rows), T) float32

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """uint8 images (B, 1, S, S) and float targets/mask for positions into this set."""
        x = torch.from_numpy(self.images[self.rows[positions]])
        return (x.unsqueeze(1), torch.from_numpy(self.targets[positions]), torch.from_numpy(self.mask[positions]))


Normalization = tuple[Sequence[float], Sequence[float]]
IMAGENET_NORMALIZATION: Normalization = (IMAGENET_MEAN, IMAGENET_STD)


def to_model_input(x: torch.Tensor, device: torch.device, channels_last: bool,
                   normalization: Normalization = IMAGENET_NORMALIZATION) -> torch.Tensor:
    """uint8 grayscale (B,1,S,S) -> normalized float (B,3,S,S) on `device` (the weights' own mean/std)."""
    if device.type == "cuda" and x.device.type == "cpu":
        x = x.pin_memory()  # page-locked, so the copy below does not block the host
    x = x.to(device, non_blocking=True).float().div_(255.0).expand(-1, 3, -1, -1)
    mean = torch.tensor(normalization[0], device=device, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(normalization[1], device=device, dtype=torch.float32).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


# ---------------------------------------------------------------- configuration and devices
@dataclass(frozen=True)
class FitConfig:
    epochs: int = 3
    batch_size: int = 16        # per process: the global batch is batch_size x devices
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    eval_every_images: int = 8192  # CheXtransfer (the CheXpert paper's scripts: 4800)
    top_k: int = 10
    seed: int = 0
    eval_batch_size: int = 128
    max_images: int = 0  # stop after this many training images (0: no limit)
    sync_batchnorm: bool = True  # with devices > 1: BatchNorm statistics over the global batch

    def total_images(self, n_train: int) -> int:
        """Training images of the whole run: epochs x n_train, capped by max_images when set."""
        return min(self.max_images, self.epochs * n_train) if self.max_images else self.epochs * n_train

    def next_evaluation(self, step: int) -> int:
        """The first evaluation point (in images) after `step`."""
        return (step // self.eval_every_images + 1) * self.eval_every_images


def pick_device(name: str = "auto") -> torch.device:
    """`auto`: this process's GPU (LOCAL_RANK under torchrun), else the CPU. A CUDA device becomes current."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"device {name!r} requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)  # else every rank creates its context on GPU 0
    return device


@dataclass
class Precision:
    """Mixed precision of a device: bf16 autocast where the GPU has it, fp16 + GradScaler otherwise, fp32 on CPU."""

    dtype: torch.dtype | None
    scaler: Any = None  # torch.amp.GradScaler for fp16

    @classmethod
    def for_device(cls, device: torch.device) -> "Precision":
        if device.type != "cuda":
            return cls(None)
        if torch.cuda.is_bf16_supported():
            return cls(torch.bfloat16)
        return cls(torch.float16, torch.amp.GradScaler("cuda"))

    def autocast(self, device: torch.device) -> Any:
        return torch.autocast(device.type, dtype=self.dtype, enabled=self.dtype is not None)


@dataclass
class Distributed:
    """The torchrun world this process belongs to (world 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> "Distributed":
        world = int(os.environ.get("WORLD_SIZE", 1))
        if world <= 1:
            return cls()
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(rank=dist.get_rank(), world=dist.get_world_size())

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()


def sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """BatchNorm over the global batch: timm's SyncBatchNorm conversion on GPU (keeps BatchNormAct's
    activation); on CPU, where torch's SyncBatchNorm refuses to run, an all-reduce of the batch moments."""
    if device.type == "cuda":
        from timm.layers import convert_sync_batchnorm
        return convert_sync_batchnorm(model)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.forward = functools.partial(_gloo_synced_forward, module)
    return model


class _SumOverProcesses(torch.autograd.Function):
    """all_reduce(SUM) with its gradient: the sum's gradient is the sum of every process's gradient."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist
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


# ---------------------------------------------------------------- inference
@torch.inference_mode()
def predict(model: torch.nn.Module, layout: OutputLayout, data: ImageSet, device: torch.device,
            batch_size: int = 128, normalization: Normalization = IMAGENET_NORMALIZATION) -> np.ndarray:
    """Probabilities for every row of `data`, batched, without autograd."""
    was_training = model.training
    model.eval()
    precision = Precision.for_device(device)
    outputs = []
    for start in range(0, len(data), batch_size):
        x, _, _ = data.batch(np.arange(start, min(start + batch_size, len(data))))
        with precision.autocast(device):
            logits = model(to_model_input(x, device, device.type == "cuda", normalization))
        outputs.append(layout.probabilities(logits).cpu().numpy())
    model.train(was_training)
    return np.concatenate(outputs).astype(np.float64)


# ---------------------------------------------------------------- one optimizer step
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def to_device(batch: Batch, device: torch.device, normalization: Normalization = IMAGENET_NORMALIZATION) -> Batch:
    """A batch from ImageSet.batch as model input, targets and mask on `device` (copies do not block)."""
    x, targets, mask = batch
    if device.type == "cuda":
        targets, mask = targets.pin_memory(), mask.pin_memory()
    return (to_model_input(x, device, device.type == "cuda", normalization),
            targets.to(device, non_blocking=True), mask.to(device, non_blocking=True))


def prefetched(batches: Iterator[Batch], device: torch.device, normalization: Normalization) -> Iterator[Batch]:
    """The batches on `device`, each one queued before the step on the previous one runs: the host prepares
    batch n+1 while the GPU computes step n."""
    upcoming = None
    for batch in batches:
        current, upcoming = upcoming, to_device(batch, device, normalization)
        if current is not None:
            yield current
    if upcoming is not None:
        yield upcoming


def train_step(net: torch.nn.Module, layout: OutputLayout, optimizer: torch.optim.Optimizer,
               batch: Batch, device: torch.device, normalization: Normalization, precision: Precision) -> torch.Tensor:
    """One Adam step on a batch (from ImageSet.batch, or already on the device); returns the loss tensor,
    detached and left on the device: reading it (.item()) would make the host wait for the GPU.

    The one training step: fit() runs it, and the benchmarks and the device-hours estimate time it.
    """
    x, targets, mask = to_device(batch, device, normalization) if batch[0].dtype == torch.uint8 else batch
    with precision.autocast(device):
        logits = net(x)
    loss = layout.loss(logits, targets, mask)
    optimizer.zero_grad(set_to_none=True)
    if precision.scaler is not None:
        precision.scaler.scale(loss).backward()
        precision.scaler.step(optimizer)
        precision.scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss.detach()


# ---------------------------------------------------------------- the loop
@dataclass
class FitResult:
    kept: list[tuple[float, int]]       # (validation score, step in images), best first
    history: list[dict[str, float]]     # one record per evaluation (deterministic numbers only)
    images_per_second: float           # median over evaluation intervals (timing: not a metric)
    checkpoint_dir: Path


@dataclass
class RunState:
    """Where a run stands; saved at every evaluation, restored on resume."""

    step: int = 0        # training images seen (all processes)
    epoch: int = 0
    position: int = 0    # into the epoch's shuffle
    history: list[dict[str, float]] = field(default_factory=list)
    loss_sum: Any = 0.0  # summed on the device since the last evaluation (no per-step host sync)
    loss_steps: int = 0


@dataclass
class Trainer:
    """What every step needs: the model (and its DDP wrapper `net`), optimizer, data, device."""

    model: torch.nn.Module
    net: torch.nn.Module
    layout: OutputLayout
    optimizer: torch.optim.Optimizer
    precision: Precision
    train: ImageSet
    config: FitConfig
    device: torch.device
    dist: Distributed
    normalization: Normalization


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffle of epoch `epoch`: a pure function of (seed, epoch), so a resumed run sees the same order."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def epoch_batches(t: Trainer, state: RunState) -> Iterator[Batch]:
    """This process's share of each global batch left in the current epoch (a short last batch is dropped)."""
    order = epoch_order(len(t.train), t.config.seed, state.epoch)
    size, world = t.config.batch_size, t.dist.world
    for start in range(state.position, len(order) - size * world + 1, size * world):
        yield t.train.batch(order[start + t.dist.rank * size:start + (t.dist.rank + 1) * size])


def train_one_epoch(t: Trainer, state: RunState, stop_at: int) -> None:
    """Train through the rest of the current epoch, or until `stop_at` images (an evaluation is due)."""
    global_batch = t.config.batch_size * t.dist.world
    t.model.train()
    for batch in prefetched(epoch_batches(t, state), t.device, t.normalization):
        state.loss_sum = state.loss_sum + train_step(t.net, t.layout, t.optimizer, batch, t.device,
                                                     t.normalization, t.precision)
        state.loss_steps += 1
        state.step += global_batch
        state.position += global_batch
        if state.step >= stop_at:
            return
    state.epoch, state.position = state.epoch + 1, 0


def mean_train_loss(state: RunState, config: FitConfig) -> float:
    """The loss since the last evaluation (one host sync here); a non-finite loss stops the run."""
    value = float(state.loss_sum) / state.loss_steps if state.loss_steps else float("nan")
    if state.loss_steps and not math.isfinite(value):
        raise TrainingError(f"loss is {value} in the {state.loss_steps} steps before {state.step} images "
                            f"(epoch {state.epoch + 1}); lower train.lr ({config.lr}) or check the inputs")
    state.loss_sum, state.loss_steps = 0.0, 0
    return value


def validate(t: Trainer, valid: ImageSet, score: Callable[[np.ndarray], tuple[float, dict[str, float]]]
             ) -> tuple[float, dict[str, float]]:
    """The selection score and metrics of the current weights on the validation set."""
    return score(predict(t.model, t.layout, valid, t.device, t.config.eval_batch_size, t.normalization))


def log_to_live(live: Any, record: dict[str, Any]) -> None:
    """One evaluation as a dvclive step (no timestamps: the curves are a function of the run)."""
    live.step = record["step"]
    for key in sorted(record):  # sorted: a record restored from the resume state has its keys sorted
        if key != "step" and isinstance(record[key], float) and math.isfinite(record[key]):
            live.log_metric(key, record[key])
    live.make_summary()


def prepare(model: torch.nn.Module, layout: OutputLayout, train: ImageSet, config: FitConfig,
            device: torch.device, normalization: Normalization) -> Trainer:
    """Model on the device (channels-last on GPU), Adam, mixed precision, DDP with synchronized BatchNorm."""
    dist = Distributed.from_env(device)
    model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels
        model.to(memory_format=torch.channels_last)
    if dist.world > 1 and config.sync_batchnorm:
        model = sync_batchnorm(model, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas,
                                 weight_decay=config.weight_decay)
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return Trainer(model, net, layout, optimizer, Precision.for_device(device), train, config, device, dist,
                   normalization)


def resume_or_start(t: Trainer, state_dir: Path, topk: checkpoints.TopK, fingerprint: str,
                    live: Any, log: Callable[[str], None]) -> RunState:
    """The saved state of this run (same fingerprint) if any, with its curves replayed into dvclive."""
    saved = checkpoints.load_resume_state(state_dir, t.model, t.optimizer, fingerprint, t.precision.scaler)
    state = RunState()
    if saved:
        state = RunState(saved["step"], saved["epoch"], saved["position"], saved["history"])
        topk.entries = [tuple(e) for e in saved["topk"]]
        log(f"resuming at {state.step} images (epoch {state.epoch + 1})")
    if t.dist.is_main:
        topk.prune()  # checkpoints the saved state does not name (written after it, or by another run)
        for record in state.history:
            if live is not None:
                log_to_live(live, record)
    return state


def evaluate_and_save(t: Trainer, state: RunState, valid: ImageSet, score: Callable, topk: checkpoints.TopK,
                      state_dir: Path, fingerprint: str, live: Any, log: Callable[[str], None],
                      images_per_second: float) -> None:
    """Rank 0: validate, offer the checkpoint, log, save the resume state; then every rank goes on."""
    train_loss = mean_train_loss(state, t.config)
    if t.dist.is_main:
        value, metrics = validate(t, valid, score)
        record = {"step": state.step, "score": value, "train_loss": train_loss, **metrics}
        state.history.append(record)
        kept = topk.offer(state.step, value, t.model.state_dict())
        log(f"  {state.step:>9} images  val {value:.4f}  loss {train_loss:.4f}  "
            f"{images_per_second:,.0f} img/s{'  kept' if kept else ''}")
        if live is not None:
            log_to_live(live, record)
        checkpoints.save_resume_state(state_dir, t.model, t.optimizer, {
            "fingerprint": fingerprint, "step": state.step, "epoch": state.epoch, "position": state.position,
            "history": state.history, "topk": topk.kept()}, t.precision.scaler)
        topk.prune()  # only now: the state just saved no longer names what the offer pushed out
    t.dist.barrier()


def fit(model: torch.nn.Module, layout: OutputLayout, train: ImageSet, valid: ImageSet,
        score: Callable[[np.ndarray], tuple[float, dict[str, float]]], config: FitConfig,
        state_dir: Path, fingerprint: str, device: torch.device | None = None,
        live: Any = None, log: Callable[[str], None] = print,
        normalization: Normalization = IMAGENET_NORMALIZATION) -> FitResult:
    """Train `model` with Adam, evaluate every `eval_every_images`, keep the top-k checkpoints.

    `score(valid_probabilities) -> (selection score, metrics)` ranks checkpoints. All working files
    (checkpoints, resume state) live in `state_dir`, outside the stage's declared outputs, so an
    interrupted run (even by kill -9) resumes there and DVC's run-cache stays usable.
    """
    device = device or pick_device()
    torch.manual_seed(config.seed)  # dropout / drop-path draws; the shuffle has its own generator
    t = prepare(model, layout, train, config, device, normalization)
    topk = checkpoints.TopK(state_dir / "checkpoints", config.top_k)
    state = resume_or_start(t, state_dir, topk, fingerprint, live, log)
    total, rates = config.total_images(len(train)), []
    last_evaluated = state.history[-1]["step"] if state.history else -1
    clock = (time.perf_counter(), state.step)

    def evaluate() -> None:
        nonlocal last_evaluated, clock
        if device.type == "cuda":
            torch.cuda.synchronize()  # the rate covers finished work
        rates.append((state.step - clock[1]) / max(time.perf_counter() - clock[0], 1e-9))
        evaluate_and_save(t, state, valid, score, topk, state_dir, fingerprint, live, log, rates[-1])
        last_evaluated, clock = state.step, (time.perf_counter(), state.step)

    while state.step < total and state.epoch < config.epochs:
        due = min(config.next_evaluation(state.step), total)
        train_one_epoch(t, state, stop_at=due)
        if state.step >= due:
            evaluate()
    if last_evaluated != state.step:  # the final weights are always a candidate (epochs ran out first)
        evaluate()
    return FitResult(kept=topk.kept(), history=state.history,
                     images_per_second=float(np.median(rates)) if rates else 0.0, checkpoint_dir=topk.folder)


def iter_checkpoints(result: FitResult) -> Iterator[tuple[int, float, Path]]:
    for value, step in result.kept:
        yield step, value, result.checkpoint_dir / f"step{step:010d}.safetensors"


# ---------------------------------------------------------------- what the stages share around fit()
def fit_config(config: dict[str, Any]) -> FitConfig:
    """FitConfig from a params section (unknown keys are the caller's business)."""
    keys = FitConfig.__dataclass_fields__
    values = {k: config[k] for k in keys if k in config}
    if "betas" in values:
        values["betas"] = tuple(float(b) for b in values["betas"])
    for key in ("lr", "weight_decay"):
        if key in values:
            values[key] = float(values[key])
    return FitConfig(**values)


def seeded(seed: int, build: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `build` under a fixed torch seed without touching the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(*args, **kwargs)


def chexpert_set(images: np.ndarray, index: pd.DataFrame, selected: pd.Series, tasks: Sequence[str],
                 policies: Sequence[str], blank_as_negative: bool) -> ImageSet:
    """Training rows with targets and mask from the uncertainty policies."""
    rows = np.flatnonzero(np.asarray(selected))
    targets, mask = policy_targets(index.iloc[rows][list(tasks)].to_numpy(np.float32), policies, blank_as_negative)
    return ImageSet(images, rows, targets, mask)


def eval_set(images: np.ndarray, rows: np.ndarray, n_targets: int) -> ImageSet:
    """Rows to predict on (targets unused)."""
    zeros = np.zeros((len(rows), n_targets), dtype=np.float32)
    return ImageSet(images, np.asarray(rows), zeros, zeros)


def study_auc_scorer(frame: pd.DataFrame, tasks: Sequence[str], selection: Sequence[str]
                     ) -> Callable[[np.ndarray], tuple[float, dict[str, float]]]:
    """Validation scoring of the reference code: study-level max over views, AUROC per task,
    checkpoint score = mean AUROC over the selection tasks."""
    labels = study_level(frame, list(tasks), how="first")
    targets, weights = evaluation_targets(labels[list(tasks)].to_numpy(np.float32))
    for j, task in enumerate(tasks):
        present = np.unique(targets[weights[:, j] > 0, j])
        if task in selection and len(present) < 2:
            raise InputError(f"validation split has a single class for {task!r}: AUROC undefined")
    keys = frame[["study", "patient"]].reset_index(drop=True)

    def score(probabilities: np.ndarray) -> tuple[float, dict[str, float]]:
        predictions = pd.concat([keys, pd.DataFrame(probabilities, columns=list(tasks))], axis=1)
        per_study = study_level(predictions, list(tasks), how="max")[list(tasks)].to_numpy()
        aucs = {task: auroc(per_study[:, j], targets[:, j], weights[:, j]) for j, task in enumerate(tasks)}
        value = float(np.mean([aucs[t] for t in selection]))
        return value, {f"auc/{t}": v for t, v in aucs.items()}

    return score


def fingerprint(*parts: Any) -> str:
    """A hash of a run's arguments and inputs: a saved resume state is used only for the same run."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, (list, tuple)) and part and all(isinstance(p, Path) for p in part):
            for path in part:
                stat = path.stat()
                digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def open_live(folder: Path) -> Any:
    """dvclive that never writes dvc.yaml (many matrix stages run at once) and never saves an experiment.

    Always a fresh folder (DVC deletes it before a rerun anyway): a resumed fit() replays the curves
    saved in its resume state, so they continue where the interrupted run stopped.
    """
    from dvclive import Live
    return Live(str(folder), dvcyaml=False, save_dvc_exp=False)


def timing_path(state_dir: Path) -> Path:
    """Where a stage leaves its timing: beside its resume state, outside git and DVC."""
    return state_dir.with_name(state_dir.name + ".timing.json")


def write_timing(path: Path, result: FitResult, device: torch.device, started: float) -> None:
    """Throughput and wall time: they differ run to run, so they stay out of DVC metrics and hashed outputs."""
    from .fileio import write_json
    write_json(path, {"images_per_second": result.images_per_second, "device": str(device),
                      "fit_seconds": time.perf_counter() - started,
                      "images": result.history[-1]["step"] if result.history else 0}, digits=3)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", 0)) == 0


def relaunch_under_torchrun(devices: int, script: str, argv: Sequence[str]) -> None:
    """Run `script argv` as `devices` DistributedDataParallel processes (torchrun --standalone)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
               script, *argv]
    completed = subprocess.run(command)
    if completed.returncode != 0:
        raise TrainingError(f"torchrun with {devices} processes failed (exit {completed.returncode})")


def holdout_rows(n: int, fraction: float, seed: int) -> np.ndarray:
    """A seeded boolean mask holding out `fraction` of n rows (at least one) for validation."""
    count = max(1, int(round(n * fraction)))
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng([seed, n]).permutation(n)[:count]] = True
    return mask
