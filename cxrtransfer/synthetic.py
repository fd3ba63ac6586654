"""Synthetic CheXpert: a seeded generator writing a small dataset in the CheXpert-v1.0-small layout.

    <out>/CheXpert-v1.0-small/train.csv, valid.csv          (header chexpert.HEADER)
    <out>/CheXpert-v1.0-small/{train,valid,test}/patientNNNNN/studyN/viewN_{frontal,lateral}.jpg
    <out>/CheXpert-v1.0-small/groundtruth.csv              (test labels per study, binary)

Labels come per study, either sampled from the real CheXpert train.csv that torchxrayvision ships
("real": its patient/study/view structure, sex, age, AP/PA and labels) or invented at CheXpert-like
rates ("invented"). Each image is rendered from its study's labels: the findings are planted in a
radiograph-like picture (Cardiomegaly = heart width, Pleural Effusion = blunted costophrenic angle,
Consolidation = dense lobar patch, Atelectasis = plate-like band with volume loss, Edema = perihilar
haze, ...), weaker for uncertain (-1) labels. Everything is a function of the seed: patients, studies
and views draw from their own generators keyed by their ids, so the output does not depend on the
number of worker processes.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image
from scipy.special import ndtr

from . import realdata
from .chexpert import HEADER, OBSERVATIONS
from .embedded import portable
from .errors import InputError

DATASET_DIR = "CheXpert-v1.0-small"
GROUNDTRUTH_FILE = "groundtruth.csv"
# The real test ground truth names studies under the full-size dataset folder.
GROUNDTRUTH_DATASET = "CheXpert-v1.0"
SPLITS: tuple[str, ...] = ("train", "valid", "test")
LABEL_MODES: tuple[str, ...] = ("auto", "real", "invented")

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
PATHOLOGIES: tuple[str, ...] = tuple(o for o in OBSERVATIONS if o not in ("No Finding", "Support Devices"))
OPACITY_CHILDREN: tuple[str, ...] = ("Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis")
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
_LABEL_STREAM, _PATIENT_STREAM, _STUDY_STREAM, _VIEW_STREAM, _REAL_STREAM = 0, 1, 2, 3, 4


# ----------------------------------------------------------------------------- drawing primitives

def _ramp(d: np.ndarray, width: float) -> np.ndarray:
    """Soft step of `d` (0 below -width/2, 1 above +width/2): anti-aliased region edges."""
    return np.clip(d * (1.0 / width) + 0.5, 0.0, 1.0)


def _wave(turns: np.ndarray) -> np.ndarray:
    """cos(2 pi turns) as float32, the same bits on every CPU (see embedded.portable)."""
    return portable.cos_turns(turns).astype(np.float32)


def _bump(q: np.ndarray) -> np.ndarray:
    """Smooth dome from a normalized squared radius q (1 at q=0, 0 for q>=1)."""
    b = np.clip(1.0 - q, 0.0, 1.0)
    return b * b


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: tuple[int, int]) -> np.ndarray:
    """Low-frequency Gaussian noise: a coarse random grid upsampled bicubically to the image size."""
    coarse = rng.standard_normal(cells).astype(np.float32)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))


@lru_cache(maxsize=8)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in image units: x centred (scaled by the height), y from 0 (top) to 1 (bottom)."""
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None]
    x = ((np.arange(width, dtype=np.float32) + 0.5 - width / 2) / height)[None, :]
    return x, y


def _posed_grid(rng: np.random.Generator, height: int, width: int, jitter: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Anatomy coordinates of every pixel under a random patient position (scale, rotation, shift)."""
    x, y = _pixel_grid(height, width)
    theta = rng.normal(0.0, 0.04 * jitter)
    scale = float(np.clip(rng.normal(1.0, 0.045 * jitter), 0.85, 1.15))
    tx, ty = rng.normal(0.0, 0.03 * jitter), rng.normal(0.0, 0.025 * jitter)
    c, s = float(portable.cos(theta)) / scale, float(portable.sin(theta)) / scale
    xc, yc = x - np.float32(tx), y - np.float32(0.5 + ty)
    big_x = (c * xc + s * yc).astype(np.float32)
    big_y = (-s * xc + c * yc + 0.5).astype(np.float32)
    return big_x, big_y


# ----------------------------------------------------------------------------- findings

def finding_severity(value: float, rng: np.random.Generator, blank_miss: float = 0.02) -> float:
    """How strongly a label is planted: positive 0.45-1, uncertain mostly weak (0.1-0.5) or absent,
    negative none, blank none except a small rate of unreported weak findings (label noise)."""
    u, strength = rng.random(), rng.random()
    if value == 1.0:
        return 0.45 + 0.55 * strength
    if value == -1.0:
        return 0.1 + 0.4 * strength if u < 0.8 else 0.0
    if value != value:  # blank (NaN)
        return 0.1 + 0.25 * strength if u < blank_miss else 0.0
    return 0.0


_LOBES: tuple[tuple[str, int], ...] = (("lower", -1), ("lower", 1), ("upper", -1), ("upper", 1),
                                       ("middle", -1), ("middle", 1))


def sample_findings(labels: Mapping[str, float], rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """The study's planted findings: observation -> {"severity": s, geometry...}, only those with s > 0.

    Geometry (side, lobe, offsets) is drawn per study, so every view of a study shows the same disease.
    Sides are -1 (patient's right, image left) and +1 (patient's left, image right).
    """
    findings: dict[str, dict[str, Any]] = {}
    for name in OBSERVATIONS:
        if name == "No Finding":
            continue
        value = labels.get(name, float("nan"))
        severity = finding_severity(float(value), rng)
        if severity <= 0.0:
            continue
        item: dict[str, Any] = {"severity": severity}
        if name == "Pleural Effusion":
            item["sides"] = [(-1,), (1,), (-1, 1)][int(rng.choice(3, p=[0.35, 0.25, 0.40]))]
        elif name in ("Consolidation", "Pneumonia", "Lung Opacity"):
            count = 1 if name == "Consolidation" else int(rng.integers(1, 4))
            item["patches"] = [{"lobe": _LOBES[int(rng.integers(len(_LOBES)))],
                                "offset": rng.uniform(-1, 1, size=2).tolist(),
                                "size": float(rng.uniform(0.7, 1.3)), "noise_seed": int(rng.integers(2**31))}
                               for _ in range(count)]
        elif name == "Atelectasis":
            item["side"] = int(rng.choice([-1, 1]))
            item["bands"] = [{"u": float(rng.uniform(0.10, 0.26)), "above": float(rng.uniform(0.04, 0.13)),
                              "angle": float(rng.uniform(-0.35, 0.35)), "length": float(rng.uniform(0.8, 1.2))}
                             for _ in range(int(rng.integers(1, 3)))]
        elif name == "Pneumothorax":
            item["side"] = int(rng.choice([-1, 1]))
        elif name == "Lung Lesion":
            item["nodules"] = [{"side": int(rng.choice([-1, 1])), "u": float(rng.uniform(0.1, 0.32)),
                                "y": float(rng.uniform(0.25, 0.62)), "radius": float(rng.uniform(0.012, 0.035))}
                               for _ in range(int(rng.integers(1, 3)))]
        elif name == "Pleural Other":
            item["side"] = int(rng.choice([-1, 1]))
            item["span"] = sorted(rng.uniform(0.25, 0.7, size=2).tolist())
        elif name == "Fracture":
            item["side"] = int(rng.choice([-1, 1]))
            item["rib"] = int(rng.integers(2, 8))
            item["u"] = float(rng.uniform(0.22, 0.33))
        elif name == "Support Devices":
            kinds = ["ecg"] if severity < 0.45 else list(rng.choice(
                ["ett", "ng", "cvc", "ecg", "pacer"], size=int(rng.integers(1, 4)), replace=False,
                p=[0.25, 0.2, 0.25, 0.15, 0.15]))
            item["devices"] = [{"kind": str(k), "side": int(rng.choice([-1, 1])),
                                "jitter": rng.uniform(-1, 1, size=3).tolist()} for k in kinds]
        findings[name] = item
    return findings


def sample_anatomy(rng: np.random.Generator, sex: str = "Male", age: float = 60.0) -> dict[str, float]:
    """A patient's build, fixed across their studies: body width, heart size, diaphragm level, ..."""
    female = sex == "Female"
    age = 60.0 if age != age else float(age)
    return {
        "body": float(rng.normal(0.95 if female else 1.0, 0.05)),
        "ctr": float(np.clip(rng.normal(0.44, 0.03), 0.34, 0.52)),  # cardiothoracic ratio of a normal heart
        "diaphragm": float(rng.normal(0.75, 0.025)),
        "dome": float(rng.uniform(0.035, 0.065)),
        "apex": float(rng.normal(0.13, 0.01)),
        "female": float(female),
        "bone": float(np.clip(1.15 - 0.006 * age + rng.normal(0, 0.08), 0.5, 1.2)),  # rib contrast fades with age
        "rib_phase": float(rng.uniform(0, 1)),
        "bubble": float(rng.random() < 0.6),
    }


def _severity(findings: Mapping[str, Mapping[str, Any]], name: str) -> float:
    return float(findings[name]["severity"]) if name in findings else 0.0


# ----------------------------------------------------------------------------- frontal view

def _frontal(big_x: np.ndarray, big_y: np.ndarray, anatomy: Mapping[str, float],
             findings: Mapping[str, Mapping[str, Any]], ap: bool, rng: np.random.Generator) -> np.ndarray:
    """Attenuation map of a frontal (PA/AP) chest radiograph in anatomy coordinates."""
    h, w = big_x.shape
    bw = anatomy["body"]
    right_side = big_x >= 0  # image right = patient's left
    side_sign = np.where(right_side, np.float32(1), np.float32(-1))
    u = np.abs(big_x)
    k = 0.012  # edge softness

    # Diaphragm levels (the patient's right sits higher); AP films are shallower inspirations.
    base = anatomy["diaphragm"] - (0.02 if ap else 0.0)
    level = {-1: base, 1: base + 0.025}
    ctr = anatomy["ctr"] + (0.035 if ap else 0.0) + 0.16 * _severity(findings, "Cardiomegaly")
    heart_shift = 0.0
    if "Atelectasis" in findings:  # volume loss: the hemidiaphragm rises, the mediastinum shifts to that side
        at = findings["Atelectasis"]
        level[at["side"]] -= 0.035 * at["severity"]
        heart_shift = 0.015 * at["severity"] * at["side"]
    diaphragm = np.where(right_side, np.float32(level[1]), np.float32(level[-1]))

    cu, half = 0.205 * bw, 0.16 * bw  # lung centre line and half width (distance from the midline)
    outer_edge = cu + half
    growth = np.sqrt(np.clip((big_y - anatomy["apex"]) * (1 / 0.2), 0, 1))
    lung_half = half * growth
    widening = 0.06 * _severity(findings, "Enlarged Cardiomediastinum")
    upper = np.clip(1 - ((big_y - 0.3) * (1 / 0.17)) ** 2, 0, 1)
    knob = 0.025 * right_side * np.clip(1 - ((big_y - 0.27) * (1 / 0.05)) ** 2, 0, 1)
    medial_edge = np.maximum(cu - lung_half, 0.055 * bw + (0.02 + widening) * upper + knob)
    dome = diaphragm - anatomy["dome"] * np.clip(1 - ((u - 0.17 * bw) * (1 / (0.22 * bw))) ** 2, 0, 1)
    lung = (_ramp(cu + lung_half - u, k) * _ramp(u - medial_edge, k) * _ramp(dome - big_y, k)
            * _ramp(big_y - anatomy["apex"] - 0.01, k))

    torso = 0.13 + (0.45 * bw - 0.13) * np.clip((big_y + 0.04) * (1 / 0.17), 0, 1)
    body = _ramp(torso - u, 0.02)
    att = body.copy()
    att += 0.1 * _ramp(0.038 - u, 0.012)  # spine through the mediastinum

    # Heart: an ellipse resting on the diaphragm, two thirds of it on the patient's left.
    heart_width = ctr * 2 * outer_edge
    hx, hw = 0.17 * heart_width + heart_shift, heart_width / 2
    hy, hh = base - 0.08, 0.16 * bw
    # Narrower towards the great vessels: the widest part (the measured width) sits low.
    taper = 1 / (hw * (0.7 + 0.3 * np.clip((big_y - (hy - hh)) * (1 / hh), 0, 1)))
    heart = _ramp(1 - ((big_x - hx) * taper) ** 2 - ((big_y - hy) * (1 / hh)) ** 2, 0.12)
    hilum = _bump(((u - 0.1) * (1 / 0.05)) ** 2 + ((big_y - 0.43) * (1 / 0.075)) ** 2)

    # Opacities fill the air spaces; `opacity` is the fraction of air replaced (combined as 1 - prod(1 - o)).
    clear = np.ones((h, w), np.float32)
    markings_gain = 1.0
    extra = np.zeros((h, w), np.float32)  # attenuation outside the air-space model (devices, bone, lines)

    if "Pleural Effusion" in findings:
        eff = findings["Pleural Effusion"]
        height = 0.03 + 0.15 * eff["severity"]
        for s in eff["sides"]:
            meniscus = level[s] + 0.03 - height * (0.25 + 0.75 * np.clip(u * (1 / outer_edge), 0, 1) ** 2)
            fluid = _ramp(big_y - meniscus, 0.03) * (side_sign == s)
            if ap:  # supine: fluid layers behind the lung as a veil over the hemithorax
                fluid = np.maximum(fluid, 0.25 * eff["severity"] * (side_sign == s))
            clear *= 1 - 0.95 * fluid
    for name, density in (("Consolidation", 0.55), ("Pneumonia", 0.35), ("Lung Opacity", 0.35)):
        if name not in findings or (name == "Lung Opacity" and any(c in findings for c in OPACITY_CHILDREN)):
            continue
        item = findings[name]
        for patch in item["patches"]:
            clear *= 1 - (density + 0.35 * item["severity"]) * _frontal_patch(
                big_x, big_y, patch, base, item["severity"], soft=(name != "Consolidation"))
    if "Atelectasis" in findings:
        at = findings["Atelectasis"]
        s = at["side"]
        for band in at["bands"]:
            thick = 0.006 + 0.011 * at["severity"]
            length = (0.08 + 0.1 * at["severity"]) * band["length"]
            cy = level[s] - band["above"]
            du, dy = u - band["u"], big_y - cy
            ca, sa = float(portable.cos(band["angle"])), float(portable.sin(band["angle"]))
            plate = _ramp(thick - np.abs(-du * sa + dy * ca), 0.006) * _ramp(length / 2 - np.abs(du * ca + dy * sa), 0.03)
            clear *= 1 - (0.6 + 0.35 * at["severity"]) * plate * (side_sign == s)
    if "Edema" in findings:
        sev = _severity(findings, "Edema")
        haze = _bump(((u - 0.11) * (1 / 0.21)) ** 2 + ((big_y - 0.47) * (1 / 0.22)) ** 2)
        clear *= 1 - 0.22 * sev * haze
        markings_gain += 1.5 * sev
        # Kerley B lines: short horizontal septal lines at the lateral bases.
        septal = np.clip(_wave(big_y * (1 / 0.022)) - 0.75, 0, None) * 4
        extra += 0.12 * sev * septal * lung * _ramp(u - (outer_edge - 0.05), 0.02) * _ramp(big_y - (base - 0.15), 0.03)
    if "Lung Lesion" in findings:
        sev = _severity(findings, "Lung Lesion")
        for nod in findings["Lung Lesion"]["nodules"]:
            r = nod["radius"] * (0.7 + 0.5 * sev)
            q = ((big_x - nod["side"] * nod["u"]) ** 2 + (big_y - nod["y"]) ** 2) * (1 / (r * r))
            clear *= 1 - (0.5 + 0.4 * sev) * _ramp(1 - q, 0.15)
    ptx = None
    if "Pneumothorax" in findings:
        pt = findings["Pneumothorax"]
        depth = (0.03 + 0.1 * pt["severity"]) * (1.0 - 0.6 * np.clip((big_y - anatomy["apex"]) * (1 / (base - anatomy["apex"])), 0, 1))
        edge = cu + lung_half - depth
        ptx = _ramp(u - edge, 0.006) * (side_sign == pt["side"])
        extra += 0.18 * _ramp(0.004 - np.abs(u - edge), 0.004) * (side_sign == pt["side"]) * lung  # visceral pleural line
    if "Pleural Other" in findings:
        po = findings["Pleural Other"]
        thick = 0.01 + 0.02 * po["severity"]
        y1, y2 = po["span"][0] - 0.05, po["span"][1] + 0.05
        rind = _ramp(u - (cu + lung_half - thick), 0.008) * _ramp(big_y - y1, 0.03) * _ramp(y2 - big_y, 0.03)
        clear *= 1 - 0.8 * rind * (side_sign == po["side"])

    lung_air = lung * (1 - 0.93 * heart) * clear
    att -= 0.68 * lung_air
    if ptx is not None:
        att -= 0.1 * ptx * lung
    att += 0.15 * hilum

    # Lung markings: vessels fanning out from the hila, coarser with edema, absent in a pneumothorax.
    vessels = np.clip(_smooth_noise(rng, h, w, (max(4, h // 10), max(4, w // 10))), 0, None)
    vessels += 0.6 * np.clip(_smooth_noise(rng, h, w, (max(4, h // 5), max(4, w // 5))), 0, None)
    fan = 1.0 / (1.0 + ((u - 0.1) ** 2 + (big_y - 0.43) ** 2) * (1 / 0.02))
    marks = 0.14 * markings_gain * vessels * fan * lung_air
    if ptx is not None:
        marks *= 1 - ptx
    att += marks

    # Bones: posterior ribs curve up then down laterally, anterior ribs run down medially; clavicles.
    bone = anatomy["bone"]
    spacing = 0.068
    posterior = big_y + 0.5 * u - 2.0 * u * u
    ribs = np.clip(_wave((posterior - anatomy["rib_phase"] * spacing) * (1 / spacing)) - 0.35, 0, None)
    anterior = big_y + 0.35 * u
    ribs += 0.5 * np.clip(_wave((anterior - 0.3 * spacing) * (1 / (spacing * 1.1))) - 0.5, 0, None)
    cage = _ramp(outer_edge + 0.03 - u, 0.02) * _ramp(base + 0.03 - big_y, 0.04) * _ramp(big_y - 0.06, 0.04)
    att += 0.2 * bone * ribs * cage
    clavicle_y = (0.105 if ap else 0.135) - 0.1 * u + 0.18 * u * u
    att += 0.3 * bone * _ramp(0.011 - np.abs(big_y - clavicle_y), 0.006) * _ramp(0.37 - u, 0.02) * _ramp(u - 0.03, 0.02)
    if ap:  # scapulae project over the lateral upper lungs on AP films
        att += 0.12 * _ramp(u - (outer_edge - 0.06), 0.04) * _ramp(0.42 - big_y, 0.06) * body
    if anatomy["female"]:
        att += 0.16 * _bump(((u - 0.22) * (1 / 0.15)) ** 2 + ((big_y - base + 0.06) * (1 / 0.11)) ** 2)
    if anatomy["bubble"]:
        att -= 0.3 * _bump(((big_x - 0.16) * (1 / 0.06)) ** 2 + ((big_y - base - 0.06) * (1 / 0.035)) ** 2)

    if "Fracture" in findings:
        fr = findings["Fracture"]
        fu = fr["u"]
        fy = (anatomy["rib_phase"] + fr["rib"]) * spacing - 0.5 * fu + 2.0 * fu * fu
        q = ((u - fu) * (1 / 0.02)) ** 2 + ((big_y - fy) * (1 / 0.014)) ** 2
        at_rib = (side_sign == fr["side"])
        extra += 0.3 * fr["severity"] * _ramp(1 - q, 0.3) * at_rib  # callus
        extra -= 0.2 * fr["severity"] * _ramp(0.003 - np.abs(u - fu), 0.003) * (np.abs(big_y - fy) < 0.015) * at_rib
    if "Support Devices" in findings:
        extra += _devices(big_x, big_y, findings["Support Devices"]["devices"], base, frontal=True)
    return att + extra


_LOBE_CENTRES = {"lower": (0.2, -0.09), "upper": (0.2, 0.3), "middle": (0.11, -0.2)}


def _frontal_patch(big_x: np.ndarray, big_y: np.ndarray, patch: Mapping[str, Any], base: float,
                   severity: float, soft: bool) -> np.ndarray:
    """An air-space opacity in one lobe: irregular blob, bounded by the fissure for upper lobes."""
    (lobe, side) = patch["lobe"]
    cu, cy = _LOBE_CENTRES[lobe]
    cy = base + cy if cy < 0 else cy
    ox, oy = patch["offset"]
    cx, cy = side * (cu + 0.05 * ox), cy + 0.04 * oy
    r = (0.05 + 0.05 * severity) * patch["size"] * (0.7 if soft else 1.0)
    noise_rng = np.random.default_rng(patch["noise_seed"])
    h, w = big_x.shape
    wobble = _smooth_noise(noise_rng, h, w, (max(3, h // 16), max(3, w // 16)))
    q = ((big_x - cx) * (1 / (1.3 * r))) ** 2 + ((big_y - cy) * (1 / r)) ** 2 + 0.35 * wobble
    blob = _ramp(1 - q, 0.5 if soft else 0.2)
    if lobe == "upper" and side == -1:  # the horizontal fissure gives a sharp lower border
        blob = blob * _ramp(cy + 0.6 * r - big_y, 0.008)
    return blob * (big_x * side > 0)


def _line(big_x: np.ndarray, big_y: np.ndarray, start: tuple[float, float], end: tuple[float, float],
          width: float) -> np.ndarray:
    """A straight radiopaque line segment (tube, wire)."""
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    ca, sa = (x1 - x0) / length, (y1 - y0) / length
    dx, dy = big_x - x0, big_y - y0
    along = dx * ca + dy * sa
    across = np.abs(-dx * sa + dy * ca)
    return _ramp(width - across, 0.004) * _ramp(along, 0.004) * _ramp(length - along, 0.004)


def _devices(big_x: np.ndarray, big_y: np.ndarray, devices: Sequence[Mapping[str, Any]], base: float,
             frontal: bool) -> np.ndarray:
    """Radiopaque support devices: endotracheal tube, nasogastric tube, central line, ECG leads, pacemaker."""
    out = np.zeros(big_x.shape, np.float32)
    for dev in devices:
        j0, j1, j2 = dev["jitter"]
        s = dev["side"]
        kind = dev["kind"]
        if not frontal:  # on a lateral view the lines run near the airway and the heart
            s = 0
        if kind == "ett":
            x0 = 0.01 * j0 if frontal else 0.03 + 0.01 * j0
            out += 0.45 * _line(big_x, big_y, (x0, -0.2), (x0 + 0.01 * j1, 0.24 + 0.03 * j2), 0.007)
        elif kind == "ng":
            x0 = -0.015 + 0.01 * j0 if frontal else 0.1 + 0.01 * j0
            out += 0.4 * _line(big_x, big_y, (x0, -0.2), (x0 + 0.02, base + 0.02), 0.004)
            out += 0.4 * _line(big_x, big_y, (x0 + 0.02, base + 0.02), (x0 + 0.14, base + 0.12), 0.004)
        elif kind == "cvc":
            if frontal:
                start, end = (s * (0.36 + 0.03 * j0), 0.1 + 0.02 * j1), (s * 0.045, 0.36 + 0.04 * j2)
            else:
                start, end = (0.05 + 0.03 * j0, 0.05), (0.0 + 0.02 * j1, 0.38 + 0.04 * j2)
            out += 0.4 * _line(big_x, big_y, start, end, 0.0035)
        elif kind == "ecg":
            for i in range(3):
                cx = (0.3 * j0 + 0.15 * (i - 1)) if frontal else (-0.2 + 0.1 * i * j1)
                cy = 0.2 + 0.2 * i + 0.05 * j2
                q = ((big_x - cx) ** 2 + (big_y - cy) ** 2) * (1 / 0.018 ** 2)
                out += 0.5 * _ramp(0.3 - np.abs(q - 1), 0.2) + 0.4 * _ramp(0.15 - q, 0.1)
        elif kind == "pacer":
            cx, cy = (0.28 + 0.03 * j0 if frontal else -0.22, 0.17 + 0.02 * j1)
            box = _ramp(0.04 - np.abs(big_x - cx), 0.006) * _ramp(0.025 - np.abs(big_y - cy), 0.006)
            out += 0.9 * box + 0.45 * _line(big_x, big_y, (cx, cy), (0.02 if frontal else -0.05, base - 0.12 + 0.03 * j2), 0.004)
    return out


# ----------------------------------------------------------------------------- lateral view

def _lateral(big_x: np.ndarray, big_y: np.ndarray, anatomy: Mapping[str, float],
             findings: Mapping[str, Mapping[str, Any]], rng: np.random.Generator) -> np.ndarray:
    """Attenuation map of a lateral chest radiograph: anterior to the image left, spine to the right."""
    h, w = big_x.shape
    bw = anatomy["body"]
    k = 0.012
    base = anatomy["diaphragm"] + 0.01
    front, back = -0.3 * bw + 0.06 * (big_y - 0.5), 0.33 * bw
    neck = np.clip((big_y + 0.02) * (1 / 0.2), 0, 1)
    body = _ramp(big_x - (front - 0.03 - 0.12 * (1 - neck)), 0.02) * _ramp(back + 0.04 - 0.1 * (1 - neck) - big_x, 0.02)
    att = body.copy()

    sulcus = base + 0.05 * np.clip((big_x - 0.12) * (1 / 0.15), 0, 1)
    dome = sulcus - 0.07 * np.clip(1 - ((big_x + 0.02) * (1 / 0.3)) ** 2, 0, 1)
    apex = 0.1 + 0.6 * (big_x - 0.05) ** 2
    lung = _ramp(big_x - (front + 0.035), k) * _ramp(back - 0.04 - big_x, k) * _ramp(dome - big_y, k) * _ramp(big_y - apex, 0.03)

    ctr = anatomy["ctr"] + 0.16 * _severity(findings, "Cardiomegaly")
    hw = 0.13 + 0.9 * (ctr - 0.44)  # an enlarged heart reaches further back
    hh = 0.14 * bw
    hx = -0.3 * bw + 0.035 + hw * 0.85
    heart = _ramp(1 - ((big_x - hx) * (1 / hw)) ** 2 - ((big_y - (base - 0.11)) * (1 / hh)) ** 2, 0.12)

    clear = np.ones((h, w), np.float32)
    extra = np.zeros((h, w), np.float32)
    markings_gain = 1.0
    if "Pleural Effusion" in findings:
        eff = findings["Pleural Effusion"]
        height = 0.03 + 0.15 * eff["severity"]
        meniscus = sulcus + 0.02 - height * (0.2 + 0.8 * np.clip((big_x - front) * (1 / (back - front)), 0, 1) ** 2)
        clear *= 1 - 0.95 * _ramp(big_y - meniscus, 0.03)
    lateral_centres = {"lower": (0.15, base - 0.12), "upper": (0.0, 0.3), "middle": (-0.12, base - 0.17)}
    for name, density in (("Consolidation", 0.55), ("Pneumonia", 0.35), ("Lung Opacity", 0.35)):
        if name not in findings or (name == "Lung Opacity" and any(c in findings for c in OPACITY_CHILDREN)):
            continue
        item = findings[name]
        for patch in item["patches"]:
            cx, cy = lateral_centres[patch["lobe"][0]]
            ox, oy = patch["offset"]
            r = (0.05 + 0.05 * item["severity"]) * patch["size"]
            noise_rng = np.random.default_rng(patch["noise_seed"] + 1)
            wobble = _smooth_noise(noise_rng, h, w, (max(3, h // 16), max(3, w // 16)))
            q = ((big_x - cx - 0.04 * ox) * (1 / (1.2 * r))) ** 2 + ((big_y - cy - 0.04 * oy) * (1 / r)) ** 2 + 0.35 * wobble
            clear *= 1 - (density + 0.35 * item["severity"]) * _ramp(1 - q, 0.3)
    if "Atelectasis" in findings:
        at = findings["Atelectasis"]
        for band in at["bands"]:
            cy = base - band["above"] - 0.02
            plate = _line(big_x, big_y, (-0.12 + band["u"] * 0.5, cy - 0.05), (0.12 + band["u"] * 0.5, cy + 0.04),
                          0.005 + 0.01 * at["severity"])
            clear *= 1 - (0.5 + 0.35 * at["severity"]) * plate
    if "Edema" in findings:
        sev = _severity(findings, "Edema")
        clear *= 1 - 0.22 * sev * _bump(((big_x - 0.04) * (1 / 0.22)) ** 2 + ((big_y - 0.45) * (1 / 0.2)) ** 2)
        markings_gain += 1.5 * sev
    if "Lung Lesion" in findings:
        sev = _severity(findings, "Lung Lesion")
        for nod in findings["Lung Lesion"]["nodules"]:
            r = nod["radius"] * (0.7 + 0.5 * sev)
            q = ((big_x - (nod["u"] - 0.2) * 0.8) ** 2 + (big_y - nod["y"]) ** 2) * (1 / (r * r))
            clear *= 1 - (0.45 + 0.4 * sev) * _ramp(1 - q, 0.15)
    if "Pleural Other" in findings:
        po = findings["Pleural Other"]
        rind = _ramp(big_x - (back - 0.06 - 0.02 * po["severity"]), 0.01) * _ramp(big_y - po["span"][0], 0.03)
        clear *= 1 - 0.7 * rind

    lung_air = lung * (1 - 0.9 * heart) * clear
    att -= 0.65 * lung_air
    vessels = np.clip(_smooth_noise(rng, h, w, (max(4, h // 10), max(4, w // 10))), 0, None)
    fan = 1.0 / (1.0 + ((big_x - 0.04) ** 2 + (big_y - 0.43) ** 2) * (1 / 0.03))
    att += 0.07 * markings_gain * vessels * fan * lung_air

    bone = anatomy["bone"]
    column = _ramp(big_x - (back - 0.14), 0.01) * _ramp(back - 0.04 - big_x, 0.01)
    discs = np.clip(_wave((big_y - anatomy["rib_phase"] * 0.06) * (1 / 0.062)) + 0.7, 0, 1)
    att += 0.35 * bone * column * discs
    att += 0.06 * bone * np.clip(_wave((big_y - 0.4 * big_x) * (1 / 0.07)) - 0.4, 0, None) * lung
    att += 0.25 * bone * _ramp(0.01 - np.abs(big_x - (front + 0.012)), 0.006) * _ramp(big_y - 0.15, 0.03) * _ramp(0.6 - big_y, 0.03)
    att += 0.2 * _ramp(0.28 - big_y, 0.15) * body  # arms and shoulders over the apices
    trachea_x = 0.03 + 0.1 * (big_y - 0.3)
    att -= 0.15 * _ramp(0.022 - np.abs(big_x - trachea_x), 0.01) * _ramp(0.4 - big_y, 0.06) * body
    widening = _severity(findings, "Enlarged Cardiomediastinum")
    if widening > 0:  # the retrosternal clear space fills in
        att += 0.3 * widening * _bump(((big_x + 0.15) * (1 / 0.1)) ** 2 + ((big_y - 0.35) * (1 / 0.15)) ** 2)
    if "Support Devices" in findings:
        extra += _devices(big_x, big_y, findings["Support Devices"]["devices"], base, frontal=False)
    return att + extra


# ----------------------------------------------------------------------------- one image

def render_image(findings: Mapping[str, Mapping[str, Any]], anatomy: Mapping[str, float], *,
                 frontal: bool = True, ap: bool = True, height: int = 320, width: int = 390,
                 rng: np.random.Generator, pose_jitter: float = 1.0, noise: float = 1.0,
                 max_render_height: int = 160) -> np.ndarray:
    """Render one radiograph (uint8, height x width) of a study's findings for one view.

    `rng` draws what varies between views: position, exposure, contrast, texture and quantum noise.
    `pose_jitter` and `noise` scale that variation (0 gives a centred, noise-free picture). The anatomy
    is drawn at most `max_render_height` rows high and upsampled (radiographs are smooth; it keeps
    320 px images cheap); the quantum noise is added at full size.
    """
    if height < 8 or width < 8:
        raise ValueError(f"image size {height}x{width} is too small (at least 8x8)")
    factor = min(1.0, max_render_height / height)
    render_h, render_w = max(8, round(height * factor)), max(8, round(width * factor))
    big_x, big_y = _posed_grid(rng, render_h, render_w, pose_jitter * (1.3 if ap else 1.0))
    if frontal:
        att = _frontal(big_x, big_y, anatomy, findings, ap, rng)
    else:
        att = _lateral(big_x, big_y, anatomy, findings, rng)
    # Exposure and processing differ between machines and films.
    lo = rng.normal(-0.05, 0.05 * noise)
    hi = rng.normal(1.3, 0.08 * noise)
    gamma = float(portable.exp(rng.normal(0.0, 0.12 * noise)))
    img = np.clip((att - lo) * (1.0 / (hi - lo)), 0.0, 1.0)
    img = portable.power(img, gamma).astype(np.float32)
    if (render_h, render_w) != (height, width):
        img = np.array(Image.fromarray(img).resize((width, height), Image.BILINEAR))
    _, y = _pixel_grid(height, width)
    img *= 1.0 + rng.normal(0.0, 0.04 * noise) * (y - 0.5)  # heel effect
    sigma = rng.uniform(0.01, 0.03) * noise
    if sigma > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
    if rng.random() < 0.5 * noise:  # a lead marker in a top corner
        r0, c0 = int(0.04 * height), int(rng.choice([0.05, 0.85]) * width)
        img[r0:r0 + max(2, height // 20), c0:c0 + max(2, width // 25)] = 0.95
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- label tables

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
    lo = OBSERVATIONS.index("Lung Opacity")
    children = [OBSERVATIONS.index(c) for c in OPACITY_CHILDREN]
    out[(out[:, children] == 1.0).any(axis=1), lo] = 1.0
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
    lo = OBSERVATIONS.index("Lung Opacity")
    children = [OBSERVATIONS.index(c) for c in OPACITY_CHILDREN]
    out[(out[:, children] == 1.0).any(axis=1), lo] = 1.0
    pathology = [OBSERVATIONS.index(p) for p in PATHOLOGIES]
    out[:, OBSERVATIONS.index("No Finding")] = (out[:, pathology] != 1.0).all(axis=1).astype(np.float32)
    return out


def _study_counts(rng: np.random.Generator, n: int, max_studies: int) -> np.ndarray:
    return np.minimum(rng.geometric(0.45, size=n), max_studies)


def invented_table(seed: int, counts: Mapping[str, int], max_studies_per_patient: int) -> pd.DataFrame:
    """One row per image with invented structure and labels (valid/test binary, one study per patient)."""
    rng = np.random.default_rng([seed, _LABEL_STREAM])
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
        study_row = 0
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
                                 "label_row": sum(len(b) for b in label_blocks) + study_row})
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
    rng = np.random.default_rng([seed, _REAL_STREAM])
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


# ----------------------------------------------------------------------------- writing the dataset

def _image_path(split: str, patient: int, study: int, view: int, frontal: bool) -> str:
    return f"{DATASET_DIR}/{split}/patient{patient:05d}/study{study}/view{view}_{'frontal' if frontal else 'lateral'}.jpg"


def _label_cell(value: float) -> str:
    return "" if value != value else f"{float(value):.1f}"


def _render_studies(jobs: Sequence[dict[str, Any]], out_root: str, height: int, width: int, quality: int,
                    seed: int) -> int:
    """Render and write every view of the given studies (one worker's share)."""
    count = 0
    for job in jobs:
        anatomy = sample_anatomy(np.random.default_rng([seed, _PATIENT_STREAM, job["patient_num"]]),
                                 job["sex"], job["age"])
        study_rng = np.random.default_rng([seed, _STUDY_STREAM, job["patient_num"], job["study_num"]])
        findings = sample_findings(job["labels"], study_rng)
        for view in job["views"]:
            view_rng = np.random.default_rng([seed, _VIEW_STREAM, job["patient_num"], job["study_num"], view["view_num"]])
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
    source = Path(real_labels) if real_labels else realdata.real_chexpert_labels_path()
    mode = labels if labels != "auto" else ("real" if source is not None else "invented")
    if mode == "real":
        table = real_table(realdata.read_real_chexpert(source), seed, counts, max_studies_per_patient)
    else:
        table = invented_table(seed, counts, max_studies_per_patient)
    table["path"] = [_image_path(*key) for key in zip(table["split"], table["patient_num"], table["study_num"],
                                                        table["view_num"], table["frontal"])]
    table = table.sort_values(["patient_num", "study_num", "view_num"], kind="stable").reset_index(drop=True)
    if table["path"].duplicated().any():
        raise InputError(f"duplicate image path {table['path'][table['path'].duplicated()].iloc[0]!r}")

    out_root = Path(out_root)
    dataset = out_root / DATASET_DIR
    dataset.mkdir(parents=True, exist_ok=True)
    jobs: list[dict[str, Any]] = []
    for r in table.to_dict("records"):
        if not jobs or (jobs[-1]["patient_num"], jobs[-1]["study_num"]) != (r["patient_num"], r["study_num"]):
            jobs.append({"patient_num": int(r["patient_num"]), "study_num": int(r["study_num"]), "sex": r["sex"],
                         "age": float(r["age"]), "labels": {n: float(r[n]) for n in OBSERVATIONS}, "views": []})
        jobs[-1]["views"].append({"view_num": int(r["view_num"]), "frontal": bool(r["frontal"]),
                                  "ap_pa": r["ap_pa"], "path": r["path"]})
    if workers <= 1:
        _render_studies(jobs, str(out_root), height, width, int(jpeg_quality), seed)
    else:
        chunk = max(1, math.ceil(len(jobs) / (workers * 4)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_render_studies, jobs[i:i + chunk], str(out_root), height, width,
                                   int(jpeg_quality), seed) for i in range(0, len(jobs), chunk)]
            for future in futures:
                future.result()

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
