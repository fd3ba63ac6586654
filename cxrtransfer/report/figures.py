"""The study report's figures.

Figures are drawn on matplotlib Figure objects (Agg canvas), never through pyplot, so nothing here
touches global plotting state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .markdown import inits_in_order

PNG_METADATA = {"Software": None}  # keep figures byte-stable across matplotlib builds


def _new_figure(width: float = 6.0, height: float = 4.5) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=120, metadata=PNG_METADATA)


def plot_top1_vs_auc(points: pd.DataFrame, path: Path, baseline_init: str) -> None:
    """ImageNet top-1 vs mean AUC, one colour per init, with a least-squares line where >= 2 points."""
    figure, ax = _new_figure()
    for init in inits_in_order(points["init"], baseline_init):
        group = points[(points["init"] == init)].dropna(subset=["imagenet_top1"])
        if group.empty:
            continue
        dots = ax.scatter(group["imagenet_top1"], group["mean_auc"], label=init)
        if len(group) >= 2 and group["imagenet_top1"].nunique() > 1:
            slope, intercept = np.polyfit(group["imagenet_top1"], group["mean_auc"], 1)
            xs = np.linspace(group["imagenet_top1"].min(), group["imagenet_top1"].max(), 2)
            ax.plot(xs, slope * xs + intercept, color=dots.get_facecolor()[0], linestyle="--")
        for _, row in group.iterrows():
            ax.annotate(row["arch"], (row["imagenet_top1"], row["mean_auc"]), fontsize=6,
                        xytext=(2, 2), textcoords="offset points")
    ax.set(xlabel="ImageNet top-1 accuracy (%)", ylabel="CheXpert mean AUC", title="ImageNet vs CheXpert performance")
    ax.legend(title="init")
    _save(figure, path)


def plot_auc_by_family(points: pd.DataFrame, path: Path, baseline_init: str) -> None:
    """Mean AUC against parameters (log scale), one line per family, one panel per init."""
    inits = inits_in_order(points["init"], baseline_init)
    figure = Figure(figsize=(5.0 * len(inits), 4.5), layout="constrained")
    axes = figure.subplots(1, len(inits), sharey=True, squeeze=False)[0]
    families = sorted(points["family"].unique())
    for ax, init in zip(axes, inits):
        for family in families:
            group = points[(points["init"] == init) & (points["family"] == family)].sort_values("params")
            if len(group):
                ax.plot(group["params"], group["mean_auc"], marker="o", label=family)
        ax.set(xscale="log", xlabel="parameters", title=f"init: {init}")
    axes[0].set_ylabel("CheXpert mean AUC")
    axes[-1].legend(title="family", fontsize=7)
    _save(figure, path)


def plot_boost_vs_params(points: pd.DataFrame, bootstrap: Mapping[str, Any], path: Path, baseline_init: str) -> None:
    """Pretraining boost (with CI) against parameters, one colour per pretrained init."""
    figure, ax = _new_figure()
    for init in inits_in_order(points["init"], baseline_init):
        group = points[(points["init"] == init)].dropna(subset=["boost"])
        if init == baseline_init or group.empty:
            continue
        boosts = [bootstrap["boosts"][a][init] for a in group["arch"]]
        lower = group["boost"].to_numpy() - np.array([b["ci_low"] for b in boosts])
        upper = np.array([b["ci_high"] for b in boosts]) - group["boost"].to_numpy()
        ax.errorbar(group["params"], group["boost"], yerr=[lower, upper], fmt="o", capsize=3, label=init)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set(xscale="log", xlabel="parameters", ylabel=f"mean AUC boost over {baseline_init}",
           title="Pretraining boost vs model size")
    ax.legend(title="init")
    _save(figure, path)


def plot_truncation(models: pd.DataFrame, bootstrap: Mapping[str, Any], path: Path) -> None:
    """Mean AUC (with CI) against parameters for each truncated architecture and its k=0 model."""
    figure, ax = _new_figure()
    references = bootstrap.get("truncation_efficiency", {}).get("by_reference", {})
    for reference in sorted(references):
        ref = models.set_index("model").loc[reference]
        group = models[(models["arch"] == ref["arch"]) & (models["init"] == ref["init"])
                       & ((models["truncate"] > 0) | (models["model"] == reference))
                       & models["model"].isin(list(bootstrap["models"]))].sort_values("params")
        entries = [bootstrap["models"][m] for m in group["model"]]
        auc = np.array([e["mean_auc"] for e in entries])
        yerr = [auc - [e["mean_auc_ci_low"] for e in entries], np.array([e["mean_auc_ci_high"] for e in entries]) - auc]
        ax.errorbar(group["params"], auc, yerr=yerr, marker="o", capsize=3, label=f"{ref['arch']} ({ref['init']})")
        for (_, row), value in zip(group.iterrows(), auc):
            ax.annotate(f"k={int(row['truncate'])}", (row["params"], value), fontsize=6,
                        xytext=(2, 2), textcoords="offset points")
    ax.set(xscale="log", xlabel="parameters", ylabel="CheXpert mean AUC", title="Truncated models")
    ax.legend(fontsize=7)
    _save(figure, path)


def write_figures(folder: Path, bootstrap: Mapping[str, Any], correlations: Mapping[str, Any],
                  points: pd.DataFrame, models: pd.DataFrame) -> list[str]:
    """Draw every figure the data supports into `folder`; returns the file names."""
    baseline_init = correlations.get("baseline_init", "random")
    written = []
    if len(points):
        plot_top1_vs_auc(points, folder / "imagenet_top1_vs_auc.png", baseline_init)
        plot_auc_by_family(points, folder / "auc_by_family.png", baseline_init)
        written += ["imagenet_top1_vs_auc.png", "auc_by_family.png"]
    if points["boost"].notna().any():
        plot_boost_vs_params(points, bootstrap, folder / "boost_vs_params.png", baseline_init)
        written.append("boost_vs_params.png")
    if bootstrap.get("truncation_efficiency", {}).get("by_reference"):
        plot_truncation(models, bootstrap, folder / "truncation.png")
        written.append("truncation.png")
    return written
