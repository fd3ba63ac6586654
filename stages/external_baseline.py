"""Stage external_baseline: the demo's model from outside the study, written as a leaderboard prediction file.

A logistic regression per task on area-averaged pixels (params `external.baseline`: grid size, C, the
tasks and their column order), fitted on the training split of the preprocess cache, predicting the
test split; study probability = max over its views. Writes --out/<external.baseline.file> in the layout
of the public CheXpert leaderboard predictions (`Study` = CheXpert-v1.0/test/patientNNNNN/studyN, then
one probability column per task), atomically. The ensemble stage reads it like any external file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from cxrtransfer.data import images, splits
from cxrtransfer.data.chexpert import evaluation_targets, study_level
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import atomic_dir
from cxrtransfer.models import pixel_baseline
from cxrtransfer.pipeline import config as schema

STUDY_PREFIX = "CheXpert-v1.0/test/"   # the public files' study keys


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--cache", type=Path, required=True, help="the preprocess cache folder")
    parser.add_argument("--split", type=Path, required=True, help="the split table")
    parser.add_argument("--out", type=Path, required=True, help="folder for the prediction file (replaced)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = schema.check(schema.load_params(args.params), ["external"], args.params)["external"]["baseline"]
    tasks = list(settings["tasks"])
    image_array, index = images.read_cache(args.cache)
    split = splits.read_split(args.split, index).to_numpy()
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    if len(train) == 0 or len(test) == 0:
        raise InputError("the split table needs training and test images", args.split)
    targets, weights = evaluation_targets(index[tasks].to_numpy(np.float32)[train])
    features = pixel_baseline.area_average(image_array, np.r_[train, test], settings["size"])
    probabilities = pixel_baseline.fit_predict(features[:len(train)], targets, weights, features[len(train):],
                                                tasks, float(settings["C"]))
    per_image = pd.DataFrame(probabilities, columns=tasks)
    per_image.insert(0, "study", index["study"].to_numpy()[test])
    per_image.insert(1, "patient", index["patient"].to_numpy()[test])
    per_study = study_level(per_image, tasks, how="max")
    frame = pd.DataFrame({"Study": STUDY_PREFIX + per_study["study"]})
    frame[tasks] = per_study[tasks].round(6).to_numpy()
    with atomic_dir(args.out) as tmp:
        frame.to_csv(tmp / settings["file"], index=False, lineterminator="\n")
    print(f"external_baseline: logistic regression on {settings['size']}x{settings['size']} pixels, "
          f"{len(train)} training images -> {len(frame)} test studies in {args.out / settings['file']}")


if __name__ == "__main__":
    schema.run_stage(main)
