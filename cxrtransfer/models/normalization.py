"""Input normalization per initialization: the statistics the starting weights were trained with.

Pretrained inits (imagenet, indomain, named backbone files) keep their weights' own mean/std
(architectures.normalization: ImageNet's, 0.5/0.5 for Inception). A random init has seen no images: it is
normalized with the dataset's own mean/std, computed on the training split by the `normalization`
stage (CheXtransfer: "CheXpert mean/std for models without pretraining").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..fileio import read_json
from .architectures import normalization

Normalization = tuple[tuple[float, ...], tuple[float, ...]]
DATASET_INITS = ("random",)  # inits normalized with the dataset's statistics


def pixel_histogram(images: np.ndarray, rows: Sequence[int], chunk: int = 256) -> np.ndarray:
    """Counts of each uint8 value over images[rows] (exact integers: the statistics are reproducible)."""
    counts = np.zeros(256, dtype=np.int64)
    rows = np.asarray(rows)
    for start in range(0, len(rows), chunk):
        counts += np.bincount(np.asarray(images[rows[start:start + chunk]]).ravel(), minlength=256)
    return counts


def histogram_statistics(counts: np.ndarray) -> tuple[float, float]:
    """(mean, std) of pixel / 255 from a 256-bin histogram (population std, as torchvision computes it)."""
    total = int(counts.sum())
    if total == 0:
        raise InputError("no training pixels to compute the normalization from")
    values = np.arange(256, dtype=np.float64) / 255.0
    mean = float((counts * values).sum() / total)
    variance = float((counts * (values - mean) ** 2).sum() / total)
    return mean, variance ** 0.5


def dataset_statistics(images: np.ndarray, rows: Sequence[int]) -> dict[str, Any]:
    """The metrics record: grayscale mean/std repeated for the 3 input channels, and what they cover."""
    mean, std = histogram_statistics(pixel_histogram(images, rows))
    return {"split": "train", "images": int(len(rows)), "image_size": int(images.shape[-1]),
            "mean": [round(mean, 6)] * 3, "std": [round(std, 6)] * 3}


def read_dataset_normalization(path: Path) -> Normalization:
    """(mean, std) from the normalization stage's JSON, checked."""
    record = read_json(path)
    try:
        mean, std = tuple(float(v) for v in record["mean"]), tuple(float(v) for v in record["std"])
    except (KeyError, TypeError, ValueError):
        raise InputError("expected 'mean' and 'std' lists of 3 numbers", path) from None
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise InputError(f"expected 3 means and 3 positive stds, got mean {mean} std {std}", path)
    return mean, std


def for_init(arch: str, init: str, dataset_file: Path | None) -> tuple[Normalization, str]:
    """(mean, std) to normalize inputs of `arch` started from `init`, and where they come from."""
    if init not in DATASET_INITS:
        return normalization(arch), f"{arch} pretrained weights"
    if dataset_file is None:
        raise InputError(f"init {init!r} is normalized with the training split's statistics: pass "
                         "--normalization (the normalization stage's JSON)")
    return read_dataset_normalization(dataset_file), str(dataset_file)
