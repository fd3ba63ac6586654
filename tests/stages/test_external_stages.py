"""External models and readers through the study stages; the demo's external_baseline and simulate_readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from cxrtransfer.data.chexpert import OBSERVATIONS
from cxrtransfer.pipeline.config import run_stage
from stages import ensemble as ensemble_stage
from stages import external_baseline as baseline_stage
from stages import simulate_readers as readers_stage
from tests.stages.test_study_stages import TASKS, build_fixture, ensemble_argv, outputs, run_all

OUTSIDE_TASKS = ["Edema", "Cardiomegaly"]      # a leaderboard-like file: lacks the study's No Finding
BC4_ORDER = ["Study", "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Lesion", "Lung Opacity",
             "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
             "Pleural Other", "Fracture", "Support Devices"]


def add_outside(root: Path, paths: dict[str, Path]) -> dict[str, Path]:
    """A prediction file (two of the three study tasks, shuffled rows, the CheXpert-v1.0/test/ prefix)
    and two reader files (bc4.csv layout) for the fixture's 40 test studies; the params that name them."""
    rng = np.random.default_rng(7)
    split = pd.read_csv(paths["split"])
    studies = sorted(split.loc[split["split"] == "test", "study"].unique())
    folder = root / "outside"
    folder.mkdir()
    shuffled = [studies[i] for i in rng.permutation(len(studies))]
    predictions = pd.DataFrame({"Study": ["CheXpert-v1.0/test/" + s for s in shuffled]})
    for task in OUTSIDE_TASKS:
        predictions[task] = np.round(rng.random(len(studies)), 4)
    predictions.to_csv(folder / "lab_predictions.csv", index=False)
    for name in ("bc4", "bc6"):
        reads = pd.DataFrame({"Study": ["CheXpert-v1.0/test/" + s for s in studies]})
        for column in BC4_ORDER[1:]:
            reads[column] = rng.integers(0, 2, len(studies))
        reads.to_csv(folder / f"{name}.csv", index=False)
    params = yaml.safe_load(paths["params"].read_text())
    params["external"] = {"dir": str(folder), "models": {"lab": "lab_predictions.csv"}, "tasks": OUTSIDE_TASKS}
    params["readers"] = {"dir": str(folder), "files": {"bc4": "bc4.csv", "bc6": "bc6.csv"}}
    paths["params"].write_text(yaml.safe_dump(params))
    return {"predictions": folder / "lab_predictions.csv", "bc4": folder / "bc4.csv"}


def test_external_model_and_readers_through_the_study(tmp_path):
    paths = build_fixture(tmp_path)
    files = add_outside(tmp_path, paths)
    out = outputs(tmp_path)
    run_all(paths, out)

    result = json.loads(out["bootstrap"].read_text())
    lab = result["external"]["lab"]
    assert lab["family"] == "external"
    assert lab["tasks_scored"] == [t for t in TASKS if t in OUTSIDE_TASKS] and lab["tasks_missing"] == ["No Finding"]
    index = pd.read_csv(paths["index"])
    labels = index[index["source_split"] == "test"].groupby("study")[TASKS].first().sort_index()
    predictions = pd.read_csv(files["predictions"])
    predictions.index = predictions["Study"].str.replace("CheXpert-v1.0/test/", "", regex=False)
    aucs = []
    for task in OUTSIDE_TASKS:
        raw = labels[task].to_numpy()
        aucs.append(roc_auc_score(raw == 1.0, predictions.loc[labels.index, task], sample_weight=(raw != -1.0) * 1.0))
        assert lab["tasks"][task]["auc"] == pytest.approx(aucs[-1], abs=1e-6)
    assert lab["mean_auc"] == pytest.approx(np.mean(aucs), abs=1e-6)
    in_ensemble = json.loads(out["ensemble_metrics"].read_text())["external"]["lab"]
    assert in_ensemble["mean_auc"] == pytest.approx(np.mean(aucs), abs=1e-6) and in_ensemble["tasks_missing"] == ["No Finding"]
    assert set(lab["versus"]) == set(result["models"])          # paired with every study model

    reads = pd.read_csv(files["bc4"])
    reads.index = reads["Study"].str.replace("CheXpert-v1.0/test/", "", regex=False)
    raw = labels["Edema"].to_numpy()
    read = reads.loc[labels.index, "Edema"].to_numpy()
    sensitivity = np.sum((raw == 1) & (read == 1)) / np.sum(raw == 1)   # uncertain (-1) counts neither way
    point = result["readers"]["operating_points"]["Edema"]["bc4"]
    assert point["sensitivity"] == pytest.approx(sensitivity, abs=1e-6)
    assert point["sensitivity_ci_low"] <= point["sensitivity"] <= point["sensitivity_ci_high"]
    assert "No Finding" not in result["readers"]["under_curve"]["lab"]
    assert set(result["readers"]["under_curve"]["r18-random"]) == set(TASKS)

    summary = out["summary"].read_text()
    assert "## External models" in summary and "2 of 3 (no No Finding)" in summary and "not predicted" in summary
    assert "## Radiologists" in summary and "readers_roc.png" in summary
    assert (out["figures"] / "readers_roc.png").stat().st_size > 10_000


@pytest.mark.parametrize("which, edit, fragment", [
    ("predictions", lambda f: f.iloc[1:], "test study(ies) missing"),
    ("predictions", lambda f: pd.concat([f, f.iloc[:1]]), "is listed twice"),
    ("predictions", lambda f: f.drop(columns="Edema"), "task 'Edema' missing"),
    ("predictions", lambda f: f.assign(Edema=f["Edema"].where(f.index != 3, 1.2)), "not a probability in [0, 1]"),
    ("predictions", lambda f: f.assign(Edema=f["Edema"].astype(str).where(f.index != 3, "n/a")), "'n/a' is not a probability"),
    ("predictions", lambda f: pd.concat([f, f.iloc[:1].assign(Study="CheXpert-v1.0/test/patient09999/study1")]),
     "not in the test set"),
    ("bc4", lambda f: f.iloc[:-1], "test study(ies) missing"),
])
def test_each_bad_outside_file_is_one_line_and_nothing_is_written(tmp_path, capsys, which, edit, fragment):
    paths = build_fixture(tmp_path)
    files = add_outside(tmp_path, paths)
    frame = pd.read_csv(files[which])
    edit(frame).to_csv(files[which], index=False)
    out = outputs(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run_stage(ensemble_stage.main, ensemble_argv(paths, out))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err and str(files[which]) in err
    assert not out["ensemble"].exists() and not out["ensemble_metrics"].exists()


def test_simulated_readers_stage_writes_the_bc4_layout(tmp_path):
    rng = np.random.default_rng(0)
    truth = pd.DataFrame({"Study": [f"CheXpert-v1.0/test/patient{p:05d}/study1" for p in range(1, 4001)]})
    for name in OBSERVATIONS:
        truth[name] = (rng.random(len(truth)) < 0.5).astype(int)
    truth.to_csv(tmp_path / "groundtruth.csv", index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"readers": {"simulate": {"seed": 1, "readers": {
        "bc4": {"sensitivity": 0.8, "specificity": 0.9}, "bc6": {"sensitivity": 0.6, "specificity": 0.7}}}}}))
    readers_stage.main(["--params", str(tmp_path / "params.yaml"), "--groundtruth", str(tmp_path / "groundtruth.csv"),
                        "--out", str(tmp_path / "readers")])
    for name, sensitivity, specificity in (("bc4", 0.8, 0.9), ("bc6", 0.6, 0.7)):
        reads = pd.read_csv(tmp_path / "readers" / f"{name}.csv")
        assert list(reads.columns) == BC4_ORDER and list(reads["Study"]) == list(truth["Study"])
        positive = truth[list(OBSERVATIONS)].to_numpy() == 1
        read = reads[list(OBSERVATIONS)].to_numpy() == 1
        assert read[positive].mean() == pytest.approx(sensitivity, abs=0.01)     # 28,000 positive cells
        assert (~read[~positive]).mean() == pytest.approx(specificity, abs=0.01)


def test_simulated_reader_outside_0_1_is_refused_in_params(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"readers": {"simulate": {"readers": {
        "bc4": {"sensitivity": 1.2, "specificity": 0.9}}}}}))
    with pytest.raises(SystemExit):
        run_stage(readers_stage.main, ["--params", str(tmp_path / "params.yaml"), "--groundtruth", "x.csv",
                                       "--out", str(tmp_path / "readers")])
    assert "readers.simulate.readers.bc4.sensitivity must be a number in [0, 1], got 1.2" in capsys.readouterr().err
    assert not (tmp_path / "readers").exists()


def test_external_baseline_writes_a_leaderboard_file_that_beats_chance(tmp_path):
    rng = np.random.default_rng(0)
    n, size = 240, 16
    labels = rng.random((n, 2)) < 0.4
    images = rng.integers(0, 120, (n, size, size)).astype(np.uint8)
    images[labels[:, 0], :8] += 100          # Cardiomegaly brightens the top half, Edema the left half
    images[labels[:, 1], :, :8] += 100
    cache = tmp_path / "cache"
    cache.mkdir()
    np.save(cache / "images.npy", images)
    split = np.where(np.arange(n) < 160, "train", "test")
    index = pd.DataFrame({"path": [f"CheXpert-v1.0-small/x/patient{i:05d}/study1/view1_frontal.jpg" for i in range(n)],
                          "patient": [f"patient{i:05d}" for i in range(n)],
                          "study": [f"patient{i:05d}/study1" for i in range(n)],
                          "Cardiomegaly": labels[:, 0].astype(float), "Edema": labels[:, 1].astype(float)})
    index.to_csv(cache / "index.csv", index=False)
    index[["path", "patient", "study"]].assign(split=split).to_csv(tmp_path / "split.csv", index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"external": {"baseline": {
        "file": "px.csv", "size": 4, "C": 1.0, "tasks": ["Edema", "Cardiomegaly"]}}}))
    baseline_stage.main(["--params", str(tmp_path / "params.yaml"), "--cache", str(cache),
                         "--split", str(tmp_path / "split.csv"), "--out", str(tmp_path / "external")])
    written = pd.read_csv(tmp_path / "external" / "px.csv")
    assert list(written.columns) == ["Study", "Edema", "Cardiomegaly"]
    assert written["Study"].iloc[0] == "CheXpert-v1.0/test/patient00160/study1" and len(written) == 80
    assert roc_auc_score(labels[160:, 1], written["Edema"]) > 0.9
    assert roc_auc_score(labels[160:, 0], written["Cardiomegaly"]) > 0.9
