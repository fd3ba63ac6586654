"""Shared fixtures: tiny CheXpert-layout datasets written into tmp_path (torchxrayvision style)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrtransfer.data.chexpert import HEADER, OBSERVATIONS
from tests.ci_skips import pytest_runtest_makereport  # noqa: F401  (the hook: a skip fails under CI=true)


def write_jpeg(path: Path, rng: np.random.Generator, height: int = 48, width: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8), mode="L").save(path, quality=90)


def label_cell(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


@pytest.fixture
def tiny_chexpert(tmp_path: Path) -> Path:
    """A CheXpert-v1.0-small tree: 6 train patients, 2 valid, 2 test (study-level ground truth).

    Returns the folder that holds the dataset folder (what `Path` entries are relative to).
    """
    rng = np.random.default_rng(0)
    root = tmp_path / "chexpert"
    dataset = root / "CheXpert-v1.0-small"
    cycle = [1.0, 0.0, -1.0, None]

    def rows_for(split: str, patients: range, binary: bool) -> list[list[str]]:
        rows = []
        for p in patients:
            for study in (1, 2) if split == "train" else (1,):
                for view, orientation in ((1, "frontal"), (2, "lateral")):
                    rel = f"CheXpert-v1.0-small/{split}/patient{p:05d}/study{study}/view{view}_{orientation}.jpg"
                    write_jpeg(root / rel, rng)
                    labels = []
                    for j in range(len(OBSERVATIONS)):
                        value = cycle[(p + study + j) % 4]
                        if binary:
                            value = 1.0 if value == 1.0 else 0.0
                        labels.append(label_cell(value))
                    ap_pa = "AP" if orientation == "frontal" else ""
                    rows.append([rel, "Female" if p % 2 else "Male", str(40 + p),
                                 orientation.capitalize(), ap_pa, *labels])
        return rows

    dataset.mkdir(parents=True)
    for name, patients, binary in (("train", range(1, 7), False), ("valid", range(7, 9), True)):
        with open(dataset / f"{name}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(HEADER)
            writer.writerows(rows_for(name, patients, binary))
    with open(dataset / "groundtruth.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Study", *OBSERVATIONS])
        for p in (9, 10):
            for view, orientation in ((1, "frontal"), (2, "frontal")):
                write_jpeg(dataset / f"test/patient{p:05d}/study1/view{view}_{orientation}.jpg", rng)
            writer.writerow([f"CheXpert-v1.0/test/patient{p:05d}/study1",
                             *[str((p + j) % 2) for j in range(len(OBSERVATIONS))]])
    return root
