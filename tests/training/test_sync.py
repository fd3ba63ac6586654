"""No host synchronisation in the training step, proven on the CPU: the ATen operations of a few training
steps (fit's own loop, prefetch and loss accumulation included) are recorded, and any operation that would
make the host wait for the GPU on CUDA fails the test, except at evaluation points.

On CUDA these force a device-to-host synchronisation: reading a device value on the host
(`_local_scalar_dense`: .item(), float(), bool()), operations whose output size depends on the data
(`nonzero`, `masked_select`, boolean indexing, `unique`), `is_nonzero` / `equal`; and a tensor built
from host values (`lift_fresh`: torch.tensor(...), torch.from_numpy(...)) that a step then copies to the
device from pageable memory. Two exceptions, both host work by design: the gather of a batch from the
image cache (ImageSet.batch, whose tensors reach the GPU through the pinned staging buffers), and the
`step` counters that non-fused Adam keeps on the host (reading those waits for nothing).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from cxrtransfer.data.chexpert import policy_targets
from cxrtransfer.models import architectures
from cxrtransfer.training import dataset, layouts, loop

SYNCING = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.is_nonzero.default",
           "aten.masked_select.default", "aten._unique2.default", "aten.unique_dim.default",
           "aten.unique_consecutive.default", "aten.equal.default", "aten.lift_fresh.default",
           "aten.repeat_interleave.Tensor"}


class HostSyncRecorder(TorchDispatchMode):
    """Records (operation, tensor) for every operation in SYNCING and boolean-mask indexing once `steady`
    (after the first step), paused while `gathering` (the host's own batch assembly)."""

    def __init__(self, steady: bool) -> None:
        super().__init__()
        self.found: list[tuple[str, torch.Tensor]] = []
        self.gathering, self.steady = False, steady

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = str(func)
        boolean_index = name.startswith("aten.index") and any(
            isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
            for a in args if isinstance(a, (list, tuple)) for i in a)
        if self.steady and not self.gathering and (name in SYNCING or boolean_index):
            tensor = out if name == "aten.lift_fresh.default" else next(a for a in args if isinstance(a, torch.Tensor))
            self.found.append((name, tensor))
        return out


class SmallNet(torch.nn.Module):
    """Convolution, BatchNorm and a linear head: the layer kinds of the paper's CNNs, cheap on the CPU."""

    def __init__(self, outputs: int):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
        self.head = torch.nn.Linear(8, outputs)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


def training_run(tmp_path, monkeypatch, arch: str = "") -> tuple[list[str], list[str]]:
    """fit() over two epochs of 6 batches with three evaluations, on `arch` (else SmallNet): (operations
    that would sync in the training steps after the first, operations that would sync in the evaluations)."""
    policies = ["ones", "zeros", "ones", "multiclass", "ignore"]
    layout = layouts.ChexpertLayout(policies)
    rng = np.random.default_rng(0)
    raw = rng.choice(np.array([1.0, 0.0, -1.0, np.nan], dtype=np.float32), size=(24, len(policies)))
    targets, mask = policy_targets(raw, policies, True)
    data = dataset.ImageSet(rng.integers(0, 256, (24, 32, 32), dtype=np.uint8), np.arange(24), targets, mask)
    model = architectures.build_model(arch, layout.width, seed=0) if arch else SmallNet(layout.width)
    config = loop.FitConfig(epochs=2, batch_size=4, lr=1e-3, eval_every_images=16, top_k=1)
    if hasattr(dataset.normalization_tensors, "cache_clear"):  # as in a fresh process: made in the first step
        dataset.normalization_tensors.cache_clear()
    steps = HostSyncRecorder(steady=False)   # the training steps' operations
    evaluations = HostSyncRecorder(steady=True)
    optimizers: list[torch.optim.Optimizer] = []
    prepare, train_step, gather = loop.prepare, loop.train_step, dataset.ImageSet.batch
    train_one_epoch, evaluate_and_save = loop.train_one_epoch, loop.evaluate_and_save

    def prepare_kept(*args, **kwargs):
        trainer = prepare(*args, **kwargs)
        optimizers.append(trainer.optimizer)
        return trainer

    def counted_step(*args, **kwargs):
        loss = train_step(*args, **kwargs)
        steps.steady = True  # from here on: the steady state
        return loss

    def unrecorded_gather(self, positions):
        steps.gathering = True
        try:
            return gather(self, positions)
        finally:
            steps.gathering = False

    def recorded_epoch(*args, **kwargs):
        with steps:
            train_one_epoch(*args, **kwargs)

    def recorded_evaluation(*args, **kwargs):
        with evaluations:
            evaluate_and_save(*args, **kwargs)

    for owner, name, replacement in [(loop, "prepare", prepare_kept), (loop, "train_step", counted_step),
                                     (dataset.ImageSet, "batch", unrecorded_gather),
                                     (loop, "train_one_epoch", recorded_epoch),
                                     (loop, "evaluate_and_save", recorded_evaluation)]:
        monkeypatch.setattr(owner, name, replacement)
    result = loop.fit(model, layout, data, data, lambda p: (float(p.mean()), {}), config, tmp_path / "state",
                      "sync-test", device=torch.device("cpu"), log=lambda _: None)
    assert len(result.history) == 3  # at 16, 32 and 48 images (2 epochs of 6 batches of 4)
    counters = {s["step"].data_ptr() for o in optimizers for s in o.state.values() if "step" in s}
    return ([name for name, tensor in steps.found if tensor.data_ptr() not in counters],
            [name for name, _ in evaluations.found])


def test_training_steps_never_synchronise(tmp_path, monkeypatch):
    in_steps, in_evaluations = training_run(tmp_path, monkeypatch, arch="resnet18")
    assert in_steps == []
    # The recorder sees syncs where they are expected: the loss read once per evaluation, the predictions.
    assert "aten._local_scalar_dense.default" in in_evaluations


def test_a_per_step_item_is_caught(tmp_path, monkeypatch):
    train_step = loop.train_step

    def reading_step(*args, **kwargs):
        loss = train_step(*args, **kwargs)
        loss.item()  # the planted defect: the host waits for every step
        return loss
    monkeypatch.setattr(loop, "train_step", reading_step)
    in_steps, _ = training_run(tmp_path, monkeypatch)
    assert in_steps.count("aten._local_scalar_dense.default") == 12 - 1  # every step after the first: 2 x 6 batches


def test_a_per_batch_host_tensor_is_caught(tmp_path, monkeypatch):
    def uncached(mean, std, device):  # the planted defect: normalization built from host values per batch
        return (torch.tensor(mean, device=device).view(1, 3, 1, 1), torch.tensor(std, device=device).view(1, 3, 1, 1))
    monkeypatch.setattr(dataset, "normalization_tensors", uncached)
    in_steps, _ = training_run(tmp_path, monkeypatch)
    # mean and std of every batch prepared after the first step: at least the 10 batches stepped on after
    # the second (a batch prefetched just before an evaluation is prepared again after it)
    assert in_steps.count("aten.lift_fresh.default") >= 2 * 10 and set(in_steps) == {"aten.lift_fresh.default"}


def test_a_boolean_mask_in_the_loss_is_caught(tmp_path, monkeypatch):
    loss = layouts.ChexpertLayout.loss

    def masked_loss(self, logits, targets, mask):  # the planted defect: labelled cells selected by a mask
        return loss(self, logits, targets, mask) + logits[:, :1][mask[:, :1] > 0].sum() * 0
    monkeypatch.setattr(layouts.ChexpertLayout, "loss", masked_loss)
    in_steps, _ = training_run(tmp_path, monkeypatch)
    assert in_steps and set(in_steps) <= {"aten.index.Tensor", "aten.index_put.default", "aten.nonzero.default"}
