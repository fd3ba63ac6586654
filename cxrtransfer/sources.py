"""In-domain source data for RadImageNet-style pretraining: the folder reader and a synthetic source.

RadImageNet's layout is a folder tree <modality>/<anatomy>/<label>/<image files>; read as a multi-class
dataset, each (modality, anatomy, label) is one class. The synthetic source writes such a tree of
CT-, MR- and ultrasound-like images of non-chest anatomy (abdomen, brain, knee, spine, thyroid) with
lesion labels, so that pretraining on it learns generic radiological features while any gain on the
chest X-ray tasks is transfer, not leakage: no lungs, hearts or pleural fluid are ever drawn.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from .embedded import portable
from .errors import InputError
from .synthetic import _pixel_grid, _ramp, _smooth_noise

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
FOLDER_COLUMNS: tuple[str, ...] = ("path", "modality", "anatomy", "label", "class_name", "class_index")
_LAYOUT = "<modality>/<anatomy>/<label>/<image files>"


# ----------------------------------------------------------------------------- reading a folder tree

def _check_name(name: str, where: Path) -> None:
    """File and folder names must be printable UTF-8 (they end up in CSV index files)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"unreadable name {name!r} (not valid UTF-8)", where) from None
    if any(not ch.isprintable() for ch in name) or name != name.strip() or not name:
        raise InputError(f"unusable name {name!r} (control characters or leading/trailing blanks)", where)


def read_folder_dataset(root: str | os.PathLike) -> pd.DataFrame:
    """Index a RadImageNet-style tree <modality>/<anatomy>/<label>/<image files> as a multi-class dataset.

    Columns: path (relative to root, posix), modality, anatomy, label, class_name
    ("modality/anatomy/label") and class_index (sorted class names numbered 0..C-1); one row per
    image, sorted by path. Hidden files and folders (names starting with '.') are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found (expected {_LAYOUT})", root)
    rows: list[tuple[str, str, str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        rel = here.relative_to(root)
        depth = len(rel.parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in dirnames:
            _check_name(d, here / d)
        if depth == 3 and dirnames:
            raise InputError(f"folder nested too deep: images must sit directly in {_LAYOUT}", here / dirnames[0])
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            where = here / name
            _check_name(name, where)
            if depth != 3:
                raise InputError(f"file at the wrong depth ({depth} folder(s) below the root; expected {_LAYOUT})",
                                 where)
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                raise InputError(f"not an image file (expected {', '.join(IMAGE_SUFFIXES)})", where)
            modality, anatomy, label = rel.parts
            rows.append((rel.joinpath(name).as_posix(), modality, anatomy, label))
    if not rows:
        raise InputError(f"no images found (expected {_LAYOUT})", root)
    frame = pd.DataFrame(sorted(rows), columns=["path", "modality", "anatomy", "label"])
    frame["class_name"] = frame["modality"] + "/" + frame["anatomy"] + "/" + frame["label"]
    classes = sorted(frame["class_name"].unique())
    frame["class_index"] = frame["class_name"].map({c: i for i, c in enumerate(classes)}).astype(int)
    return frame[list(FOLDER_COLUMNS)]


# ----------------------------------------------------------------------------- synthetic source

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
_REFLECTORS = ("cortex", "stone", "air")  # cast acoustic shadows in ultrasound

Layer = tuple[np.ndarray, str]
Site = tuple[float, float, float]  # centre x, centre y, radius


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float,
             angle: float = 0.0, soft: float = 0.15) -> np.ndarray:
    dx, dy = x - cx, y - cy
    if angle:
        ca, sa = float(portable.cos(angle)), float(portable.sin(angle))
        dx, dy = dx * ca + dy * sa, -dx * sa + dy * ca
    return _ramp(1 - (dx * (1 / rx)) ** 2 - (dy * (1 / ry)) ** 2, soft)


def _box(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float, soft: float = 0.01) -> np.ndarray:
    """A rectangle with rounded corners (a superellipse of power 4)."""
    qx, qy = ((x - cx) * (1 / rx)) ** 2, ((y - cy) * (1 / ry)) ** 2
    return _ramp(1 - qx * qx - qy * qy, soft / min(rx, ry))


def _abdomen(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict[str, list[Site]]]:
    bw = rng.uniform(0.9, 1.1)
    layers = [(_ellipse(x, y, 0, 0.02, 0.46 * bw, 0.34, soft=0.05), "fat"),
              (_ellipse(x, y, 0, 0.02, 0.42 * bw, 0.3, soft=0.05), "soft"),
              (_ellipse(x, y, -0.17 * bw, -0.06, 0.21 * bw, 0.16, angle=0.3), "organ"),
              (_ellipse(x, y, 0.25 * bw, -0.02, 0.08, 0.11, angle=-0.4), "organ2"),
              (_ellipse(x, y, -0.15 * bw, 0.13, 0.05, 0.075, angle=0.3), "kidney"),
              (_ellipse(x, y, 0.15 * bw, 0.13, 0.05, 0.075, angle=-0.3), "kidney"),
              (_ellipse(x, y, -0.09, 0.03, 0.045, 0.03), "fluid"),  # gallbladder
              (_ellipse(x, y, 0.03, 0.1, 0.025, 0.025), "vessel"),
              (_ellipse(x, y, 0, 0.21, 0.065, 0.055), "cortex"),
              (_ellipse(x, y, 0, 0.21, 0.055, 0.045), "marrow"),
              (_box(x, y, 0, 0.29, 0.012, 0.04), "cortex")]
    for _ in range(int(rng.integers(2, 5))):  # bowel loops with gas or fluid
        cx, cy = rng.uniform(-0.05, 0.3) * bw, rng.uniform(-0.22, 0.0)
        layers.append((_ellipse(x, y, cx, cy, rng.uniform(0.02, 0.04), rng.uniform(0.02, 0.035)),
                       str(rng.choice(["air", "fluid", "soft"]))))
    sites = {"organ": [(-0.19 * bw, -0.07, 0.1)], "kidney": [(-0.15 * bw, 0.13, 0.035), (0.15 * bw, 0.13, 0.035)],
             "gallbladder": [(-0.09, 0.035, 0.02)], "marrow": [(0, 0.21, 0.03)], "bone": [(0, 0.21, 0.05)]}
    return layers, sites


def _brain(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict[str, list[Site]]]:
    s = rng.uniform(0.92, 1.08)
    wobble = 0.12 * _smooth_noise(rng, *x.shape, (6, 6))
    layers = [(_ellipse(x, y, 0, 0, 0.37 * s, 0.45 * s, soft=0.05), "fat"),
              (_ellipse(x, y, 0, 0, 0.35 * s, 0.43 * s, soft=0.05), "cortex"),
              (_ellipse(x, y, 0, 0, 0.32 * s, 0.4 * s, soft=0.05), "csf"),
              (_ellipse(x, y, 0, 0, 0.31 * s, 0.39 * s, soft=0.05), "gm"),
              (_ramp(1 - (x * (1 / (0.25 * s))) ** 2 - (y * (1 / (0.32 * s))) ** 2 + wobble, 0.2), "wm"),
              (_ellipse(x, y, -0.05 * s, -0.04, 0.03, 0.11, angle=0.25), "csf"),
              (_ellipse(x, y, 0.05 * s, -0.04, 0.03, 0.11, angle=-0.25), "csf"),
              (_box(x, y, 0, -0.3 * s, 0.004, 0.1), "csf")]  # interhemispheric fissure
    sites = {"brain": [(-0.16 * s, float(rng.uniform(-0.2, 0.2)), 0.08), (0.16 * s, float(rng.uniform(-0.2, 0.2)), 0.08)]}
    return layers, sites


def _knee(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict[str, list[Site]]]:
    gap = rng.uniform(0.035, 0.05)
    layers = [(_box(x, y, 0, 0, 0.32, 0.6), "fat"), (_box(x, y, 0, 0, 0.28, 0.6), "soft"),
              (_box(x, y, 0, -0.35, 0.11, 0.3), "cortex"), (_ellipse(x, y, 0, -0.08, 0.17, 0.12), "cortex"),
              (_box(x, y, 0, -0.35, 0.095, 0.3), "marrow"), (_ellipse(x, y, 0, -0.08, 0.155, 0.105), "marrow"),
              (_box(x, y, 0, 0.3 + gap, 0.17, 0.25), "cortex"), (_box(x, y, 0, 0.3 + gap, 0.155, 0.24), "marrow"),
              (_ellipse(x, y, -0.24, -0.1, 0.045, 0.09), "cortex"), (_ellipse(x, y, -0.24, -0.1, 0.035, 0.08), "marrow"),
              (_ramp(0.012 - 0.15 * np.abs(portable.hypot(x * (1 / 0.17), (y + 0.08) * (1 / 0.12)).astype(np.float32) - 1.04), 0.004)
               * _ramp(y + 0.06, 0.02), "cartilage"),
              (_box(x, y, 0, 0.055 + gap / 2, 0.16, 0.008), "cartilage")]
    for side in (-1, 1):  # meniscal horns: triangles between the condyle and the plateau
        cx = side * 0.12
        tri = _ramp(0.045 - np.abs(x - cx) - 1.2 * np.abs(y - (0.045 + gap / 2)), 0.01)
        layers.append((tri, "meniscus"))
    sites = {"meniscus": [(-0.12, 0.045 + gap / 2, 0.02), (0.12, 0.045 + gap / 2, 0.02)],
             "marrow": [(0, -0.12, 0.06), (0, 0.3, 0.06)], "bone": [(0, -0.2, 0.09), (0, 0.25, 0.1)]}
    return layers, sites


def _spine(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict[str, list[Site]]]:
    tilt = rng.uniform(-0.1, 0.1)
    xs = x + tilt * y  # lordosis-like tilt
    layers = [(_box(xs, y, 0.05, 0, 0.5, 0.7), "soft"), (_box(xs, y, 0.38, 0, 0.1, 0.7), "fat")]
    spacing = rng.uniform(0.16, 0.19)
    offset = rng.uniform(0, spacing)
    levels = [offset - 0.5 + i * spacing for i in range(8)]
    sites: dict[str, list[Site]] = {"disc": [], "bone": [], "marrow": []}
    for cy in levels:
        layers.append((_box(xs, y, -0.08, cy, 0.12, 0.055), "cortex"))
        layers.append((_box(xs, y, -0.08, cy, 0.108, 0.045), "marrow"))
        layers.append((_box(xs, y, -0.08, cy + spacing / 2, 0.11, 0.02), "disc"))
        layers.append((_ellipse(xs, y, 0.2, cy + 0.02, 0.05, 0.035), "marrow"))  # posterior elements
        if -0.3 < cy < 0.3:
            sites["bone"].append((-0.08, cy, 0.05))
            sites["marrow"].append((-0.08, cy, 0.03))
            sites["disc"].append((0.04, cy + spacing / 2, 0.02))
    layers.append((_box(xs, y, 0.08, 0, 0.03, 0.7), "csf"))
    layers.append((_box(xs, y, 0.08, 0, 0.012, 0.7), "soft"))  # cord
    return layers, sites


def _thyroid(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[list[Layer], dict[str, list[Site]]]:
    s = rng.uniform(0.9, 1.1)
    layers = [(_box(x, y, 0, 0.1, 0.7, 0.6), "soft"), (_box(x, y, 0, -0.38, 0.7, 0.04), "fat"),
              (_box(x, y, 0, -0.27, 0.3, 0.04), "soft"),
              (_ellipse(x, y, -0.14 * s, 0.0, 0.11 * s, 0.075), "thyroid"),
              (_ellipse(x, y, 0.14 * s, 0.0, 0.11 * s, 0.075), "thyroid"),
              (_box(x, y, 0, -0.05, 0.05, 0.02), "thyroid"),  # isthmus
              (_ellipse(x, y, 0, 0.05, 0.05, 0.05), "air"),  # trachea
              (_ellipse(x, y, -0.3 * s, 0.03, 0.04, 0.04), "vessel"), (_ellipse(x, y, 0.3 * s, 0.03, 0.04, 0.04), "vessel"),
              (_ellipse(x, y, 0.06, 0.14, 0.03, 0.02), "soft")]
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
    _, sites = ANATOMIES[anatomy](*_pixel_grid(16, 16), np.random.default_rng(0))
    return any(sites.get(kind) for kind in LESION_SITES[label])


def _lesion(x: np.ndarray, y: np.ndarray, label: str, sites: Mapping[str, list[Site]],
            rng: np.random.Generator) -> list[Layer]:
    """The layers that draw one lesion at a suitable site."""
    kind = next(k for k in LESION_SITES[label] if sites.get(k))
    cx, cy, r = sites[kind][int(rng.integers(len(sites[kind])))]
    cx += rng.uniform(-0.5, 0.5) * r
    cy += rng.uniform(-0.5, 0.5) * r
    if label == "cyst":
        rad = r * rng.uniform(0.45, 0.8)
        return [(_ellipse(x, y, cx, cy, rad, rad * rng.uniform(0.8, 1.0), soft=0.1), "fluid")]
    if label in ("mass", "nodule"):
        rad = r * rng.uniform(0.5, 0.9)
        wobble = 0.3 * _smooth_noise(rng, *x.shape, (8, 8))
        q = ((x - cx) * (1 / rad)) ** 2 + ((y - cy) * (1 / rad)) ** 2 + wobble
        return [(_ramp(1 - q, 0.3), "mass" if label == "mass" else "nodule")]
    if label in ("calculus", "gallstone"):
        rad = rng.uniform(0.008, 0.018) if label == "calculus" else rng.uniform(0.012, 0.02)
        return [(_ellipse(x, y, cx, cy, rad, rad, soft=0.3), "stone")]
    if label == "fracture":
        angle = rng.uniform(-0.6, 0.6)
        ca, sa = float(portable.cos(angle)), float(portable.sin(angle))
        across = np.abs(-(x - cx) * sa + (y - cy) * ca)
        along = np.abs((x - cx) * ca + (y - cy) * sa)
        return [(_ramp(0.006 - across, 0.004) * _ramp(r * 1.6 - along, 0.01), "fluid")]
    if label == "infarct":  # a wedge reaching the cortex
        direction = -1.0 if cx < 0 else 1.0
        spread = rng.uniform(0.3, 0.6)
        ang = portable.atan2(y - cy, (x - cx) * direction).astype(np.float32)
        dist = portable.hypot(x - cx, y - cy).astype(np.float32)
        return [(_ramp(spread - np.abs(ang), 0.1) * _ramp(rng.uniform(0.08, 0.13) - dist, 0.02), "edema")]
    if label == "tear":
        angle = rng.uniform(-0.5, 0.5)
        ca, sa = float(portable.cos(angle)), float(portable.sin(angle))
        across = np.abs(-(x - cx) * sa + (y - cy) * ca)
        along = np.abs((x - cx) * ca + (y - cy) * sa)
        return [(_ramp(0.004 - across, 0.003) * _ramp(0.03 - along, 0.006), "fluid")]
    if label == "bone_lesion":
        rad = r * rng.uniform(0.4, 0.8)
        return [(_ellipse(x, y, cx, cy, rad, rad * 0.8, soft=0.2), "lytic")]
    if label == "herniation":  # disc material bulging back into the canal
        return [(_ellipse(x, y, cx, cy, rng.uniform(0.03, 0.05), 0.018), "disc")]
    raise ValueError(f"no renderer for lesion {label!r}")


def render_source_image(modality: str, anatomy: str, label: str, *, height: int = 128, width: int = 156,
                        rng: np.random.Generator) -> np.ndarray:
    """One synthetic CT/MR/US image (uint8, height x width) of `anatomy` showing `label`."""
    if modality not in TISSUES:
        raise ValueError(f"unknown modality {modality!r}; known: {list(TISSUES)}")
    if not supported(anatomy, label):
        raise ValueError(f"cannot draw {label!r} in {anatomy!r}")
    x0, y0 = _pixel_grid(height, width)
    zoom = 1.7 if modality == "US" else 1.0  # ultrasound shows a close-up
    angle, scale = rng.normal(0, 0.08), rng.uniform(0.9, 1.1) * zoom
    ca, sa = float(portable.cos(angle)) / scale, float(portable.sin(angle)) / scale
    yc = y0 - 0.5
    x = (ca * x0 + sa * yc + rng.normal(0, 0.03)).astype(np.float32)
    y = (-sa * x0 + ca * yc + rng.normal(0, 0.03)).astype(np.float32)
    if modality == "US":  # centre the close-up on the region of interest
        x += np.float32(-0.12 if anatomy == "abdomen" else 0.0)
    layers, sites = ANATOMIES[anatomy](x, y, rng)
    if label != "normal":
        layers += _lesion(x, y, label, sites, rng)
    values = TISSUES[modality]
    img = np.zeros((height, width), np.float32)
    texture = _smooth_noise(rng, height, width, (max(4, height // 8), max(4, width // 8)))
    reflect = np.zeros_like(img)
    fluid = np.zeros_like(img)
    for mask, tissue in layers:
        level = values[tissue] * (1 + 0.06 * texture) if tissue in ("organ", "mass", "nodule", "soft") else values[tissue]
        img += mask * (level - img)
        if modality == "US":
            weight = 1.0 if tissue in _REFLECTORS else 0.0
            reflect += mask * (weight - reflect)
            fluid += mask * ((1.0 if tissue in ("fluid", "vessel", "csf") else 0.0) - fluid)
    if modality == "CT":
        img = img * rng.uniform(0.9, 1.1) + rng.normal(0, 0.03)
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0.015, 0.04))
    elif modality == "MR":
        bias = 1 + 0.15 * _smooth_noise(rng, height, width, (3, 3))
        sigma = np.float32(rng.uniform(0.01, 0.04))
        real = img * bias + rng.standard_normal(img.shape, dtype=np.float32) * sigma
        img = np.sqrt(real * real + (rng.standard_normal(img.shape, dtype=np.float32) * sigma) ** 2)  # Rician noise
    else:
        # Shadows behind strong reflectors, enhancement behind fluid, then speckle within a sector.
        rows = np.arange(height, dtype=np.float32)[:, None]
        shadow = np.clip(np.cumsum(reflect, axis=0) * (6.0 / height), 0, 1) - reflect
        enhance = np.clip(np.cumsum(fluid, axis=0) * (3.0 / height), 0, 0.5) * (1 - fluid)
        img = img * (1 - 0.85 * np.clip(shadow, 0, 1)) * (1 + enhance)
        speckle = np.asarray(Image.fromarray(rng.rayleigh(0.8, size=(height // 2 + 1, width // 2 + 1)).astype(np.float32))
                             .resize((width, height), Image.BILINEAR))
        img = img * speckle * (1.1 - 0.4 * rows / height)
        apex_y = -0.12 * height
        dx = (np.arange(width, dtype=np.float32)[None, :] - width / 2)
        dy = rows - apex_y
        theta = portable.atan2(dx, dy).astype(np.float32)
        depth = portable.hypot(dx, dy).astype(np.float32)
        img *= _ramp(0.62 - np.abs(theta), 0.02) * _ramp(1.08 * height - depth, 4.0) * _ramp(depth - 0.2 * height, 4.0)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def source_classes(classes: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> list[tuple[str, str, str]]:
    """The (modality, anatomy, label) triples to generate, checked; default DEFAULT_CLASSES."""
    classes = DEFAULT_CLASSES if classes is None else classes
    if not isinstance(classes, Mapping) or not classes:
        raise InputError("classes must be a non-empty mapping modality -> anatomy -> list of labels")
    out = []
    for modality, anatomies in classes.items():
        if modality not in TISSUES:
            raise InputError(f"unknown modality {modality!r}; choose from {list(TISSUES)}")
        if not isinstance(anatomies, Mapping) or not anatomies:
            raise InputError(f"classes[{modality!r}] must map anatomies to lists of labels")
        for anatomy, labels in anatomies.items():
            if anatomy not in ANATOMIES:
                raise InputError(f"unknown anatomy {anatomy!r}; choose from {list(ANATOMIES)} (no chest: by design)")
            if isinstance(labels, str) or not labels or len(set(labels)) != len(labels):
                raise InputError(f"classes[{modality!r}][{anatomy!r}] must be a non-empty list without repeats")
            for label in labels:
                if not supported(anatomy, label):
                    options = ["normal"] + [k for k in LESION_SITES if supported(anatomy, k)]
                    raise InputError(f"cannot draw {label!r} in {anatomy!r}; choose from {options}")
                out.append((str(modality), str(anatomy), str(label)))
    return sorted(out)


def _write_source_images(jobs: Sequence[tuple[int, str, str, str, int]], out_root: str, height: int,
                         width: int, seed: int) -> int:
    for class_number, modality, anatomy, label, i in jobs:
        rng = np.random.default_rng([seed, class_number, i])
        pixels = render_source_image(modality, anatomy, label, height=height, width=width, rng=rng)
        target = Path(out_root) / modality / anatomy / label / f"{anatomy}{i:05d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target, format="PNG")
    return len(jobs)


def generate_source(out_root: str | os.PathLike, *, images_per_class: int = 64, height: int = 128, width: int = 156,
                    seed: int = 0, classes: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
                    workers: int = 1) -> dict[str, Any]:
    """Write the synthetic in-domain source as <out_root>/<modality>/<anatomy>/<label>/<anatomy>NNNNN.png.

    Every class gets `images_per_class` images; each image draws from its own generator (seed, class,
    number), so the output does not depend on `workers`. Returns a summary (classes, counts).
    """
    if images_per_class < 1:
        raise InputError(f"images_per_class must be at least 1, got {images_per_class}")
    if height < 32 or width < 32:
        raise InputError(f"image size {height}x{width} is too small (at least 32x32)")
    triples = source_classes(classes)
    jobs = [(c, m, a, l, i) for c, (m, a, l) in enumerate(triples) for i in range(int(images_per_class))]
    if workers <= 1:
        _write_source_images(jobs, str(out_root), height, width, seed)
    else:
        chunk = max(1, math.ceil(len(jobs) / (workers * 4)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_write_source_images, jobs[i:i + chunk], str(out_root), height, width, seed)
                       for i in range(0, len(jobs), chunk)]
            for future in futures:
                future.result()
    return {"seed": int(seed), "height": int(height), "width": int(width), "images": len(jobs),
            "images_per_class": int(images_per_class), "classes": ["/".join(t) for t in triples],
            "modalities": sorted({m for m, _, _ in triples}), "anatomies": sorted({a for _, a, _ in triples})}
