"""Drawing primitives shared by the chest X-ray and the source generators.

Images are drawn as float32 fields over a pixel grid in image units; every function is pure except for
the random generator it is given. Transcendental functions come from `portable`, so a field has the
same bits on every CPU.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image

from . import portable


def ramp(d: np.ndarray, width: float) -> np.ndarray:
    """Soft step of `d` (0 below -width/2, 1 above +width/2): anti-aliased region edges."""
    return np.clip(d * (1.0 / width) + 0.5, 0.0, 1.0)


def wave(turns: np.ndarray) -> np.ndarray:
    """cos(2 pi turns) as float32, the same bits on every CPU (see embedded.portable)."""
    return portable.cos_turns(turns).astype(np.float32)


def bump(q: np.ndarray) -> np.ndarray:
    """Smooth dome from a normalized squared radius q (1 at q=0, 0 for q>=1)."""
    b = np.clip(1.0 - q, 0.0, 1.0)
    return b * b


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: tuple[int, int]) -> np.ndarray:
    """Low-frequency Gaussian noise: a coarse random grid upsampled bicubically to the image size."""
    coarse = rng.standard_normal(cells).astype(np.float32)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))


@lru_cache(maxsize=8)
def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in image units: x centred (scaled by the height), y from 0 (top) to 1 (bottom)."""
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None]
    x = ((np.arange(width, dtype=np.float32) + 0.5 - width / 2) / height)[None, :]
    return x, y


def posed_grid(rng: np.random.Generator, height: int, width: int, jitter: float) -> tuple[np.ndarray, np.ndarray]:
    """Anatomy coordinates of every pixel under a random patient position (scale, rotation, shift)."""
    x, y = pixel_grid(height, width)
    theta = rng.normal(0.0, 0.04 * jitter)
    scale = float(np.clip(rng.normal(1.0, 0.045 * jitter), 0.85, 1.15))
    tx, ty = rng.normal(0.0, 0.03 * jitter), rng.normal(0.0, 0.025 * jitter)
    c, s = float(portable.cos(theta)) / scale, float(portable.sin(theta)) / scale
    xc, yc = x - np.float32(tx), y - np.float32(0.5 + ty)
    big_x = (c * xc + s * yc).astype(np.float32)
    big_y = (-s * xc + c * yc + 0.5).astype(np.float32)
    return big_x, big_y


def line(big_x: np.ndarray, big_y: np.ndarray, start: tuple[float, float], end: tuple[float, float],
         width: float) -> np.ndarray:
    """A straight radiopaque line segment (tube, wire)."""
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    ca, sa = (x1 - x0) / length, (y1 - y0) / length
    dx, dy = big_x - x0, big_y - y0
    along = dx * ca + dy * sa
    across = np.abs(-dx * sa + dy * ca)
    return ramp(width - across, 0.004) * ramp(along, 0.004) * ramp(length - along, 0.004)


def ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float,
            angle: float = 0.0, soft: float = 0.15) -> np.ndarray:
    """A filled ellipse with soft edges, rotated by `angle` (radians)."""
    dx, dy = x - cx, y - cy
    if angle:
        ca, sa = float(portable.cos(angle)), float(portable.sin(angle))
        dx, dy = dx * ca + dy * sa, -dx * sa + dy * ca
    return ramp(1 - (dx * (1 / rx)) ** 2 - (dy * (1 / ry)) ** 2, soft)


def box(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float, soft: float = 0.01) -> np.ndarray:
    """A rectangle with rounded corners (a superellipse of power 4)."""
    qx, qy = ((x - cx) * (1 / rx)) ** 2, ((y - cy) * (1 / ry)) ** 2
    return ramp(1 - qx * qx - qy * qy, soft / min(rx, ry))
