"""The study's statistics: ensembling, bootstrap CIs, paired differences, Spearman, family spread.

Rules (the report repeats them):
- Scoring follows the CheXpert reference: per study the prediction is the max over its views; the
  study's labels come from the index; uncertain cells (-1) carry no weight, blanks are negatives.
- Bootstrap: a replicate draws the test studies with replacement (seeded, `np.random.default_rng`),
  kept as multiplicities, and the same replicates serve every model, so differences are paired.
- A replicate in which any evaluated task has only one class (no weight on positives or on negatives)
  is dropped for all models and tasks, and counted. Which replicates drop depends on labels only, so
  every model keeps the same ones.
- Confidence intervals: percentiles of the kept replicates (numpy's default linear interpolation),
  (1 - confidence) / 2 and (1 + confidence) / 2, e.g. 2.5 % and 97.5 %. Point estimates come from
  the full test set, not from the replicates.
- Paired difference a - b of mean AUC; two-sided bootstrap p-value with the +1 correction:
  p = min(1, 2 * (1 + min(#{d_r <= 0}, #{d_r >= 0})) / (R + 1)) over the R kept replicates,
  so p is never 0 and is 1 when a and b are the same model.
- "Not significantly worse" (truncation): not (difference < 0 and p < 1 - confidence).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from .auc import auroc_matrix
from .chexpert import evaluation_targets, study_level
from .errors import InputError

MODEL_FILE = "model.json"
PREDICTIONS_FILE = "test_predictions.csv"
MODEL_KEYS: tuple[str, ...] = ("arch", "init", "family", "truncate", "params")
MODEL_COLUMNS: tuple[str, ...] = ("model",) + MODEL_KEYS + ("checkpoints",)

# CheXtransfer's Spearman correlations (Ke et al., CHIL 2021). "without" is the baseline init (random),
# "with" ImageNet pretraining; params vs boost is negative: smaller models gain more.
PAPER_SPEARMAN: dict[str, dict[str, float]] = {
    "imagenet_top1_vs_auc": {"without_pretraining": 0.082, "with_pretraining": 0.059},
    "params_vs_auc": {"without_pretraining": 0.791, "with_pretraining": 0.565},
    "params_vs_boost": {"with_pretraining": -0.718},
}
PAPER_PRETRAINED_INIT = "imagenet"


# ---------------------------------------------------------------- inputs: models, labels, ensembles

def read_model_description(folder: Path) -> dict[str, Any]:
    """model.json of a model folder: arch, init, family, truncate, params (checked)."""
    path = folder / MODEL_FILE
    if not path.is_file():
        raise InputError(f"{MODEL_FILE} missing in the model folder", folder)
    try:
        description = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON: {err}", path) from None
    missing = [k for k in MODEL_KEYS if k not in description]
    if missing:
        raise InputError(f"missing key(s) {missing}", path)
    for key in ("truncate", "params"):
        value = description[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"'{key}' must be a non-negative integer, got {value!r}", path)
    return {k: description[k] for k in MODEL_KEYS}


def read_predictions(folder: Path, tasks: Sequence[str]) -> pd.DataFrame:
    """test_predictions.csv: checkpoint, path, patient, study and one probability column per task."""
    path = folder / PREDICTIONS_FILE
    if not path.is_file():
        raise InputError(f"{PREDICTIONS_FILE} missing in the model folder", folder)
    frame = pd.read_csv(path, dtype={"path": str, "patient": str, "study": str})
    missing = [c for c in ("checkpoint", "path", "patient", "study", *tasks) if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", path, column=missing[0])
    if frame.empty:
        raise InputError("no prediction rows", path)
    check_probabilities(frame, tasks, path, first_row=2)
    checkpoint = pd.to_numeric(frame["checkpoint"], errors="coerce")
    bad = (checkpoint.isna() | (checkpoint % 1 != 0)).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"checkpoint {frame['checkpoint'].iloc[i]!r} is not an integer", path, row=i + 2,
                         column="checkpoint")
    return frame[["checkpoint", "path", "patient", "study", *tasks]]


def check_probabilities(frame: pd.DataFrame, tasks: Sequence[str], path: str | Path, first_row: int = 2) -> None:
    """Every prediction cell a number in [0, 1]; the first bad cell named by file row and column."""
    for task in tasks:
        values = pd.to_numeric(frame[task], errors="coerce")
        bad = (values.isna() | (values < 0) | (values > 1)).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"prediction {frame[task].iloc[i]!r} is not a probability in [0, 1]",
                             path, row=i + first_row, column=task)


def read_test_split(split_path: str | Path) -> pd.DataFrame:
    """The test rows of the split table (path, patient, study)."""
    split_path = Path(split_path)
    if not split_path.is_file():
        raise InputError("split table not found", split_path)
    table = pd.read_csv(split_path, dtype=str)
    missing = [c for c in ("path", "patient", "study", "split") if c not in table.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", split_path, column=missing[0])
    test = table[table["split"] == "test"][["path", "patient", "study"]].reset_index(drop=True)
    if test.empty:
        raise InputError("no test rows", split_path, column="split")
    return test


def study_labels(index_path: str | Path, test: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """Study-level raw labels (study, patient, tasks) of the test images, from the index.

    Every view of a study must carry the same labels (true of CheXpert, whose labels come from the
    study's report); a disagreement is an InputError rather than a silent choice.
    """
    index_path = Path(index_path)
    if not index_path.is_file():
        raise InputError("index table not found", index_path)
    index = pd.read_csv(index_path, dtype={"path": str, "patient": str, "study": str})
    missing = [c for c in ("path", "study", *tasks) if c not in index.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}", index_path, column=missing[0])
    if index["path"].duplicated().any():
        i = int(np.flatnonzero(index["path"].duplicated().to_numpy())[0])
        raise InputError(f"image {index['path'].iloc[i]!r} listed twice", index_path, row=i + 2, column="path")
    absent = ~test["path"].isin(index["path"])
    if absent.any():
        raise InputError(f"test image {test['path'][absent].iloc[0]!r} is not in the index", index_path, column="path")
    rows = index.set_index("path").loc[test["path"]]
    frame = test[["path", "patient", "study"]].copy()
    for task in tasks:
        frame[task] = rows[task].to_numpy(dtype=np.float64)
    filled = frame[list(tasks)].fillna(-2.0)  # blanks compare equal to each other
    conflicting = filled.groupby(frame["study"]).nunique() > 1
    if conflicting.to_numpy().any():
        study = conflicting.index[np.argmax(conflicting.any(axis=1).to_numpy())]
        column = conflicting.columns[np.argmax(conflicting.loc[study].to_numpy())]
        raise InputError(f"views of study {study!r} disagree on the label", index_path, column=column)
    return study_level(frame, list(tasks), how="first")


def study_predictions(predictions: pd.DataFrame, test: pd.DataFrame, tasks: Sequence[str],
                      source: str | Path) -> tuple[pd.DataFrame, int]:
    """One model's ensemble: mean over its kept checkpoints per image, then max over a study's views.

    Each checkpoint must predict exactly the test images (no image missing, none extra, none twice,
    with the split's study). Returns (study, patient, tasks) sorted by study, and the checkpoint count.
    """
    expected = pd.Series(test["study"].to_numpy(), index=test["path"].to_numpy())
    duplicated = predictions.duplicated(["checkpoint", "path"])
    if duplicated.any():
        i = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise InputError(f"image {predictions['path'].iloc[i]!r} predicted twice by one checkpoint",
                         source, row=i + 2, column="path")
    known = predictions["path"].map(expected)
    extra = known.isna().to_numpy()
    if extra.any():
        i = int(np.flatnonzero(extra)[0])
        raise InputError(f"image {predictions['path'].iloc[i]!r} (study {predictions['study'].iloc[i]!r}) "
                         f"is not in the test split", source, row=i + 2, column="path")
    moved = (known != predictions["study"]).to_numpy()
    if moved.any():
        i = int(np.flatnonzero(moved)[0])
        raise InputError(f"study {predictions['study'].iloc[i]!r} disagrees with the test split's {known.iloc[i]!r}",
                         source, row=i + 2, column="study")
    per_checkpoint = predictions.groupby("checkpoint")["path"].nunique()
    short = per_checkpoint[per_checkpoint < len(expected)]
    if len(short):
        step = short.index[0]
        seen = set(predictions.loc[predictions["checkpoint"] == step, "path"])
        missing = [p for p in expected.index if p not in seen]
        studies = sorted({expected[p] for p in missing})
        raise InputError(f"checkpoint {step}: {len(missing)} test image(s) of {len(studies)} study(ies) missing, "
                         f"e.g. {missing[0]!r}", source, column="path")
    per_image = predictions.groupby("path", sort=False)[list(tasks)].mean()
    images = test[["path", "patient", "study"]].join(per_image, on="path")
    return study_level(images, list(tasks), how="max"), int(len(per_checkpoint))


def check_both_classes(targets: np.ndarray, weights: np.ndarray, tasks: Sequence[str], source: str | Path) -> None:
    """InputError if a task has only one class (with weight) in the whole test set: AUROC undefined."""
    for j, task in enumerate(tasks):
        positive = float(np.sum(weights[:, j] * targets[:, j]))
        negative = float(np.sum(weights[:, j] * (1.0 - targets[:, j])))
        if positive == 0 or negative == 0:
            kind = "positive" if positive == 0 else "negative"
            raise InputError(f"the test set has no {kind} study for {task!r}: AUROC undefined", source, column=task)


def label_arrays(labels: pd.DataFrame, tasks: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Binary targets and weights (study x task) from raw study labels."""
    return evaluation_targets(labels[list(tasks)].to_numpy(np.float32))


def read_ensemble(folder: str | Path, tasks: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The ensemble stage's folder: (models table, study labels, scores (models, studies, tasks)).

    Every model must score exactly the labelled studies; studies are put in the labels' order.
    """
    folder = Path(folder)
    paths = {name: folder / f"{name}.csv" for name in ("models", "test_labels", "test_predictions")}
    for path in paths.values():
        if not path.is_file():
            raise InputError("not found (run the ensemble stage)", path)
    models = pd.read_csv(paths["models"], dtype={"model": str, "arch": str, "init": str, "family": str})
    labels = pd.read_csv(paths["test_labels"], dtype={"study": str, "patient": str})
    predictions = pd.read_csv(paths["test_predictions"], dtype={"model": str, "study": str})
    for name, frame, columns in (("models", models, MODEL_COLUMNS), ("test_labels", labels, ("study", *tasks)),
                                 ("test_predictions", predictions, ("model", "study", *tasks))):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}", paths[name], column=missing[0])
    if models.empty:
        raise InputError("no models", paths["models"])
    check_probabilities(predictions, tasks, paths["test_predictions"])
    studies = pd.Index(labels["study"])
    if studies.duplicated().any():
        raise InputError(f"study {studies[studies.duplicated()][0]!r} listed twice", paths["test_labels"], column="study")
    unknown = sorted(set(predictions["model"]) - set(models["model"]))
    if unknown:
        raise InputError(f"model(s) {unknown} not in {paths['models'].name}", paths["test_predictions"], column="model")
    scores = np.empty((len(models), len(studies), len(tasks)))
    for m, model in enumerate(models["model"]):
        rows = predictions[predictions["model"] == model]
        extra = sorted(set(rows["study"]) - set(studies))
        missing = sorted(set(studies) - set(rows["study"]))
        if extra or missing or rows["study"].duplicated().any():
            problem = (f"{len(missing)} test study(ies) missing, e.g. {missing[0]!r}" if missing else
                       f"{len(extra)} study(ies) not in the test labels, e.g. {extra[0]!r}" if extra else
                       "a study listed twice")
            raise InputError(f"model {model!r}: {problem}", paths["test_predictions"], column="study")
        scores[m] = rows.set_index("study").loc[studies, list(tasks)].to_numpy(np.float64)
    return models, labels, scores


# ---------------------------------------------------------------- bootstrap

def bootstrap_multiplicities(n_samples: int, replicates: int, seed: int) -> np.ndarray:
    """(replicates, n_samples) counts: how often each sample is drawn in each resample with replacement."""
    if n_samples < 1 or replicates < 1:
        raise ValueError("need at least one sample and one replicate")
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_samples, size=(replicates, n_samples))
    flat = drawn + (np.arange(replicates) * n_samples)[:, None]
    return np.bincount(flat.ravel(), minlength=replicates * n_samples).reshape(replicates, n_samples)


def replicates_with_both_classes(targets: np.ndarray, weights: np.ndarray, multiplicities: np.ndarray) -> np.ndarray:
    """(replicates,) True where every task has weight on both classes."""
    counts = np.asarray(multiplicities, dtype=np.float64)
    positive = counts @ (weights * targets)
    negative = counts @ (weights * (1.0 - targets))
    return (positive > 0).all(axis=1) & (negative > 0).all(axis=1)


def percentile_interval(values: np.ndarray, confidence: float, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval: the (1 - c) / 2 and (1 + c) / 2 quantiles (numpy's linear interpolation)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2], axis=axis)
    return low, high


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided: min(1, 2 (1 + min(#{d <= 0}, #{d >= 0})) / (R + 1))."""
    differences = np.asarray(differences, dtype=np.float64)
    at_most = int(np.sum(differences <= 0))
    at_least = int(np.sum(differences >= 0))
    return min(1.0, 2.0 * (1 + min(at_most, at_least)) / (len(differences) + 1))


@dataclass
class Bootstrap:
    """Full-sample and replicate AUCs of every model and task."""

    models: list[str]
    tasks: list[str]
    point: np.ndarray        # (models, tasks), on the full test set
    replicates: np.ndarray   # (models, tasks, kept replicates)
    drawn: int
    dropped: int
    confidence: float

    def index(self, model: str) -> int:
        return self.models.index(model)

    def mean_point(self) -> np.ndarray:
        return self.point.mean(axis=1)

    def mean_replicates(self) -> np.ndarray:
        return self.replicates.mean(axis=1)


def bootstrap_aucs(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray, models: Sequence[str],
                   tasks: Sequence[str], replicates: int, seed: int, confidence: float) -> Bootstrap:
    """AUC of every model and task on the full set and on each kept bootstrap replicate.

    scores (models, studies, tasks); targets, weights (studies, tasks).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    point = auroc_matrix(scores, targets, weights)
    counts = bootstrap_multiplicities(targets.shape[0], replicates, seed)
    keep = replicates_with_both_classes(targets, weights, counts)
    if not keep.any():
        raise InputError(f"every one of {replicates} bootstrap replicates has a task with a single class; "
                         f"the test set is too small or a task too rare (tasks {list(tasks)})")
    values = auroc_matrix(scores, targets, weights, counts[keep])
    return Bootstrap(list(models), list(tasks), point, values, int(replicates), int((~keep).sum()), confidence)


def model_summary(result: Bootstrap) -> dict[str, dict[str, Any]]:
    """Per model: mean AUC with CI, and per task AUC with CI."""
    mean_low, mean_high = percentile_interval(result.mean_replicates(), result.confidence)
    task_low, task_high = percentile_interval(result.replicates, result.confidence)
    summary = {}
    for m, model in enumerate(result.models):
        summary[model] = {
            "mean_auc": float(result.mean_point()[m]),
            "mean_auc_ci_low": float(mean_low[m]), "mean_auc_ci_high": float(mean_high[m]),
            "tasks": {task: {"auc": float(result.point[m, t]), "ci_low": float(task_low[m, t]),
                             "ci_high": float(task_high[m, t])} for t, task in enumerate(result.tasks)},
        }
    return summary


def paired_difference(result: Bootstrap, a: str, b: str) -> dict[str, float]:
    """Mean AUC of a minus b: full-set difference, percentile CI and two-sided bootstrap p-value."""
    ia, ib = result.index(a), result.index(b)
    differences = result.mean_replicates()[ia] - result.mean_replicates()[ib]
    low, high = percentile_interval(differences, result.confidence)
    return {"diff": float(result.mean_point()[ia] - result.mean_point()[ib]),
            "ci_low": float(low), "ci_high": float(high), "p": bootstrap_p_value(differences)}


def pretraining_boosts(result: Bootstrap, models: pd.DataFrame, baseline_init: str) -> dict[str, dict[str, Any]]:
    """Per architecture and pretrained init: that init minus baseline_init (untruncated models only)."""
    full = models[(models["truncate"] == 0) & models["model"].isin(result.models)]
    boosts: dict[str, dict[str, Any]] = {}
    for arch, group in full.groupby("arch", sort=True):
        baseline = group[group["init"] == baseline_init]
        if baseline.empty:
            continue
        for _, row in group[group["init"] != baseline_init].sort_values("init").iterrows():
            boosts.setdefault(arch, {})[row["init"]] = paired_difference(result, row["model"], baseline["model"].iloc[0])
    return boosts


def truncation_reference(models: pd.DataFrame, model: str) -> str | None:
    """The k=0 model of a truncated model: same arch and init, truncate 0 (prefer the same folder)."""
    row = models.set_index("model").loc[model]
    candidates = models[(models["arch"] == row["arch"]) & (models["init"] == row["init"]) & (models["truncate"] == 0)]
    if "folder" in models.columns and len(candidates) > 1:
        same_place = candidates[candidates["folder"].map(lambda f: str(Path(f).parent)) == str(Path(row["folder"]).parent)]
        candidates = same_place if len(same_place) else candidates
    return None if candidates.empty else str(candidates["model"].iloc[0])


def truncation_differences(result: Bootstrap, models: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every truncated model minus its k=0 model (a missing reference gives null and a reason)."""
    out: dict[str, dict[str, Any]] = {}
    truncated = models[(models["truncate"] > 0) & models["model"].isin(result.models)]
    for _, row in truncated.sort_values("model").iterrows():
        reference = truncation_reference(models, row["model"])
        if reference is None or reference not in result.models:
            out[row["model"]] = {"diff": None, "ci_low": None, "ci_high": None, "p": None,
                                 "reason": f"no k=0 model of {row['arch']} with init {row['init']!r}"}
        else:
            out[row["model"]] = paired_difference(result, row["model"], reference)
    return out


def not_significantly_worse(difference: Mapping[str, Any], confidence: float) -> bool:
    """A paired difference that is not a significant loss: diff >= 0 or p >= 1 - confidence."""
    return difference["diff"] is not None and (difference["diff"] >= 0 or difference["p"] >= 1 - confidence)


def truncation_efficiency(differences: Mapping[str, Mapping[str, Any]], models: pd.DataFrame,
                          confidence: float) -> dict[str, Any]:
    """Per (arch, init) with truncated models: the smallest model not significantly worse than k=0
    (k=0 itself if every truncation loses), gain = params(k=0) / params(smallest); the average gain."""
    table = models.set_index("model")
    per_reference: dict[str, dict[str, Any]] = {}
    for model, difference in differences.items():
        reference = truncation_reference(models, model)
        if reference is None or difference["diff"] is None:
            continue
        entry = per_reference.setdefault(reference, {"smallest": reference})
        if not_significantly_worse(difference, confidence) and \
                table.loc[model, "params"] < table.loc[entry["smallest"], "params"]:
            entry["smallest"] = model
    gains = {}
    for reference, entry in sorted(per_reference.items()):
        smallest = entry["smallest"]
        gains[reference] = {"smallest_model": smallest,
                            "truncate": int(table.loc[smallest, "truncate"]),
                            "gain": float(table.loc[reference, "params"] / table.loc[smallest, "params"])}
    average = float(np.mean([g["gain"] for g in gains.values()])) if gains else None
    return {"by_reference": gains, "average_gain": average}


# ---------------------------------------------------------------- correlations and spread

def spearman(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """scipy.stats.spearmanr on the pairs where both values are known; null with a reason when
    fewer than 3 pairs remain or one side is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    known = ~(np.isnan(x) | np.isnan(y))
    x, y = x[known], y[known]
    n = int(len(x))
    if n < 3:
        return {"rho": None, "p": None, "n": n, "reason": f"{n} point(s): Spearman needs at least 3"}
    if np.all(x == x[0]) or np.all(y == y[0]):
        return {"rho": None, "p": None, "n": n, "reason": "a constant variable: Spearman undefined"}
    result = scipy_stats.spearmanr(x, y)
    return {"rho": float(result.statistic), "p": float(result.pvalue), "n": n}


def paper_rho(correlation: str, init: str, baseline_init: str) -> float | None:
    """The paper's Spearman rho for this correlation and init, if it reported one."""
    if init == baseline_init:
        return PAPER_SPEARMAN[correlation].get("without_pretraining")
    if init == PAPER_PRETRAINED_INIT:
        return PAPER_SPEARMAN[correlation].get("with_pretraining")
    return None


def correlation_points(mean_auc: Mapping[str, float], models: pd.DataFrame, architectures: pd.DataFrame,
                       boosts: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per untruncated model: model, arch, init, family, params, imagenet_top1, mean_auc, boost."""
    top1 = architectures.set_index("arch")["imagenet_top1"]
    full = models[(models["truncate"] == 0) & models["model"].isin(list(mean_auc))].copy()
    unknown = sorted(set(full["arch"]) - set(top1.index))
    if unknown:
        raise InputError(f"architecture(s) {unknown} not in the architecture table")
    full["imagenet_top1"] = pd.to_numeric(full["arch"].map(top1), errors="coerce")
    full["mean_auc"] = full["model"].map(mean_auc).astype(float)
    full["boost"] = [
        (boosts.get(arch, {}).get(init) or {}).get("diff", np.nan) for arch, init in zip(full["arch"], full["init"])
    ]
    full["boost"] = full["boost"].astype(float)
    columns = ["model", "arch", "init", "family", "params", "imagenet_top1", "mean_auc", "boost"]
    return full[columns].sort_values(["init", "params", "model"]).reset_index(drop=True)


def family_spread(points: pd.DataFrame) -> dict[str, Any]:
    """Within-family spread (AUC of the largest minus the smallest model of each family) against the
    across-family spread (best minus worst family mean AUC), for one init's models."""
    within: dict[str, Any] = {}
    for family, group in points.groupby("family", sort=True):
        group = group.sort_values(["params", "model"])
        if len(group) < 2:
            within[family] = {"spread": None, "n": 1, "reason": "one model in the family"}
        else:
            within[family] = {"spread": float(group["mean_auc"].iloc[-1] - group["mean_auc"].iloc[0]),
                              "largest": group["model"].iloc[-1], "smallest": group["model"].iloc[0],
                              "n": int(len(group))}
    spreads = [abs(v["spread"]) for v in within.values() if v["spread"] is not None]
    family_means = points.groupby("family")["mean_auc"].mean()
    out: dict[str, Any] = {"within": within,
                           "max_abs_within": max(spreads) if spreads else None,
                           "n_families": int(len(family_means))}
    if len(family_means) >= 2:
        out.update(across=float(family_means.max() - family_means.min()),
                   best_family=str(family_means.idxmax()), worst_family=str(family_means.idxmin()))
    else:
        out.update(across=None, reason_across=f"{len(family_means)} family: needs at least 2")
    return out


def study_correlations(points: pd.DataFrame, baseline_init: str) -> dict[str, Any]:
    """Spearman rho and p per init (ImageNet top-1 vs AUC, params vs AUC; params vs boost per
    pretrained init) with the paper's rho alongside, and the family spreads per init."""
    out: dict[str, Any] = {"imagenet_top1_vs_auc": {}, "params_vs_auc": {}, "params_vs_boost": {}, "family_spread": {}}
    for init, group in points.groupby("init", sort=True):
        for name, column in (("imagenet_top1_vs_auc", "imagenet_top1"), ("params_vs_auc", "params")):
            out[name][init] = {**spearman(group[column], group["mean_auc"]),
                               "paper_rho": paper_rho(name, init, baseline_init)}
        if init != baseline_init:
            out["params_vs_boost"][init] = {**spearman(group["params"], group["boost"]),
                                            "paper_rho": paper_rho("params_vs_boost", init, baseline_init)}
        out["family_spread"][init] = family_spread(group)
    return out


# ---------------------------------------------------------------- benchmark (for the benchmark suite, not a test)

def benchmark_bootstrap(n_models: int = 32, n_tasks: int = 6, n_replicates: int = 1000, n_studies: int = 500,
                        seed: int = 0, loop_replicates: int | None = None) -> dict[str, float]:
    """Seconds for all models x tasks x replicates: auroc_matrix against a roc_auc_score loop.

    Scores are rounded to 3 decimals (as in predictions files, so ties occur). `loop_replicates`
    times the sklearn loop on that many replicates only and scales it linearly (the loop's cost is
    the same per replicate); None runs it in full.
    """
    import time

    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    targets = (rng.random((n_studies, n_tasks)) < 0.3).astype(np.float64)
    scores = np.round(np.clip(0.3 * targets + rng.random((n_models, n_studies, n_tasks)), 0, 1), 3)
    weights = np.ones_like(targets)
    counts = bootstrap_multiplicities(n_studies, n_replicates, seed)

    start = time.perf_counter()
    auroc_matrix(scores, targets, weights, counts)
    vectorized = time.perf_counter() - start

    looped = n_replicates if loop_replicates is None else min(n_replicates, loop_replicates)
    start = time.perf_counter()
    for r in range(looped):
        for m in range(n_models):
            for t in range(n_tasks):
                roc_auc_score(targets[:, t], scores[m, :, t], sample_weight=counts[r] * weights[:, t])
    loop = (time.perf_counter() - start) * n_replicates / looped
    return {"vectorized_s": vectorized, "sklearn_loop_s": loop, "loop_replicates_timed": looped,
            "speedup": loop / vectorized}
