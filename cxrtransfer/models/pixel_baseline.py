"""A plain external model for the demo: per-task logistic regression on area-averaged pixels.

It stands for a model trained outside this pipeline (a lab's own, a leaderboard entry): fitted on the
training split's images with scikit-learn (L2, lbfgs, deterministic), it predicts every test image,
and a study's probability is the max over its views (as the study's own scoring). Labels: uncertain
cells carry no weight, blanks are negatives (`chexpert.evaluation_targets`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import InputError

CHUNK = 4096  # images averaged at a time (the cache may be memory-mapped and large)


def area_average(images: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """(len(rows), size * size) float features: each image's mean over a size x size grid of blocks."""
    height, width = images.shape[1:3]
    if size > min(height, width):
        raise ValueError(f"cannot average {height}x{width} images onto a {size}x{size} grid")
    y_edges = np.linspace(0, height, size + 1).astype(int)[:-1]
    x_edges = np.linspace(0, width, size + 1).astype(int)[:-1]
    y_counts = np.diff(np.r_[y_edges, height])
    x_counts = np.diff(np.r_[x_edges, width])
    out = np.empty((len(rows), size * size))
    for start in range(0, len(rows), CHUNK):
        block = np.asarray(images[np.sort(rows[start:start + CHUNK])], dtype=np.float64)
        order = np.argsort(np.argsort(rows[start:start + CHUNK]))   # back to the order of `rows`
        sums = np.add.reduceat(np.add.reduceat(block, y_edges, axis=1), x_edges, axis=2)
        means = sums / np.outer(y_counts, x_counts)[None] / 255.0
        out[start:start + len(block)] = means.reshape(len(block), -1)[order]
    return out


def fit_predict(train_features: np.ndarray, targets: np.ndarray, weights: np.ndarray, test_features: np.ndarray,
                tasks: Sequence[str], c: float) -> np.ndarray:
    """(test images, tasks) probabilities; one standardized logistic regression per task, fitted on the
    training images whose label has weight."""
    probabilities = np.empty((len(test_features), len(tasks)))
    for j, task in enumerate(tasks):
        keep = weights[:, j] > 0
        if len(np.unique(targets[keep, j])) < 2:
            raise InputError(f"the training split has a single class for {task!r}: no logistic regression")
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        model.fit(train_features[keep], targets[keep, j])
        probabilities[:, j] = model.predict_proba(test_features)[:, 1]
    return probabilities
