"""Stage preprocess: decode every image once into the cache (uint8 array + index table)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cxrtransfer.data import chexpert, images
from cxrtransfer.data.sources import read_folder_dataset
from cxrtransfer.errors import InputError
from cxrtransfer.pipeline import config as schema

DATASET_SECTIONS = ("data", "pretrain.data")  # CheXpert (data.kind chexpert) and the in-domain source


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--section", default="data", choices=DATASET_SECTIONS,
                        help="params section describing the dataset: kind (chexpert | folder), root, image_size, "
                             "and for chexpert: dataset, test_groundtruth, frontal_only, tasks")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args(argv)


def chexpert_index(root: Path, dataset: str, test_groundtruth: str, frontal_only: bool,
                   tasks: Sequence[str]) -> pd.DataFrame:
    """The index of every image of the CheXpert dataset under root/dataset (train, valid and test).

    The test label file must label every evaluated task; other observations may be missing from it.
    """
    folder = root / dataset
    parts = [chexpert.read_labels(folder / "train.csv"), chexpert.read_labels(folder / "valid.csv")]
    if test_groundtruth:
        parts.append(chexpert.read_test_groundtruth(folder / test_groundtruth, root, tasks, dataset))
    index = pd.concat(parts, ignore_index=True)
    duplicated = index["path"].duplicated()
    if duplicated.any():
        raise InputError(f"image {index['path'][duplicated].iloc[0]!r} is listed twice", folder)
    if frontal_only:
        index = index[index["frontal"]].reset_index(drop=True)
    return index


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    params = schema.load_params(args.params)
    config = schema.check(params, [args.section], args.params)[args.section]
    size, root = config["image_size"], Path(config["root"])   # the schema: image_size >= 16, kind a known one
    if config["kind"] == "chexpert":
        tasks = chexpert.validate_tasks(schema.section(params, f"{args.section}.tasks", args.params), str(args.params))
        index = chexpert_index(root, config["dataset"], config["test_groundtruth"], config["frontal_only"], tasks)
    else:
        index = read_folder_dataset(root)
    columns = [TextColumn("preprocess"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("decode", total=len(index))
        images.write_cache(args.out, index, root, size, workers=args.workers,
                           progress=lambda n: progress.advance(task, n))
    print(f"preprocess: {len(index)} images at {size}px -> {args.out}")


if __name__ == "__main__":
    schema.run_stage(main)
