"""Training and evaluation rows straight from the (memory-mapped) image cache, and their way onto the device."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from ..data.chexpert import policy_targets
from ..data.images import IMAGENET_MEAN, IMAGENET_STD


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
        x = torch.from_numpy(np.take(self.images, self.rows[positions], axis=0))  # on a memmap: faster than [ ]
        return (x.unsqueeze(1), torch.from_numpy(self.targets[positions]), torch.from_numpy(self.mask[positions]))


Normalization = tuple[Sequence[float], Sequence[float]]
IMAGENET_NORMALIZATION: Normalization = (IMAGENET_MEAN, IMAGENET_STD)


@functools.lru_cache(maxsize=32)
def normalization_tensors(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) as (1, 3, 1, 1) float32 tensors on `device`, made once: a tensor built from host values
    at every step would be a blocking host-to-device copy on a GPU."""
    return (torch.tensor(mean, device=device, dtype=torch.float32).view(1, 3, 1, 1),
            torch.tensor(std, device=device, dtype=torch.float32).view(1, 3, 1, 1))


def to_model_input(x: torch.Tensor, device: torch.device, channels_last: bool,
                   normalization: Normalization = IMAGENET_NORMALIZATION) -> torch.Tensor:
    """uint8 grayscale (B,1,S,S) -> normalized float (B,3,S,S) on `device` (the weights' own mean/std)."""
    if device.type == "cuda" and x.device.type == "cpu":
        x = x.pin_memory()  # page-locked, so the copy below does not block the host
    x = x.to(device, non_blocking=True).float().div_(255.0).expand(-1, 3, -1, -1)
    mean, std = normalization_tensors(tuple(map(float, normalization[0])), tuple(map(float, normalization[1])), device)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class StagingBuffers:
    """A ring of host buffers that batches pass through on their way to the GPU, page-locked once and
    reused batch after batch (pinning a fresh array per batch costs an allocation and an extra pass).

    A slot is rewritten only when the copy out of it has finished: its CUDA event, recorded after the copy
    was queued, is normally long complete (the prefetch keeps one batch in flight, the ring holds three).
    """

    def __init__(self, slots: int = 3, pin: bool | None = None) -> None:
        self.pin = torch.cuda.is_available() if pin is None else pin
        self.buffers: list[list[torch.Tensor]] = [[] for _ in range(slots)]
        self.events: list[torch.cuda.Event | None] = [None] * slots
        self.slot = -1

    def stage(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """`tensors` copied into the next slot (allocated at first use and when the shapes change)."""
        self.slot = (self.slot + 1) % len(self.buffers)
        event, buffers = self.events[self.slot], self.buffers[self.slot]
        if event is not None:
            event.synchronize()  # the copy of this slot to the GPU, queued two batches ago, is done
        if [(b.shape, b.dtype) for b in buffers] != [(t.shape, t.dtype) for t in tensors]:
            buffers[:] = [torch.empty(t.shape, dtype=t.dtype, pin_memory=self.pin) for t in tensors]
        for buffer, tensor in zip(buffers, tensors):
            # numpy's memcpy: torch's copy_ splits 1.6 MB over its thread pool, 1000x slower on a busy host
            np.copyto(buffer.numpy(), tensor.numpy())
        return buffers

    def copies_queued(self) -> None:
        """Mark the current slot busy until the copies just queued from it have run."""
        if self.pin:
            self.events[self.slot] = torch.cuda.Event()
            self.events[self.slot].record()


def to_device(batch: Batch, device: torch.device, normalization: Normalization = IMAGENET_NORMALIZATION,
              staging: StagingBuffers | None = None) -> Batch:
    """A batch from ImageSet.batch as model input, targets and mask on `device` (copies do not block):
    through `staging`'s reused page-locked buffers, or pinned one by one without it."""
    if device.type != "cuda":
        x, targets, mask = batch
        return to_model_input(x, device, False, normalization), targets.to(device), mask.to(device)
    x, targets, mask = staging.stage(batch) if staging is not None else [t.pin_memory() for t in batch]
    moved = (to_model_input(x, device, True, normalization),
             targets.to(device, non_blocking=True), mask.to(device, non_blocking=True))
    if staging is not None:
        staging.copies_queued()
    return moved


def prefetched(batches: Iterator[Batch], device: torch.device, normalization: Normalization) -> Iterator[Batch]:
    """The batches on `device`, each one queued before the step on the previous one runs: the host prepares
    batch n+1 while the GPU computes step n."""
    staging = StagingBuffers() if device.type == "cuda" else None
    upcoming = None
    for batch in batches:
        current, upcoming = upcoming, to_device(batch, device, normalization, staging)
        if current is not None:
            yield current
    if upcoming is not None:
        yield upcoming


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


def holdout_rows(n: int, fraction: float, seed: int) -> np.ndarray:
    """A seeded boolean mask holding out `fraction` of n rows (at least one) for validation."""
    count = max(1, int(round(n * fraction)))
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng([seed, n]).permutation(n)[:count]] = True
    return mask
