"""Stage split: assign whole patients to train / valid / test."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import pandas as pd

from cxrtransfer.data import splits
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import write_csv, write_json
from cxrtransfer.pipeline import config as schema


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--index", type=Path, required=True, help="the preprocess cache's index.csv")
    parser.add_argument("--out", type=Path, required=True, help="split table (CSV)")
    parser.add_argument("--summary", type=Path, required=True, help="counts per split (JSON metrics)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = schema.check(schema.load_params(args.params), ["split"], args.params)["split"]
    if not args.index.is_file():
        raise InputError("index not found: run the preprocess stage first", args.index)
    index = pd.read_csv(args.index, usecols=["path", "patient", "study", "source_split"])
    table = splits.make_split(index, config["method"], config["fractions"], config["seed"])
    write_csv(args.out, table)
    summary = splits.split_summary(table)
    write_json(args.summary, summary)
    print("split: " + ", ".join(f"{k} {v['images']} images / {v['patients']} patients" for k, v in summary.items()))


if __name__ == "__main__":
    schema.run_stage(main)
