"""What the synthetic in-domain source shows: tissues per modality, five non-chest anatomies, their lesions.

Each anatomy is a list of layers (mask, tissue) painted in order, plus the sites where a lesion may
sit; no lungs, hearts or pleural fluid are ever drawn, so any gain on the chest X-ray tasks from
pretraining on this source is transfer, not leakage.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from . import portable
from .drawing import box, ellipse, pixel_grid, ramp, smooth_noise

# The default classes: modality -> anatomy -> labels (19 classes, like a small slice of RadImageNet).
DEFAULT_CLASSES: dict[str, dict[str, tuple[str, ...]]] = {
    "CT": {"abdomen": ("normal", "cyst", "mass", "calculus"), "spine": ("normal", "fracture")},
    "MR": {"brain": ("normal", "mass", "infarct"), "knee": ("normal", "tear", "bone_lesion"),
           "spine": ("normal", "herniation")},
    "US": {"abdomen": ("normal", "cyst", "gallstone"), "thyroid": ("normal", "nodule")},
}

# Tissue brightness per modality: CT (soft-tissue window), MR (T2-weighted look), US (echogenicity).
TISSUES: dict[str, dict[str, float]] = {
    "CT": {"air": 0.0, "fat": 0.18, "soft": 0.5, "organ": 0.58, "organ2": 0.54, "kidney": 0.6, "fluid": 0.4,
           "vessel": 0.52, "cortex": 1.0, "marrow": 0.75, "gm": 0.53, "wm": 0.46, "csf": 0.38, "cartilage": 0.55,
           "meniscus": 0.58, "disc": 0.5, "thyroid": 0.7, "mass": 0.45, "stone": 1.0, "edema": 0.41,
           "lytic": 0.45, "nodule": 0.5},
    "MR": {"air": 0.0, "fat": 0.8, "soft": 0.3, "organ": 0.4, "organ2": 0.5, "kidney": 0.55, "fluid": 0.95,
           "vessel": 0.05, "cortex": 0.03, "marrow": 0.65, "gm": 0.55, "wm": 0.38, "csf": 0.95, "cartilage": 0.55,
           "meniscus": 0.06, "disc": 0.8, "thyroid": 0.5, "mass": 0.7, "stone": 0.02, "edema": 0.8,
           "lytic": 0.85, "nodule": 0.65},
    "US": {"air": 0.8, "fat": 0.35, "soft": 0.45, "organ": 0.5, "organ2": 0.48, "kidney": 0.42, "fluid": 0.02,
           "vessel": 0.03, "cortex": 0.95, "marrow": 0.1, "gm": 0.5, "wm": 0.5, "csf": 0.05, "cartilage": 0.1,
           "meniscus": 0.7, "disc": 0.3, "thyroid": 0.65, "mass": 0.28, "stone": 0.95, "edema": 0.55,
           "lytic": 0.2, "nodule": 0.25},
}
# Where each lesion may be placed (site kinds an anatomy offers).
LESION_SITES: dict[str, tuple[str, ...]] = {
    "cyst": ("organ", "kidney", "thyroid", "brain"), "mass": ("organ", "brain", "thyroid", "marrow"),
    "calculus": ("kidney",), "gallstone": ("gallbladder",), "fracture": ("bone",), "infarct": ("brain",),
    "tear": ("meniscus",), "bone_lesion": ("marrow",), "herniation": ("disc",), "nodule": ("thyroid", "organ"),
}
REFLECTORS = ("cortex", "stone", "air")  # cast acoustic shadows in ultrasound

Layer = tuple[np.ndarray, str]
Site = tuple[float, float, float]  # centre x, centre y, radius


def _abdomen(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict[str, list[Site]]]:
    bw = rng.uniform(0.9, 1.1)
    layers = [(ellipse(x, y, 0, 0.02, 0.46 * bw, 0.34, soft=0.05), "fat"),
              (ellipse(x, y, 0, 0.02, 0.42 * bw, 0.3, soft=0.05), "soft"),
              (ellipse(x, y, -0.17 * bw, -0.06, 0.21 * bw, 0.16, angle=0.3), "organ"),
              (ellipse(x, y, 0.25 * bw, -0.02, 0.08, 0.11, angle=-0.4), "organ2"),
              (ellipse(x, y, -0.15 * bw, 0.13, 0.05, 0.075, angle=0.3), "kidney"),
              (ellipse(x, y, 0.15 * bw, 0.13, 0.05, 0.075, angle=-0.3), "kidney"),
              (ellipse(x, y, -0.09, 0.03, 0.045, 0.03), "fluid"),  # gallbladder
              (ellipse(x, y, 0.03, 0.1, 0.025, 0.025), "vessel"),
              (ellipse(x, y, 0, 0.21, 0.065, 0.055), "cortex"),
              (ellipse(x, y, 0, 0.21, 0.055, 0.045), "marrow"),
              (box(x, y, 0, 0.29, 0.012, 0.04), "cortex")]
    for _ in range(int(rng.integers(2, 5))):  # bowel loops with gas or fluid
        cx, cy = rng.uniform(-0.05, 0.3) * bw, rng.uniform(-0.22, 0.0)
        layers.append((ellipse(x, y, cx, cy, rng.uniform(0.02, 0.04), rng.uniform(0.02, 0.035)),
                       str(rng.choice(["air", "fluid", "soft"]))))
    sites = {"organ": [(-0.19 * bw, -0.07, 0.1)], "kidney": [(-0.15 * bw, 0.13, 0.035), (0.15 * bw, 0.13, 0.035)],
             "gallbladder": [(-0.09, 0.035, 0.02)], "marrow": [(0, 0.21, 0.03)], "bone": [(0, 0.21, 0.05)]}
    return layers, sites


def _brain(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict[str, list[Site]]]:
    s = rng.uniform(0.92, 1.08)
    wobble = 0.12 * smooth_noise(rng, *x.shape, (6, 6))
    layers = [(ellipse(x, y, 0, 0, 0.37 * s, 0.45 * s, soft=0.05), "fat"),
              (ellipse(x, y, 0, 0, 0.35 * s, 0.43 * s, soft=0.05), "cortex"),
              (ellipse(x, y, 0, 0, 0.32 * s, 0.4 * s, soft=0.05), "csf"),
              (ellipse(x, y, 0, 0, 0.31 * s, 0.39 * s, soft=0.05), "gm"),
              (ramp(1 - (x * (1 / (0.25 * s))) ** 2 - (y * (1 / (0.32 * s))) ** 2 + wobble, 0.2), "wm"),
              (ellipse(x, y, -0.05 * s, -0.04, 0.03, 0.11, angle=0.25), "csf"),
              (ellipse(x, y, 0.05 * s, -0.04, 0.03, 0.11, angle=-0.25), "csf"),
              (box(x, y, 0, -0.3 * s, 0.004, 0.1), "csf")]  # interhemispheric fissure
    sites = {"brain": [(-0.16 * s, float(rng.uniform(-0.2, 0.2)), 0.08), (0.16 * s, float(rng.uniform(-0.2, 0.2)), 0.08)]}
    return layers, sites


def _knee(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict[str, list[Site]]]:
    gap = rng.uniform(0.035, 0.05)
    layers = [(box(x, y, 0, 0, 0.32, 0.6), "fat"), (box(x, y, 0, 0, 0.28, 0.6), "soft"),
              (box(x, y, 0, -0.35, 0.11, 0.3), "cortex"), (ellipse(x, y, 0, -0.08, 0.17, 0.12), "cortex"),
              (box(x, y, 0, -0.35, 0.095, 0.3), "marrow"), (ellipse(x, y, 0, -0.08, 0.155, 0.105), "marrow"),
              (box(x, y, 0, 0.3 + gap, 0.17, 0.25), "cortex"), (box(x, y, 0, 0.3 + gap, 0.155, 0.24), "marrow"),
              (ellipse(x, y, -0.24, -0.1, 0.045, 0.09), "cortex"), (ellipse(x, y, -0.24, -0.1, 0.035, 0.08), "marrow"),
              (ramp(0.012 - 0.15 * np.abs(portable.hypot(x * (1 / 0.17), (y + 0.08) * (1 / 0.12)).astype(np.float32) - 1.04), 0.004)
               * ramp(y + 0.06, 0.02), "cartilage"),
              (box(x, y, 0, 0.055 + gap / 2, 0.16, 0.008), "cartilage")]
    for side in (-1, 1):  # meniscal horns: triangles between the condyle and the plateau
        cx = side * 0.12
        tri = ramp(0.045 - np.abs(x - cx) - 1.2 * np.abs(y - (0.045 + gap / 2)), 0.01)
        layers.append((tri, "meniscus"))
    sites = {"meniscus": [(-0.12, 0.045 + gap / 2, 0.02), (0.12, 0.045 + gap / 2, 0.02)],
             "marrow": [(0, -0.12, 0.06), (0, 0.3, 0.06)], "bone": [(0, -0.2, 0.09), (0, 0.25, 0.1)]}
    return layers, sites


def _spine(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict[str, list[Site]]]:
    tilt = rng.uniform(-0.1, 0.1)
    xs = x + tilt * y  # lordosis-like tilt
    layers = [(box(xs, y, 0.05, 0, 0.5, 0.7), "soft"), (box(xs, y, 0.38, 0, 0.1, 0.7), "fat")]
    spacing = rng.uniform(0.16, 0.19)
    offset = rng.uniform(0, spacing)
    levels = [offset - 0.5 + i * spacing for i in range(8)]
    sites: dict[str, list[Site]] = {"disc": [], "bone": [], "marrow": []}
    for cy in levels:
        layers.append((box(xs, y, -0.08, cy, 0.12, 0.055), "cortex"))
        layers.append((box(xs, y, -0.08, cy, 0.108, 0.045), "marrow"))
        layers.append((box(xs, y, -0.08, cy + spacing / 2, 0.11, 0.02), "disc"))
        layers.append((ellipse(xs, y, 0.2, cy + 0.02, 0.05, 0.035), "marrow"))  # posterior elements
        if -0.3 < cy < 0.3:
            sites["bone"].append((-0.08, cy, 0.05))
            sites["marrow"].append((-0.08, cy, 0.03))
            sites["disc"].append((0.04, cy + spacing / 2, 0.02))
    layers.append((box(xs, y, 0.08, 0, 0.03, 0.7), "csf"))
    layers.append((box(xs, y, 0.08, 0, 0.012, 0.7), "soft"))  # cord
    return layers, sites


def _thyroid(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict[str, list[Site]]]:
    s = rng.uniform(0.9, 1.1)
    layers = [(box(x, y, 0, 0.1, 0.7, 0.6), "soft"), (box(x, y, 0, -0.38, 0.7, 0.04), "fat"),
              (box(x, y, 0, -0.27, 0.3, 0.04), "soft"),
              (ellipse(x, y, -0.14 * s, 0.0, 0.11 * s, 0.075), "thyroid"),
              (ellipse(x, y, 0.14 * s, 0.0, 0.11 * s, 0.075), "thyroid"),
              (box(x, y, 0, -0.05, 0.05, 0.02), "thyroid"),  # isthmus
              (ellipse(x, y, 0, 0.05, 0.05, 0.05), "air"),  # trachea
              (ellipse(x, y, -0.3 * s, 0.03, 0.04, 0.04), "vessel"), (ellipse(x, y, 0.3 * s, 0.03, 0.04, 0.04), "vessel"),
              (ellipse(x, y, 0.06, 0.14, 0.03, 0.02), "soft")]
    sites = {"thyroid": [(-0.15 * s, 0.0, 0.04), (0.15 * s, 0.0, 0.04)]}
    return layers, sites


ANATOMIES: dict[str, Callable[..., tuple[list[Layer], dict[str, list[Site]]]]] = {
    "abdomen": _abdomen, "brain": _brain, "knee": _knee, "spine": _spine, "thyroid": _thyroid,
}
MODALITIES: tuple[str, ...] = tuple(TISSUES)


def supported(anatomy: str, label: str) -> bool:
    """Whether the renderer can draw `label` in `anatomy` (its lesion needs a site that anatomy has)."""
    if anatomy not in ANATOMIES:
        return False
    if label == "normal":
        return True
    if label not in LESION_SITES:
        return False
    _, sites = ANATOMIES[anatomy](*pixel_grid(16, 16), np.random.default_rng(0))
    return any(sites.get(kind) for kind in LESION_SITES[label])




def lesion(x: np.ndarray, y: np.ndarray, label: str, sites: Mapping[str, list[Site]],
           rng: np.random.Generator) -> list[Layer]:
    """The layers that draw one lesion at a suitable site."""
    kind = next(k for k in LESION_SITES[label] if sites.get(k))
    cx, cy, r = sites[kind][int(rng.integers(len(sites[kind])))]
    cx += rng.uniform(-0.5, 0.5) * r
    cy += rng.uniform(-0.5, 0.5) * r
    if label == "cyst":
        rad = r * rng.uniform(0.45, 0.8)
        return [(ellipse(x, y, cx, cy, rad, rad * rng.uniform(0.8, 1.0), soft=0.1), "fluid")]
    if label in ("mass", "nodule"):
        rad = r * rng.uniform(0.5, 0.9)
        wobble = 0.3 * smooth_noise(rng, *x.shape, (8, 8))
        q = ((x - cx) * (1 / rad)) ** 2 + ((y - cy) * (1 / rad)) ** 2 + wobble
        return [(ramp(1 - q, 0.3), "mass" if label == "mass" else "nodule")]
    if label in ("calculus", "gallstone"):
        rad = rng.uniform(0.008, 0.018) if label == "calculus" else rng.uniform(0.012, 0.02)
        return [(ellipse(x, y, cx, cy, rad, rad, soft=0.3), "stone")]
    if label == "fracture":
        angle = rng.uniform(-0.6, 0.6)
        ca, sa = float(portable.cos(angle)), float(portable.sin(angle))
        across = np.abs(-(x - cx) * sa + (y - cy) * ca)
        along = np.abs((x - cx) * ca + (y - cy) * sa)
        return [(ramp(0.006 - across, 0.004) * ramp(r * 1.6 - along, 0.01), "fluid")]
    if label == "infarct":  # a wedge reaching the cortex
        direction = -1.0 if cx < 0 else 1.0
        spread = rng.uniform(0.3, 0.6)
        ang = portable.atan2(y - cy, (x - cx) * direction).astype(np.float32)
        dist = portable.hypot(x - cx, y - cy).astype(np.float32)
        return [(ramp(spread - np.abs(ang), 0.1) * ramp(rng.uniform(0.08, 0.13) - dist, 0.02), "edema")]
    if label == "tear":
        angle = rng.uniform(-0.5, 0.5)
        ca, sa = float(portable.cos(angle)), float(portable.sin(angle))
        across = np.abs(-(x - cx) * sa + (y - cy) * ca)
        along = np.abs((x - cx) * ca + (y - cy) * sa)
        return [(ramp(0.004 - across, 0.003) * ramp(0.03 - along, 0.006), "fluid")]
    if label == "bone_lesion":
        rad = r * rng.uniform(0.4, 0.8)
        return [(ellipse(x, y, cx, cy, rad, rad * 0.8, soft=0.2), "lytic")]
    if label == "herniation":  # disc material bulging back into the canal
        return [(ellipse(x, y, cx, cy, rng.uniform(0.03, 0.05), 0.018), "disc")]
    raise ValueError(f"no renderer for lesion {label!r}")
