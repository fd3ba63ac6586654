"""Stage normalization: the training split's pixel mean/std, for models trained from a random init.

Reads the preprocess cache (memory-mapped) and the split table; writes a metrics JSON with the
grayscale mean and std of pixel/255 (repeated for the 3 input channels) over the training images.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import numpy as np

from cxrtransfer.data import images, splits
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import write_json
from cxrtransfer.models import normalization
from cxrtransfer.pipeline.config import run_stage


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, required=True, help="the preprocess cache folder")
    parser.add_argument("--split", type=Path, required=True, help="the split table (CSV)")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    image_array, index = images.read_cache(args.cache)
    rows = np.flatnonzero((splits.read_split(args.split, index) == "train").to_numpy())
    if len(rows) == 0:
        raise InputError("no training images in the split table", args.split)
    record = normalization.dataset_statistics(image_array, rows)
    write_json(args.out, record)
    print(f"normalization: mean {record['mean'][0]:.4f} std {record['std'][0]:.4f} over {len(rows)} "
          f"training images -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
