"""The frontal (PA/AP) chest radiograph: an attenuation map in anatomy coordinates.

The air spaces of the lungs are the canvas of most findings: `clear` is the fraction of air left per
pixel (opacities multiply it by 1 - opacity); `extra` collects attenuation outside that model (lines,
bone, devices). Every step below adds to these in a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from . import portable
from .drawing import bump, ramp, smooth_noise, wave
from .xray_devices import devices
from .xray_findings import Findings, air_space_patches, severity

_EDGE = 0.012  # edge softness of the lungs
_RIB_SPACING = 0.068
_LOBE_CENTRES = {"lower": (0.2, -0.09), "upper": (0.2, 0.3), "middle": (0.11, -0.2)}


@dataclass
class Chest:
    """One frontal view's coordinates and landmarks (arrays over the pixel grid)."""
    x: np.ndarray
    y: np.ndarray
    u: np.ndarray  # distance from the midline
    side_sign: np.ndarray  # -1 patient's right (image left), +1 patient's left
    right_side: np.ndarray
    base: float  # diaphragm level
    level: dict[int, float]  # hemidiaphragm level per side
    cu: float  # lung centre line
    outer_edge: float
    lung_half: np.ndarray
    lung: np.ndarray


def _chest(big_x: np.ndarray, big_y: np.ndarray, anatomy: Mapping[str, float], findings: Findings,
           base: float, level: dict[int, float]) -> Chest:
    """Lung fields between the mediastinum, the chest wall and the diaphragm domes."""
    bw = anatomy["body"]
    right_side = big_x >= 0  # image right = patient's left
    side_sign = np.where(right_side, np.float32(1), np.float32(-1))
    u = np.abs(big_x)
    diaphragm = np.where(right_side, np.float32(level[1]), np.float32(level[-1]))
    cu, half = 0.205 * bw, 0.16 * bw  # lung centre line and half width (distance from the midline)
    growth = np.sqrt(np.clip((big_y - anatomy["apex"]) * (1 / 0.2), 0, 1))
    lung_half = half * growth
    widening = 0.06 * severity(findings, "Enlarged Cardiomediastinum")
    upper = np.clip(1 - ((big_y - 0.3) * (1 / 0.17)) ** 2, 0, 1)
    knob = 0.025 * right_side * np.clip(1 - ((big_y - 0.27) * (1 / 0.05)) ** 2, 0, 1)
    medial_edge = np.maximum(cu - lung_half, 0.055 * bw + (0.02 + widening) * upper + knob)
    dome = diaphragm - anatomy["dome"] * np.clip(1 - ((u - 0.17 * bw) * (1 / (0.22 * bw))) ** 2, 0, 1)
    k = _EDGE
    lung = (ramp(cu + lung_half - u, k) * ramp(u - medial_edge, k) * ramp(dome - big_y, k)
            * ramp(big_y - anatomy["apex"] - 0.01, k))
    return Chest(big_x, big_y, u, side_sign, right_side, base, level, cu, cu + half, lung_half, lung)


def _heart(c: Chest, anatomy: Mapping[str, float], ctr: float, heart_shift: float) -> np.ndarray:
    """An ellipse resting on the diaphragm, two thirds of it on the patient's left."""
    bw = anatomy["body"]
    heart_width = ctr * 2 * c.outer_edge
    hx, hw = 0.17 * heart_width + heart_shift, heart_width / 2
    hy, hh = c.base - 0.08, 0.16 * bw
    # Narrower towards the great vessels: the widest part (the measured width) sits low.
    taper = 1 / (hw * (0.7 + 0.3 * np.clip((c.y - (hy - hh)) * (1 / hh), 0, 1)))
    return ramp(1 - ((c.x - hx) * taper) ** 2 - ((c.y - hy) * (1 / hh)) ** 2, 0.12)


def _patch(c: Chest, patch: Mapping[str, Any], severity_: float, soft: bool) -> np.ndarray:
    """An air-space opacity in one lobe: irregular blob, bounded by the fissure for upper lobes."""
    (lobe, side) = patch["lobe"]
    cu, cy = _LOBE_CENTRES[lobe]
    cy = c.base + cy if cy < 0 else cy
    ox, oy = patch["offset"]
    cx, cy = side * (cu + 0.05 * ox), cy + 0.04 * oy
    r = (0.05 + 0.05 * severity_) * patch["size"] * (0.7 if soft else 1.0)
    noise_rng = np.random.default_rng(patch["noise_seed"])
    h, w = c.x.shape
    wobble = smooth_noise(noise_rng, h, w, (max(3, h // 16), max(3, w // 16)))
    q = ((c.x - cx) * (1 / (1.3 * r))) ** 2 + ((c.y - cy) * (1 / r)) ** 2 + 0.35 * wobble
    blob = ramp(1 - q, 0.5 if soft else 0.2)
    if lobe == "upper" and side == -1:  # the horizontal fissure gives a sharp lower border
        blob = blob * ramp(cy + 0.6 * r - c.y, 0.008)
    return blob * (c.x * side > 0)


def _effusion(c: Chest, eff: Mapping[str, Any], ap: bool, clear: np.ndarray) -> None:
    height = 0.03 + 0.15 * eff["severity"]
    for s in eff["sides"]:
        meniscus = c.level[s] + 0.03 - height * (0.25 + 0.75 * np.clip(c.u * (1 / c.outer_edge), 0, 1) ** 2)
        fluid = ramp(c.y - meniscus, 0.03) * (c.side_sign == s)
        if ap:  # supine: fluid layers behind the lung as a veil over the hemithorax
            fluid = np.maximum(fluid, 0.25 * eff["severity"] * (c.side_sign == s))
        clear *= 1 - 0.95 * fluid


def _patches(c: Chest, findings: Findings, clear: np.ndarray) -> None:
    for name, density, item in air_space_patches(findings):
        for patch in item["patches"]:
            clear *= 1 - (density + 0.35 * item["severity"]) * _patch(
                c, patch, item["severity"], soft=(name != "Consolidation"))


def _atelectasis(c: Chest, at: Mapping[str, Any], clear: np.ndarray) -> None:
    """Plate-like bands above the raised hemidiaphragm."""
    s = at["side"]
    for band in at["bands"]:
        thick = 0.006 + 0.011 * at["severity"]
        length = (0.08 + 0.1 * at["severity"]) * band["length"]
        cy = c.level[s] - band["above"]
        du, dy = c.u - band["u"], c.y - cy
        ca, sa = float(portable.cos(band["angle"])), float(portable.sin(band["angle"]))
        plate = ramp(thick - np.abs(-du * sa + dy * ca), 0.006) * ramp(length / 2 - np.abs(du * ca + dy * sa), 0.03)
        clear *= 1 - (0.6 + 0.35 * at["severity"]) * plate * (c.side_sign == s)


def _edema(c: Chest, sev: float, clear: np.ndarray, extra: np.ndarray) -> None:
    """Perihilar haze and Kerley B lines (short horizontal septal lines at the lateral bases)."""
    haze = bump(((c.u - 0.11) * (1 / 0.21)) ** 2 + ((c.y - 0.47) * (1 / 0.22)) ** 2)
    clear *= 1 - 0.22 * sev * haze
    septal = np.clip(wave(c.y * (1 / 0.022)) - 0.75, 0, None) * 4
    extra += 0.12 * sev * septal * c.lung * ramp(c.u - (c.outer_edge - 0.05), 0.02) * ramp(c.y - (c.base - 0.15), 0.03)


def _nodules(c: Chest, lesion: Mapping[str, Any], clear: np.ndarray) -> None:
    sev = float(lesion["severity"])
    for nod in lesion["nodules"]:
        r = nod["radius"] * (0.7 + 0.5 * sev)
        q = ((c.x - nod["side"] * nod["u"]) ** 2 + (c.y - nod["y"]) ** 2) * (1 / (r * r))
        clear *= 1 - (0.5 + 0.4 * sev) * ramp(1 - q, 0.15)


def _pneumothorax(c: Chest, pt: Mapping[str, Any], apex: float, extra: np.ndarray) -> np.ndarray:
    """The collapsed lung's rim (returned) and the visceral pleural line (added to `extra`)."""
    depth = (0.03 + 0.1 * pt["severity"]) * (1.0 - 0.6 * np.clip((c.y - apex) * (1 / (c.base - apex)), 0, 1))
    edge = c.cu + c.lung_half - depth
    ptx = ramp(c.u - edge, 0.006) * (c.side_sign == pt["side"])
    extra += 0.18 * ramp(0.004 - np.abs(c.u - edge), 0.004) * (c.side_sign == pt["side"]) * c.lung
    return ptx


def _pleural_other(c: Chest, po: Mapping[str, Any], clear: np.ndarray) -> None:
    thick = 0.01 + 0.02 * po["severity"]
    y1, y2 = po["span"][0] - 0.05, po["span"][1] + 0.05
    rind = ramp(c.u - (c.cu + c.lung_half - thick), 0.008) * ramp(c.y - y1, 0.03) * ramp(y2 - c.y, 0.03)
    clear *= 1 - 0.8 * rind * (c.side_sign == po["side"])


def _air_space(c: Chest, anatomy: Mapping[str, float], findings: Findings, ap: bool, extra: np.ndarray
               ) -> tuple[np.ndarray, float, np.ndarray | None]:
    """(clear, markings gain, pneumothorax rim or None) after every finding that replaces air."""
    clear = np.ones(c.x.shape, np.float32)
    markings_gain = 1.0
    if "Pleural Effusion" in findings:
        _effusion(c, findings["Pleural Effusion"], ap, clear)
    _patches(c, findings, clear)
    if "Atelectasis" in findings:
        _atelectasis(c, findings["Atelectasis"], clear)
    if "Edema" in findings:
        sev = severity(findings, "Edema")
        _edema(c, sev, clear, extra)
        markings_gain += 1.5 * sev
    if "Lung Lesion" in findings:
        _nodules(c, findings["Lung Lesion"], clear)
    ptx = None
    if "Pneumothorax" in findings:
        ptx = _pneumothorax(c, findings["Pneumothorax"], anatomy["apex"], extra)
    if "Pleural Other" in findings:
        _pleural_other(c, findings["Pleural Other"], clear)
    return clear, markings_gain, ptx


def _markings(c: Chest, rng: np.random.Generator, lung_air: np.ndarray, gain: float,
              ptx: np.ndarray | None) -> np.ndarray:
    """Lung markings: vessels fanning out from the hila, coarser with edema, absent in a pneumothorax."""
    h, w = c.x.shape
    vessels = np.clip(smooth_noise(rng, h, w, (max(4, h // 10), max(4, w // 10))), 0, None)
    vessels += 0.6 * np.clip(smooth_noise(rng, h, w, (max(4, h // 5), max(4, w // 5))), 0, None)
    fan = 1.0 / (1.0 + ((c.u - 0.1) ** 2 + (c.y - 0.43) ** 2) * (1 / 0.02))
    marks = 0.14 * gain * vessels * fan * lung_air
    if ptx is not None:
        marks *= 1 - ptx
    return marks


def _bones(c: Chest, anatomy: Mapping[str, float], ap: bool, body: np.ndarray, att: np.ndarray) -> None:
    """Posterior ribs curve up then down laterally, anterior ribs run down medially; clavicles, scapulae."""
    bone, u, spacing = anatomy["bone"], c.u, _RIB_SPACING
    posterior = c.y + 0.5 * u - 2.0 * u * u
    ribs = np.clip(wave((posterior - anatomy["rib_phase"] * spacing) * (1 / spacing)) - 0.35, 0, None)
    anterior = c.y + 0.35 * u
    ribs += 0.5 * np.clip(wave((anterior - 0.3 * spacing) * (1 / (spacing * 1.1))) - 0.5, 0, None)
    cage = ramp(c.outer_edge + 0.03 - u, 0.02) * ramp(c.base + 0.03 - c.y, 0.04) * ramp(c.y - 0.06, 0.04)
    att += 0.2 * bone * ribs * cage
    clavicle_y = (0.105 if ap else 0.135) - 0.1 * u + 0.18 * u * u
    att += 0.3 * bone * ramp(0.011 - np.abs(c.y - clavicle_y), 0.006) * ramp(0.37 - u, 0.02) * ramp(u - 0.03, 0.02)
    if ap:  # scapulae project over the lateral upper lungs on AP films
        att += 0.12 * ramp(u - (c.outer_edge - 0.06), 0.04) * ramp(0.42 - c.y, 0.06) * body


def _soft_tissue(c: Chest, anatomy: Mapping[str, float], att: np.ndarray) -> None:
    """Breast shadows and the gastric bubble below the left hemidiaphragm."""
    if anatomy["female"]:
        att += 0.16 * bump(((c.u - 0.22) * (1 / 0.15)) ** 2 + ((c.y - c.base + 0.06) * (1 / 0.11)) ** 2)
    if anatomy["bubble"]:
        att -= 0.3 * bump(((c.x - 0.16) * (1 / 0.06)) ** 2 + ((c.y - c.base - 0.06) * (1 / 0.035)) ** 2)


def _fracture(c: Chest, fr: Mapping[str, Any], rib_phase: float, extra: np.ndarray) -> None:
    """A callus on one rib, with a lucent fracture line."""
    fu = fr["u"]
    fy = (rib_phase + fr["rib"]) * _RIB_SPACING - 0.5 * fu + 2.0 * fu * fu
    q = ((c.u - fu) * (1 / 0.02)) ** 2 + ((c.y - fy) * (1 / 0.014)) ** 2
    at_rib = (c.side_sign == fr["side"])
    extra += 0.3 * fr["severity"] * ramp(1 - q, 0.3) * at_rib
    extra -= 0.2 * fr["severity"] * ramp(0.003 - np.abs(c.u - fu), 0.003) * (np.abs(c.y - fy) < 0.015) * at_rib


def frontal(big_x: np.ndarray, big_y: np.ndarray, anatomy: Mapping[str, float], findings: Findings, ap: bool,
            rng: np.random.Generator) -> np.ndarray:
    """Attenuation map of a frontal (PA/AP) chest radiograph in anatomy coordinates."""
    # Diaphragm levels (the patient's right sits higher); AP films are shallower inspirations.
    base = anatomy["diaphragm"] - (0.02 if ap else 0.0)
    level = {-1: base, 1: base + 0.025}
    ctr = anatomy["ctr"] + (0.035 if ap else 0.0) + 0.16 * severity(findings, "Cardiomegaly")
    heart_shift = 0.0
    if "Atelectasis" in findings:  # volume loss: the hemidiaphragm rises, the mediastinum shifts to that side
        at = findings["Atelectasis"]
        level[at["side"]] -= 0.035 * at["severity"]
        heart_shift = 0.015 * at["severity"] * at["side"]
    c = _chest(big_x, big_y, anatomy, findings, base, level)
    torso = 0.13 + (0.45 * anatomy["body"] - 0.13) * np.clip((big_y + 0.04) * (1 / 0.17), 0, 1)
    body = ramp(torso - c.u, 0.02)
    att = body.copy()
    att += 0.1 * ramp(0.038 - c.u, 0.012)  # spine through the mediastinum
    heart = _heart(c, anatomy, ctr, heart_shift)
    hilum = bump(((c.u - 0.1) * (1 / 0.05)) ** 2 + ((big_y - 0.43) * (1 / 0.075)) ** 2)
    extra = np.zeros(big_x.shape, np.float32)  # attenuation outside the air-space model (devices, bone, lines)
    clear, markings_gain, ptx = _air_space(c, anatomy, findings, ap, extra)
    lung_air = c.lung * (1 - 0.93 * heart) * clear
    att -= 0.68 * lung_air
    if ptx is not None:
        att -= 0.1 * ptx * c.lung
    att += 0.15 * hilum
    att += _markings(c, rng, lung_air, markings_gain, ptx)
    _bones(c, anatomy, ap, body, att)
    _soft_tissue(c, anatomy, att)
    if "Fracture" in findings:
        _fracture(c, findings["Fracture"], anatomy["rib_phase"], extra)
    if "Support Devices" in findings:
        extra += devices(big_x, big_y, findings["Support Devices"]["devices"], base, frontal=True)
    return att + extra
