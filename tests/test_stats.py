"""Bootstrap CIs, paired differences, Spearman and spreads against plain loops, sklearn and scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, spearmanr
from sklearn.metrics import roc_auc_score

from cxrtransfer.stats import bootstrap, comparisons, correlations
from cxrtransfer.stats import significance
from cxrtransfer.errors import InputError


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

    counts = bootstrap.bootstrap_multiplicities(len(targets), replicates, seed)
    per_replicate = []  # (models, tasks) per kept replicate
    dropped = 0
    for row in counts:
        rows = np.repeat(np.arange(len(targets)), row)
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


def test_spearman_equals_scipy_including_ties():
    rng = np.random.default_rng(2)
    for n in (3, 5, 16, 40):
        x = np.round(rng.random(n), 1)
        y = np.round(x + rng.normal(0, 0.3, n), 1)
        expected = spearmanr(x, y)
        result = correlations.spearman(x, y)
        assert result["rho"] == expected.statistic and result["p"] == expected.pvalue and result["n"] == n


def test_spearman_small_or_constant_is_null_with_reason():
    assert correlations.spearman([1, 2], [3, 4])["rho"] is None
    assert "3" in correlations.spearman([1, 2], [3, 4])["reason"]
    assert correlations.spearman([1, 2, 3], [5, 5, 5])["rho"] is None
    # NaNs (e.g. an architecture without a published top-1) are dropped before counting
    result = correlations.spearman([1, np.nan, 3, 4], [1, 2, 2, 5])
    expected = spearmanr([1, 3, 4], [1, 2, 5])
    assert result["n"] == 3 and result["rho"] == expected.statistic and result["p"] == expected.pvalue


def _points_table() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    rng = np.random.default_rng(3)
    archs = pd.DataFrame({
        "arch": ["r18", "r34", "r50", "d121", "d169", "e0"],
        "family": ["resnet", "resnet", "resnet", "densenet", "densenet", "efficientnet"],
        "imagenet_top1": [69.8, 73.3, 76.1, 74.4, 75.6, 77.7],
        "imagenet_top1_2020": [69.76, 73.30, 76.15, 74.65, 76.00, 76.3],
    })
    params = {"r18": 11e6, "r34": 21e6, "r50": 25e6, "d121": 8e6, "d169": 14e6, "e0": 5e6}
    rows, mean_auc, boosts = [], {}, {}
    for arch, family in zip(archs["arch"], archs["family"]):
        for init in ("random", "imagenet"):
            name = f"{arch}-{init}"
            rows.append({"model": name, "arch": arch, "init": init, "family": family, "truncate": 0,
                         "params": int(params[arch]), "checkpoints": 3})
            mean_auc[name] = float(rng.uniform(0.75, 0.9))
        boosts[arch] = {"imagenet": {"diff": mean_auc[f"{arch}-imagenet"] - mean_auc[f"{arch}-random"]}}
    rows.append({"model": "r50-k1", "arch": "r50", "init": "imagenet", "family": "resnet", "truncate": 1,
                 "params": 9_000_000, "checkpoints": 3})
    mean_auc["r50-k1"] = 0.8
    return pd.DataFrame(rows), archs, {"mean_auc": mean_auc, "boosts": boosts}


def test_study_correlations_reproduce_scipy():
    models, archs, summary = _points_table()
    points = correlations.correlation_points(summary["mean_auc"], models, archs, summary["boosts"])
    assert "r50-k1" not in set(points["model"])  # truncated models stay out of the correlations
    result = correlations.study_correlations(points, baseline_init="random")
    top1 = archs.set_index("arch")["imagenet_top1"]
    for init in ("random", "imagenet"):
        group = models[(models["init"] == init) & (models["truncate"] == 0)]
        auc = group["model"].map(summary["mean_auc"])
        expected = spearmanr(group["arch"].map(top1), auc)
        assert result["imagenet_top1_vs_auc"][init]["rho"] == pytest.approx(expected.statistic, abs=1e-12)
        assert result["imagenet_top1_vs_auc"][init]["p"] == pytest.approx(expected.pvalue, abs=1e-12)
        expected = spearmanr(group["arch"].map(archs.set_index("arch")["imagenet_top1_2020"]), auc)
        assert result["imagenet_top1_2020_vs_auc"][init]["rho"] == pytest.approx(expected.statistic, abs=1e-12)
        assert result["imagenet_top1_2020_vs_auc"][init]["p"] == pytest.approx(expected.pvalue, abs=1e-12)
        expected = spearmanr(group["params"], auc)
        assert result["params_vs_auc"][init]["rho"] == pytest.approx(expected.statistic, abs=1e-12)
        assert result["params_vs_auc"][init]["p"] == pytest.approx(expected.pvalue, abs=1e-12)
    for name in ("imagenet_top1_vs_auc", "imagenet_top1_2020_vs_auc", "params_vs_auc"):  # Holm over the inits
        by_init = result[name]
        assert [by_init[i]["p_holm"] for i in by_init] == significance.holm([by_init[i]["p"] for i in by_init])
    pretrained = models[(models["init"] == "imagenet") & (models["truncate"] == 0)]
    boost = [summary["boosts"][a]["imagenet"]["diff"] for a in pretrained["arch"]]
    expected = spearmanr(pretrained["params"], boost)
    assert result["params_vs_boost"]["imagenet"]["rho"] == pytest.approx(expected.statistic, abs=1e-12)
    assert "random" not in result["params_vs_boost"]
    assert result["imagenet_top1_vs_auc"]["random"]["paper_rho"] == 0.082
    assert result["imagenet_top1_vs_auc"]["imagenet"]["paper_rho"] == 0.059
    assert result["params_vs_boost"]["imagenet"]["paper_rho"] == -0.718
    assert result["imagenet_top1_2020_vs_auc"]["random"]["paper_rho"] == 0.082
    assert result["params_vs_auc"]["random"]["paper_p"] == "< 0.001"


def test_correlation_points_unknown_architecture():
    models, archs, summary = _points_table()
    with pytest.raises(InputError, match="e0"):
        correlations.correlation_points(summary["mean_auc"], models, archs[archs["arch"] != "e0"], summary["boosts"])


def test_truncation_keeps_the_largest_k_before_the_first_significant_loss():
    models = pd.DataFrame([
        {"model": "r50-imagenet", "arch": "r50", "init": "imagenet", "truncate": 0, "params": 24_000_000},
        {"model": "r50-k1", "arch": "r50", "init": "imagenet", "truncate": 1, "params": 9_000_000},
        {"model": "r50-k2", "arch": "r50", "init": "imagenet", "truncate": 2, "params": 2_000_000},
        {"model": "r50-k3", "arch": "r50", "init": "imagenet", "truncate": 3, "params": 500_000},
        {"model": "d121-imagenet", "arch": "d121", "init": "imagenet", "truncate": 0, "params": 7_000_000},
        {"model": "d121-k1", "arch": "d121", "init": "imagenet", "truncate": 1, "params": 5_000_000},
        {"model": "d121-k2", "arch": "d121", "init": "imagenet", "truncate": 2, "params": 1_000_000},
        {"model": "e0-imagenet", "arch": "e0", "init": "imagenet", "truncate": 0, "params": 4_000_000},
        {"model": "e0-k1", "arch": "e0", "init": "imagenet", "truncate": 1, "params": 3_000_000},
        {"model": "e0-k2", "arch": "e0", "init": "imagenet", "truncate": 2, "params": 1_000_000},
    ])
    differences = {
        "r50-k1": {"diff": -0.004, "p": 0.3},   # not significant
        "r50-k2": {"diff": -0.05, "p": 0.002},  # significantly worse: stops here
        "r50-k3": {"diff": -0.01, "p": 0.2},    # not significant, but past a significant loss: not kept
        "d121-k1": {"diff": -0.03, "p": 0.01},  # significantly worse at once: d121 keeps its k=0 model
        "d121-k2": {"diff": 0.01, "p": 0.5},
        "e0-k1": {"diff": 0.002, "p": 0.01},    # a significant *gain* is not a loss
        "e0-k2": {"diff": -0.02, "p": 0.05},    # p = 0.05 is not < 0.05
    }
    result = comparisons.truncation_efficiency(differences, models, confidence=0.95)
    r50, d121, e0 = (result["by_reference"][m] for m in ("r50-imagenet", "d121-imagenet", "e0-imagenet"))
    assert (r50["model"], r50["truncate"], r50["first_significantly_worse"]) == ("r50-k1", 1, 2)
    assert r50["tested"] == [1, 2, 3] and r50["gain"] == pytest.approx(24 / 9)
    assert (d121["model"], d121["truncate"], d121["first_significantly_worse"]) == ("d121-imagenet", 0, 1)
    assert d121["gain"] == pytest.approx(1.0)
    assert (e0["model"], e0["first_significantly_worse"]) == ("e0-k2", None) and e0["gain"] == pytest.approx(4.0)
    assert result["average_gain"] == pytest.approx((24 / 9 + 1 + 4) / 3)
    assert result["paper_average_gain"] == 3.25
    assert result["one_block_average_gain"] == pytest.approx((24 / 9 + 7 / 5 + 4 / 3) / 3)


# ---------------------------------------------------------------- cluster (patient) bootstrap

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


# ---------------------------------------------------------------- the paper's analyses on replicates

def _analysis_study():
    """Six untruncated models (3 architectures x 2 inits, two families) and a bootstrap over them."""
    rng = np.random.default_rng(21)
    names = ["r18-random", "r18-imagenet", "r50-random", "r50-imagenet", "e0-random", "e0-imagenet"]
    models = pd.DataFrame({"model": names, "arch": [n.split("-")[0] for n in names],
                           "init": [n.split("-")[1] for n in names],
                           "family": ["resnet"] * 4 + ["efficientnet"] * 2, "truncate": 0,
                           "params": [11, 11, 25, 25, 5, 5]})
    scores, targets, weights = _study(rng, n_models=6, n=80, n_tasks=2)
    scores = np.round(np.clip(scores + 0.05 * np.arange(6)[:, None, None] * targets, 0, 1), 2)
    result = bootstrap.bootstrap_aucs(scores, targets, weights, names, ["t0", "t1"], 150, 4, 0.95)
    return models, result, (scores, targets, weights)


def _plain(result, values):
    """CI and p of replicate values, the rules written out."""
    low, high = np.percentile(values, [2.5, 97.5])
    p = min(1.0, 2 * (1 + min((values <= 0).sum(), (values >= 0).sum())) / (len(values) + 1))
    return low, high, p


def test_mean_boost_is_the_paired_mean_of_architecture_boosts():
    models, result, _ = _analysis_study()
    mean = {m: result.mean_replicates()[result.index(m)] for m in result.models}
    point = {m: result.mean_point()[result.index(m)] for m in result.models}
    per_replicate = np.mean([mean[f"{a}-imagenet"] - mean[f"{a}-random"] for a in ("r18", "r50", "e0")], axis=0)
    boost = comparisons.mean_boost(result, models, "random")["imagenet"]
    low, high, p = _plain(result, per_replicate)
    assert boost["diff"] == pytest.approx(np.mean([point[f"{a}-imagenet"] - point[f"{a}-random"]
                                                   for a in ("r18", "r50", "e0")]), abs=1e-12)
    assert (boost["ci_low"], boost["ci_high"], boost["p"]) == pytest.approx((low, high, p), abs=1e-12)
    assert boost["architectures"] == 3 and boost["paper"] == 0.015 and boost["p_holm"] == boost["p"]


def test_best_vs_worst_and_family_differences_against_plain_computation():
    models, result, _ = _analysis_study()
    mean = {m: result.mean_replicates()[result.index(m)] for m in result.models}
    point = {m: float(result.mean_point()[result.index(m)]) for m in result.models}
    best_worst = comparisons.best_vs_worst(result, models, "random")
    for init in ("random", "imagenet"):
        names = [m for m in result.models if m.endswith(init)]
        best, worst = max(names, key=point.get), min(names, key=point.get)
        entry = best_worst[init]
        assert (entry["best"], entry["worst"]) == (best.split("-")[0], worst.split("-")[0])
        low, high, p = _plain(result, mean[best] - mean[worst])
        assert (entry["diff"], entry["ci_low"], entry["ci_high"], entry["p"]) == pytest.approx(
            (point[best] - point[worst], low, high, p), abs=1e-12)
    assert best_worst["random"]["paper"]["diff"] == 0.052 and best_worst["imagenet"]["paper"] is None
    holm = significance.holm([best_worst["random"]["p"], best_worst["imagenet"]["p"]])
    assert [best_worst["random"]["p_holm"], best_worst["imagenet"]["p_holm"]] == holm

    families = comparisons.family_differences(result, models, "random")
    resnet = families["random"]["within"]["resnet"]
    low, high, p = _plain(result, mean["r50-random"] - mean["r18-random"])
    assert (resnet["largest"], resnet["smallest"]) == ("r50", "r18")
    assert (resnet["ci_low"], resnet["ci_high"], resnet["p"]) == pytest.approx((low, high, p), abs=1e-12)
    assert resnet["paper"] == 0.005 and families["imagenet"]["within"]["resnet"]["paper"] == 0.002
    assert families["random"]["within"]["efficientnet"]["diff"] is None
    across = families["imagenet"]["across"]
    resnet_mean = (mean["r18-imagenet"] + mean["r50-imagenet"]) / 2
    sign = 1 if across["best_family"] == "resnet" else -1
    low, high, p = _plain(result, sign * (resnet_mean - mean["e0-imagenet"]))
    assert (across["ci_low"], across["ci_high"], across["p"]) == pytest.approx((low, high, p), abs=1e-12)


def test_boosts_carry_per_task_delong_and_holm_per_init():
    models, result, arrays = _analysis_study()
    boosts = comparisons.pretraining_boosts(result, models, "random", arrays)
    scores, targets, weights = arrays
    a, b = result.index("r50-imagenet"), result.index("r50-random")
    expected = significance.delong_test(scores[a, :, 1], scores[b, :, 1], targets[:, 1], weights[:, 1])
    assert boosts["r50"]["imagenet"]["tasks"]["t1"]["p_delong"] == expected["p"]
    assert boosts["r50"]["imagenet"]["tasks"]["t1"]["diff"] == pytest.approx(expected["diff"], abs=1e-12)
    archs = ["e0", "r18", "r50"]
    holm = significance.holm([boosts[x]["imagenet"]["p"] for x in archs])
    assert [boosts[x]["imagenet"]["p_holm"] for x in archs] == holm


# ---------------------------------------------------------------- Holm and DeLong

def test_holm_against_a_hand_computed_example():
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> raised to 0.06 (monotone)
    adjusted = significance.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    assert significance.holm([0.5, None, 0.4]) == pytest.approx([0.8, None, 0.8])  # None does not count
    assert significance.holm([0.3, 0.6]) == [0.6, 0.6]  # capped at 1 only when needed: 0.3 x 2, 0.6 x 1 -> 0.6
    assert significance.holm([0.7, 0.9]) == [1.0, 1.0]


def test_holm_equals_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(8).random(12) ** 3
    expected = multitest.multipletests(p, method="holm")[1]
    np.testing.assert_allclose(significance.holm(list(p)), expected, rtol=0, atol=1e-15)


def _delong_slow(scores_a, scores_b, targets):
    """DeLong et al. (1988) from the definition: psi over every (positive, negative) pair, O(n^2)."""
    pos, neg = targets == 1, targets == 0
    v10, v01 = [], []
    for s in (scores_a, scores_b):
        x, y = s[pos][:, None], s[neg][None, :]
        psi = (x > y) + 0.5 * (x == y)
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    v10, v01 = np.array(v10), np.array(v01)
    s10 = np.cov(v10)
    s01 = np.cov(v01)
    covariance = s10 / pos.sum() + s01 / neg.sum()
    auc = v10.mean(axis=1)
    z = (auc[0] - auc[1]) / np.sqrt(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    return auc, z


def test_delong_hand_computed_example():
    # positives P1..P3, negatives N1, N2; b ties P2 with N2.
    # a: V10 = (1, 1, 1/2), V01 = (2/3, 1), AUC 5/6; b: V10 = (1, 1/4, 1), V01 = (2/3, 5/6), AUC 3/4.
    # S10 = [[1/12, -1/16], [-1/16, 3/16]], S01 = [[1/18, 1/36], [1/36, 1/72]];
    # var(a - b) = (1/12 + 3/16 + 1/8) / 3 + (1/18 + 1/72 - 1/18) / 2 = 5/36, z = (1/12) / sqrt(5/36) = 1 / (2 sqrt 5)
    targets = np.array([1, 1, 1, 0, 0])
    a = np.array([0.9, 0.6, 0.4, 0.5, 0.3])
    b = np.array([0.8, 0.3, 0.7, 0.6, 0.3])
    result = significance.delong_test(a, b, targets)
    assert result["auc_a"] == pytest.approx(5 / 6, abs=1e-15) and result["auc_b"] == pytest.approx(0.75, abs=1e-15)
    assert result["z"] == pytest.approx(1 / (2 * np.sqrt(5)), abs=1e-12)
    assert result["p"] == pytest.approx(2 * norm.sf(1 / (2 * np.sqrt(5))), abs=1e-12)
    assert result["p"] == pytest.approx(0.8231, abs=1e-4)


def test_delong_fast_equals_the_quadratic_definition_and_sklearn():
    rng = np.random.default_rng(9)
    for n, decimals in ((30, 1), (200, 2), (500, 6)):  # coarse rounding: many ties
        targets = (rng.random(n) < 0.35).astype(float)
        a = np.round(rng.random(n) + 0.6 * targets, decimals)
        b = np.round(0.5 * a + rng.random(n) + 0.2 * targets, decimals)
        result = significance.delong_test(a, b, targets)
        auc, z = _delong_slow(a, b, targets)
        assert (result["auc_a"], result["auc_b"]) == pytest.approx(tuple(auc), abs=1e-12)
        assert result["auc_a"] == pytest.approx(roc_auc_score(targets, a), abs=1e-12)
        assert result["z"] == pytest.approx(z, abs=1e-9)


def test_delong_leaves_out_zero_weight_samples_and_refuses_other_weights():
    rng = np.random.default_rng(10)
    targets = (rng.random(60) < 0.5).astype(float)
    a, b = rng.random(60) + 0.3 * targets, rng.random(60)
    weights = (rng.random(60) > 0.2).astype(float)
    kept = weights == 1
    assert significance.delong_test(a, b, targets, weights) == significance.delong_test(a[kept], b[kept], targets[kept])
    with pytest.raises(ValueError, match="0/1"):
        significance.delong_test(a, b, targets, weights * 2)
    same = significance.delong_test(a, a, targets)
    assert same["diff"] == 0 and same["p"] == 1.0


def test_delong_and_bootstrap_p_agree_on_independent_studies():
    """Two routes to the same question: on 600 independent studies both find the clear difference and
    neither finds one between two equally good models."""
    rng = np.random.default_rng(13)
    targets = (rng.random((600, 1)) < 0.4).astype(float)
    strong, weak, twin = (rng.random((600, 1)) + k * targets for k in (0.8, 0.5, 0.8))
    scores = np.stack([strong, weak, twin])
    result = bootstrap.bootstrap_aucs(scores, targets, np.ones_like(targets), ["strong", "weak", "twin"], ["t"], 1000, 0, 0.95)
    clear = bootstrap.paired_difference(result, "strong", "weak")
    null = bootstrap.paired_difference(result, "strong", "twin")
    assert clear["p"] < 0.01 and significance.delong_test(strong[:, 0], weak[:, 0], targets[:, 0])["p"] < 0.01
    delong_null = significance.delong_test(strong[:, 0], twin[:, 0], targets[:, 0])["p"]
    assert null["p"] > 0.05 and delong_null > 0.05 and abs(null["p"] - delong_null) < 0.2
