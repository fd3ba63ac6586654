"""The study stages end to end on tiny fixture folders, and their refusals of bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import norm, spearmanr
from sklearn.metrics import roc_auc_score

from cxrtransfer.data.chexpert import INDEX_COLUMNS, OBSERVATIONS
from cxrtransfer.errors import InputError
from cxrtransfer.pipeline.config import run_stage
from stages import bootstrap as bootstrap_stage
from stages import correlate as correlate_stage
from stages import ensemble as ensemble_stage
from stages import report as report_stage
from tests.stats.test_significance import _delong_slow as delong_from_the_definition
from tests.stats.test_significance import plain_holm

TASKS = ["Cardiomegaly", "Edema", "No Finding"]
REPLICATES = 60
# name: arch, init, family, truncate, params, signal strength
MODELS = {
    "r18-random": ("r18", "random", "resnet", 0, 11_000_000, 0.20),
    "r18-imagenet": ("r18", "imagenet", "resnet", 0, 11_000_000, 0.35),
    "r34-random": ("r34", "random", "resnet", 0, 21_000_000, 0.25),
    "r34-imagenet": ("r34", "imagenet", "resnet", 0, 21_000_000, 0.30),
    "d121-random": ("d121", "random", "densenet", 0, 7_000_000, 0.15),
    "d121-imagenet": ("d121", "imagenet", "densenet", 0, 7_000_000, 0.40),
}
TRUNCATED = {"r34-k1": ("r34", "imagenet", "resnet", 1, 8_000_000, 0.28)}
ARCHITECTURES = pd.DataFrame({"arch": ["r18", "r34", "d121"], "family": ["resnet", "resnet", "densenet"],
                              "imagenet_top1": [69.758, 73.314, 74.434], "imagenet_top1_2020": [69.76, 73.30, 74.65]})


def _path(split: str, patient: int, study: int, view: int, frontal: bool) -> str:
    return (f"CheXpert-v1.0-small/{split}/patient{patient:05d}/study{study}/"
            f"view{view}_{'frontal' if frontal else 'lateral'}.jpg")


def build_fixture(root: Path, seed: int = 0, studies_per_patient: int = 1) -> dict[str, Path]:
    """index, split, params, architecture table and model folders of a 40-study test set
    (studies_per_patient consecutive studies share a patient)."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, n_studies, first in (("train", 6, 1), ("valid", 4, 7), ("test", 40, 11)):
        for i in range(n_studies):
            patient, study = first + i // studies_per_patient, 1 + i % studies_per_patient
            labels = {name: np.nan for name in OBSERVATIONS}
            for task in TASKS:
                labels[task] = rng.choice([1.0, 0.0, -1.0, np.nan], p=[0.35, 0.35, 0.1, 0.2])
            for view in range(1, int(rng.integers(1, 3)) + 1):
                rows.append({"path": _path(split, patient, study, view, view == 1), "patient": f"patient{patient:05d}",
                             "study": f"patient{patient:05d}/study{study}", "view": f"view{view}",
                             "frontal": view == 1, "ap_pa": "AP" if view == 1 else "", "sex": "Female", "age": 60,
                             "source_split": split, "split": split, **labels})
    table = pd.DataFrame(rows)
    paths = {"index": root / "data/cache/index.csv", "split": root / "data/splits/split.csv",
             "params": root / "params.yaml", "architectures": root / "architectures.csv",
             "models": root / "data/models", "trunc": root / "data/trunc"}
    for key in ("index", "split"):
        paths[key].parent.mkdir(parents=True, exist_ok=True)
    table[list(INDEX_COLUMNS) + list(OBSERVATIONS)].to_csv(paths["index"], index=False)
    table[["path", "patient", "study", "split"]].to_csv(paths["split"], index=False)
    ARCHITECTURES.to_csv(paths["architectures"], index=False)
    paths["params"].write_text(yaml.safe_dump({
        "model": "all", "data": {"tasks": TASKS}, "architectures": ["r18", "r34", "d121"],
        "inits": {"random": ["random"], "weights": ["imagenet"], "indomain": []},
        "truncation": {"architectures": ["r34"], "blocks": [1]},
        "bootstrap": {"replicates": REPLICATES, "seed": 0, "confidence": 0.95, "baseline_init": "random",
                      "compare": [["r18-imagenet", "d121-imagenet"]]}}))

    test = table[table["split"] == "test"].reset_index(drop=True)
    positive = (test[TASKS] == 1.0).to_numpy(float)
    for parent, models in ((paths["models"], MODELS), (paths["trunc"], TRUNCATED)):
        for name, (arch, init, family, truncate, params, signal) in models.items():
            folder = parent / name
            folder.mkdir(parents=True)
            (folder / "model.json").write_text(json.dumps(
                {"arch": arch, "init": init, "family": family, "truncate": truncate, "params": params}))
            frames = []
            for checkpoint in (4800, 9600, 14400):
                frame = test[["path", "patient", "study"]].copy()
                noise = rng.random(positive.shape)
                frame[TASKS] = np.round(np.clip(signal * positive + noise, 0, 1.5) / 1.5, 3)  # ties occur
                frame.insert(0, "checkpoint", checkpoint)
                frames.append(frame)
            pd.concat(frames).to_csv(folder / "test_predictions.csv", index=False)
    return paths


def outputs(root: Path) -> dict[str, Path]:
    return {"ensemble": root / "data/ensemble", "ensemble_metrics": root / "metrics/ensemble.json",
            "bootstrap": root / "metrics/bootstrap.json", "plot": root / "metrics/plots/auc_by_model.csv",
            "correlations": root / "metrics/correlations.json", "points": root / "metrics/plots/points.csv",
            "summary": root / "reports/summary.md", "figures": root / "reports/figures"}


def ensemble_argv(paths: dict[str, Path], out: dict[str, Path]) -> list[str]:
    return ["--params", str(paths["params"]), "--models", str(paths["models"]), "--truncated", str(paths["trunc"]),
            "--index", str(paths["index"]),
            "--split", str(paths["split"]), "--out", str(out["ensemble"]), "--metrics", str(out["ensemble_metrics"])]


def bootstrap_argv(paths, out) -> list[str]:
    return ["--params", str(paths["params"]), "--ensemble", str(out["ensemble"]), "--out", str(out["bootstrap"]),
            "--plot", str(out["plot"])]


def run_all(paths: dict[str, Path], out: dict[str, Path]) -> None:
    ensemble_stage.main(ensemble_argv(paths, out))
    bootstrap_stage.main(bootstrap_argv(paths, out))
    correlate_stage.main(["--params", str(paths["params"]), "--bootstrap", str(out["bootstrap"]),
                          "--ensemble", str(out["ensemble"]), "--architectures", str(paths["architectures"]),
                          "--out", str(out["correlations"]), "--points", str(out["points"])])
    report_stage.main(["--bootstrap", str(out["bootstrap"]), "--correlations", str(out["correlations"]),
                       "--points", str(out["points"]), "--ensemble", str(out["ensemble"]),
                       "--out", str(out["summary"]), "--figures", str(out["figures"])])


def direct_study_scores(paths: dict[str, Path], name: str):
    """The reference scoring, written plainly: per checkpoint the max over a study's views (binary tasks: the
    sigmoid is monotone, so over probabilities), then the mean over checkpoints; labels per study."""
    folder = (paths["models"] if name in MODELS else paths["trunc"]) / name
    predictions = pd.read_csv(folder / "test_predictions.csv")
    per_checkpoint = predictions.groupby(["checkpoint", "study"])[TASKS].max().reset_index()
    per_study = per_checkpoint.groupby("study")[TASKS].mean().sort_index()
    index = pd.read_csv(paths["index"])
    labels = index.groupby("study")[TASKS].first().loc[per_study.index]
    return per_study, labels


def direct_auc(per_study: pd.DataFrame, labels: pd.DataFrame, task: str, counts=None) -> float:
    raw = labels[task].to_numpy()
    target = (raw == 1.0).astype(float)
    weight = (raw != -1.0).astype(float) * (1 if counts is None else counts)
    return roc_auc_score(target, per_study[task].to_numpy(), sample_weight=weight)


def test_stages_end_to_end(tmp_path):
    paths = build_fixture(tmp_path)
    out = outputs(tmp_path)
    run_all(paths, out)

    ensemble = json.loads(out["ensemble_metrics"].read_text())
    assert ensemble["studies"] == 40
    assert set(ensemble["models"]) == set(MODELS) | set(TRUNCATED)
    direct_means = {}
    for name in list(MODELS) + list(TRUNCATED):
        per_study, labels = direct_study_scores(paths, name)
        aucs = [direct_auc(per_study, labels, task) for task in TASKS]
        direct_means[name] = float(np.mean(aucs))
        assert ensemble["models"][name]["checkpoints"] == 3
        assert ensemble["models"][name]["mean_auc"] == pytest.approx(direct_means[name], abs=1e-6)
        assert ensemble["models"][name]["auc"]["Edema"] == pytest.approx(aucs[1], abs=1e-6)

    result = json.loads(out["bootstrap"].read_text())
    assert result["replicates"]["drawn"] == REPLICATES
    assert result["replicates"]["kept"] + result["replicates"]["dropped"] == REPLICATES
    # CI of one model against a plain resampling loop: replicate r draws len(studies) row numbers with
    # default_rng(seed).integers (one study per patient here, patients in study order); none is dropped
    per_study, labels = direct_study_scores(paths, "r18-imagenet")
    draws = np.random.default_rng(0).integers(0, len(labels), size=(REPLICATES, len(labels)))
    assert result["replicates"]["dropped"] == 0
    means = [np.mean([direct_auc(per_study.iloc[rows], labels.iloc[rows], task) for task in TASKS]) for rows in draws]
    random_study, _ = direct_study_scores(paths, "r18-random")
    random_means = [np.mean([direct_auc(random_study.iloc[rows], labels.iloc[rows], task) for task in TASKS])
                    for rows in draws]
    entry = result["models"]["r18-imagenet"]
    assert entry["mean_auc"] == pytest.approx(direct_means["r18-imagenet"], abs=1e-6)
    assert entry["mean_auc_ci_low"] == pytest.approx(np.percentile(means, 2.5), abs=1e-6)
    assert entry["mean_auc_ci_high"] == pytest.approx(np.percentile(means, 97.5), abs=1e-6)
    boost = result["boosts"]["r18"]["imagenet"]
    assert boost["diff"] == pytest.approx(direct_means["r18-imagenet"] - direct_means["r18-random"], abs=1e-6)
    diffs = np.array(means) - np.array(random_means)
    expected_p = min(1.0, 2 * (1 + min((diffs <= 0).sum(), (diffs >= 0).sum())) / (REPLICATES + 1))
    assert boost["p"] == pytest.approx(expected_p, abs=1e-6)
    assert (boost["ci_low"], boost["ci_high"]) == pytest.approx(
        (np.percentile(diffs, 2.5), np.percentile(diffs, 97.5)), abs=1e-6)
    assert "r18-imagenet - d121-imagenet" in result["comparisons"]
    assert result["truncation"]["r34-k1"]["diff"] == pytest.approx(
        direct_means["r34-k1"] - direct_means["r34-imagenet"], abs=1e-6)
    assert "r34-imagenet" in result["truncation_efficiency"]["by_reference"]
    assert result["unit"] == {"resampled": "patient", "patients": 40, "studies": 40, "max_studies_per_patient": 1}
    boosts = [result["boosts"][a]["imagenet"]["diff"] for a in ("r18", "r34", "d121")]
    assert result["mean_boost"]["imagenet"]["diff"] == pytest.approx(np.mean(boosts), abs=1e-5)
    assert result["mean_boost"]["imagenet"]["paper"] == 0.015
    best = max(("r18", "r34", "d121"), key=lambda a: direct_means[f"{a}-random"])
    assert result["best_vs_worst"]["random"]["best"] == best
    assert result["families"]["random"]["within"]["resnet"]["diff"] == pytest.approx(
        direct_means["r34-random"] - direct_means["r18-random"], abs=1e-5)
    task_boost = result["boosts"]["r18"]["imagenet"]["tasks"]["Edema"]
    # DeLong from the O(n^2) definition on the studies with a label (uncertain ones carry no weight)
    kept = labels["Edema"].to_numpy() != -1.0
    _, z = delong_from_the_definition(per_study["Edema"].to_numpy()[kept], random_study["Edema"].to_numpy()[kept],
                                      (labels["Edema"].to_numpy()[kept] == 1.0).astype(float))
    assert task_boost["p_delong"] == pytest.approx(2 * norm.sf(abs(z)), abs=1e-6)
    # Holm within the init's family of per-task tests (every architecture x task), step-down by hand
    family = {(a, t): result["boosts"][a]["imagenet"]["tasks"][t]["p"] for a in ("r18", "r34", "d121") for t in TASKS}
    # (the p-values are read back rounded to 6 decimals: Holm multiplies their rounding by up to 9)
    assert task_boost["p_holm"] == pytest.approx(plain_holm(family)[("r18", "Edema")], abs=1e-5)
    delong_family = {(a, t): result["boosts"][a]["imagenet"]["tasks"][t]["p_delong"]
                     for a in ("r18", "r34", "d121") for t in TASKS}
    assert task_boost["p_delong_holm"] == pytest.approx(plain_holm(delong_family)[("r18", "Edema")], abs=1e-5)
    plot = pd.read_csv(out["plot"])
    assert set(plot["model"]) == set(ensemble["models"])

    correlations = json.loads(out["correlations"].read_text())
    top1 = ARCHITECTURES.set_index("arch")["imagenet_top1"]
    for init in ("random", "imagenet"):
        names = [n for n, spec in MODELS.items() if spec[1] == init]
        expected = spearmanr([top1[MODELS[n][0]] for n in names], [result["models"][n]["mean_auc"] for n in names])
        assert correlations["imagenet_top1_vs_auc"][init]["rho"] == pytest.approx(expected.statistic, abs=1e-6)
        assert correlations["imagenet_top1_vs_auc"][init]["p"] == pytest.approx(expected.pvalue, abs=1e-6)
        assert correlations["imagenet_top1_vs_auc"][init]["n"] == 3
        assert correlations["imagenet_top1_2020_vs_auc"][init]["n"] == 3
        entry = correlations["params_vs_auc"][init]  # an interval from the shared replicates beside rho and p
        assert -1 <= entry["ci_low"] <= entry["ci_high"] <= 1 and entry["ci_replicates"] > 0
    assert correlations["params_vs_boost"]["imagenet"]["ci_low"] is not None
    # fidelity sections: the smallest Holm p per family, the re-selected spread, both truncation rules
    floors = {f["family"]: f for f in result["holm_floors"]}
    assert floors["boosts (imagenet)"]["smallest_holm_p"] == pytest.approx(3 * 2 / 61, abs=1e-6)  # 3 tests, 60 replicates
    spread = result["best_vs_worst_reselected"]["random"]
    assert spread["spread"] == pytest.approx(result["best_vs_worst"]["random"]["diff"], abs=1e-12)
    assert spread["ci_low"] <= spread["replicate_mean"] <= spread["ci_high"]
    rules = result["truncation_rules"]["by_reference"]["r34-imagenet"]
    assert set(rules) == {"arch", "tested", "non_inferior", "no_significant_drop"} and rules["tested"] == [1]

    summary = out["summary"].read_text()
    for name in ("r18", "r34", "d121", "## Truncation", "0.082", "r34-k1", "Resampling unit: **patient**", "3.25x",
                 "0.015", "DeLong", "p Holm", "Ke et al., CheXtransfer, CHIL 2021", "mobilenet_v2 0.814"):
        assert name in summary
    figures = sorted(p.name for p in out["figures"].iterdir())
    assert figures == ["auc_by_family.png", "boost_vs_params.png", "imagenet_top1_vs_auc.png", "truncation.png"]
    assert all((out["figures"] / f).read_bytes()[:4] == b"\x89PNG" for f in figures)


def _bootstrap_with_unit(paths, out, unit: str) -> dict:
    params = yaml.safe_load(paths["params"].read_text())
    params["bootstrap"]["unit"] = unit
    paths["params"].write_text(yaml.safe_dump(params))
    bootstrap_stage.main(bootstrap_argv(paths, out))
    return json.loads(out["bootstrap"].read_text())


def test_patient_and_study_units_identical_with_one_study_per_patient(tmp_path):
    paths, out = build_fixture(tmp_path), outputs(tmp_path)
    ensemble_stage.main(ensemble_argv(paths, out))
    by_patient = _bootstrap_with_unit(paths, out, "patient")
    by_study = _bootstrap_with_unit(paths, out, "study")
    assert by_study.pop("unit")["resampled"] == "study" and by_patient.pop("unit")["resampled"] == "patient"
    assert by_patient == by_study


def test_patient_unit_draws_patients_when_they_have_several_studies(tmp_path):
    paths, out = build_fixture(tmp_path, studies_per_patient=4), outputs(tmp_path)
    ensemble_stage.main(ensemble_argv(paths, out))
    labels = pd.read_csv(out["ensemble"] / "test_labels.csv", dtype=str)
    assert labels["patient"].nunique() == 10  # the patient comes through the ensemble's labels
    by_patient = _bootstrap_with_unit(paths, out, "patient")
    assert by_patient["unit"] == {"resampled": "patient", "patients": 10, "studies": 40, "max_studies_per_patient": 4}
    by_study = _bootstrap_with_unit(paths, out, "study")
    assert by_patient["models"]["r18-random"]["mean_auc"] == by_study["models"]["r18-random"]["mean_auc"]
    assert by_patient["models"]["r18-random"]["mean_auc_ci_low"] != by_study["models"]["r18-random"]["mean_auc_ci_low"]
    # the patient replicates, written plainly: draw 10 patients, take all their studies
    per_study, study_labels = direct_study_scores(paths, "r18-random")
    patients = [s.split("/")[0] for s in per_study.index]
    unique = list(dict.fromkeys(patients))
    drawn = np.random.default_rng(0).integers(0, len(unique), size=(REPLICATES, len(unique)))
    means = []
    for row in drawn:
        counts = np.array([np.sum(row == unique.index(p)) for p in patients], dtype=float)
        means.append(np.mean([direct_auc(per_study, study_labels, task, counts) for task in TASKS]))
    assert by_patient["replicates"]["dropped"] == 0
    assert by_patient["models"]["r18-random"]["mean_auc_ci_low"] == pytest.approx(np.percentile(means, 2.5), abs=1e-6)
    with pytest.raises(InputError, match="bootstrap.unit"):
        _bootstrap_with_unit(paths, out, "image")


def test_one_architecture_run_gives_null_correlations(tmp_path):
    paths = build_fixture(tmp_path)
    params = yaml.safe_load(paths["params"].read_text())
    params["model"] = "r18"
    paths["params"].write_text(yaml.safe_dump(params))
    out = outputs(tmp_path)
    run_all(paths, out)
    result = json.loads(out["bootstrap"].read_text())
    assert set(result["models"]) == {"r18-random", "r18-imagenet"}
    assert "reason" in result["comparisons"]["r18-imagenet - d121-imagenet"]  # skipped, not an error
    correlations = json.loads(out["correlations"].read_text())
    assert correlations["imagenet_top1_vs_auc"]["random"]["rho"] is None
    assert correlations["imagenet_top1_vs_auc"]["random"]["n"] == 1
    assert out["summary"].is_file()


def _assert_refused(paths, out, argv=None, match=""):
    with pytest.raises(InputError, match=match):
        ensemble_stage.main(argv or ensemble_argv(paths, out))
    assert not out["ensemble"].exists() and not out["ensemble_metrics"].exists()


def test_ensemble_refuses_nan_prediction(tmp_path):
    paths, out = build_fixture(tmp_path), outputs(tmp_path)
    file = paths["models"] / "r18-random/test_predictions.csv"
    frame = pd.read_csv(file)
    frame.loc[5, "Edema"] = np.nan
    frame.to_csv(file, index=False)
    _assert_refused(paths, out, match="row 7, column 'Edema'")


def test_ensemble_refuses_missing_declared_model(tmp_path):
    paths, out = build_fixture(tmp_path), outputs(tmp_path)
    shutil.rmtree(paths["trunc"] / "r34-k1")
    _assert_refused(paths, out, match="model r34-k1 is declared by the params but its folder is missing")


def test_ensemble_reads_declared_models_only(tmp_path):
    """A model folder on disk that the params do not declare (an earlier grid) is not reported."""
    paths, out = build_fixture(tmp_path), outputs(tmp_path)
    shutil.copytree(paths["models"] / "r18-random", paths["models"] / "r50-random")
    params = yaml.safe_load(paths["params"].read_text())
    params["architectures"] = ["r18", "d121"]
    params["inits"]["weights"] = []
    paths["params"].write_text(yaml.safe_dump(params))
    ensemble_stage.main(ensemble_argv(paths, out))
    reported = json.loads(out["ensemble_metrics"].read_text())["models"]
    assert sorted(reported) == ["d121-random", "r18-random", "r34-k1"]


def test_ensemble_refuses_missing_predictions_file(tmp_path):
    paths, out = build_fixture(tmp_path), outputs(tmp_path)
    (paths["models"] / "r34-random/test_predictions.csv").unlink()
    _assert_refused(paths, out, match="test_predictions.csv missing")


def test_ensemble_refuses_missing_study(tmp_path):
    paths, out = build_fixture(tmp_path), outputs(tmp_path)
    file = paths["models"] / "d121-imagenet/test_predictions.csv"
    frame = pd.read_csv(file)
    study = frame["study"].iloc[0]
    frame[~((frame["study"] == study) & (frame["checkpoint"] == 9600))].to_csv(file, index=False)
    _assert_refused(paths, out, match="checkpoint 9600: .* missing")


def test_ensemble_refuses_extra_study(tmp_path):
    paths, out = build_fixture(tmp_path), outputs(tmp_path)
    file = paths["models"] / "d121-imagenet/test_predictions.csv"
    frame = pd.read_csv(file)
    extra = frame.iloc[[0]].assign(path=_path("test", 99999, 1, 1, True), study="patient99999/study1",
                                   patient="patient99999")
    pd.concat([frame, extra]).to_csv(file, index=False)
    _assert_refused(paths, out, match="not in the test split")


def test_ensemble_refuses_single_class_task(tmp_path):
    paths, out = build_fixture(tmp_path), outputs(tmp_path)
    index = pd.read_csv(paths["index"])
    index.loc[index["source_split"] == "test", "Cardiomegaly"] = 0.0
    index.to_csv(paths["index"], index=False)
    _assert_refused(paths, out, match="no positive study for 'Cardiomegaly'")


def test_ensemble_refusal_exits_2_through_run_stage(tmp_path, capsys):
    paths, out = build_fixture(tmp_path), outputs(tmp_path)
    (paths["models"] / "r34-random/test_predictions.csv").unlink()
    with pytest.raises(SystemExit) as exit_info:
        run_stage(ensemble_stage.main, ensemble_argv(paths, out))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_bootstrap_refuses_bad_ensemble(tmp_path):
    paths, out = build_fixture(tmp_path), outputs(tmp_path)
    ensemble_stage.main(ensemble_argv(paths, out))
    file = out["ensemble"] / "test_predictions.csv"
    good = pd.read_csv(file)
    for broken, match in ((good.assign(Edema=good["Edema"].where(good.index != 3)), "row 5, column 'Edema'"),
                          (good.drop(index=7), "missing"),
                          (pd.concat([good, good.iloc[[0]].assign(study="patient99999/study1")]), "not in the test labels")):
        broken.to_csv(file, index=False)
        with pytest.raises(InputError, match=match):
            bootstrap_stage.main(bootstrap_argv(paths, out))
        assert not out["bootstrap"].exists() and not out["plot"].exists()
    good.to_csv(file, index=False)
    labels_file = out["ensemble"] / "test_labels.csv"
    labels = pd.read_csv(labels_file, dtype=str)
    labels.loc[4, "patient"] = np.nan  # the resampling unit must be known for every study
    labels.to_csv(labels_file, index=False)
    with pytest.raises(InputError, match="row 6, column 'patient'"):
        bootstrap_stage.main(bootstrap_argv(paths, out))
    assert not out["bootstrap"].exists()


REAL_NAMES = {"r18": "resnet18", "r34": "resnet34", "d121": "densenet121"}


def rename_to_packaged_architectures(paths: dict[str, Path]) -> None:
    """The fixture with the packaged table's architecture names: folders, model.json and params."""
    for parent in (paths["models"], paths["trunc"]):
        for folder in sorted(parent.iterdir()):
            arch, _, rest = folder.name.partition("-")
            meta = json.loads((folder / "model.json").read_text())
            (folder / "model.json").write_text(json.dumps({**meta, "arch": REAL_NAMES[meta["arch"]]}))
            folder.rename(parent / f"{REAL_NAMES[arch]}-{rest}")
    params = yaml.safe_load(paths["params"].read_text())
    params["architectures"] = [REAL_NAMES[a] for a in params["architectures"]]
    params["truncation"]["architectures"] = [REAL_NAMES[a] for a in params["truncation"]["architectures"]]
    params["bootstrap"]["compare"] = [["resnet18-imagenet", "densenet121-imagenet"]]
    paths["params"].write_text(yaml.safe_dump(params))


def test_correlate_defaults_to_the_packaged_architecture_table(tmp_path):
    """Without --architectures, correlate reads cxrtransfer/models/architectures.csv itself (the real module)."""
    paths, out = build_fixture(tmp_path), outputs(tmp_path)
    rename_to_packaged_architectures(paths)
    ensemble_stage.main(ensemble_argv(paths, out))
    bootstrap_stage.main(bootstrap_argv(paths, out))
    correlate_stage.main(["--params", str(paths["params"]), "--bootstrap", str(out["bootstrap"]),
                          "--ensemble", str(out["ensemble"]), "--out", str(out["correlations"]),
                          "--points", str(out["points"])])
    points = pd.read_csv(out["points"]).drop_duplicates("arch").set_index("arch")
    # the packaged CSV's values (torchvision's docs: the weights used, and 100 - the 2020 docs' top-1 error)
    assert points["imagenet_top1"].to_dict() == {"resnet18": 69.758, "resnet34": 73.314, "densenet121": 74.434}
    assert points["imagenet_top1_2020"].to_dict() == {"resnet18": 69.76, "resnet34": 73.30, "densenet121": 74.65}
    assert points["family"].to_dict() == {"resnet18": "resnet", "resnet34": "resnet", "densenet121": "densenet"}
