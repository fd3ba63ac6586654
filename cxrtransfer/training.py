"""The one training loop: fine-tuning on CheXpert, truncated models and in-domain pretraining all use it.

Cadence is counted in images, as in the CheXpert reference code (`global_step += batch_size`):
evaluate and offer a checkpoint to the top-k keeper every `eval_every_images` images.
"""

from __future__ import annotations

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
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

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


# ---------------------------------------------------------------- batches straight from the RAM cache
@dataclass
class ImageSet:
    """Rows of the image cache with their targets and loss mask."""

    images: np.ndarray          # (N_cache, S, S) uint8, shared by every split
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
    if device.type == "cuda":
        x = x.pin_memory()  # page-locked, so the copy below overlaps with compute
    x = x.to(device, non_blocking=True).float().div_(255.0).expand(-1, 3, -1, -1)
    mean = torch.tensor(normalization[0], device=device, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(normalization[1], device=device, dtype=torch.float32).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


# ---------------------------------------------------------------- configuration and devices
@dataclass(frozen=True)
class FitConfig:
    epochs: int = 3
    batch_size: int = 16
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    eval_every_images: int = 4800
    top_k: int = 10
    seed: int = 0
    eval_batch_size: int = 128
    max_images: int = 0  # stop after this many training images (0: no limit)

    def total_images(self, n_train: int) -> int:
        """Training images of the whole run: epochs x n_train, capped by max_images when set."""
        return min(self.max_images, self.epochs * n_train) if self.max_images else self.epochs * n_train


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            local_rank = int(os.environ.get("LOCAL_RANK", 0))
            return torch.device("cuda", local_rank)
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} requested but CUDA is not available")
    return device


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


# ---------------------------------------------------------------- inference
@torch.inference_mode()
def predict(model: torch.nn.Module, layout: OutputLayout, data: ImageSet, device: torch.device,
            batch_size: int = 128, normalization: Normalization = IMAGENET_NORMALIZATION) -> np.ndarray:
    """Probabilities for every row of `data`, batched, without autograd."""
    was_training = model.training
    model.eval()
    channels_last = device.type == "cuda"
    outputs = []
    for start in range(0, len(data), batch_size):
        x, _, _ = data.batch(np.arange(start, min(start + batch_size, len(data))))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(to_model_input(x, device, channels_last, normalization))
        outputs.append(layout.probabilities(logits).cpu().numpy())
    model.train(was_training)
    return np.concatenate(outputs).astype(np.float64)


# ---------------------------------------------------------------- one optimizer step
def train_step(net: torch.nn.Module, layout: OutputLayout, optimizer: torch.optim.Optimizer,
               batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], device: torch.device,
               normalization: Normalization = IMAGENET_NORMALIZATION) -> float:
    """One step on a batch from ImageSet.batch (uint8 images, targets, mask); returns the loss.

    The one training step: fit() runs it, and the benchmarks and the device-hours estimate time it.
    """
    x, targets, mask = batch
    x = to_model_input(x, device, device.type == "cuda", normalization)
    targets, mask = targets.to(device, non_blocking=True), mask.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = net(x)
    loss = layout.loss(logits, targets, mask)
    if not torch.isfinite(loss):
        raise TrainingError(f"loss is {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


# ---------------------------------------------------------------- the loop
@dataclass
class FitResult:
    kept: list[tuple[float, int]]       # (validation score, step in images), best first
    history: list[dict[str, float]]     # one record per evaluation
    images_per_second: float
    checkpoint_dir: Path


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffle of epoch `epoch`: a pure function of (seed, epoch), so a resumed run sees the same order."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def fit(model: torch.nn.Module, layout: OutputLayout, train: ImageSet, valid: ImageSet,
        score: Callable[[np.ndarray], tuple[float, dict[str, float]]], config: FitConfig,
        state_dir: Path, fingerprint: str, device: torch.device | None = None,
        live: Any = None, log: Callable[[str], None] = print,
        normalization: Normalization = IMAGENET_NORMALIZATION) -> FitResult:
    """Train `model` with Adam, evaluate every `eval_every_images`, keep the top-k checkpoints.

    `score(valid_probabilities) -> (selection score, metrics)` ranks checkpoints. All working files
    (checkpoints, resume state) live in `state_dir`, outside the stage's declared outputs, so an
    interrupted run resumes there and DVC's run-cache stays usable.
    """
    device = device or pick_device()
    dist = Distributed.from_env(device)
    torch.manual_seed(config.seed)  # dropout / drop-path draws; the shuffle has its own generator
    model.to(device)
    channels_last = device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas,
                                 weight_decay=config.weight_decay)
    topk = checkpoints.TopK(state_dir / "checkpoints", config.top_k)
    step, epoch, position, history = 0, 0, 0, []
    resumed = checkpoints.load_resume_state(state_dir, model, optimizer, fingerprint)
    if resumed:
        step, epoch, position = resumed["step"], resumed["epoch"], resumed["position"]
        history = resumed["history"]
        topk.entries = [tuple(e) for e in resumed["topk"]]
        log(f"resuming at {step} images (epoch {epoch + 1})")
    elif state_dir.exists():
        for stale in state_dir.glob("checkpoints/*.safetensors"):
            stale.unlink()
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    total = config.total_images(len(train))
    global_batch = config.batch_size * dist.world
    next_eval = (step // config.eval_every_images + 1) * config.eval_every_images
    started, images_timed = time.perf_counter(), 0

    last_evaluated = history[-1]["step"] if history else -1

    def evaluate() -> None:
        nonlocal started, images_timed, last_evaluated
        last_evaluated = step
        rate = images_timed / max(time.perf_counter() - started, 1e-9)
        if dist.is_main:
            probabilities = predict(model, layout, valid, device, config.eval_batch_size, normalization)
            value, metrics = score(probabilities)
            record = {"step": step, "score": value, "train_loss": running_loss(), "images_per_second": rate, **metrics}
            history.append(record)
            kept = topk.offer(step, value, model.state_dict())
            log(f"  {step:>9} images  val {value:.4f}  loss {record['train_loss']:.4f}  "
                f"{rate:,.0f} img/s{'  kept' if kept else ''}")
            if live is not None:
                live.step = step
                for key, val in record.items():
                    if key != "step" and isinstance(val, float) and math.isfinite(val):
                        live.log_metric(key, val)
                live.make_summary()
            checkpoints.save_resume_state(state_dir, model, optimizer, {
                "fingerprint": fingerprint, "step": step, "epoch": epoch, "position": position,
                "history": history, "topk": topk.kept()})
        dist.barrier()
        started, images_timed = time.perf_counter(), 0

    losses: list[float] = []

    def running_loss() -> float:
        value = float(np.mean(losses)) if losses else float("nan")
        losses.clear()
        return value

    progress = Progress(TextColumn("train"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f} img"),
                        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                        disable=not (dist.is_main and sys.stderr.isatty()), transient=True)
    model.train()
    with progress:
        bar = progress.add_task("train", total=total, completed=step, rate="")
        while step < total and epoch < config.epochs:
            order = epoch_order(len(train), config.seed, epoch)
            while position + global_batch <= len(order) and step < total:
                chunk = order[position:position + global_batch]
                mine = chunk[dist.rank * config.batch_size:(dist.rank + 1) * config.batch_size]
                try:
                    losses.append(train_step(net, layout, optimizer, train.batch(mine), device, normalization))
                except TrainingError as err:
                    raise TrainingError(f"{err} at {step} images (epoch {epoch + 1}); "
                                        f"lower train.lr ({config.lr}) or check the inputs") from None
                position += global_batch
                step += global_batch
                images_timed += global_batch
                progress.update(bar, completed=step,
                                rate=f"{images_timed / max(time.perf_counter() - started, 1e-9):,.0f} img/s")
                if step >= next_eval:
                    evaluate()
                    next_eval += config.eval_every_images
            if position + global_batch > len(order):
                epoch, position = epoch + 1, 0
        if last_evaluated != step:
            evaluate()  # the final weights are always a candidate (on every rank: evaluate() has a barrier)
    rates = [h["images_per_second"] for h in history if h["images_per_second"] > 0]
    return FitResult(kept=topk.kept(), history=history, images_per_second=float(np.median(rates)) if rates else 0.0,
                     checkpoint_dir=topk.folder)


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


def read_split(path: Path, index: pd.DataFrame) -> pd.Series:
    """The split name of every cache row; the split table must list the cache's images in order."""
    if not Path(path).is_file():
        raise InputError("split table not found: run the split stage first", path)
    table = pd.read_csv(path)
    if len(table) != len(index) or not (table["path"].to_numpy() == index["path"].to_numpy()).all():
        raise InputError("split table does not match the cache index (rerun the split stage)", path)
    return table["split"]


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


def open_live(folder: Path, resume: bool) -> Any:
    """dvclive that never writes dvc.yaml (many matrix stages run at once) and never saves an experiment."""
    from dvclive import Live
    return Live(str(folder), resume=resume, dvcyaml=False, save_dvc_exp=False)


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
