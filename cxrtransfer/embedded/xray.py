"""One synthetic chest radiograph: a frontal or lateral attenuation map, exposed, processed and noised."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from PIL import Image

from . import portable
from .drawing import pixel_grid, posed_grid
from .xray_frontal import frontal as frontal_view
from .xray_lateral import lateral as lateral_view


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
    big_x, big_y = posed_grid(rng, render_h, render_w, pose_jitter * (1.3 if ap else 1.0))
    if frontal:
        att = frontal_view(big_x, big_y, anatomy, findings, ap, rng)
    else:
        att = lateral_view(big_x, big_y, anatomy, findings, rng)
    # Exposure and processing differ between machines and films.
    lo = rng.normal(-0.05, 0.05 * noise)
    hi = rng.normal(1.3, 0.08 * noise)
    gamma = float(portable.exp(rng.normal(0.0, 0.12 * noise)))
    img = np.clip((att - lo) * (1.0 / (hi - lo)), 0.0, 1.0)
    img = portable.power(img, gamma).astype(np.float32)
    if (render_h, render_w) != (height, width):
        img = np.array(Image.fromarray(img).resize((width, height), Image.BILINEAR))
    _, y = pixel_grid(height, width)
    img *= 1.0 + rng.normal(0.0, 0.04 * noise) * (y - 0.5)  # heel effect
    sigma = rng.uniform(0.01, 0.03) * noise
    if sigma > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
    if rng.random() < 0.5 * noise:  # a lead marker in a top corner
        r0, c0 = int(0.04 * height), int(rng.choice([0.05, 0.85]) * width)
        img[r0:r0 + max(2, height // 20), c0:c0 + max(2, width // 25)] = 0.95
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
