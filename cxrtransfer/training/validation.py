"""Checkpoint selection scores: the reference code's study-level validation AUROC, in its scoring order.

The CheXpert reference code scores a checkpoint by the max over a study's views of the logits (for a
U-MultiClass task the element-wise max of its logits, then the softmax over negative and positive), then
the probability. `predict()` returns what a layout's `probabilities()` returns, so the train stage hands
`fit()` the layout wrapped in `layouts.RawLogits` and turns the logits into `layouts.score_columns`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..data.chexpert import evaluation_targets, study_level
from ..errors import InputError
from ..stats.auc import auroc
from ..stats.predictions import reference_study_scores


def study_auc_scorer(frame: pd.DataFrame, tasks: Sequence[str], selection: Sequence[str]
                     ) -> Callable[[pd.DataFrame], tuple[float, dict[str, float]]]:
    """Validation scoring of the reference code: study-level scores in its order (score_columns of one
    checkpoint), AUROC per task, checkpoint score = mean AUROC over the selection tasks."""
    labels = study_level(frame, list(tasks), how="first")
    targets, weights = evaluation_targets(labels[list(tasks)].to_numpy(np.float32))
    for j, task in enumerate(tasks):
        present = np.unique(targets[weights[:, j] > 0, j])
        if task in selection and len(present) < 2:
            raise InputError(f"validation split has a single class for {task!r}: AUROC undefined")
    keys = frame[["study"]].reset_index(drop=True).assign(checkpoint=0)

    def score(columns: pd.DataFrame) -> tuple[float, dict[str, float]]:
        rows = pd.concat([keys, columns.reset_index(drop=True)], axis=1)
        per_study = reference_study_scores(rows, tasks).loc[labels["study"], list(tasks)].to_numpy()
        aucs = {task: auroc(per_study[:, j], targets[:, j], weights[:, j]) for j, task in enumerate(tasks)}
        value = float(np.mean([aucs[t] for t in selection]))
        return value, {f"auc/{t}": v for t, v in aucs.items()}

    return score
