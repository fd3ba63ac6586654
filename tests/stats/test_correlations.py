"""Spearman correlations of the study against scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from cxrtransfer.errors import InputError
from cxrtransfer.stats import correlations, significance


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
