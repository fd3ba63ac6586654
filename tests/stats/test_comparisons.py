"""The paper's comparisons on bootstrap replicates against plain computations: boosts, families, truncation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from cxrtransfer.stats import bootstrap, comparisons
from tests.stats.test_bootstrap import _study
from tests.stats.test_significance import _delong_slow as delong_from_the_definition
from tests.stats.test_significance import plain_holm


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
    holm = plain_holm({init: best_worst[init]["p"] for init in ("random", "imagenet")})
    assert {init: best_worst[init]["p_holm"] for init in ("random", "imagenet")} == pytest.approx(holm, abs=1e-12)

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
    # DeLong from the O(n^2) definition on the studies that carry weight (not the project's fast version)
    kept = weights[:, 1] > 0
    auc, z = delong_from_the_definition(scores[a, kept, 1], scores[b, kept, 1], targets[kept, 1])
    assert boosts["r50"]["imagenet"]["tasks"]["t1"]["p_delong"] == pytest.approx(2 * norm.sf(abs(z)), abs=1e-9)
    assert boosts["r50"]["imagenet"]["tasks"]["t1"]["diff"] == pytest.approx(auc[0] - auc[1], abs=1e-12)
    archs = ["e0", "r18", "r50"]
    holm = plain_holm({x: boosts[x]["imagenet"]["p"] for x in archs})
    assert {x: boosts[x]["imagenet"]["p_holm"] for x in archs} == pytest.approx(holm, abs=1e-12)


def test_per_task_families_carry_holm_over_delong_too():
    models, result, arrays = _analysis_study()
    boosts = comparisons.pretraining_boosts(result, models, "random", arrays)
    entries = [boosts[a]["imagenet"]["tasks"][t] for a in sorted(boosts) if "imagenet" in boosts[a]
               for t in sorted(boosts[a]["imagenet"]["tasks"])]
    assert len(entries) > 2
    expected = plain_holm({i: e["p_delong"] for i, e in enumerate(entries)})
    assert {i: e["p_delong_holm"] for i, e in enumerate(entries)} == pytest.approx(expected)
    expected = plain_holm({i: e["p"] for i, e in enumerate(entries)})
    assert {i: e["p_holm"] for i, e in enumerate(entries)} == pytest.approx(expected)
