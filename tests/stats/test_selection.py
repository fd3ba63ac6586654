"""Selection-aware best-minus-worst spread and the smallest Holm-adjusted p a family can reach."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrtransfer.stats import bootstrap, selection, significance


def _result() -> tuple[bootstrap.Bootstrap, pd.DataFrame]:
    # 3 architectures, 1 task, 5 replicates. Full set: a best (0.80), c worst (0.70).
    replicates = np.array([[0.80, 0.76, 0.81, 0.79, 0.70],
                           [0.75, 0.77, 0.74, 0.78, 0.76],
                           [0.70, 0.71, 0.69, 0.72, 0.74]])[:, None, :]
    point = np.array([[0.80], [0.75], [0.70]])
    result = bootstrap.Bootstrap(["a-random", "b-random", "c-random"], ["Edema"], point, replicates, 5, 0, 0.8)
    models = pd.DataFrame({"model": result.models, "arch": ["a", "b", "c"], "init": "random", "truncate": 0,
                           "family": ["f", "f", "g"], "params": [1, 2, 3]})
    return result, models


def test_spread_is_reselected_inside_every_replicate():
    result, models = _result()
    entry = selection.reselected_spread(result, models)["random"]
    # plain loop: per replicate, max minus min over the three models
    spreads = [max(result.replicates[:, 0, r]) - min(result.replicates[:, 0, r]) for r in range(5)]
    assert spreads == pytest.approx([0.10, 0.06, 0.12, 0.07, 0.06])
    low, high = np.quantile(spreads, [0.1, 0.9])
    assert entry["spread"] == pytest.approx(0.10)
    assert (entry["ci_low"], entry["ci_high"]) == pytest.approx((low, high))
    assert entry["replicate_mean"] == pytest.approx(np.mean(spreads))
    # the as-picked pair (a best, c worst) differs from the re-selected one in replicates 2 and 5
    as_picked = result.replicates[0, 0] - result.replicates[2, 0]
    assert np.any(as_picked < np.array(spreads))
    # a is best in replicates 1, 3, 4; c is worst in replicates 1-4
    assert (entry["best"], entry["worst"]) == ("a", "c")
    assert entry["best_kept_share"] == pytest.approx(3 / 5) and entry["worst_kept_share"] == pytest.approx(4 / 5)


def test_one_model_per_init_has_no_spread():
    result, models = _result()
    models.loc[1:, "init"] = ["imagenet", "indomain"]
    assert "random" not in selection.reselected_spread(result, models)


def test_smallest_holm_p_is_the_bootstrap_floor_times_the_family_size():
    # 1,000 replicates: the smallest p is 2/1001; 96 tests (16 architectures x 6 tasks): 0.1918..., no rejection
    assert selection.smallest_holm_p(1000, 96) == pytest.approx(0.191808191808)
    assert selection.smallest_holm_p(10000, 96) == pytest.approx(0.019198080192)
    assert selection.smallest_holm_p(10, 96) == 1.0
    # the floor is attained: R replicates all of one sign give p = 2/(R+1), Holm over m equal p's gives m times it
    p = bootstrap.bootstrap_p_value(np.full(1000, 0.01))
    assert p == pytest.approx(2 / 1001)
    assert significance.holm([p] * 96)[0] == pytest.approx(selection.smallest_holm_p(1000, 96))


def test_holm_floors_count_each_family():
    metrics = {
        "boosts": {"a": {"imagenet": {"p": 0.1, "tasks": {"t1": {"p": 0.2}, "t2": {"p": 0.3}}}},
                   "b": {"imagenet": {"p": 0.1, "tasks": {"t1": {"p": 0.2}, "t2": {"p": 0.3}}}}},
        "mean_boost": {"imagenet": {"p": 0.01}},
        "best_vs_worst": {"random": {"p": 0.5}, "imagenet": {"p": 0.5}},
        "families": {"random": {"within": {"f": {"p": 0.3}, "g": {"diff": None, "reason": "one model"}}}},
        "comparisons": {}, "truncation": {"x": {"p": None}},
    }
    floors = {f["family"]: (f["tests"], f["smallest_holm_p"]) for f in selection.holm_floors(metrics, 999)}
    assert floors == {"boosts (imagenet)": (2, pytest.approx(0.004)),
                      "per-task boosts (imagenet)": (4, pytest.approx(0.008)),
                      "mean boost": (1, pytest.approx(0.002)), "best vs worst": (2, pytest.approx(0.004)),
                      "within families (random)": (1, pytest.approx(0.002))}
