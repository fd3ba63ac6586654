"""What every benchmark row is: a project figure, a plain baseline measured in the same run, and a target."""

from __future__ import annotations

import copy
import time
from typing import Any, Callable, Mapping


def row(key: str, what: str, unit: str, project: float, baseline: float, ratio: float, target: str,
        passed: bool | None, checks: dict[str, bool] | None = None, **details: Any) -> dict[str, Any]:
    """One result row. `passed` is None for rows reported without a target."""
    out: dict[str, Any] = {"key": key, "what": what, "unit": unit, "project": float(project),
                           "baseline": float(baseline), "ratio": float(ratio), "target": target,
                           "passed": passed, "checks": dict(checks or {})}
    if details:
        out["details"] = details
    return out


def skipped(key: str, what: str, target: str, reason: str) -> dict[str, Any]:
    """A row that was not measured, with the reason."""
    return {"key": key, "what": what, "target": target, "passed": None, "skipped": reason, "checks": {}}


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overlay` applied: mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
