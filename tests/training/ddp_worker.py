"""Run by test_distributed under torchrun (or alone, as the one-process reference).

Usage: ddp_worker.py OUT GLOBAL_BATCH MODE, MODE one of
  tiny | batchnorm   fit() a small CNN (Adam); rank 0 saves the final weights and the evaluation history
  gradient           3 SGD steps of train_step on labels with blanks and uncertain cells masked out; rank 0
                     saves each step's loss (mean over ranks), the first step's gradients, the final weights
  nan                fit() with non-finite targets on rank 1 only: every rank must stop at the same check
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from cxrtransfer.data.chexpert import policy_targets
from cxrtransfer.pipeline.config import run_stage
from cxrtransfer.training import dataset, distributed, layouts, loop
from tests.training.test_loop import TinyNet, accuracy_score, learnable_set

MASKED_POLICIES = ["ignore", "multiclass", "ones"]


class BatchNormNet(torch.nn.Module):
    """conv -> BatchNorm2d -> ReLU -> GAP -> linear: its output depends on the statistics of the whole batch.
    The conv has no bias, as in every paper architecture: BatchNorm cancels it, its gradient is rounding
    noise, and Adam would amplify that noise into steps that differ between 1 and 2 processes."""

    def __init__(self, outputs: int):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, outputs)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def masked_set(n: int, seed: int) -> dataset.ImageSet:
    """Images with CheXpert labels of every kind (blank, uncertain, 0, 1): with blanks masked and the
    first task ignoring uncertain labels, the labelled cells of a batch depend on its rows."""
    rng = np.random.default_rng(seed)
    raw = rng.choice([np.nan, -1.0, 0.0, 1.0], size=(n, len(MASKED_POLICIES)), p=[0.3, 0.2, 0.25, 0.25])
    targets, mask = policy_targets(raw, MASKED_POLICIES, blank_as_negative=False)
    return dataset.ImageSet(rng.integers(0, 256, (n, 12, 12), dtype=np.uint8), np.arange(n), targets, mask)


def fit_mode(out: Path, batch_size: int, net: str) -> None:
    layout = layouts.ChexpertLayout(["ones", "multiclass"])
    model = loop.seeded(0, {"tiny": TinyNet, "batchnorm": BatchNormNet, "nan": TinyNet}[net], layout.width)
    train, valid = learnable_set(96, 1), learnable_set(48, 2)
    if net == "nan" and not distributed.is_main_process():
        train.targets[:, 0] = np.nan   # this rank's loss is NaN; rank 0's is finite
    config = loop.FitConfig(epochs=1, batch_size=batch_size, lr=3e-3, eval_every_images=48, top_k=2, seed=0)
    result = loop.fit(model, layout, train, valid, accuracy_score(valid), config, out / "state", "f",
                      device=torch.device("cpu"), log=lambda _: None)
    if distributed.is_main_process():
        save_file({k: v.clone() for k, v in model.state_dict().items()}, str(out / "final.safetensors"))
        (out / "history.json").write_text(json.dumps(result.history))


def gradient_mode(out: Path, batch_size: int) -> None:
    layout = layouts.ChexpertLayout(MASKED_POLICIES)
    model = loop.seeded(0, BatchNormNet, layout.width)
    config = loop.FitConfig(epochs=1, batch_size=batch_size, lr=0.1, eval_every_images=10 ** 6, top_k=1, seed=0)
    device, norm = torch.device("cpu"), dataset.IMAGENET_NORMALIZATION
    world = distributed.Distributed.from_env(device)
    try:
        t = loop.prepare(model, layout, masked_set(3 * batch_size, 7), config, device, norm, world)
        t.optimizer = torch.optim.SGD(t.model.parameters(), lr=config.lr)  # SGD: a wrong gradient scale shows
        losses, counts, grads = [], [], {}
        for batch in loop.epoch_batches(t, loop.RunState()):
            counts.append(int(batch[2].sum()))
            loss = loop.train_step(t.net, layout, t.optimizer, batch, device, norm, t.precision, world)
            losses.append(float(world.mean_over_ranks(loss)))
            grads = grads or {f"grad.{k}": p.grad.clone() for k, p in t.model.named_parameters()}
        report = {"losses": losses, "labelled_cells": counts, "broadcast_buffers": getattr(t.net, "broadcast_buffers", None)}
    finally:
        world.close()
    (out / f"rank{world.rank}.json").write_text(json.dumps(report))
    if world.is_main:
        save_file({**grads, **{k: v.clone() for k, v in model.state_dict().items()}}, str(out / "final.safetensors"))


def main(argv: list[str]) -> None:
    target, batch, mode = Path(argv[0]), int(argv[1]), argv[2]
    target.mkdir(parents=True, exist_ok=True)
    if mode == "gradient":
        gradient_mode(target, batch)
    else:
        fit_mode(target, batch, mode)


if __name__ == "__main__":
    run_stage(main, sys.argv[1:])   # a TrainingError is one `error:` line and exit 2, as in a stage
