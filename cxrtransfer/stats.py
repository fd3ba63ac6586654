"""The study's statistics: ensembling, bootstrap CIs, paired differences, Spearman, family spread.

Rules (the report repeats them):
- Scoring follows the CheXpert reference: per study the prediction is the max over its views; the
  study's labels come from the index; uncertain cells (-1) carry no weight, blanks are negatives.
- Bootstrap: a replicate draws the test *patients* with replacement (seeded, `np.random.default_rng`),
  every study of a drawn patient coming along (a cluster bootstrap: a patient's studies are not
  independent); `bootstrap.unit: study` draws studies instead. With one study per patient (the official
  CheXpert test set) the two are the same draws. Replicates are kept as multiplicities over studies
  and the same replicates serve every model, so differences are paired.
- A replicate in which any evaluated task has only one class (no weight on positives or on negatives)
  is dropped for all models and tasks, and counted. Which replicates drop depends on labels only, so
  every model keeps the same ones.
- Confidence intervals: percentiles of the kept replicates (numpy's default linear interpolation),
  (1 - confidence) / 2 and (1 + confidence) / 2, e.g. 2.5 % and 97.5 %. Point estimates come from
  the full test set, not from the replicates.
- Contrasts (a - b, the mean boost over architectures, family differences) are linear combinations of
  mean AUCs taken within each replicate; two-sided bootstrap p-value with the +1 correction:
  p = min(1, 2 * (1 + min(#{d_r <= 0}, #{d_r >= 0})) / (R + 1)) over the R kept replicates,
  so p is never 0 and is 1 when a and b are the same model.
- "Significantly worse" (truncation): difference < 0 and p < 1 - confidence (the CI excludes 0).
  Holm-adjusted p-values stand beside the raw ones per family of tests (cxrtransfer.significance).
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
from .significance import add_holm, delong_test

MODEL_FILE = "model.json"
PREDICTIONS_FILE = "test_predictions.csv"
MODEL_KEYS: tuple[str, ...] = ("arch", "init", "family", "truncate", "params")
MODEL_COLUMNS: tuple[str, ...] = ("model",) + MODEL_KEYS + ("checkpoints",)

# CheXtransfer's own figures (Ke et al., "CheXtransfer: Performance and Parameter Efficiency of ImageNet
# Models for Chest X-Ray Interpretation", CHIL 2021), put beside ours. "without" is the baseline init
# (no pretraining), "with" ImageNet pretraining (beside every other init: paper_key).
PAPER_SOURCE = "Ke et al., CheXtransfer, CHIL 2021"
PAPER_SPEARMAN: dict[str, dict[str, float]] = {
    "imagenet_top1_vs_auc": {"without_pretraining": 0.082, "with_pretraining": 0.059},
    "params_vs_auc": {"without_pretraining": 0.791, "with_pretraining": 0.565},
    "params_vs_boost": {"with_pretraining": -0.718},  # negative: smaller models gain more
}
PAPER_SPEARMAN_P: dict[str, dict[str, str]] = {
    "imagenet_top1_vs_auc": {"without_pretraining": "0.762", "with_pretraining": "0.829"},
    "params_vs_auc": {"without_pretraining": "< 0.001", "with_pretraining": "0.023"},
    "params_vs_boost": {"with_pretraining": "0.002"},
}
PAPER_MEAN_BOOST = 0.015  # "statistically significant"; another write-up of the paper gives 0.016
PAPER_BOOSTS = {"efficientnet_b0": 0.023, "mobilenet_v2": 0.040, "mobilenet_v3": 0.033, "inception_v4": -0.002,
                "resnet101": 0.013}
PAPER_BEST_VS_WORST = {"without_pretraining": {"best": "inception_v3", "best_auc": 0.866, "worst": "mobilenet_v2",
                                               "worst_auc": 0.814, "diff": 0.052, "significant": True}}
PAPER_WITHIN_FAMILY = {  # largest minus smallest model of the family
    "without_pretraining": {"resnet": ("resnet101 - resnet18", 0.005), "densenet": ("densenet201 - densenet121", 0.004),
                            "efficientnet": ("efficientnet_b3 - efficientnet_b0", 0.003)},
    "with_pretraining": {"resnet": ("resnet101 - resnet18", 0.002), "densenet": ("densenet201 - densenet121", 0.004),
                         "efficientnet": ("efficientnet_b3 - efficientnet_b0", -0.006)},
}
PAPER_TRUNCATION_GAIN = 3.25  # average over DenseNet121, MNASNet, ResNet18, EfficientNetB0
PAPER_TRUNCATION_STATEMENT = "removing one final block did not hurt significantly; removing more did"
BOOTSTRAP_UNITS = ("patient", "study")


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
    for name, frame, columns in (("models", models, MODEL_COLUMNS), ("test_labels", labels, ("study", "patient", *tasks)),
                                 ("test_predictions", predictions, ("model", "study", *tasks))):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}", paths[name], column=missing[0])
    if models.empty:
        raise InputError("no models", paths["models"])
    check_probabilities(predictions, tasks, paths["test_predictions"])
    if labels["patient"].isna().any():  # the bootstrap's resampling unit: every study needs its patient
        i = int(np.flatnonzero(labels["patient"].isna().to_numpy())[0])
        raise InputError("study without a patient", paths["test_labels"], row=i + 2, column="patient")
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

def bootstrap_multiplicities(n_samples: int, replicates: int, seed: int,
                             clusters: Sequence[Any] | None = None) -> np.ndarray:
    """(replicates, n_samples) counts: how often each sample is drawn in each resample with replacement.

    With `clusters` (one label per sample, e.g. the patient of each study) whole clusters are drawn:
    counts over clusters, expanded to their samples. Clusters are numbered in order of first
    appearance, so with one sample per cluster the draws are exactly those without clusters.
    """
    if n_samples < 1 or replicates < 1:
        raise ValueError("need at least one sample and one replicate")
    codes = np.arange(n_samples)
    if clusters is not None:
        if len(clusters) != n_samples:
            raise ValueError(f"{len(clusters)} cluster labels for {n_samples} samples")
        codes, _ = pd.factorize(np.asarray(clusters), sort=False)
        if (codes < 0).any():
            raise ValueError("a sample without a cluster label")
    n_units = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_units, size=(replicates, n_units))
    flat = drawn + (np.arange(replicates) * n_units)[:, None]
    per_unit = np.bincount(flat.ravel(), minlength=replicates * n_units).reshape(replicates, n_units)
    return per_unit if clusters is None else per_unit[:, codes]


def resampling_unit(labels: pd.DataFrame, unit: str) -> dict[str, Any]:
    """What a replicate draws: unit, numbers of patients and studies, most studies of one patient."""
    if unit not in BOOTSTRAP_UNITS:
        raise ValueError(f"bootstrap unit must be one of {BOOTSTRAP_UNITS}, got {unit!r}")
    per_patient = labels.groupby("patient")["study"].nunique()
    return {"resampled": unit, "patients": int(len(per_patient)), "studies": int(labels["study"].nunique()),
            "max_studies_per_patient": int(per_patient.max())}


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
                   tasks: Sequence[str], replicates: int, seed: int, confidence: float,
                   clusters: Sequence[Any] | None = None) -> Bootstrap:
    """AUC of every model and task on the full set and on each kept bootstrap replicate.

    scores (models, studies, tasks); targets, weights (studies, tasks); clusters: the patient of each
    study to resample patients, None to resample studies.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    point = auroc_matrix(scores, targets, weights)
    counts = bootstrap_multiplicities(targets.shape[0], replicates, seed, clusters)
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


def contrast(result: Bootstrap, coefficients: Mapping[str, float], task: str | None = None) -> dict[str, float]:
    """sum_m c_m AUC_m (mean AUC, or one task's AUC): full-set value, percentile CI, bootstrap p-value.

    The combination is taken within each replicate, so it is paired across the models it names.
    """
    c = np.zeros(len(result.models))
    for model, weight in coefficients.items():
        c[result.index(model)] += weight
    if task is None:
        point, replicates = result.mean_point(), result.mean_replicates()
    else:
        t = result.tasks.index(task)
        point, replicates = result.point[:, t], result.replicates[:, t, :]
    values = c @ replicates
    low, high = percentile_interval(values, result.confidence)
    return {"diff": float(c @ point), "ci_low": float(low), "ci_high": float(high), "p": bootstrap_p_value(values)}


def paired_difference(result: Bootstrap, a: str, b: str, task: str | None = None) -> dict[str, float]:
    """Mean AUC (or one task's AUC) of a minus b: full-set difference, percentile CI, bootstrap p-value."""
    return contrast(result, {a: 1.0, b: -1.0} if a != b else {}, task)


def task_differences(result: Bootstrap, a: str, b: str, scores: np.ndarray, targets: np.ndarray,
                     weights: np.ndarray) -> dict[str, dict[str, float]]:
    """Per task, a minus b: the bootstrap difference and, as a cross-check, DeLong's p (studies as units)."""
    ia, ib = result.index(a), result.index(b)
    out = {}
    for t, task in enumerate(result.tasks):
        delong = delong_test(scores[ia, :, t], scores[ib, :, t], targets[:, t], weights[:, t])
        out[task] = {**paired_difference(result, a, b, task), "p_delong": delong["p"], "z_delong": delong["z"]}
    return out


def untruncated(result: Bootstrap, models: pd.DataFrame) -> pd.DataFrame:
    """The models table's untruncated models that the bootstrap scored."""
    return models[(models["truncate"] == 0) & models["model"].isin(result.models)]


def paper_key(init: str, baseline_init: str) -> str:
    """Which of the paper's columns an init stands beside: the baseline is 'without pretraining', every
    other init 'with pretraining' (the paper's is ImageNet; the report names the init)."""
    return "without_pretraining" if init == baseline_init else "with_pretraining"


def pretraining_boosts(result: Bootstrap, models: pd.DataFrame, baseline_init: str,
                       task_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                       ) -> dict[str, dict[str, Any]]:
    """Per architecture and pretrained init: that init minus baseline_init (untruncated models only),
    with the paper's boost where it gives one and, given (scores, targets, weights), per-task
    differences with DeLong's p beside the bootstrap's."""
    boosts: dict[str, dict[str, Any]] = {}
    for arch, group in untruncated(result, models).groupby("arch", sort=True):
        baseline = group[group["init"] == baseline_init]
        if baseline.empty:
            continue
        for _, row in group[group["init"] != baseline_init].sort_values("init").iterrows():
            entry = paired_difference(result, row["model"], baseline["model"].iloc[0])
            entry["paper"] = PAPER_BOOSTS.get(arch)
            if task_arrays is not None:
                entry["tasks"] = task_differences(result, row["model"], baseline["model"].iloc[0], *task_arrays)
            boosts.setdefault(arch, {})[row["init"]] = entry
    for init in sorted({i for by_init in boosts.values() for i in by_init}):
        family = {arch: by_init[init] for arch, by_init in boosts.items() if init in by_init}
        add_holm(family)
        add_holm({f"{arch}/{task}": v for arch, e in family.items() for task, v in e.get("tasks", {}).items()})
    return boosts


def mean_boost(result: Bootstrap, models: pd.DataFrame, baseline_init: str) -> dict[str, dict[str, Any]]:
    """Per pretrained init: the mean over architectures (having both inits) of the per-architecture boost,
    taken within each replicate; CI, p, and the paper's 0.015."""
    full = untruncated(result, models)
    baseline = full[full["init"] == baseline_init].set_index("arch")["model"]
    out: dict[str, dict[str, Any]] = {}
    for init, group in full[full["init"] != baseline_init].groupby("init", sort=True):
        pairs = [(m, baseline[a]) for m, a in zip(group["model"], group["arch"]) if a in baseline.index]
        if not pairs:
            continue
        coefficients: dict[str, float] = {}
        for pretrained, base in pairs:
            coefficients[pretrained] = coefficients.get(pretrained, 0.0) + 1.0 / len(pairs)
            coefficients[base] = coefficients.get(base, 0.0) - 1.0 / len(pairs)
        out[init] = {**contrast(result, coefficients), "architectures": len(pairs), "paper": PAPER_MEAN_BOOST}
    add_holm(out)
    return out


def best_vs_worst(result: Bootstrap, models: pd.DataFrame, baseline_init: str) -> dict[str, dict[str, Any]]:
    """Per init: the best minus the worst untruncated architecture by full-set mean AUC (chosen after
    seeing the data, as in the paper), CI and p, with the paper's figure for its init."""
    mean = dict(zip(result.models, result.mean_point()))
    out: dict[str, dict[str, Any]] = {}
    for init, group in untruncated(result, models).groupby("init", sort=True):
        if len(group) < 2:
            continue
        ranked = sorted(group["model"], key=lambda m: (-mean[m], m))
        best, worst = ranked[0], ranked[-1]
        arch = group.set_index("model")["arch"]
        out[init] = {"best": arch[best], "worst": arch[worst], "best_auc": float(mean[best]),
                     "worst_auc": float(mean[worst]), **paired_difference(result, best, worst),
                     "paper": PAPER_BEST_VS_WORST.get(paper_key(init, baseline_init))}
    add_holm(out)
    return out


def family_differences(result: Bootstrap, models: pd.DataFrame, baseline_init: str) -> dict[str, dict[str, Any]]:
    """Per init: within each family the largest minus the smallest model (by parameters), and across
    families the best minus the worst family mean; each with CI and p (Holm over the within-family tests)."""
    mean = dict(zip(result.models, result.mean_point()))
    out: dict[str, dict[str, Any]] = {}
    for init, group in untruncated(result, models).groupby("init", sort=True):
        paper = PAPER_WITHIN_FAMILY.get(paper_key(init, baseline_init), {})
        within: dict[str, Any] = {}
        for family, members in group.groupby("family", sort=True):
            members = members.sort_values(["params", "model"])
            paper_pair, paper_value = paper.get(family, (None, None))
            if len(members) < 2:
                within[family] = {"diff": None, "n": 1, "reason": "one model in the family",
                                  "paper": paper_value, "paper_pair": paper_pair}
                continue
            largest, smallest = members.iloc[-1], members.iloc[0]
            within[family] = {"largest": largest["arch"], "smallest": smallest["arch"], "n": int(len(members)),
                              **paired_difference(result, largest["model"], smallest["model"]),
                              "paper": paper_value, "paper_pair": paper_pair}
        add_holm(within)
        family_mean = {f: float(np.mean([mean[m] for m in g["model"]])) for f, g in group.groupby("family")}
        entry: dict[str, Any] = {"within": within, "families": len(family_mean)}
        if len(family_mean) >= 2:
            best, worst = max(family_mean, key=family_mean.get), min(family_mean, key=family_mean.get)
            coefficients = {m: 1.0 / (group["family"] == best).sum() for m in group.loc[group["family"] == best, "model"]}
            for m in group.loc[group["family"] == worst, "model"]:
                coefficients[m] = -1.0 / (group["family"] == worst).sum()
            entry["across"] = {"best_family": best, "worst_family": worst, **contrast(result, coefficients)}
        else:
            entry["across"] = {"diff": None, "reason": f"{len(family_mean)} family: needs at least 2"}
        out[init] = entry
    return out


def truncation_reference(models: pd.DataFrame, model: str) -> str | None:
    """The k=0 model of a truncated model: same arch and init, truncate 0 (prefer the same folder)."""
    row = models.set_index("model").loc[model]
    candidates = models[(models["arch"] == row["arch"]) & (models["init"] == row["init"]) & (models["truncate"] == 0)]
    if "folder" in models.columns and len(candidates) > 1:
        same_place = candidates[candidates["folder"].map(lambda f: str(Path(f).parent)) == str(Path(row["folder"]).parent)]
        candidates = same_place if len(same_place) else candidates
    return None if candidates.empty else str(candidates["model"].iloc[0])


def truncation_differences(result: Bootstrap, models: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every truncated model minus its k=0 model (a missing reference gives null and a reason); Holm over all."""
    out: dict[str, dict[str, Any]] = {}
    truncated = models[(models["truncate"] > 0) & models["model"].isin(result.models)]
    for _, row in truncated.sort_values("model").iterrows():
        reference = truncation_reference(models, row["model"])
        if reference is None or reference not in result.models:
            out[row["model"]] = {"diff": None, "ci_low": None, "ci_high": None, "p": None,
                                 "reason": f"no k=0 model of {row['arch']} with init {row['init']!r}"}
        else:
            out[row["model"]] = paired_difference(result, row["model"], reference)
    add_holm(out)
    return out


def significantly_worse(difference: Mapping[str, Any], confidence: float) -> bool:
    """A paired difference that is a significant loss: diff < 0 and p < 1 - confidence."""
    alpha = round(1.0 - confidence, 12)  # 1 - 0.95 is 0.05000000000000004 in floating point
    return difference["diff"] < 0 and difference["p"] < alpha


def truncation_efficiency(differences: Mapping[str, Mapping[str, Any]], models: pd.DataFrame,
                          confidence: float) -> dict[str, Any]:
    """Per (arch, init) with truncated models, the paper's rule: the largest k such that no k' <= k is
    significantly worse than k = 0 (k' over the truncations trained, in increasing k; k = 0 if the
    first already loses); gain = params(k=0) / params(that k). The average gain beside the paper's 3.25x."""
    table = models.set_index("model")
    by_reference: dict[str, list[tuple[int, str]]] = {}
    for model, difference in differences.items():
        reference = truncation_reference(models, model)
        if reference is not None and difference["diff"] is not None:
            by_reference.setdefault(reference, []).append((int(table.loc[model, "truncate"]), model))
    gains, one_block = {}, []
    for reference, truncations in sorted(by_reference.items()):
        one_block += [table.loc[reference, "params"] / table.loc[m, "params"] for k, m in truncations if k == 1]
        kept, first_worse = reference, None
        for k, model in sorted(truncations):
            if significantly_worse(differences[model], confidence):
                first_worse = k
                break
            kept = model
        gains[reference] = {"arch": str(table.loc[reference, "arch"]), "model": kept,
                            "truncate": int(table.loc[kept, "truncate"]),
                            "tested": [k for k, _ in sorted(truncations)], "first_significantly_worse": first_worse,
                            "params": int(table.loc[kept, "params"]),
                            "gain": float(table.loc[reference, "params"] / table.loc[kept, "params"])}
    average = float(np.mean([g["gain"] for g in gains.values()])) if gains else None
    # The paper's statement (one block can go) read literally: the average gain if every model kept k = 1.
    one_block_average = float(np.mean(one_block)) if one_block else None
    return {"by_reference": gains, "average_gain": average, "paper_average_gain": PAPER_TRUNCATION_GAIN,
            "paper_statement": PAPER_TRUNCATION_STATEMENT, "one_block_average_gain": one_block_average}


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


TOP1_COLUMNS = {"imagenet_top1": "imagenet_top1_vs_auc", "imagenet_top1_2020": "imagenet_top1_2020_vs_auc"}


def paper_figure(table: Mapping[str, Mapping[str, Any]], correlation: str, init: str, baseline_init: str) -> Any:
    """The paper's figure for this correlation and init (both top-1 columns stand beside its one top-1 rho)."""
    key = "imagenet_top1_vs_auc" if correlation in TOP1_COLUMNS.values() else correlation
    return table[key].get(paper_key(init, baseline_init))


def correlation_points(mean_auc: Mapping[str, float], models: pd.DataFrame, architectures: pd.DataFrame,
                       boosts: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per untruncated model: model, arch, init, family, params, imagenet_top1 (the weights used),
    imagenet_top1_2020 (what the paper could have used; NaN when the table has no such column), mean_auc, boost."""
    table = architectures.set_index("arch") if "arch" in architectures.columns else architectures
    full = models[(models["truncate"] == 0) & models["model"].isin(list(mean_auc))].copy()
    unknown = sorted(set(full["arch"]) - set(table.index))
    if unknown:
        raise InputError(f"architecture(s) {unknown} not in the architecture table")
    for column in TOP1_COLUMNS:
        values = table[column] if column in table.columns else pd.Series(np.nan, index=table.index)
        full[column] = pd.to_numeric(full["arch"].map(values), errors="coerce")
    full["mean_auc"] = full["model"].map(mean_auc).astype(float)
    full["boost"] = [
        (boosts.get(arch, {}).get(init) or {}).get("diff", np.nan) for arch, init in zip(full["arch"], full["init"])
    ]
    full["boost"] = full["boost"].astype(float)
    columns = ["model", "arch", "init", "family", "params", *TOP1_COLUMNS, "mean_auc", "boost"]
    return full[columns].sort_values(["init", "params", "model"]).reset_index(drop=True)


def study_correlations(points: pd.DataFrame, baseline_init: str) -> dict[str, Any]:
    """Spearman rho and p per init (ImageNet top-1 of the weights used and of the 2020 values vs AUC,
    params vs AUC; params vs boost per pretrained init), the paper's rho and p alongside, and
    Holm-adjusted p per correlation (the family: its tests over inits)."""
    out: dict[str, Any] = {name: {} for name in (*TOP1_COLUMNS.values(), "params_vs_auc", "params_vs_boost")}
    pairs = [(name, column, "mean_auc") for column, name in TOP1_COLUMNS.items()] + [("params_vs_auc", "params", "mean_auc")]
    for init, group in points.groupby("init", sort=True):
        tests = pairs + ([("params_vs_boost", "params", "boost")] if init != baseline_init else [])
        for name, x, y in tests:
            out[name][init] = {**spearman(group[x], group[y]),
                               "paper_rho": paper_figure(PAPER_SPEARMAN, name, init, baseline_init),
                               "paper_p": paper_figure(PAPER_SPEARMAN_P, name, init, baseline_init)}
    for family in out.values():
        add_holm(family)
    out["paper_source"] = PAPER_SOURCE
    return out


# ---------------------------------------------------------------- benchmark (for the benchmark suite, not a test)

def benchmark_data(n_models: int, n_tasks: int, n_studies: int, seed: int,
                   studies_per_patient: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, targets, patients) for the benchmark: scores rounded to 3 decimals (as in predictions
    files, so ties occur), consecutive studies sharing a patient (as with `split.method: fractions`)."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n_studies, n_tasks)) < 0.3).astype(np.float64)
    scores = np.round(np.clip(0.3 * targets + rng.random((n_models, n_studies, n_tasks)), 0, 1), 3)
    patients = np.arange(n_studies) // studies_per_patient
    return scores, targets, patients


def benchmark_bootstrap(n_models: int = 32, n_tasks: int = 6, n_replicates: int = 1000, n_studies: int = 500,
                        seed: int = 0, loop_replicates: int | None = None, rounds: int = 3) -> dict[str, float]:
    """Seconds for all models x tasks x replicates of a patient bootstrap: the multiplicity draw plus
    auroc_matrix, against a roc_auc_score loop over the same multiplicities.

    `rounds` interleave the two: each round times the vectorized path in full and the loop on its share
    of `loop_replicates` replicates; the vectorized figure is the median round, the loop's the sum of its
    shares scaled linearly to all replicates (its cost is the same per replicate). None loops over all.
    """
    import time

    from sklearn.metrics import roc_auc_score

    scores, targets, patients = benchmark_data(n_models, n_tasks, n_studies, seed)
    weights = np.ones_like(targets)
    counts = bootstrap_multiplicities(n_studies, n_replicates, seed, clusters=patients)
    looped = n_replicates if loop_replicates is None else min(n_replicates, loop_replicates)
    shares = np.array_split(np.arange(looped), rounds)
    vectorized, loop = [], 0.0
    for share in shares:
        start = time.perf_counter()
        auroc_matrix(scores, targets, weights, bootstrap_multiplicities(n_studies, n_replicates, seed, clusters=patients))
        vectorized.append(time.perf_counter() - start)
        start = time.perf_counter()
        for r in share:
            for m in range(n_models):
                for t in range(n_tasks):
                    roc_auc_score(targets[:, t], scores[m, :, t], sample_weight=counts[r] * weights[:, t])
        loop += time.perf_counter() - start
    loop *= n_replicates / looped
    median = float(np.median(vectorized))
    return {"vectorized_s": median, "sklearn_loop_s": loop, "loop_replicates_timed": looped, "rounds": rounds,
            "speedup": loop / median}
