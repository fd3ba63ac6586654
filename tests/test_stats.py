"""Bootstrap CIs, paired differences, Spearman and spreads against plain loops, sklearn and scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from cxrtransfer import stats
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
    counts = stats.bootstrap_multiplicities(50, 30, seed=3)
    assert counts.shape == (30, 50)
    assert (counts.sum(axis=1) == 50).all() and (counts >= 0).all()
    assert (counts == stats.bootstrap_multiplicities(50, 30, seed=3)).all()
    assert not (counts == stats.bootstrap_multiplicities(50, 30, seed=4)).all()


def test_bootstrap_ci_equals_plain_loop():
    """Same multiplicities, roc_auc_score per replicate, dropped replicates counted the same way."""
    rng = np.random.default_rng(0)
    scores, targets, weights = _study(rng, n_models=3, n=40, n_tasks=2, rare_task=True)
    models, tasks = ["a", "b", "c"], ["t0", "t1"]
    replicates, seed, confidence = 120, 7, 0.9
    result = stats.bootstrap_aucs(scores, targets, weights, models, tasks, replicates, seed, confidence)

    counts = stats.bootstrap_multiplicities(len(targets), replicates, seed)
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

    summary = stats.model_summary(result)
    for m, model in enumerate(models):
        means = reference[:, m, :].mean(axis=1)
        assert summary[model]["mean_auc_ci_low"] == pytest.approx(np.percentile(means, 5), abs=1e-9)
        assert summary[model]["mean_auc_ci_high"] == pytest.approx(np.percentile(means, 95), abs=1e-9)
        full = np.mean([roc_auc_score(targets[:, t], scores[m, :, t], sample_weight=weights[:, t]) for t in range(2)])
        assert summary[model]["mean_auc"] == pytest.approx(full, abs=1e-9)
        task_low = np.percentile(reference[:, m, 1], 5)
        assert summary[model]["tasks"]["t1"]["ci_low"] == pytest.approx(task_low, abs=1e-9)

    difference = stats.paired_difference(result, "a", "b")
    diffs = reference[:, 0, :].mean(axis=1) - reference[:, 1, :].mean(axis=1)
    assert difference["ci_low"] == pytest.approx(np.percentile(diffs, 5), abs=1e-9)
    expected_p = min(1.0, 2 * (1 + min((diffs <= 0).sum(), (diffs >= 0).sum())) / (len(diffs) + 1))
    assert difference["p"] == pytest.approx(expected_p, abs=1e-12)


def test_p_value_formula_and_identical_models():
    assert stats.bootstrap_p_value(np.array([0.1, 0.2, 0.3])) == pytest.approx(2 * 1 / 4)
    assert stats.bootstrap_p_value(np.array([-0.1, 0.2, 0.3, 0.4])) == pytest.approx(2 * 2 / 5)
    rng = np.random.default_rng(1)
    scores, targets, weights = _study(rng, 1, 30, 2)
    result = stats.bootstrap_aucs(np.concatenate([scores, scores]), targets, weights, ["x", "y"], ["t0", "t1"], 50, 0, 0.95)
    same = stats.paired_difference(result, "x", "y")
    assert same["diff"] == 0 and same["p"] == 1.0 and same["ci_low"] == 0 == same["ci_high"]


def test_spearman_equals_scipy_including_ties():
    rng = np.random.default_rng(2)
    for n in (3, 5, 16, 40):
        x = np.round(rng.random(n), 1)
        y = np.round(x + rng.normal(0, 0.3, n), 1)
        expected = spearmanr(x, y)
        result = stats.spearman(x, y)
        assert result["rho"] == expected.statistic and result["p"] == expected.pvalue and result["n"] == n


def test_spearman_small_or_constant_is_null_with_reason():
    assert stats.spearman([1, 2], [3, 4])["rho"] is None
    assert "3" in stats.spearman([1, 2], [3, 4])["reason"]
    assert stats.spearman([1, 2, 3], [5, 5, 5])["rho"] is None
    # NaNs (e.g. an architecture without a published top-1) are dropped before counting
    result = stats.spearman([1, np.nan, 3, 4], [1, 2, 2, 5])
    expected = spearmanr([1, 3, 4], [1, 2, 5])
    assert result["n"] == 3 and result["rho"] == expected.statistic and result["p"] == expected.pvalue


def _points_table() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    rng = np.random.default_rng(3)
    archs = pd.DataFrame({
        "arch": ["r18", "r34", "r50", "d121", "d169", "e0"],
        "family": ["resnet", "resnet", "resnet", "densenet", "densenet", "efficientnet"],
        "imagenet_top1": [69.8, 73.3, 76.1, 74.4, 75.6, 77.7],
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
    points = stats.correlation_points(summary["mean_auc"], models, archs, summary["boosts"])
    assert "r50-k1" not in set(points["model"])  # truncated models stay out of the correlations
    result = stats.study_correlations(points, baseline_init="random")
    top1 = archs.set_index("arch")["imagenet_top1"]
    for init in ("random", "imagenet"):
        group = models[(models["init"] == init) & (models["truncate"] == 0)]
        auc = group["model"].map(summary["mean_auc"])
        expected = spearmanr(group["arch"].map(top1), auc)
        assert result["imagenet_top1_vs_auc"][init]["rho"] == pytest.approx(expected.statistic, abs=1e-12)
        assert result["imagenet_top1_vs_auc"][init]["p"] == pytest.approx(expected.pvalue, abs=1e-12)
        expected = spearmanr(group["params"], auc)
        assert result["params_vs_auc"][init]["rho"] == pytest.approx(expected.statistic, abs=1e-12)
        assert result["params_vs_auc"][init]["p"] == pytest.approx(expected.pvalue, abs=1e-12)
    pretrained = models[(models["init"] == "imagenet") & (models["truncate"] == 0)]
    boost = [summary["boosts"][a]["imagenet"]["diff"] for a in pretrained["arch"]]
    expected = spearmanr(pretrained["params"], boost)
    assert result["params_vs_boost"]["imagenet"]["rho"] == pytest.approx(expected.statistic, abs=1e-12)
    assert "random" not in result["params_vs_boost"]
    assert result["imagenet_top1_vs_auc"]["random"]["paper_rho"] == 0.082
    assert result["imagenet_top1_vs_auc"]["imagenet"]["paper_rho"] == 0.059
    assert result["params_vs_boost"]["imagenet"]["paper_rho"] == -0.718


def test_family_spread_against_direct_computation():
    models, archs, summary = _points_table()
    points = stats.correlation_points(summary["mean_auc"], models, archs, summary["boosts"])
    spread = stats.family_spread(points[points["init"] == "random"])
    auc = summary["mean_auc"]
    assert spread["within"]["resnet"]["spread"] == pytest.approx(auc["r50-random"] - auc["r18-random"])
    assert spread["within"]["densenet"]["spread"] == pytest.approx(auc["d169-random"] - auc["d121-random"])
    assert spread["within"]["efficientnet"]["spread"] is None
    means = {"resnet": np.mean([auc[f"r{k}-random"] for k in (18, 34, 50)]),
             "densenet": np.mean([auc["d121-random"], auc["d169-random"]]), "efficientnet": auc["e0-random"]}
    assert spread["across"] == pytest.approx(max(means.values()) - min(means.values()))
    assert spread["best_family"] == max(means, key=means.get)
    one_family = stats.family_spread(points[(points["init"] == "random") & (points["family"] == "resnet")])
    assert one_family["across"] is None and "reason_across" in one_family


def test_correlation_points_unknown_architecture():
    models, archs, summary = _points_table()
    with pytest.raises(InputError, match="e0"):
        stats.correlation_points(summary["mean_auc"], models, archs[archs["arch"] != "e0"], summary["boosts"])


def test_truncation_efficiency_picks_smallest_not_worse():
    models = pd.DataFrame([
        {"model": "r50-imagenet", "arch": "r50", "init": "imagenet", "truncate": 0, "params": 24_000_000},
        {"model": "r50-k1", "arch": "r50", "init": "imagenet", "truncate": 1, "params": 9_000_000},
        {"model": "r50-k2", "arch": "r50", "init": "imagenet", "truncate": 2, "params": 2_000_000},
        {"model": "d121-imagenet", "arch": "d121", "init": "imagenet", "truncate": 0, "params": 7_000_000},
        {"model": "d121-k1", "arch": "d121", "init": "imagenet", "truncate": 1, "params": 5_000_000},
    ])
    differences = {
        "r50-k1": {"diff": -0.004, "p": 0.3},   # not significant: counts
        "r50-k2": {"diff": -0.05, "p": 0.002},  # significantly worse
        "d121-k1": {"diff": -0.03, "p": 0.01},  # significantly worse: d121 keeps its k=0 model
    }
    result = stats.truncation_efficiency(differences, models, confidence=0.95)
    assert result["by_reference"]["r50-imagenet"]["smallest_model"] == "r50-k1"
    assert result["by_reference"]["r50-imagenet"]["gain"] == pytest.approx(24 / 9)
    assert result["by_reference"]["d121-imagenet"]["gain"] == pytest.approx(1.0)
    assert result["average_gain"] == pytest.approx((24 / 9 + 1) / 2)
