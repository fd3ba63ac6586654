"""The bootstrap (study and patient units) against plain loops and sklearn: draws, CIs, p-values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cxrtransfer.stats import bootstrap


def _study(rng: np.random.Generator, n_models: int, n: int, n_tasks: int, rare_task: bool = False):
    targets = (rng.random((n, n_tasks)) < 0.4).astype(float)
    if rare_task:  # two positives only: some replicates draw none and must be dropped
        targets[:, -1] = 0.0
        targets[:2, -1] = 1.0
    weights = (rng.random((n, n_tasks)) > 0.1).astype(float)
    weights[:2, -1] = 1.0
    scores = np.round(np.clip(0.25 * targets + rng.random((n_models, n, n_tasks)), 0, 1), 2)
    return scores, targets, weights


def test_multiplicities_are_resamples_and_seeded():
    counts = bootstrap.bootstrap_multiplicities(50, 30, seed=3)
    assert counts.shape == (30, 50)
    draws = np.random.default_rng(3).integers(0, 50, size=(30, 50))
    assert [np.bincount(row, minlength=50).tolist() for row in draws] == counts.tolist()
    assert (counts.sum(axis=1) == 50).all() and (counts >= 0).all()
    assert (counts == bootstrap.bootstrap_multiplicities(50, 30, seed=3)).all()
    assert not (counts == bootstrap.bootstrap_multiplicities(50, 30, seed=4)).all()


def test_bootstrap_ci_equals_plain_loop():
    """Same multiplicities, roc_auc_score per replicate, dropped replicates counted the same way."""
    rng = np.random.default_rng(0)
    scores, targets, weights = _study(rng, n_models=3, n=40, n_tasks=2, rare_task=True)
    models, tasks = ["a", "b", "c"], ["t0", "t1"]
    replicates, seed, confidence = 120, 7, 0.9
    result = bootstrap.bootstrap_aucs(scores, targets, weights, models, tasks, replicates, seed, confidence)

    # the resamples written plainly (not through bootstrap_multiplicities): replicate r is the r-th row of
    # len(targets) row numbers drawn by default_rng(seed).integers
    draws = np.random.default_rng(seed).integers(0, len(targets), size=(replicates, len(targets)))
    per_replicate = []  # (models, tasks) per kept replicate
    dropped = 0
    for rows in draws:
        y, w = targets[rows], weights[rows]
        if any(len(np.unique(y[w[:, t] > 0, t])) < 2 for t in range(len(tasks))):
            dropped += 1
            continue
        per_replicate.append([[roc_auc_score(y[:, t], scores[m, rows, t], sample_weight=w[:, t])
                               for t in range(len(tasks))] for m in range(len(models))])
    reference = np.array(per_replicate)  # (kept, models, tasks)
    assert dropped > 0 and result.dropped == dropped
    assert result.replicates.shape == (3, 2, replicates - dropped)
    np.testing.assert_allclose(result.replicates, reference.transpose(1, 2, 0), rtol=0, atol=1e-9)

    summary = bootstrap.model_summary(result)
    for m, model in enumerate(models):
        means = reference[:, m, :].mean(axis=1)
        assert summary[model]["mean_auc_ci_low"] == pytest.approx(np.percentile(means, 5), abs=1e-9)
        assert summary[model]["mean_auc_ci_high"] == pytest.approx(np.percentile(means, 95), abs=1e-9)
        full = np.mean([roc_auc_score(targets[:, t], scores[m, :, t], sample_weight=weights[:, t]) for t in range(2)])
        assert summary[model]["mean_auc"] == pytest.approx(full, abs=1e-9)
        task_low = np.percentile(reference[:, m, 1], 5)
        assert summary[model]["tasks"]["t1"]["ci_low"] == pytest.approx(task_low, abs=1e-9)

    difference = bootstrap.paired_difference(result, "a", "b")
    diffs = reference[:, 0, :].mean(axis=1) - reference[:, 1, :].mean(axis=1)
    assert difference["ci_low"] == pytest.approx(np.percentile(diffs, 5), abs=1e-9)
    expected_p = min(1.0, 2 * (1 + min((diffs <= 0).sum(), (diffs >= 0).sum())) / (len(diffs) + 1))
    assert difference["p"] == pytest.approx(expected_p, abs=1e-12)


def test_p_value_formula_and_identical_models():
    assert bootstrap.bootstrap_p_value(np.array([0.1, 0.2, 0.3])) == pytest.approx(2 * 1 / 4)
    assert bootstrap.bootstrap_p_value(np.array([-0.1, 0.2, 0.3, 0.4])) == pytest.approx(2 * 2 / 5)
    rng = np.random.default_rng(1)
    scores, targets, weights = _study(rng, 1, 30, 2)
    result = bootstrap.bootstrap_aucs(np.concatenate([scores, scores]), targets, weights, ["x", "y"], ["t0", "t1"], 50, 0, 0.95)
    same = bootstrap.paired_difference(result, "x", "y")
    assert same["diff"] == 0 and same["p"] == 1.0 and same["ci_low"] == 0 == same["ci_high"]


def _clustered(rng: np.random.Generator, n_patients: int, studies_per_patient: int, n_models: int = 2):
    """Studies of one patient share labels and a patient-level score offset: strongly correlated units."""
    patients = np.repeat([f"patient{i:05d}" for i in range(n_patients)], studies_per_patient)
    n = len(patients)
    patient_label = (rng.random((n_patients, 2)) < 0.4).astype(float)
    targets = np.repeat(patient_label, studies_per_patient, axis=0)
    offset = np.repeat(rng.normal(0, 1, (n_models, n_patients, 2)), studies_per_patient, axis=1)
    scores = 1 / (1 + np.exp(-(1.0 * targets + offset + 0.1 * rng.normal(0, 1, (n_models, n, 2)))))
    return scores, targets, np.ones_like(targets), patients


def test_cluster_multiplicities_draw_whole_patients():
    patients = np.array(["p3", "p3", "p1", "p2", "p2", "p2", "p4"])
    counts = bootstrap.bootstrap_multiplicities(len(patients), 200, seed=5, clusters=patients)
    for patient in set(patients):  # every study of a patient comes along the same number of times
        block = counts[:, patients == patient]
        assert (block == block[:, :1]).all()
    per_patient = counts[:, [0, 2, 3, 6]]  # one column per patient
    assert (per_patient.sum(axis=1) == 4).all()  # four patients drawn per replicate
    # with one study per patient, the draws are exactly the study bootstrap's
    singles = [f"patient{i}" for i in (7, 3, 9, 1, 4)]
    np.testing.assert_array_equal(bootstrap.bootstrap_multiplicities(5, 50, seed=2, clusters=singles),
                                  bootstrap.bootstrap_multiplicities(5, 50, seed=2))


def test_patient_bootstrap_equals_a_plain_loop_over_drawn_patients():
    rng = np.random.default_rng(11)
    scores, targets, weights, patients = _clustered(rng, n_patients=25, studies_per_patient=3)
    result = bootstrap.bootstrap_aucs(scores, targets, weights, ["a", "b"], ["t0", "t1"], 40, 3, 0.95, clusters=patients)
    # the same patient draws, written plainly: concatenate every drawn patient's studies
    unique = list(dict.fromkeys(patients))
    drawn = np.random.default_rng(3).integers(0, len(unique), size=(40, len(unique)))
    kept = 0
    for replicate in drawn:
        rows = np.concatenate([np.flatnonzero(patients == unique[i]) for i in replicate])
        y = targets[rows]
        if any(len(np.unique(y[:, t])) < 2 for t in range(2)):
            continue
        for m in range(2):
            for t in range(2):
                assert result.replicates[m, t, kept] == pytest.approx(roc_auc_score(y[:, t], scores[m, rows, t]), abs=1e-9)
        kept += 1
    assert kept == result.replicates.shape[2] == 40 - result.dropped


def test_patient_ci_wider_than_study_ci_on_multi_study_patients_and_identical_with_one_study():
    rng = np.random.default_rng(12)
    scores, targets, weights, patients = _clustered(rng, n_patients=60, studies_per_patient=4)
    models, tasks = ["a", "b"], ["t0", "t1"]
    by_patient = bootstrap.bootstrap_aucs(scores, targets, weights, models, tasks, 400, 0, 0.95, clusters=patients)
    by_study = bootstrap.bootstrap_aucs(scores, targets, weights, models, tasks, 400, 0, 0.95)
    np.testing.assert_array_equal(by_patient.point, by_study.point)
    width = {}
    for name, result in (("patient", by_patient), ("study", by_study)):
        summary = bootstrap.model_summary(result)
        difference = bootstrap.paired_difference(result, "a", "b")
        width[name] = ([summary[m]["mean_auc_ci_high"] - summary[m]["mean_auc_ci_low"] for m in models]
                       + [difference["ci_high"] - difference["ci_low"]])
    # four correlated studies per patient: about sqrt(4) = 2 times wider; at least 1.4x for each interval
    assert all(p > 1.4 * s for p, s in zip(width["patient"], width["study"])), width

    one_each = patients[::4]
    s1, t1, w1 = scores[:, ::4], targets[::4], weights[::4]
    a = bootstrap.bootstrap_aucs(s1, t1, w1, models, tasks, 300, 9, 0.95, clusters=one_each)
    b = bootstrap.bootstrap_aucs(s1, t1, w1, models, tasks, 300, 9, 0.95)
    np.testing.assert_array_equal(a.replicates, b.replicates)
    assert a.dropped == b.dropped and bootstrap.model_summary(a) == bootstrap.model_summary(b)


def test_resampling_unit_counts_patients_and_studies():
    labels = pd.DataFrame({"study": ["p1/s1", "p1/s2", "p2/s1", "p3/s1", "p3/s2", "p3/s3"],
                           "patient": ["p1", "p1", "p2", "p3", "p3", "p3"]})
    assert bootstrap.resampling_unit(labels, "patient") == {"resampled": "patient", "patients": 3, "studies": 6,
                                                        "max_studies_per_patient": 3}
