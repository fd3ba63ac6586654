"""The repeat runs of the training seeds (params `seeds`): their study-level predictions, read and checked.

The ensemble stage writes seed_predictions.csv (model, seed, study, tasks) for the seeds after 0; seed 0
is the ensemble's own test_predictions.csv. stats/seeds.py holds the statistics on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..layout import MODEL_FILE
from .predictions import read_model_description, read_predictions, study_predictions

SEED_PREDICTIONS = "seed_predictions.csv"   # in the ensemble folder, only when there is more than one seed


def seed_run_predictions(runs: Sequence[tuple[str, int, str, Path]], test: pd.DataFrame,
                         tasks: Sequence[str]) -> pd.DataFrame:
    """The study-level ensemble of each repeat run (model, seed, arch, model folder): columns model, seed,
    study, tasks. A missing folder or a folder of another architecture is an error naming it."""
    frames = []
    for model, seed, arch, folder in runs:
        if not folder.is_dir():
            raise InputError(f"run {model} seed {seed} is declared by the params (seeds) but its folder is missing "
                             f"(run its stage, or `dvc pull` it)", folder)
        description = read_model_description(folder)
        if description["arch"] != arch:
            raise InputError(f"holds a {description['arch']} model, not {arch}", folder / MODEL_FILE)
        per_study, _ = study_predictions(read_predictions(folder, tasks), test, tasks, folder)
        frames.append(per_study.drop(columns="patient").assign(model=model, seed=seed))
    return pd.concat(frames, ignore_index=True)[["model", "seed", "study", *tasks]]


def seed_scores(models: Sequence[str], first_seed: np.ndarray, seed_frame: pd.DataFrame, studies: Sequence[str],
                tasks: Sequence[str], source: Path) -> tuple[list[int], np.ndarray]:
    """(seeds, scores (models, seeds, studies, tasks)): seed 0 from the ensemble's scores, the others from
    seed_predictions.csv, in the labels' study order. Every model must have every seed and every study."""
    seeds = [0] + sorted(int(s) for s in seed_frame["seed"].unique())
    scores = np.empty((len(models), len(seeds), len(studies), len(tasks)))
    scores[:, 0] = first_seed
    for m, model in enumerate(models):
        for j, seed in enumerate(seeds[1:], start=1):
            rows = seed_frame[(seed_frame["model"] == model) & (seed_frame["seed"] == seed)].set_index("study")
            if len(rows) != len(studies) or not rows.index.isin(studies).all():
                raise InputError(f"model {model!r} seed {seed}: {len(rows)} study rows, expected the {len(studies)} "
                                 f"test studies", source, column="study")
            scores[m, j] = rows.loc[list(studies), list(tasks)].to_numpy(np.float64)
    return seeds, scores


def read_seed_predictions(folder: Path, tasks: Sequence[str]) -> pd.DataFrame | None:
    """The ensemble folder's seed_predictions.csv (None without repeats), its columns checked."""
    path = Path(folder) / SEED_PREDICTIONS
    if not path.is_file():
        return None
    frame = pd.read_csv(path, dtype={"model": str, "study": str})
    missing = [c for c in ("model", "seed", "study", *tasks) if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", path, column=missing[0])
    return frame
