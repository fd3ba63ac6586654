"""The one training loop: fine-tuning on CheXpert, truncated models and in-domain pretraining all use it.

Cadence is counted in images, as in the CheXpert reference code (`global_step += batch_size`):
evaluate and offer a checkpoint to the top-k keeper every `eval_every_images` images.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..errors import TrainingError
from ..stats.paper_settings import paper_value
from . import checkpoints
from .dataset import IMAGENET_NORMALIZATION, Batch, ImageSet, Normalization, prefetched, to_device, to_model_input
from .devices import Precision, pick_device
from .distributed import Distributed, sync_batchnorm
from .layouts import OutputLayout


@dataclass(frozen=True)
class FitConfig:
    """One run's training settings (the params schema gives every stage the paper's values by default)."""

    epochs: int
    batch_size: int             # the global batch (the paper's 16): each of the DDP processes takes an equal share
    lr: float
    eval_every_images: int      # cadence in images, as the reference code counts
    top_k: int
    betas: tuple[float, float] = tuple(paper_value("train.betas"))
    weight_decay: float = paper_value("train.weight_decay")
    seed: int = 0
    eval_batch_size: int = 128
    max_images: int = paper_value("train.max_images")  # stop after this many training images (0: no limit)
    sync_batchnorm: bool = True  # with devices > 1: BatchNorm statistics over the global batch
    compile: bool = False        # torch.compile the training model (CUDA only; ignored with a message elsewhere)

    def total_images(self, n_train: int) -> int:
        """Training images of the whole run: epochs x n_train, capped by max_images when set."""
        return min(self.max_images, self.epochs * n_train) if self.max_images else self.epochs * n_train

    def next_evaluation(self, step: int) -> int:
        """The first evaluation point (in images) after `step`."""
        return (step // self.eval_every_images + 1) * self.eval_every_images


@torch.inference_mode()
def predict(model: torch.nn.Module, layout: OutputLayout, data: ImageSet, device: torch.device,
            batch_size: int = 128, normalization: Normalization = IMAGENET_NORMALIZATION) -> np.ndarray:
    """Probabilities for every row of `data`, batched, without autograd, in fp32 (no autocast): the
    validation AUROC picks the kept checkpoints, and bf16 logits (8 significant bits) would tie scores."""
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(data), batch_size):
        x, _, _ = data.batch(np.arange(start, min(start + batch_size, len(data))))
        logits = model(to_model_input(x, device, device.type == "cuda", normalization))
        outputs.append(layout.probabilities(logits).cpu().numpy())
    model.train(was_training)
    return np.concatenate(outputs).astype(np.float64)


def train_step(net: torch.nn.Module, layout: OutputLayout, optimizer: torch.optim.Optimizer,
               batch: Batch, device: torch.device, normalization: Normalization, precision: Precision,
               world: Distributed | None = None) -> torch.Tensor:
    """One Adam step on a batch (from ImageSet.batch, or already on the device); returns the loss tensor,
    detached and left on the device: reading it (.item()) would make the host wait for the GPU.

    The one training step: fit() runs it, and the benchmarks and the device-hours estimate time it.
    Under DDP (`world`) the loss is normalized over the global batch's labelled cells.
    """
    x, targets, mask = to_device(batch, device, normalization) if batch[0].dtype == torch.uint8 else batch
    with precision.autocast(device):
        logits = net(x)
    if world is None or world.world == 1:
        loss = layout.loss(logits, targets, mask)
    else:
        loss = world.global_mean_loss(*layout.loss_terms(logits, targets, mask))
    optimizer.zero_grad(set_to_none=True)
    if precision.scaler is not None:
        precision.scaler.scale(loss).backward()
        precision.scaler.step(optimizer)
        precision.scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss.detach()


@dataclass
class FitResult:
    kept: list[tuple[float, int]]       # (validation score, step in images), best first
    history: list[dict[str, float]]     # one record per evaluation (deterministic numbers only)
    images_per_second: float           # median over evaluation intervals (timing: not a metric)
    checkpoint_dir: Path

    def checkpoint(self, step: int) -> Path:
        """The file of a kept checkpoint."""
        return checkpoints.checkpoint_path(self.checkpoint_dir, step)


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
    size, global_batch = t.dist.per_rank_batch(t.config.batch_size), t.config.batch_size
    for start in range(state.position, len(order) - global_batch + 1, global_batch):
        yield t.train.batch(order[start + t.dist.rank * size:start + (t.dist.rank + 1) * size])


def train_one_epoch(t: Trainer, state: RunState, stop_at: int) -> None:
    """Train through the rest of the current epoch, or until `stop_at` images (an evaluation is due)."""
    global_batch = t.config.batch_size
    t.model.train()
    for batch in prefetched(epoch_batches(t, state), t.device, t.normalization):
        state.loss_sum = state.loss_sum + train_step(t.net, t.layout, t.optimizer, batch, t.device,
                                                     t.normalization, t.precision, t.dist)
        state.loss_steps += 1
        state.step += global_batch
        state.position += global_batch
        if state.step >= stop_at:
            return
    state.epoch, state.position = state.epoch + 1, 0


def mean_train_loss(state: RunState, config: FitConfig, world: Distributed) -> float:
    """The loss of the global batches since the last evaluation (one all-reduce and one host sync here,
    none per step); a non-finite loss on any rank stops every rank at this same check."""
    if not state.loss_steps:   # the same on every rank: each takes its share of every global batch
        return float("nan")
    value = float(world.mean_over_ranks(state.loss_sum)) / state.loss_steps
    if not math.isfinite(value):
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


def tune_for_device(model: torch.nn.Module, device: torch.device) -> None:
    """On CUDA: channels-last weights (the layout cuDNN's convolution kernels and tensor cores prefer) and
    cudnn.benchmark (the input size is fixed: cuDNN times its kernels once and keeps the fastest)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model.to(memory_format=torch.channels_last)


def adam(model: torch.nn.Module, config: FitConfig, device: torch.device) -> torch.optim.Optimizer:
    """The paper's Adam; on CUDA the fused kernel (one launch updates every parameter instead of a few
    per parameter tensor: at batch 16 the step is launch-bound). On CPU the default implementation."""
    return torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay,
                            fused=True if device.type == "cuda" else None)


def compiled(net: torch.nn.Module, config: FitConfig, device: torch.device,
             log: Callable[[str], None]) -> torch.nn.Module:
    """`train.compile`: torch.compile the training model on CUDA (off by default: not yet measured to pay
    off on the paper's grid). Elsewhere it is ignored, said once: Inductor's CPU path needs a C++ toolchain
    and would change the CPU demo's numbers."""
    if not config.compile:
        return net
    if device.type != "cuda":
        log(f"train.compile is ignored on {device.type}: only CUDA runs compile the model")
        return net
    return torch.compile(net)


def prepare(model: torch.nn.Module, layout: OutputLayout, train: ImageSet, config: FitConfig, device: torch.device,
            normalization: Normalization, dist: Distributed, log: Callable[[str], None] = print) -> Trainer:
    """Model on the device (tuned for CUDA), Adam, mixed precision, DDP with synchronized BatchNorm."""
    dist.per_rank_batch(config.batch_size)   # refuse a split that does not divide before any work
    model.to(device)
    tune_for_device(model, device)
    if dist.world > 1 and config.sync_batchnorm:
        model = sync_batchnorm(model, device)
    optimizer = adam(model, config, device)
    net = model
    if dist.world > 1:
        # SyncBatchNorm gives every rank the same running statistics: broadcasting rank 0's buffers before
        # every forward would be a wasted collective. Without it, rank 0's statistics are kept (DDP's default).
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None, broadcast_buffers=not config.sync_batchnorm)
    return Trainer(model, compiled(net, config, device, log), layout, optimizer, Precision.for_device(device),
                   train, config, device, dist, normalization)


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
    train_loss = mean_train_loss(state, t.config, t.dist)
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
    dist = Distributed.from_env(device)
    try:
        t = prepare(model, layout, train, config, device, normalization, dist, log)
        return fit_prepared(t, valid, score, state_dir, fingerprint, live, log)
    finally:
        dist.close()   # on every exit path: a failed run must not leave the process group to the interpreter


def fit_prepared(t: Trainer, valid: ImageSet, score: Callable[[np.ndarray], tuple[float, dict[str, float]]],
                 state_dir: Path, fingerprint: str, live: Any, log: Callable[[str], None]) -> FitResult:
    """fit() on a prepared trainer: train, evaluate at the cadence, keep the top-k checkpoints."""
    config = t.config
    topk = checkpoints.TopK(state_dir / "checkpoints", config.top_k)
    state = resume_or_start(t, state_dir, topk, fingerprint, live, log)
    total, rates = config.total_images(len(t.train)), []
    last_evaluated = state.history[-1]["step"] if state.history else -1
    clock = (time.perf_counter(), state.step)

    def evaluate() -> None:
        nonlocal last_evaluated, clock
        if t.device.type == "cuda":
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
        yield step, value, result.checkpoint(step)


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
