"""The lateral chest radiograph: anterior to the image left, spine to the right."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .drawing import bump, line, ramp, smooth_noise, wave
from .xray_devices import devices
from .xray_findings import Findings, air_space_patches, severity

_EDGE = 0.012


@dataclass
class Side:
    """One lateral view's coordinates and landmarks."""
    x: np.ndarray
    y: np.ndarray
    base: float  # diaphragm level
    front: np.ndarray  # anterior chest wall
    back: float  # posterior chest wall
    sulcus: np.ndarray  # posterior costophrenic sulcus level
    lung: np.ndarray


def _side(big_x: np.ndarray, big_y: np.ndarray, anatomy: Mapping[str, float]) -> tuple[Side, np.ndarray]:
    """The view's landmarks and the body outline."""
    bw = anatomy["body"]
    base = anatomy["diaphragm"] + 0.01
    front, back = -0.3 * bw + 0.06 * (big_y - 0.5), 0.33 * bw
    neck = np.clip((big_y + 0.02) * (1 / 0.2), 0, 1)
    body = ramp(big_x - (front - 0.03 - 0.12 * (1 - neck)), 0.02) * ramp(back + 0.04 - 0.1 * (1 - neck) - big_x, 0.02)
    sulcus = base + 0.05 * np.clip((big_x - 0.12) * (1 / 0.15), 0, 1)
    dome = sulcus - 0.07 * np.clip(1 - ((big_x + 0.02) * (1 / 0.3)) ** 2, 0, 1)
    apex = 0.1 + 0.6 * (big_x - 0.05) ** 2
    k = _EDGE
    lung = ramp(big_x - (front + 0.035), k) * ramp(back - 0.04 - big_x, k) * ramp(dome - big_y, k) * ramp(big_y - apex, 0.03)
    return Side(big_x, big_y, base, front, back, sulcus, lung), body


def _heart(s: Side, anatomy: Mapping[str, float], findings: Findings) -> np.ndarray:
    ctr = anatomy["ctr"] + 0.16 * severity(findings, "Cardiomegaly")
    hw = 0.13 + 0.9 * (ctr - 0.44)  # an enlarged heart reaches further back
    hh = 0.14 * anatomy["body"]
    hx = -0.3 * anatomy["body"] + 0.035 + hw * 0.85
    return ramp(1 - ((s.x - hx) * (1 / hw)) ** 2 - ((s.y - (s.base - 0.11)) * (1 / hh)) ** 2, 0.12)


def _patches(s: Side, findings: Findings, clear: np.ndarray) -> None:
    centres = {"lower": (0.15, s.base - 0.12), "upper": (0.0, 0.3), "middle": (-0.12, s.base - 0.17)}
    h, w = s.x.shape
    for _, density, item in air_space_patches(findings):
        for patch in item["patches"]:
            cx, cy = centres[patch["lobe"][0]]
            ox, oy = patch["offset"]
            r = (0.05 + 0.05 * item["severity"]) * patch["size"]
            noise_rng = np.random.default_rng(patch["noise_seed"] + 1)
            wobble = smooth_noise(noise_rng, h, w, (max(3, h // 16), max(3, w // 16)))
            q = ((s.x - cx - 0.04 * ox) * (1 / (1.2 * r))) ** 2 + ((s.y - cy - 0.04 * oy) * (1 / r)) ** 2 + 0.35 * wobble
            clear *= 1 - (density + 0.35 * item["severity"]) * ramp(1 - q, 0.3)


def _effusion_and_bands(s: Side, findings: Findings, clear: np.ndarray) -> None:
    """Pleural fluid filling the posterior sulcus; atelectatic bands above the diaphragm."""
    if "Pleural Effusion" in findings:
        eff = findings["Pleural Effusion"]
        height = 0.03 + 0.15 * eff["severity"]
        meniscus = s.sulcus + 0.02 - height * (0.2 + 0.8 * np.clip((s.x - s.front) * (1 / (s.back - s.front)), 0, 1) ** 2)
        clear *= 1 - 0.95 * ramp(s.y - meniscus, 0.03)
    _patches(s, findings, clear)
    if "Atelectasis" in findings:
        at = findings["Atelectasis"]
        for band in at["bands"]:
            cy = s.base - band["above"] - 0.02
            plate = line(s.x, s.y, (-0.12 + band["u"] * 0.5, cy - 0.05), (0.12 + band["u"] * 0.5, cy + 0.04),
                         0.005 + 0.01 * at["severity"])
            clear *= 1 - (0.5 + 0.35 * at["severity"]) * plate


def _air_space(s: Side, findings: Findings) -> tuple[np.ndarray, float]:
    """(clear, markings gain) after every finding that replaces air, in a fixed order."""
    clear = np.ones(s.x.shape, np.float32)
    markings_gain = 1.0
    _effusion_and_bands(s, findings, clear)
    if "Edema" in findings:
        sev = severity(findings, "Edema")
        clear *= 1 - 0.22 * sev * bump(((s.x - 0.04) * (1 / 0.22)) ** 2 + ((s.y - 0.45) * (1 / 0.2)) ** 2)
        markings_gain += 1.5 * sev
    if "Lung Lesion" in findings:
        sev = severity(findings, "Lung Lesion")
        for nod in findings["Lung Lesion"]["nodules"]:
            r = nod["radius"] * (0.7 + 0.5 * sev)
            q = ((s.x - (nod["u"] - 0.2) * 0.8) ** 2 + (s.y - nod["y"]) ** 2) * (1 / (r * r))
            clear *= 1 - (0.45 + 0.4 * sev) * ramp(1 - q, 0.15)
    if "Pleural Other" in findings:
        po = findings["Pleural Other"]
        rind = ramp(s.x - (s.back - 0.06 - 0.02 * po["severity"]), 0.01) * ramp(s.y - po["span"][0], 0.03)
        clear *= 1 - 0.7 * rind
    return clear, markings_gain


def _bones_and_airway(s: Side, anatomy: Mapping[str, float], body: np.ndarray, att: np.ndarray) -> None:
    """Vertebral column with discs, ribs, sternum, shoulders over the apices, trachea."""
    bone, big_x, big_y = anatomy["bone"], s.x, s.y
    column = ramp(big_x - (s.back - 0.14), 0.01) * ramp(s.back - 0.04 - big_x, 0.01)
    discs = np.clip(wave((big_y - anatomy["rib_phase"] * 0.06) * (1 / 0.062)) + 0.7, 0, 1)
    att += 0.35 * bone * column * discs
    att += 0.06 * bone * np.clip(wave((big_y - 0.4 * big_x) * (1 / 0.07)) - 0.4, 0, None) * s.lung
    att += 0.25 * bone * ramp(0.01 - np.abs(big_x - (s.front + 0.012)), 0.006) * ramp(big_y - 0.15, 0.03) * ramp(0.6 - big_y, 0.03)
    att += 0.2 * ramp(0.28 - big_y, 0.15) * body  # arms and shoulders over the apices
    trachea_x = 0.03 + 0.1 * (big_y - 0.3)
    att -= 0.15 * ramp(0.022 - np.abs(big_x - trachea_x), 0.01) * ramp(0.4 - big_y, 0.06) * body


def lateral(big_x: np.ndarray, big_y: np.ndarray, anatomy: Mapping[str, float], findings: Findings,
            rng: np.random.Generator) -> np.ndarray:
    """Attenuation map of a lateral chest radiograph: anterior to the image left, spine to the right."""
    h, w = big_x.shape
    s, body = _side(big_x, big_y, anatomy)
    att = body.copy()
    heart = _heart(s, anatomy, findings)
    clear, markings_gain = _air_space(s, findings)
    lung_air = s.lung * (1 - 0.9 * heart) * clear
    att -= 0.65 * lung_air
    vessels = np.clip(smooth_noise(rng, h, w, (max(4, h // 10), max(4, w // 10))), 0, None)
    fan = 1.0 / (1.0 + ((big_x - 0.04) ** 2 + (big_y - 0.43) ** 2) * (1 / 0.03))
    att += 0.07 * markings_gain * vessels * fan * lung_air
    _bones_and_airway(s, anatomy, body, att)
    widening = severity(findings, "Enlarged Cardiomediastinum")
    if widening > 0:  # the retrosternal clear space fills in
        att += 0.3 * widening * bump(((big_x + 0.15) * (1 / 0.1)) ** 2 + ((big_y - 0.35) * (1 / 0.15)) ** 2)
    extra = np.zeros((h, w), np.float32)
    if "Support Devices" in findings:
        extra += devices(big_x, big_y, findings["Support Devices"]["devices"], s.base, frontal=False)
    return att + extra
