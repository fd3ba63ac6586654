"""Benchmark: parse and split the real CheXpert-v1.0-small train.csv (223,414 rows) shipped by torchxrayvision.

Run alone with `python -m benchmarks.real_labels`; the benchmark suite calls `bench_real_labels()`.
"""

from __future__ import annotations

import time
from typing import Any

from cxrtransfer.data import chexpert, real_labels
from cxrtransfer.data.splits import SPLITS, make_split

FRACTIONS = {"train": 0.75, "valid": 0.10, "test": 0.15}
NAME = "real CheXpert labels: parse + split"


def bench_real_labels(repeats: int = 1) -> dict[str, Any]:
    """Time `read_labels` on the packaged .csv.gz and a seeded patient-level fraction split (best of repeats)."""
    path = real_labels.real_chexpert_labels_path()
    if path is None:
        result: dict[str, Any] = {"name": NAME, "skipped": "torchxrayvision (test extra) not installed"}
        print(f"{NAME:<40} skipped: {result['skipped']}")
        return result
    parse_times, split_times = [], []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        index = chexpert.read_labels(path)
        parse_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        split = make_split(index, "fractions", FRACTIONS, seed=0)
        split_times.append(time.perf_counter() - start)
    patients = split.drop_duplicates("patient")["split"].value_counts()
    images = split["split"].value_counts()
    n_patients, n_images = int(patients.sum()), len(split)
    result = {
        "name": NAME,
        "rows": n_images,
        "patients": n_patients,
        "studies": int(index["study"].nunique()),
        "frontal": int(index["frontal"].sum()),
        "parse_s": min(parse_times),
        "split_s": min(split_times),
        "patient_fractions": {s: int(patients.get(s, 0)) / n_patients for s in SPLITS},
        "image_fractions": {s: int(images.get(s, 0)) / n_images for s in SPLITS},
    }
    shares = " ".join(f"{s} {result['patient_fractions'][s]:.4f}/{result['image_fractions'][s]:.4f}" for s in SPLITS)
    print(f"{NAME:<40} {n_images:>7} rows  parse {result['parse_s']:6.2f} s  split {result['split_s']:5.2f} s  "
          f"patients/images {shares}")
    return result


if __name__ == "__main__":
    bench_real_labels(repeats=3)
