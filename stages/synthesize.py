"""Stage synthesize: write a synthetic CheXpert-v1.0-small (JPEGs, train.csv, valid.csv, test groundtruth.csv).

Reads the `synthetic:` params section; writes <out>/CheXpert-v1.0-small/ and <out>/summary.json, atomically.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Sequence

from cxrtransfer.data.chexpert import COMPETITION_TASKS
from cxrtransfer.embedded import synthetic_chexpert
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import atomic_dir, write_json
from cxrtransfer.pipeline.config import checked_section, load_params, run_stage, section

KEYS = {"seed": int, "labels": str, "real_labels": str, "train_patients": int, "valid_patients": int,
        "test_patients": int, "max_studies_per_patient": int, "height": int, "width": int, "jpeg_quality": int}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--section", default="synthetic", help="params section with the generator settings")
    parser.add_argument("--out", type=Path, required=True, help="folder that will hold CheXpert-v1.0-small/")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="rendering processes (the output does not depend on it)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = checked_section(section(load_params(args.params), args.section, args.params), args.section, KEYS,
                             args.params)
    real_labels = config.get("real_labels") or None
    if real_labels is not None and not Path(real_labels).is_file():
        raise InputError(f"{args.section}.real_labels: file not found", real_labels)
    started = time.perf_counter()
    with atomic_dir(args.out) as tmp:
        summary = synthetic_chexpert.generate_chexpert(
            tmp, n_train_patients=config.get("train_patients", 640), n_valid_patients=config.get("valid_patients", 120),
            n_test_patients=config.get("test_patients", 240), height=config.get("height", 128),
            width=config.get("width", 156), seed=config.get("seed", 0), jpeg_quality=config.get("jpeg_quality", 90),
            labels=config.get("labels", "auto"), real_labels=real_labels,
            max_studies_per_patient=config.get("max_studies_per_patient", 4), workers=max(1, args.workers))
        write_json(tmp / "summary.json", summary)
    seconds = time.perf_counter() - started
    counts = ", ".join(f"{split} {s['images']} images / {s['patients']} patients"
                       for split, s in summary["splits"].items())
    print(f"synthesize ({summary['labels']} labels, {summary['height']}x{summary['width']} px): {counts} "
          f"in {seconds:.1f} s -> {args.out}")
    rates = summary["label_rates"]
    print(f"  {'task':<17} {'train +/-1/blank':>18} {'valid +':>8} {'test +':>7}")
    for task in COMPETITION_TASKS:
        t = rates["train"][task]
        print(f"  {task:<17} {t['positive']:>6.2f} {t['uncertain']:>5.2f} {t['blank']:>5.2f} "
              f"{rates['valid'][task]['positive']:>8.2f} {rates['test'][task]['positive']:>7.2f}")


if __name__ == "__main__":
    run_stage(main)
