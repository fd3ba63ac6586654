"""Rows 1 and 5: the training step of `cxrtransfer.training.loop.fit` against a bare loop, and batched inference.

The project step is fit()'s own `loop.train_step` on batches from ImageSet.batch (a uint8 cache), through
fit()'s prefetch (`dataset.prefetched`: the next batch queued before each step):
to_model_input, the model under fit's autocast rule, ChexpertLayout.loss, zero_grad / backward / Adam
step; the loss stays on the device (fit() checks it at each evaluation, not every step). The bare loop trains an identical copy
of the model on float tensors normalized in memory once, with a plain BCE and the same optimizer and
batch size, its loss summed on the device (read once: no per-step .item()). Both loops see the same shuffled positions; rounds alternate which loop goes first, and
each loop's figure is its median round.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cxrtransfer.data import chexpert
from cxrtransfer.models import architectures as models
from cxrtransfer.training import dataset, devices, layouts, loop

from .common import row

TRAIN_TARGET = 0.90


@dataclass(frozen=True)
class TrainSizes:
    archs: tuple[str, ...]
    image_sizes: tuple[int, ...]   # the first one is the demo size (row 5 runs there)
    batch_size: int
    round_seconds: float           # each loop runs about this long per round (at least min_steps steps)
    rounds: int
    warmup_steps: int
    min_steps: int
    cache_images: int              # rows of the uint8 cache (positions cycle through its shuffles)
    eval_batch_size: int
    eval_images: int
    eval_repeats: int


@dataclass
class _Setup:
    arch: str
    size: int
    layout: layouts.ChexpertLayout
    normalization: dataset.Normalization
    device: torch.device
    train_set: dataset.ImageSet
    bare_x: torch.Tensor
    bare_y: torch.Tensor
    project_model: torch.nn.Module
    bare_model: torch.nn.Module
    precision: devices.Precision  # one for the run, as fit() keeps it (fp16: one GradScaler)


def _fake_targets(rng: np.random.Generator, n: int, policies: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Raw CheXpert labels (1, 0, -1, blank) through the project's own uncertainty policies."""
    raw = rng.choice(np.array([1.0, 0.0, -1.0, np.nan], dtype=np.float32), size=(n, len(policies)))
    return chexpert.policy_targets(raw, policies, True)


def _setup(arch: str, size: int, sizes: TrainSizes, policies: Sequence[str], lr: float,
           betas: tuple[float, float], weight_decay: float, seed: int = 0
           ) -> tuple[_Setup, torch.optim.Optimizer, torch.optim.Optimizer]:
    device = devices.pick_device("auto")
    layout = layouts.ChexpertLayout(list(policies))
    normalization = models.normalization(arch)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(sizes.cache_images, size, size), dtype=np.uint8)
    targets, mask = _fake_targets(rng, sizes.cache_images, policies)
    train_set = dataset.ImageSet(images, np.arange(sizes.cache_images), targets, mask)
    with torch.no_grad():
        bare_x = dataset.to_model_input(torch.from_numpy(images).unsqueeze(1), device, False,
                                         normalization).contiguous()
    bare_y = torch.from_numpy(rng.integers(0, 2, size=(sizes.cache_images, layout.width)).astype(np.float32)).to(device)
    project_model = loop.seeded(seed, models.build_model, arch, layout.width).to(device)
    bare_model = copy.deepcopy(project_model)
    channels_last = device.type == "cuda"
    for model in (project_model, bare_model):
        if channels_last:
            model.to(memory_format=torch.channels_last)
        model.train()
    if channels_last:
        bare_x = bare_x.contiguous(memory_format=torch.channels_last)
    project_opt = torch.optim.Adam(project_model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
    bare_opt = torch.optim.Adam(bare_model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
    setup = _Setup(arch, size, layout, normalization, device, train_set, bare_x, bare_y, project_model, bare_model,
                   devices.Precision.for_device(device))
    return setup, project_opt, bare_opt


class _Positions:
    """Batches of positions in fit()'s epoch order, wrapping to the next epoch."""

    def __init__(self, n: int, batch_size: int, seed: int = 0) -> None:
        self.n, self.batch_size, self.seed, self.epoch, self.position = n, batch_size, seed, 0, 0
        self.order = loop.epoch_order(n, seed, 0)

    def next(self) -> np.ndarray:
        if self.position + self.batch_size > self.n:
            self.epoch, self.position = self.epoch + 1, 0
            self.order = loop.epoch_order(self.n, self.seed, self.epoch)
        chunk = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return chunk


def _project_steps(s: _Setup, optimizer: torch.optim.Optimizer, positions: _Positions, steps: int) -> float:
    """fit()'s inner step with its prefetch (the next batch queued before each step), `steps` times; seconds."""
    start = time.perf_counter()
    batches = (s.train_set.batch(positions.next()) for _ in range(steps))
    for batch in dataset.prefetched(batches, s.device, s.normalization):
        loop.train_step(s.project_model, s.layout, optimizer, batch, s.device, s.normalization, s.precision)
    if s.device.type == "cuda":
        torch.cuda.synchronize()  # train_step does not wait for the GPU; the time must cover the work
    return time.perf_counter() - start


def _bare_steps(s: _Setup, optimizer: torch.optim.Optimizer, positions: _Positions, steps: int) -> float:
    """The same model on pre-normalized float tensors, plain BCE, the loss summed on the device (no per-step
    .item(): a baseline that waits for the GPU every step would flatter the project); seconds."""
    device, losses = s.device, torch.zeros((), device=s.device)
    start = time.perf_counter()
    for _ in range(steps):
        index = torch.from_numpy(positions.next()).to(device)
        x, y = s.bare_x[index], s.bare_y[index]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = s.bare_model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses += loss.detach()
    if device.type == "cuda":
        torch.cuda.synchronize()  # the time must cover the work, as in _project_steps
    return time.perf_counter() - start


def measure_training(arch: str, size: int, sizes: TrainSizes, policies: Sequence[str], lr: float,
                     betas: tuple[float, float], weight_decay: float = 0.0) -> dict[str, Any]:
    """Images/s of the project step and of the bare loop, alternated in rounds; plus the set-up for row 5."""
    s, project_opt, bare_opt = _setup(arch, size, sizes, policies, lr, betas, weight_decay)
    project_pos = _Positions(sizes.cache_images, sizes.batch_size)
    bare_pos = _Positions(sizes.cache_images, sizes.batch_size)
    warm = [_project_steps(s, project_opt, project_pos, sizes.warmup_steps),
            _bare_steps(s, bare_opt, bare_pos, sizes.warmup_steps)]
    step_seconds = max(warm) / max(1, sizes.warmup_steps)
    steps = max(sizes.min_steps, int(round(sizes.round_seconds / max(step_seconds, 1e-6))))
    project_s, bare_s = [], []
    for r in range(sizes.rounds):
        if r % 2 == 0:
            project_s.append(_project_steps(s, project_opt, project_pos, steps))
            bare_s.append(_bare_steps(s, bare_opt, bare_pos, steps))
        else:
            bare_s.append(_bare_steps(s, bare_opt, bare_pos, steps))
            project_s.append(_project_steps(s, project_opt, project_pos, steps))
    per_round = steps * sizes.batch_size
    # Median round: one round disturbed by another process does not decide the ratio.
    return {"setup": s, "project_images_per_s": per_round / float(np.median(project_s)),
            "bare_images_per_s": per_round / float(np.median(bare_s)),
            "steps_per_round": steps, "rounds": sizes.rounds, "images_timed": per_round * sizes.rounds}


def measure_inference(s: _Setup, sizes: TrainSizes) -> dict[str, Any]:
    """Images/s of loop.predict (inference_mode, eval batch) on the project model."""
    n = sizes.eval_images
    rows = np.arange(n) % len(s.train_set.images)
    data = dataset.eval_set(s.train_set.images, rows, len(s.layout.policies))
    warm = dataset.eval_set(s.train_set.images, rows[:sizes.eval_batch_size], len(s.layout.policies))
    loop.predict(s.project_model, s.layout, warm, s.device, sizes.eval_batch_size, s.normalization)
    best, probabilities = float("inf"), None
    for _ in range(max(1, sizes.eval_repeats)):
        start = time.perf_counter()
        probabilities = loop.predict(s.project_model, s.layout, data, s.device, sizes.eval_batch_size,
                                         s.normalization)
        best = min(best, time.perf_counter() - start)
    assert probabilities is not None
    return {"images_per_s": n / best, "images": n,
            "finite": bool(np.isfinite(probabilities).all()),
            "shape_ok": probabilities.shape == (n, len(s.layout.policies)),
            "model_left_in_train_mode": bool(s.project_model.training)}


def training_rows(sizes: TrainSizes, policies: Sequence[str], lr: float, betas: tuple[float, float],
                  weight_decay: float = 0.0, log=print) -> list[dict[str, Any]]:
    """Row 1 for every (arch, size) and row 5 for every arch at the demo size."""
    out, inference = [], []
    demo = sizes.image_sizes[0]
    for arch in sizes.archs:
        for size in sizes.image_sizes:
            models.check_input_size(arch, size)
            start = time.perf_counter()
            m = measure_training(arch, size, sizes, policies, lr, betas, weight_decay)
            ratio = m["project_images_per_s"] / m["bare_images_per_s"]
            out.append(row(
                f"train/{arch}/{size}px", f"train step {arch} {size}px vs bare float loop", "img/s",
                m["project_images_per_s"], m["bare_images_per_s"], ratio, f">= {TRAIN_TARGET:.2f}x",
                ratio >= TRAIN_TARGET, batch_size=sizes.batch_size, steps_per_round=m["steps_per_round"],
                rounds=m["rounds"], images_timed=m["images_timed"], device=str(m["setup"].device),
                torch_threads=torch.get_num_threads()))
            if size == demo:
                e = measure_inference(m["setup"], sizes)
                ratio = e["images_per_s"] / m["project_images_per_s"]
                inference.append(row(
                    f"eval/{arch}/{size}px", f"inference {arch} {size}px, batch {sizes.eval_batch_size} vs train step",
                    "img/s", e["images_per_s"], m["project_images_per_s"], ratio, "> 1x", ratio > 1.0,
                    {"probabilities finite": e["finite"], "output shape": e["shape_ok"],
                     "train mode restored": e["model_left_in_train_mode"]},
                    images=e["images"], eval_batch_size=sizes.eval_batch_size))
            log(f"  {arch} {size}px done in {time.perf_counter() - start:.1f} s")
            del m
    return out + inference
