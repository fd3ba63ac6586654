"""Row "host/<size>px": the img/s one training process assembles on the host from the memory-mapped cache.

The project path is fit()'s: ImageSet.batch (a gather of the batch's rows from the memory-mapped
images.npy) then StagingBuffers.stage (a copy into the reused staging buffer, page-locked where CUDA is
present) - everything the host does per batch before the copy to the GPU. The bound is the plain way to
move the same bytes: np.take of the same rows and one memcpy (np.copyto) into a preallocated array.
Both read the same shuffled rows; rounds alternate which goes first; each figure is its median round.
The cache is written to a temporary folder first and its pages are warm (the page cache holds it): the row
measures the gather and copy, not the disk (README "GPU" says what a network filesystem changes).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from cxrtransfer.training import dataset, loop

from .common import row

HOST_TARGET = 0.80


@dataclass(frozen=True)
class HostSizes:
    image_size: int
    cache_images: int
    batch_size: int
    batches_per_round: int
    rounds: int


def _write_cache(folder: Path, sizes: HostSizes) -> np.ndarray:
    """A uint8 images.npy of random pixels, memory-mapped read-only as the train stage maps its cache."""
    path = folder / "images.npy"
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                       shape=(sizes.cache_images, sizes.image_size, sizes.image_size))
    rng = np.random.default_rng(0)
    for start in range(0, sizes.cache_images, 256):
        stop = min(start + 256, sizes.cache_images)
        images[start:stop] = rng.integers(0, 256, (stop - start, sizes.image_size, sizes.image_size), dtype=np.uint8)
    images.flush()
    del images
    return np.load(path, mmap_mode="r")


def _batches(n: int, sizes: HostSizes, round_index: int) -> list[np.ndarray]:
    order = loop.epoch_order(n, 0, round_index)
    count = min(sizes.batches_per_round, n // sizes.batch_size)
    return [order[i * sizes.batch_size:(i + 1) * sizes.batch_size] for i in range(count)]


def measure_host_path(sizes: HostSizes) -> dict[str, Any]:
    """Median img/s of the project's host path and of the np.take + memcpy bound, interleaved."""
    with tempfile.TemporaryDirectory(prefix="bench-host-") as folder:
        images = _write_cache(Path(folder), sizes)
        n = len(images)
        zeros = np.zeros((n, 6), dtype=np.float32)
        data = dataset.ImageSet(images, np.arange(n), zeros, zeros + 1)
        staging = dataset.StagingBuffers()
        bound_out = np.empty((sizes.batch_size, sizes.image_size, sizes.image_size), dtype=np.uint8)
        same = True

        def project(batches: list[np.ndarray]) -> None:
            nonlocal same
            for positions in batches:
                staged = staging.stage(data.batch(positions))
            same = same and np.array_equal(staged[0][:, 0].numpy(), images[positions])

        def bound(batches: list[np.ndarray]) -> None:
            for positions in batches:
                np.copyto(bound_out, np.take(images, positions, axis=0))

        project(_batches(n, sizes, 0)), bound(_batches(n, sizes, 0))  # warm: pages, buffers
        times: dict[str, list[float]] = {"project": [], "bound": []}
        for r in range(sizes.rounds):
            batches = _batches(n, sizes, r + 1)
            order: list[tuple[str, Callable]] = [("project", project), ("bound", bound)]
            for name, function in (order if r % 2 == 0 else order[::-1]):
                start = time.perf_counter()
                function(batches)
                times[name].append(time.perf_counter() - start)
        per_round = len(_batches(n, sizes, 0)) * sizes.batch_size
        return {"project": per_round / float(np.median(times["project"])),
                "bound": per_round / float(np.median(times["bound"])), "same_pixels": same,
                "pinned": staging.pin, "images_per_round": per_round}


def host_rows(sizes: HostSizes, log=print) -> list[dict[str, Any]]:
    m = measure_host_path(sizes)
    ratio = m["project"] / m["bound"]
    log(f"  host path {sizes.image_size}px: {m['project']:,.0f} img/s vs bound {m['bound']:,.0f} img/s ({ratio:.2f}x)")
    return [row(f"host/{sizes.image_size}px",
                f"host batch assembly {sizes.image_size}px (gather + staging copy) vs np.take + memcpy",
                "img/s", m["project"], m["bound"], ratio, f">= {HOST_TARGET:.2f}x", ratio >= HOST_TARGET,
                {"staged pixels equal the cache rows": m["same_pixels"]}, batch_size=sizes.batch_size,
                cache_images=sizes.cache_images, rounds=sizes.rounds, images_per_round=m["images_per_round"],
                pinned=m["pinned"], torch_threads=torch.get_num_threads())]
