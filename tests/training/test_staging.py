"""The reused staging buffers batches pass through on their way to the GPU (unpinned here: no CUDA)."""

from __future__ import annotations

import numpy as np
import torch

from cxrtransfer.training import dataset


def batch_of(seed: int, size: int = 4) -> tuple[torch.Tensor, ...]:
    rng = np.random.default_rng(seed)
    return (torch.from_numpy(rng.integers(0, 256, (size, 1, 8, 8), dtype=np.uint8)),
            torch.from_numpy(rng.random((size, 3), dtype=np.float32)), torch.from_numpy(rng.random((size, 3), dtype=np.float32)))


def test_staged_batches_equal_their_source_and_reuse_the_ring():
    staging = dataset.StagingBuffers(slots=3, pin=False)
    pointers = []
    for seed in range(7):
        source = batch_of(seed)
        staged = staging.stage(source)
        assert all(torch.equal(a, b) for a, b in zip(staged, source))
        assert all(a.data_ptr() != b.data_ptr() for a, b in zip(staged, source))  # a copy, not a view
        pointers.append(staged[0].data_ptr())
    # three buffers, reused in turn: batch 4 lands where batch 1 did, no new allocation per batch
    assert len(set(pointers)) == 3 and pointers[3] == pointers[0] and pointers[6] == pointers[3]


def test_a_batch_of_another_shape_gets_new_buffers():
    staging = dataset.StagingBuffers(slots=1, pin=False)
    staging.stage(batch_of(0, size=4))
    short = batch_of(1, size=2)
    assert all(torch.equal(a, b) for a, b in zip(staging.stage(short), short))
