"""Radiopaque support devices on a chest radiograph: tubes, lines, ECG leads, pacemaker."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .drawing import line, ramp


def devices(big_x: np.ndarray, big_y: np.ndarray, items: Sequence[Mapping[str, Any]], base: float,
            frontal: bool) -> np.ndarray:
    """Radiopaque support devices: endotracheal tube, nasogastric tube, central line, ECG leads, pacemaker."""
    out = np.zeros(big_x.shape, np.float32)
    for dev in items:
        j0, j1, j2 = dev["jitter"]
        s = dev["side"]
        kind = dev["kind"]
        if not frontal:  # on a lateral view the lines run near the airway and the heart
            s = 0
        if kind == "ett":
            x0 = 0.01 * j0 if frontal else 0.03 + 0.01 * j0
            out += 0.45 * line(big_x, big_y, (x0, -0.2), (x0 + 0.01 * j1, 0.24 + 0.03 * j2), 0.007)
        elif kind == "ng":
            x0 = -0.015 + 0.01 * j0 if frontal else 0.1 + 0.01 * j0
            out += 0.4 * line(big_x, big_y, (x0, -0.2), (x0 + 0.02, base + 0.02), 0.004)
            out += 0.4 * line(big_x, big_y, (x0 + 0.02, base + 0.02), (x0 + 0.14, base + 0.12), 0.004)
        elif kind == "cvc":
            if frontal:
                start, end = (s * (0.36 + 0.03 * j0), 0.1 + 0.02 * j1), (s * 0.045, 0.36 + 0.04 * j2)
            else:
                start, end = (0.05 + 0.03 * j0, 0.05), (0.0 + 0.02 * j1, 0.38 + 0.04 * j2)
            out += 0.4 * line(big_x, big_y, start, end, 0.0035)
        elif kind == "ecg":
            for i in range(3):
                cx = (0.3 * j0 + 0.15 * (i - 1)) if frontal else (-0.2 + 0.1 * i * j1)
                cy = 0.2 + 0.2 * i + 0.05 * j2
                q = ((big_x - cx) ** 2 + (big_y - cy) ** 2) * (1 / 0.018 ** 2)
                out += 0.5 * ramp(0.3 - np.abs(q - 1), 0.2) + 0.4 * ramp(0.15 - q, 0.1)
        elif kind == "pacer":
            cx, cy = (0.28 + 0.03 * j0 if frontal else -0.22, 0.17 + 0.02 * j1)
            box = ramp(0.04 - np.abs(big_x - cx), 0.006) * ramp(0.025 - np.abs(big_y - cy), 0.006)
            out += 0.9 * box + 0.45 * line(big_x, big_y, (cx, cy), (0.02 if frontal else -0.05, base - 0.12 + 0.03 * j2), 0.004)
    return out
