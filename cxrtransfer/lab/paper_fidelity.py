"""`cxrtransfer paper`'s fidelity rows: the ImageNet weights per architecture (source and top-1), the scoring
order, and the uncertainty policy per task with its source (the CheXpert paper's table, or an assumption)."""

from __future__ import annotations

from typing import Any, Mapping

from ..models.architectures import architecture
from ..stats.paper_settings import CHEXPERT_BEST_POLICIES, CHEXPERT_PAPER, POLICY_ASSUMPTIONS, SCORING_ORDER


def weights_rows(params: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(row, the weights loaded, their top-1 and its source) per architecture of the grid."""
    rows = []
    for arch in params["architectures"]:
        spec = architecture(arch)
        rows.append((f"weights {arch}", f"{spec.weights} {spec.timm_name}", f"top-1 {spec.imagenet_top1:.3f}: "
                     f"{spec.top1_source}"))
    return rows


def policy_source(task: str, policy: str) -> str:
    """Where a task's policy comes from: the CheXpert paper's best, an assumption, or a deviation from it."""
    if task not in CHEXPERT_BEST_POLICIES:
        return POLICY_ASSUMPTIONS["untabled"]
    best, auc = CHEXPERT_BEST_POLICIES[task]
    if policy == best:
        return f"{CHEXPERT_PAPER} (best, validation AUROC {auc:.3f})"
    if best in POLICY_ASSUMPTIONS:
        return f"{POLICY_ASSUMPTIONS[best]} ({CHEXPERT_PAPER}: U-SelfTrained {auc:.3f})"
    return f"DIFFERS from the {CHEXPERT_PAPER}'s best, {best} ({auc:.3f})"


def policy_rows(params: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(row, policy, source) per evaluated task."""
    uncertainty = params["data"]["uncertainty"]
    return [(f"policy {task}", uncertainty.get(task, uncertainty.get("default", "ones")),
             policy_source(task, uncertainty.get(task, uncertainty.get("default", "ones"))))
            for task in params["data"]["tasks"]]


def fidelity_rows(params: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    return [*weights_rows(params), ("scoring order", *SCORING_ORDER), *policy_rows(params)]


def print_fidelity(rows: list[tuple[str, str, str]]) -> None:
    print("weights, scoring and uncertainty policies:")
    for name, value, source in rows:
        print(f"  {name:<25} {value:<42} {source}")
