"""Synthetic CheXpert: a seeded generator writing a small dataset in the CheXpert-v1.0-small layout.

    <out>/CheXpert-v1.0-small/train.csv, valid.csv          (header chexpert.HEADER)
    <out>/CheXpert-v1.0-small/{train,valid,test}/patientNNNNN/studyN/viewN_{frontal,lateral}.jpg
    <out>/CheXpert-v1.0-small/groundtruth.csv              (test labels per study, binary)

Labels come per study (see xray_labels). Each image is rendered from its study's labels: the findings
are planted in a radiograph-like picture (Cardiomegaly = heart width, Pleural Effusion = blunted
costophrenic angle, Consolidation = dense lobar patch, Atelectasis = plate-like band with volume loss,
Edema = perihilar haze, ...), weaker for uncertain (-1) labels. Everything is a function of the seed:
patients, studies and views draw from their own generators keyed by their ids, so the output does not
depend on the number of worker processes.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ..data.chexpert import HEADER, OBSERVATIONS
from ..data.real_labels import read_real_chexpert, real_chexpert_labels_path
from ..errors import InputError
from .xray import render_image
from .xray_findings import sample_anatomy, sample_findings
from .xray_labels import PATIENT_STREAM, SPLITS, STUDY_STREAM, VIEW_STREAM, invented_table, real_table

DATASET_DIR = "CheXpert-v1.0-small"
GROUNDTRUTH_FILE = "groundtruth.csv"
# The real test ground truth names studies under the full-size dataset folder.
GROUNDTRUTH_DATASET = "CheXpert-v1.0"
LABEL_MODES: tuple[str, ...] = ("auto", "real", "invented")


def _image_path(split: str, patient: int, study: int, view: int, frontal: bool) -> str:
    return f"{DATASET_DIR}/{split}/patient{patient:05d}/study{study}/view{view}_{'frontal' if frontal else 'lateral'}.jpg"


def _label_cell(value: float) -> str:
    return "" if value != value else f"{float(value):.1f}"


def _render_studies(jobs: Sequence[dict[str, Any]], out_root: str, height: int, width: int, quality: int,
                    seed: int) -> int:
    """Render and write every view of the given studies (one worker's share)."""
    count = 0
    for job in jobs:
        anatomy = sample_anatomy(np.random.default_rng([seed, PATIENT_STREAM, job["patient_num"]]),
                                 job["sex"], job["age"])
        study_rng = np.random.default_rng([seed, STUDY_STREAM, job["patient_num"], job["study_num"]])
        findings = sample_findings(job["labels"], study_rng)
        for view in job["views"]:
            view_rng = np.random.default_rng([seed, VIEW_STREAM, job["patient_num"], job["study_num"], view["view_num"]])
            pixels = render_image(findings, anatomy, frontal=view["frontal"], ap=view["ap_pa"] != "PA",
                                  height=height, width=width, rng=view_rng)
            target = Path(out_root) / view["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(target, format="JPEG", quality=quality)
            count += 1
    return count


def label_rates(labels: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per observation: fractions positive, uncertain, negative and blank."""
    out = {}
    for name in OBSERVATIONS:
        col = labels[name].to_numpy(dtype=float)
        out[name] = {"positive": float(np.mean(col == 1.0)), "uncertain": float(np.mean(col == -1.0)),
                     "negative": float(np.mean(col == 0.0)), "blank": float(np.mean(np.isnan(col)))}
    return out


def _check_settings(counts: dict[str, int], labels: str, jpeg_quality: int, height: int, width: int,
                    max_studies_per_patient: int) -> None:
    for split, n in counts.items():
        if n < 1:
            raise InputError(f"n_{split}_patients must be at least 1, got {n}")
    if labels not in LABEL_MODES:
        raise InputError(f"labels must be one of {list(LABEL_MODES)}, got {labels!r}")
    if not 1 <= int(jpeg_quality) <= 100:
        raise InputError(f"jpeg_quality must be 1-100, got {jpeg_quality}")
    if height < 32 or width < 32:
        raise InputError(f"image size {height}x{width} is too small (at least 32x32)")
    if max_studies_per_patient < 1:
        raise InputError(f"max_studies_per_patient must be at least 1, got {max_studies_per_patient}")


def _image_table(labels: str, real_labels: str | os.PathLike | None, seed: int, counts: dict[str, int],
                 max_studies_per_patient: int) -> tuple[str, pd.DataFrame]:
    """(label mode used, one row per image with its path), sorted by patient, study and view."""
    source = Path(real_labels) if real_labels else real_chexpert_labels_path()
    mode = labels if labels != "auto" else ("real" if source is not None else "invented")
    if mode == "real":
        table = real_table(read_real_chexpert(source), seed, counts, max_studies_per_patient)
    else:
        table = invented_table(seed, counts, max_studies_per_patient)
    table["path"] = [_image_path(*key) for key in zip(table["split"], table["patient_num"], table["study_num"],
                                                        table["view_num"], table["frontal"])]
    table = table.sort_values(["patient_num", "study_num", "view_num"], kind="stable").reset_index(drop=True)
    if table["path"].duplicated().any():
        raise InputError(f"duplicate image path {table['path'][table['path'].duplicated()].iloc[0]!r}")
    return mode, table


def _study_jobs(table: pd.DataFrame) -> list[dict[str, Any]]:
    """One rendering job per study: the patient, the study's labels and its views."""
    jobs: list[dict[str, Any]] = []
    for r in table.to_dict("records"):
        if not jobs or (jobs[-1]["patient_num"], jobs[-1]["study_num"]) != (r["patient_num"], r["study_num"]):
            jobs.append({"patient_num": int(r["patient_num"]), "study_num": int(r["study_num"]), "sex": r["sex"],
                         "age": float(r["age"]), "labels": {n: float(r[n]) for n in OBSERVATIONS}, "views": []})
        jobs[-1]["views"].append({"view_num": int(r["view_num"]), "frontal": bool(r["frontal"]),
                                  "ap_pa": r["ap_pa"], "path": r["path"]})
    return jobs


def _render_all(jobs: list[dict[str, Any]], out_root: Path, height: int, width: int, quality: int, seed: int,
                workers: int) -> None:
    if workers <= 1:
        _render_studies(jobs, str(out_root), height, width, quality, seed)
        return
    chunk = max(1, math.ceil(len(jobs) / (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_render_studies, jobs[i:i + chunk], str(out_root), height, width, quality, seed)
                   for i in range(0, len(jobs), chunk)]
        for future in futures:
            future.result()


def _write_label_files(table: pd.DataFrame, dataset: Path) -> None:
    """train.csv and valid.csv (one row per image), groundtruth.csv (one row per test study)."""
    for split in ("train", "valid"):
        part = table[table["split"] == split]
        csv = pd.DataFrame({
            "Path": part["path"], "Sex": part["sex"],
            "Age": [("" if a != a else str(int(a))) for a in part["age"]],
            "Frontal/Lateral": np.where(part["frontal"], "Frontal", "Lateral"),
            "AP/PA": np.where(part["frontal"], part["ap_pa"], ""),
        })
        for name in OBSERVATIONS:
            csv[name] = [_label_cell(v) for v in part[name]]
        csv[list(HEADER)].to_csv(dataset / f"{split}.csv", index=False, lineterminator="\n")
    test = table[table["split"] == "test"].drop_duplicates(["patient_num", "study_num"])
    truth = pd.DataFrame({"Study": [f"{GROUNDTRUTH_DATASET}/test/patient{p:05d}/study{s}"
                                    for p, s in zip(test["patient_num"], test["study_num"])]})
    for name in OBSERVATIONS:
        truth[name] = test[name].to_numpy().astype(int)
    truth.to_csv(dataset / GROUNDTRUTH_FILE, index=False, lineterminator="\n")


def _summary(table: pd.DataFrame, mode: str, seed: int, height: int, width: int) -> dict[str, Any]:
    summary: dict[str, Any] = {"labels": mode, "seed": int(seed), "height": int(height), "width": int(width),
                               "splits": {}, "label_rates": {}}
    for split in SPLITS:
        part = table[table["split"] == split]
        summary["splits"][split] = {
            "patients": int(part["patient_num"].nunique()),
            "studies": int(part.groupby(["patient_num", "study_num"]).ngroups),
            "images": int(len(part)), "frontal": int(part["frontal"].sum()),
            "lateral": int((~part["frontal"]).sum()),
            "first_patient": int(part["patient_num"].min()), "last_patient": int(part["patient_num"].max()),
        }
        level = part if split == "train" else part.drop_duplicates(["patient_num", "study_num"])
        summary["label_rates"][split] = label_rates(level)
    return summary


def generate_chexpert(out_root: str | os.PathLike, *, n_train_patients: int = 640, n_valid_patients: int = 120,
                      n_test_patients: int = 240, height: int = 320, width: int = 390, seed: int = 0,
                      jpeg_quality: int = 90, labels: str = "auto", real_labels: str | os.PathLike | None = None,
                      max_studies_per_patient: int = 4, workers: int = 1) -> dict[str, Any]:
    """Write a synthetic CheXpert-v1.0-small under `out_root`; return a summary (counts, label rates).

    labels: "real" samples label rows from the real train.csv (`real_labels`, by default torchxrayvision's
    copy), "invented" draws them at CheXpert-like rates, "auto" is real when the file is there.
    Patients are numbered 1, 2, ... through train, then valid, then test; train keeps up to
    `max_studies_per_patient` studies per patient, valid and test one (as in the real sets).
    `workers` > 1 renders in that many processes; the output is the same.
    The summary's label rates are per image for train and per study for valid and test.
    """
    counts = {"train": int(n_train_patients), "valid": int(n_valid_patients), "test": int(n_test_patients)}
    _check_settings(counts, labels, jpeg_quality, height, width, max_studies_per_patient)
    mode, table = _image_table(labels, real_labels, seed, counts, max_studies_per_patient)
    dataset = Path(out_root) / DATASET_DIR
    dataset.mkdir(parents=True, exist_ok=True)
    _render_all(_study_jobs(table), Path(out_root), height, width, int(jpeg_quality), seed, workers)
    _write_label_files(table, dataset)
    return _summary(table, mode, seed, height, width)
