"""The report's sections on models from outside the study and on radiologists: tables and the ROC figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..stats.readers import load_external, load_readers, roc_points
from .markdown import fmt, fmt_ci, fmt_p, markdown_table

READER_FIGURE = "readers_roc.png"
PNG_METADATA = {"Software": None}  # byte-stable figures, as report.figures


def external_table(bootstrap: Mapping[str, Any]) -> str:
    """One row per external model: tasks scored (and those it lacks), mean AUC over them, AUC per task."""
    tasks = list(next(iter(bootstrap["models"].values()))["tasks"])
    header = ["Model", "Family", "Tasks scored", "Mean AUC over them"] + tasks
    rows = []
    for name, entry in bootstrap["external"].items():
        missing = entry["tasks_missing"]
        scored = f"{len(entry['tasks_scored'])} of {len(tasks)}" + (f" (no {', '.join(missing)})" if missing else "")
        cells = [fmt_ci(entry["tasks"][t]["auc"], entry["tasks"][t]["ci_low"], entry["tasks"][t]["ci_high"])
                 if t in entry["tasks"] else "not predicted" for t in tasks]
        rows.append([name, entry["family"], scored,
                     fmt_ci(entry["mean_auc"], entry["mean_auc_ci_low"], entry["mean_auc_ci_high"])] + cells)
    return markdown_table(header, rows)


def external_versus_table(bootstrap: Mapping[str, Any]) -> str:
    """Every external model minus every study model, mean AUC over the external model's tasks."""
    rows = []
    for name, entry in bootstrap["external"].items():
        for other, d in entry["versus"].items():
            rows.append([f"{name} − {other}", ", ".join(entry["tasks_scored"]),
                         fmt_ci(d["diff"], d["ci_low"], d["ci_high"], signed=True), fmt_p(d["p"]), fmt_p(d.get("p_holm"))])
    return markdown_table(["a − b", "Tasks compared", "Δ mean AUC", "p", "p Holm"], rows)


def reader_table(readers: Mapping[str, Any]) -> str:
    """Per task and reader: sensitivity and specificity with CIs."""
    rows = []
    for task, by_reader in readers["operating_points"].items():
        for name, e in by_reader.items():
            rows.append([task, name, fmt_ci(e["sensitivity"], e["sensitivity_ci_low"], e["sensitivity_ci_high"]),
                         fmt_ci(e["specificity"], e["specificity_ci_low"], e["specificity_ci_high"])])
    return markdown_table(["Task", "Reader", "Sensitivity", "Specificity"], rows)


def under_curve_table(readers: Mapping[str, Any], tasks: Sequence[str]) -> str:
    """Per model: readers under its ROC curve per task, full set [CI over replicates]."""
    rows = []
    for model, by_task in readers["under_curve"].items():
        cells = [f"{e['count']}/{e['readers']} [{fmt(e['ci_low'], 1)}, {fmt(e['ci_high'], 1)}]" if (e := by_task.get(t))
                 else "not predicted" for t in tasks]
        rows.append([model] + cells)
    return markdown_table(["Model"] + list(tasks), rows)


def readers_markdown(bootstrap: Mapping[str, Any]) -> str:
    """The sections on external models and readers ('' when the study has neither)."""
    parts = []
    tasks = list(next(iter(bootstrap["models"].values()))["tasks"])
    if bootstrap.get("external"):
        parts += ["## External models",
                  "Prediction files of models trained outside this pipeline (params `external`), family `external`, "
                  "on the same test studies and bootstrap replicates. A model is scored on the study's tasks its file "
                  "has; a task it lacks is named and left out (never scored as zero), and its comparisons with the "
                  "study's models use the mean AUC over its tasks for both models. p Holm: over the study models, "
                  "per external model. External models enter no correlation: a prediction file carries no "
                  "architecture, parameter count or ImageNet top-1.", external_table(bootstrap), external_versus_table(bootstrap)]
    readers = bootstrap.get("readers")
    if readers:
        parts += ["## Radiologists",
                  f"Binary reads of {len(readers['names'])} reader(s) (params `readers`) on the test studies: "
                  "sensitivity and specificity with percentile intervals over the study's bootstrap replicates.",
                  reader_table(readers),
                  "Readers under each model's ROC curve (a reader's sensitivity at most the curve's at the reader's "
                  "false-positive rate): count on the full test set [interval of the count over the replicates].",
                  under_curve_table(readers, tasks)]
    return "\n\n".join(parts)


def plot_reader_roc(bootstrap: Mapping[str, Any], ensemble: Path, path: Path) -> None:
    """Per task: ROC curves of the best study model and every external model, readers as points."""
    tasks = list(next(iter(bootstrap["models"].values()))["tasks"])
    labels = pd.read_csv(ensemble / "test_labels.csv", dtype={"study": str})
    studies = list(labels["study"])
    raw = labels[tasks].to_numpy(np.float64)
    targets, weights = (raw == 1.0).astype(np.float64), (raw != -1.0).astype(np.float64)
    best = max(bootstrap["models"], key=lambda m: bootstrap["models"][m]["mean_auc"])
    predictions = pd.read_csv(ensemble / "test_predictions.csv", dtype={"model": str, "study": str})
    curves = {best: predictions[predictions["model"] == best].set_index("study").loc[studies, tasks].to_numpy(np.float64)}
    external_scores, _ = load_external(ensemble, tasks, studies)
    curves.update(external_scores)
    names, reads = load_readers(ensemble, tasks, studies)
    columns = min(3, len(tasks))
    n_rows = -(-len(tasks) // columns)
    figure = Figure(figsize=(3.3 * columns, 3.3 * n_rows), layout="constrained")
    for t, task in enumerate(tasks):
        ax = figure.add_subplot(n_rows, columns, t + 1)
        absent = []
        for i, (model, scores) in enumerate(curves.items()):   # fixed colours: a model keeps its colour
            if np.isnan(scores[:, t]).any():
                absent.append(model)
                continue
            fpr, tpr = roc_points(scores[:, t], targets[:, t], weights[:, t])
            ax.plot(fpr, tpr, lw=1.2, color=f"C{i}", label=model)
        for k, name in enumerate(names):
            e = bootstrap["readers"]["operating_points"][task][name]
            ax.plot(1 - e["specificity"], e["sensitivity"], "os^Dv"[k % 5], ms=5, color=f"C{len(curves) + k}",
                    label=name)
        if absent:
            ax.text(0.98, 0.03, f"not predicted: {', '.join(absent)}", ha="right", fontsize=6, transform=ax.transAxes)
        ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
        ax.set(title=task, xlabel="1 − specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.02))
        if t == 0:
            ax.legend(fontsize=6, loc="lower right")
    figure.savefig(path, dpi=110, metadata=PNG_METADATA)
