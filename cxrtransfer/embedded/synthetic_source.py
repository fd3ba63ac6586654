"""The synthetic in-domain source for RadImageNet-style pretraining, in RadImageNet's folder layout.

Writes <out>/<modality>/<anatomy>/<label>/<anatomy>NNNNN.png: CT-, MR- and ultrasound-like images of
non-chest anatomy (see source_anatomy) with lesion labels; each (modality, anatomy, label) is a class
for cxrtransfer.data.sources.read_folder_dataset.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from ..errors import InputError
from . import portable
from .drawing import pixel_grid, ramp, smooth_noise
from .source_anatomy import ANATOMIES, DEFAULT_CLASSES, LESION_SITES, REFLECTORS, TISSUES, Layer, lesion, supported

_TEXTURED = ("organ", "mass", "nodule", "soft")
_ANECHOIC = ("fluid", "vessel", "csf")


def _posed_grid(modality: str, anatomy: str, height: int, width: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates under a random rotation, zoom and shift (ultrasound: a close-up)."""
    x0, y0 = pixel_grid(height, width)
    zoom = 1.7 if modality == "US" else 1.0
    angle, scale = rng.normal(0, 0.08), rng.uniform(0.9, 1.1) * zoom
    ca, sa = float(portable.cos(angle)) / scale, float(portable.sin(angle)) / scale
    yc = y0 - 0.5
    x = (ca * x0 + sa * yc + rng.normal(0, 0.03)).astype(np.float32)
    y = (-sa * x0 + ca * yc + rng.normal(0, 0.03)).astype(np.float32)
    if modality == "US":  # centre the close-up on the region of interest
        x += np.float32(-0.12 if anatomy == "abdomen" else 0.0)
    return x, y


def _paint(modality: str, layers: list[Layer], texture: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, reflectors, fluid): the layers painted in order with the modality's tissue values."""
    values = TISSUES[modality]
    img = np.zeros(texture.shape, np.float32)
    reflect = np.zeros_like(img)
    fluid = np.zeros_like(img)
    for mask, tissue in layers:
        level = values[tissue] * (1 + 0.06 * texture) if tissue in _TEXTURED else values[tissue]
        img += mask * (level - img)
        if modality == "US":
            weight = 1.0 if tissue in REFLECTORS else 0.0
            reflect += mask * (weight - reflect)
            fluid += mask * ((1.0 if tissue in _ANECHOIC else 0.0) - fluid)
    return img, reflect, fluid


def _ct(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Window jitter and quantum noise."""
    img = img * rng.uniform(0.9, 1.1) + rng.normal(0, 0.03)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0.015, 0.04))
    return img


def _mr(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coil bias field and Rician noise."""
    height, width = img.shape
    bias = 1 + 0.15 * smooth_noise(rng, height, width, (3, 3))
    sigma = np.float32(rng.uniform(0.01, 0.04))
    real = img * bias + rng.standard_normal(img.shape, dtype=np.float32) * sigma
    return np.sqrt(real * real + (rng.standard_normal(img.shape, dtype=np.float32) * sigma) ** 2)


def _ultrasound(img: np.ndarray, reflect: np.ndarray, fluid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shadows behind strong reflectors, enhancement behind fluid, then speckle within a sector."""
    height, width = img.shape
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
    img *= ramp(0.62 - np.abs(theta), 0.02) * ramp(1.08 * height - depth, 4.0) * ramp(depth - 0.2 * height, 4.0)
    return img


def render_source_image(modality: str, anatomy: str, label: str, *, height: int = 128, width: int = 156,
                        rng: np.random.Generator) -> np.ndarray:
    """One synthetic CT/MR/US image (uint8, height x width) of `anatomy` showing `label`."""
    if modality not in TISSUES:
        raise ValueError(f"unknown modality {modality!r}; known: {list(TISSUES)}")
    if not supported(anatomy, label):
        raise ValueError(f"cannot draw {label!r} in {anatomy!r}")
    x, y = _posed_grid(modality, anatomy, height, width, rng)
    layers, sites = ANATOMIES[anatomy](x, y, rng)
    if label != "normal":
        layers += lesion(x, y, label, sites, rng)
    texture = smooth_noise(rng, height, width, (max(4, height // 8), max(4, width // 8)))
    img, reflect, fluid = _paint(modality, layers, texture)
    if modality == "CT":
        img = _ct(img, rng)
    elif modality == "MR":
        img = _mr(img, rng)
    else:
        img = _ultrasound(img, reflect, fluid, rng)
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
