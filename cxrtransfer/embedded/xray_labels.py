"""Label tables of the synthetic CheXpert: one row per image, with its split, patient, study, view and labels.

Labels come per study, either sampled from the real CheXpert train.csv that torchxrayvision ships
("real": its patient/study/view structure, sex, age, AP/PA and labels) or invented at CheXpert-like
rates ("invented"). Valid and test labels are binary, as in the radiologist-labelled sets.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ..data.chexpert import OBSERVATIONS
from ..errors import InputError
from .xray_findings import OPACITY_CHILDREN, PATHOLOGIES

SPLITS: tuple[str, ...] = ("train", "valid", "test")

# Fractions (positive, uncertain, negative) per observation in the real CheXpert-v1.0-small
# train.csv (223,414 images); the rest is blank. Lung Opacity is drawn lower because it is also
# set wherever one of its child findings is positive (the labeler's hierarchy), and No Finding
# is derived: 1.0 only where no pathology is positive or uncertain.
INVENTED_RATES: dict[str, tuple[float, float, float]] = {
    "Enlarged Cardiomediastinum": (0.048, 0.056, 0.097),
    "Cardiomegaly": (0.121, 0.036, 0.050),
    "Lung Opacity": (0.300, 0.025, 0.030),
    "Lung Lesion": (0.041, 0.007, 0.006),
    "Edema": (0.234, 0.058, 0.093),
    "Consolidation": (0.066, 0.124, 0.126),
    "Pneumonia": (0.027, 0.084, 0.013),
    "Atelectasis": (0.149, 0.151, 0.006),
    "Pneumothorax": (0.087, 0.014, 0.252),
    "Pleural Effusion": (0.386, 0.052, 0.158),
    "Pleural Other": (0.016, 0.012, 0.001),
    "Fracture": (0.040, 0.003, 0.011),
    "Support Devices": (0.519, 0.005, 0.027),
}
# Study-level correlation of the invented labels (a shared Gaussian factor): sicker studies have more findings.
# 0.2 gives the real file's co-occurrence of Edema and Pleural Effusion (phi 0.11 here, 0.14 there) and
# about its share of studies without any pathology (18% here, 13% there).
INVENTED_CORRELATION = 0.2
# The labeler writes No Finding = 1.0 for only part of the clean studies (real file: 10% of all images).
NO_FINDING_WHEN_CLEAN = 0.6
# Views per study in the real train.csv: 1 (82%), 2 (17%), 3 (1%); frontal views are AP in 85%.
VIEWS_PER_STUDY = (0.78, 0.20, 0.02)
AP_FRACTION = 0.85


# Generator streams, keyed so that no two purposes share one.
LABEL_STREAM, PATIENT_STREAM, STUDY_STREAM, VIEW_STREAM, REAL_STREAM = 0, 1, 2, 3, 4


def _mark_lung_opacity(labels: np.ndarray) -> None:
    """Lung Opacity positive wherever a child finding is (the labeler's hierarchy), in place."""
    children = [OBSERVATIONS.index(c) for c in OPACITY_CHILDREN]
    labels[(labels[:, children] == 1.0).any(axis=1), OBSERVATIONS.index("Lung Opacity")] = 1.0


def invented_labels(rng: np.random.Generator, n_studies: int,
                    rates: Mapping[str, tuple[float, float, float]] = INVENTED_RATES,
                    correlation: float = INVENTED_CORRELATION) -> np.ndarray:
    """Train-style raw labels (n_studies x 14 in OBSERVATIONS order; 1, 0, -1, NaN) at the given rates."""
    names = list(rates)
    shared = rng.standard_normal((n_studies, 1))
    own = rng.standard_normal((n_studies, len(names)))
    quantile = ndtr(math.sqrt(correlation) * shared + math.sqrt(1 - correlation) * own)
    out = np.full((n_studies, len(OBSERVATIONS)), np.nan, dtype=np.float32)
    for j, name in enumerate(names):
        pos, unc, neg = rates[name]
        col = OBSERVATIONS.index(name)
        q = quantile[:, j]
        values = np.where(q > 1 - pos, 1.0, np.where(q > 1 - pos - unc, -1.0, np.where(q > 1 - pos - unc - neg, 0.0, np.nan)))
        out[:, col] = values
    _mark_lung_opacity(out)
    pathology = [OBSERVATIONS.index(p) for p in PATHOLOGIES]
    clean = ~np.isin(out[:, pathology], (1.0, -1.0)).any(axis=1)
    mentioned = rng.random(n_studies) < NO_FINDING_WHEN_CLEAN
    out[:, OBSERVATIONS.index("No Finding")] = np.where(clean & mentioned, 1.0, np.nan)
    return out


def binarize_labels(raw: np.ndarray, rng: np.random.Generator, uncertain_positive: float = 0.5) -> np.ndarray:
    """Binary truth from train-style labels, as for the radiologist-labelled valid and test sets.

    Uncertain cells become positive with probability `uncertain_positive`, blanks negative; Lung Opacity
    is positive wherever a child finding is, and No Finding exactly where no pathology is positive.
    """
    out = np.array(raw, dtype=np.float32, copy=True)
    uncertain = out == -1.0
    out[uncertain] = (rng.random(int(uncertain.sum())) < uncertain_positive).astype(np.float32)
    out[np.isnan(out)] = 0.0
    _mark_lung_opacity(out)
    pathology = [OBSERVATIONS.index(p) for p in PATHOLOGIES]
    out[:, OBSERVATIONS.index("No Finding")] = (out[:, pathology] != 1.0).all(axis=1).astype(np.float32)
    return out


def _study_counts(rng: np.random.Generator, n: int, max_studies: int) -> np.ndarray:
    return np.minimum(rng.geometric(0.45, size=n), max_studies)


def invented_table(seed: int, counts: Mapping[str, int], max_studies_per_patient: int) -> pd.DataFrame:
    """One row per image with invented structure and labels (valid/test binary, one study per patient)."""
    rng = np.random.default_rng([seed, LABEL_STREAM])
    rows: list[dict[str, Any]] = []
    label_blocks = []
    patient = 0
    for split in SPLITS:
        n_patients = counts[split]
        studies = (_study_counts(rng, n_patients, max_studies_per_patient) if split == "train"
                   else np.ones(n_patients, dtype=int))
        raw = invented_labels(rng, int(studies.sum()))
        if split != "train":
            raw = binarize_labels(raw, rng)
        sexes = rng.choice(["Male", "Female"], size=n_patients, p=[0.59, 0.41])
        ages = np.clip(np.rint(rng.normal(60, 17, size=n_patients)), 18, 90).astype(int)
        n_views = rng.choice([1, 2, 3], size=len(raw), p=VIEWS_PER_STUDY)
        devices = raw[:, OBSERVATIONS.index("Support Devices")] == 1.0
        study_row, first_label_row = 0, sum(len(b) for b in label_blocks)
        for p in range(n_patients):
            patient += 1
            for s in range(int(studies[p])):
                ap_share = min(0.97, AP_FRACTION + (0.1 if devices[study_row] else -0.1))
                for v in range(int(n_views[study_row])):
                    lateral = (v == 1 and rng.random() < 0.9) or (v == 2 and rng.random() < 0.5)
                    rows.append({"split": split, "patient_num": patient, "study_num": s + 1, "view_num": v + 1,
                                 "frontal": not lateral,
                                 "ap_pa": "" if lateral else ("AP" if rng.random() < ap_share else "PA"),
                                 "sex": str(sexes[p]), "age": float(ages[p] + s // 2),
                                 "label_row": first_label_row + study_row})
                study_row += 1
        label_blocks.append(raw)
    table = pd.DataFrame(rows)
    labels = np.concatenate(label_blocks, axis=0)[table.pop("label_row").to_numpy()]
    return pd.concat([table, pd.DataFrame(labels, columns=list(OBSERVATIONS))], axis=1)


def real_table(real: pd.DataFrame, seed: int, counts: Mapping[str, int], max_studies_per_patient: int) -> pd.DataFrame:
    """One row per image sampled by patient from the real train.csv (as read by chexpert.read_labels).

    Patients are renumbered consecutively from 1 in split order; train keeps up to
    `max_studies_per_patient` of each patient's studies, valid and test one (like the real sets);
    valid/test labels are made binary (see binarize_labels).
    """
    rng = np.random.default_rng([seed, REAL_STREAM])
    patients = np.sort(real["patient"].unique())
    total = sum(counts.values())
    if total > len(patients):
        raise InputError(f"asked for {total} patients but the real label file has {len(patients)}")
    chosen = patients[rng.choice(len(patients), size=total, replace=False)]
    subset = real[real["patient"].isin(set(chosen.tolist()))]
    records: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for r in subset.to_dict("records"):
        study = int(r["study"].rsplit("study", 1)[1])
        records.setdefault(r["patient"], {}).setdefault(study, []).append(r)
    splits = np.repeat(np.array(SPLITS), [counts[s] for s in SPLITS])
    rows: list[dict[str, Any]] = []
    labels: list[np.ndarray] = []
    for number, (patient, split) in enumerate(zip(chosen, splits), start=1):
        studies = records[patient]
        numbers = sorted(studies)
        keep = 1 if split != "train" else min(max_studies_per_patient, len(numbers))
        picked = sorted(rng.choice(len(numbers), size=keep, replace=False).tolist())
        for new_study, i in enumerate(picked, start=1):
            views = sorted(studies[numbers[i]], key=lambda r: int(r["view"][4:]))
            study_labels = np.array([[r[n] for n in OBSERVATIONS] for r in views], dtype=np.float32)
            if split != "train":  # a study's truth is one binary row for all its views
                study_labels = np.repeat(binarize_labels(study_labels[:1], rng), len(views), axis=0)
            labels.append(study_labels)
            rows.extend({"split": split, "patient_num": number, "study_num": new_study,
                         "view_num": int(r["view"][4:]), "frontal": bool(r["frontal"]), "ap_pa": r["ap_pa"],
                         "sex": r["sex"], "age": float(r["age"])} for r in views)
    table = pd.DataFrame(rows)
    return pd.concat([table, pd.DataFrame(np.concatenate(labels), columns=list(OBSERVATIONS))], axis=1)
