"""Stage simulate_readers: the demo's radiologists, noisy reads of the synthetic test ground truth.

Reads the synthetic dataset's groundtruth.csv and params `readers.simulate` (seed; per reader name its
sensitivity and specificity); writes one file per reader, <name>.csv in the bc4.csv layout of the public
CheXpert test labels, into --out (the folder params `readers.dir` names in the demo), atomically.
Its own stage, so that the synthetic images, the cache and the trained models do not depend on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from cxrtransfer.data.chexpert import OBSERVATIONS, read_csv_cells
from cxrtransfer.embedded.readers import simulate_readers
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import atomic_dir
from cxrtransfer.pipeline import config as schema


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--groundtruth", type=Path, required=True, help="the test ground truth (Study layout)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the reader files (replaced)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = schema.check(schema.load_params(args.params), ["readers"], args.params)["readers"]["simulate"]
    if not settings["readers"]:
        raise InputError("readers.simulate.readers names no reader", args.params)
    truth = read_csv_cells(args.groundtruth, "test ground truth")
    missing = [c for c in ("Study", *OBSERVATIONS) if c not in truth.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", args.groundtruth, column=missing[0])
    reads = simulate_readers(truth, settings["readers"], settings["seed"])
    with atomic_dir(args.out) as tmp:
        for name, frame in reads.items():
            frame.to_csv(tmp / f"{name}.csv", index=False, lineterminator="\n")
    print(f"simulate_readers: {len(reads)} reader(s) of {len(truth)} test studies -> {args.out}")


if __name__ == "__main__":
    schema.run_stage(main)
