"""Checkpoint selection scores: the reference code's study-level validation AUROC."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..data.chexpert import evaluation_targets, study_level
from ..errors import InputError
from ..stats.auc import auroc


def study_auc_scorer(frame: pd.DataFrame, tasks: Sequence[str], selection: Sequence[str]
                     ) -> Callable[[np.ndarray], tuple[float, dict[str, float]]]:
    """Validation scoring of the reference code: study-level max over views, AUROC per task,
    checkpoint score = mean AUROC over the selection tasks."""
    labels = study_level(frame, list(tasks), how="first")
    targets, weights = evaluation_targets(labels[list(tasks)].to_numpy(np.float32))
    for j, task in enumerate(tasks):
        present = np.unique(targets[weights[:, j] > 0, j])
        if task in selection and len(present) < 2:
            raise InputError(f"validation split has a single class for {task!r}: AUROC undefined")
    keys = frame[["study", "patient"]].reset_index(drop=True)

    def score(probabilities: np.ndarray) -> tuple[float, dict[str, float]]:
        predictions = pd.concat([keys, pd.DataFrame(probabilities, columns=list(tasks))], axis=1)
        per_study = study_level(predictions, list(tasks), how="max")[list(tasks)].to_numpy()
        aucs = {task: auroc(per_study[:, j], targets[:, j], weights[:, j]) for j, task in enumerate(tasks)}
        value = float(np.mean([aucs[t] for t in selection]))
        return value, {f"auc/{t}": v for t, v in aucs.items()}

    return score
