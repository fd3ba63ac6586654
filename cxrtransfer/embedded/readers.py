"""Simulated radiologists for the demo: noisy binary reads of the synthetic test ground truth.

A reader reads each positive observation positive with probability `sensitivity` and each negative one
negative with probability `specificity`, independently per study and observation, from its own seeded
stream (numpy's default_rng keyed by the seed and the reader's position). Files come in the layout of
the public benchmark radiologists (rajpurkarlab/cheXpert-test-set-labels,
radiologists/benchmark_radiologists/bc4.csv): `Study`, then the 14 observations with Lung Lesion
before Lung Opacity, binary.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from ..data.chexpert import OBSERVATIONS
from ..errors import InputError

READER_STREAM = 7  # keeps reader draws apart from the generator's other streams of the same seed
# bc4.csv's column order: the groundtruth.csv order with Lung Lesion and Lung Opacity swapped.
READER_COLUMNS: tuple[str, ...] = ("Study",) + tuple(
    {"Lung Opacity": "Lung Lesion", "Lung Lesion": "Lung Opacity"}.get(o, o) for o in OBSERVATIONS)


def simulate_reads(truth: pd.DataFrame, sensitivity: float, specificity: float, seed: int, reader: int
                   ) -> pd.DataFrame:
    """One reader's reads of `truth` (a `Study` column and the 14 observations as 0/1), bc4.csv layout."""
    for name, value in (("sensitivity", sensitivity), ("specificity", specificity)):
        if not 0 <= value <= 1:
            raise InputError(f"reader {reader}: {name} {value!r} is not in [0, 1]")
    labels = truth[list(OBSERVATIONS)].to_numpy(dtype=np.float64)
    if not np.isin(labels, (0.0, 1.0)).all():
        raise InputError("the ground truth to read must be 0 or 1 in every observation")
    draws = np.random.default_rng([seed, READER_STREAM, reader]).random(labels.shape)
    reads = np.where(labels == 1, draws < sensitivity, draws >= specificity).astype(int)
    frame = pd.DataFrame(reads, columns=list(OBSERVATIONS))
    frame.insert(0, "Study", truth["Study"].to_numpy())
    return frame[list(READER_COLUMNS)]


def simulate_readers(truth: pd.DataFrame, readers: Mapping[str, Mapping[str, float]], seed: int
                     ) -> dict[str, pd.DataFrame]:
    """name -> reads for every reader {name: {sensitivity, specificity}}, in the given order."""
    return {name: simulate_reads(truth, float(spec["sensitivity"]), float(spec["specificity"]), seed, i)
            for i, (name, spec) in enumerate(readers.items())}
