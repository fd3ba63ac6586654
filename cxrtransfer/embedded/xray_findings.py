"""What a synthetic chest radiograph shows: a study's planted findings and a patient's build.

Geometry (side, lobe, offsets) is drawn per study, so every view of a study shows the same disease;
the build is drawn per patient, so it is the same across the patient's studies.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from ..data.chexpert import OBSERVATIONS

PATHOLOGIES: tuple[str, ...] = tuple(o for o in OBSERVATIONS if o not in ("No Finding", "Support Devices"))
OPACITY_CHILDREN: tuple[str, ...] = ("Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis")
Findings = Mapping[str, Mapping[str, Any]]
# Air-space opacities: base density of each, in drawing order.
_PATCH_DENSITY: tuple[tuple[str, float], ...] = (("Consolidation", 0.55), ("Pneumonia", 0.35), ("Lung Opacity", 0.35))

_LOBES: tuple[tuple[str, int], ...] = (("lower", -1), ("lower", 1), ("upper", -1), ("upper", 1),
                                       ("middle", -1), ("middle", 1))


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


def _effusion(name: str, severity: float, rng: np.random.Generator) -> dict[str, Any]:
    return {"sides": [(-1,), (1,), (-1, 1)][int(rng.choice(3, p=[0.35, 0.25, 0.40]))]}


def _patches(name: str, severity: float, rng: np.random.Generator) -> dict[str, Any]:
    count = 1 if name == "Consolidation" else int(rng.integers(1, 4))
    return {"patches": [{"lobe": _LOBES[int(rng.integers(len(_LOBES)))], "offset": rng.uniform(-1, 1, size=2).tolist(),
                         "size": float(rng.uniform(0.7, 1.3)), "noise_seed": int(rng.integers(2**31))}
                        for _ in range(count)]}


def _atelectasis(name: str, severity: float, rng: np.random.Generator) -> dict[str, Any]:
    side = int(rng.choice([-1, 1]))
    return {"side": side, "bands": [{"u": float(rng.uniform(0.10, 0.26)), "above": float(rng.uniform(0.04, 0.13)),
                                     "angle": float(rng.uniform(-0.35, 0.35)), "length": float(rng.uniform(0.8, 1.2))}
                                    for _ in range(int(rng.integers(1, 3)))]}


def _one_side(name: str, severity: float, rng: np.random.Generator) -> dict[str, Any]:
    return {"side": int(rng.choice([-1, 1]))}


def _nodules(name: str, severity: float, rng: np.random.Generator) -> dict[str, Any]:
    return {"nodules": [{"side": int(rng.choice([-1, 1])), "u": float(rng.uniform(0.1, 0.32)),
                         "y": float(rng.uniform(0.25, 0.62)), "radius": float(rng.uniform(0.012, 0.035))}
                        for _ in range(int(rng.integers(1, 3)))]}


def _pleural_other(name: str, severity: float, rng: np.random.Generator) -> dict[str, Any]:
    side = int(rng.choice([-1, 1]))
    return {"side": side, "span": sorted(rng.uniform(0.25, 0.7, size=2).tolist())}


def _fracture(name: str, severity: float, rng: np.random.Generator) -> dict[str, Any]:
    side = int(rng.choice([-1, 1]))
    rib = int(rng.integers(2, 8))
    return {"side": side, "rib": rib, "u": float(rng.uniform(0.22, 0.33))}


def _devices(name: str, severity: float, rng: np.random.Generator) -> dict[str, Any]:
    kinds = ["ecg"] if severity < 0.45 else list(rng.choice(
        ["ett", "ng", "cvc", "ecg", "pacer"], size=int(rng.integers(1, 4)), replace=False,
        p=[0.25, 0.2, 0.25, 0.15, 0.15]))
    return {"devices": [{"kind": str(k), "side": int(rng.choice([-1, 1])),
                         "jitter": rng.uniform(-1, 1, size=3).tolist()} for k in kinds]}


# The geometry each finding draws after its severity (findings not listed have none).
_GEOMETRY: dict[str, Callable[[str, float, np.random.Generator], dict[str, Any]]] = {
    "Pleural Effusion": _effusion, "Consolidation": _patches, "Pneumonia": _patches, "Lung Opacity": _patches,
    "Atelectasis": _atelectasis, "Pneumothorax": _one_side, "Lung Lesion": _nodules,
    "Pleural Other": _pleural_other, "Fracture": _fracture, "Support Devices": _devices,
}


def sample_findings(labels: Mapping[str, float], rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """The study's planted findings: observation -> {"severity": s, geometry...}, only those with s > 0.

    Sides are -1 (patient's right, image left) and +1 (patient's left, image right).
    """
    findings: dict[str, dict[str, Any]] = {}
    for name in OBSERVATIONS:
        if name == "No Finding":
            continue
        severity = finding_severity(float(labels.get(name, float("nan"))), rng)
        if severity <= 0.0:
            continue
        item: dict[str, Any] = {"severity": severity}
        if name in _GEOMETRY:
            item.update(_GEOMETRY[name](name, severity, rng))
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


def severity(findings: Findings, name: str) -> float:
    """The planted severity of `name` (0 when absent)."""
    return float(findings[name]["severity"]) if name in findings else 0.0


def air_space_patches(findings: Findings) -> list[tuple[str, float, Mapping[str, Any]]]:
    """(name, base density, finding) of each air-space opacity to draw, in drawing order; Lung Opacity
    only when none of its child findings is drawn (they show it already)."""
    child_drawn = any(o in findings for o in OPACITY_CHILDREN)
    return [(name, density, findings[name]) for name, density in _PATCH_DENSITY
            if name in findings and not (name == "Lung Opacity" and child_drawn)]
