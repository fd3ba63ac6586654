"""The two-level bootstrap (seeds and patients) against a direct simulation and against plain loops."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cxrtransfer.stats import auc, bootstrap, comparisons, seeds

SEEDS, STUDIES = 6, 150
SKILL, SEED_SD = 1.2, 0.5   # a run's score: label * (SKILL + SEED_SD * z_seed) + N(0, 1) noise per study


def _runs(rng: np.random.Generator, n_models: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A fresh test set and fresh seeds: scores (models, seeds, studies, 1), targets (studies, 1)."""
    targets = (rng.random((STUDIES, 1)) < 0.5).astype(float)
    skill = SKILL + SEED_SD * rng.standard_normal((n_models, SEEDS, 1, 1))
    scores = targets[None, None] * skill + rng.standard_normal((n_models, SEEDS, STUDIES, 1))
    return scores, targets


def test_two_level_spread_matches_a_direct_simulation_of_seed_and_test_set_noise():
    """The sampling SD of a seed-averaged AUC, from redrawing seeds and test sets (truth), against the
    two-level bootstrap's SD from one study at a time (averaged over studies). The test-set-only bootstrap
    misses the seed component; the two-level one recovers the total up to the (S - 1) / S of resampling S seeds."""
    rng = np.random.default_rng(0)
    truth = []
    for _ in range(3000):
        scores, targets = _runs(rng)
        truth.append(auc.auroc_matrix(scores[0], targets).mean())
    true_sd = float(np.std(truth))
    two_level_sd, test_only_sd = [], []
    for k in range(40):
        scores, targets = _runs(rng)
        result, _, test_only = seeds.two_level_bootstrap(scores, targets, np.ones_like(targets), ["m"], ["t"],
                                                         400, k, 0.95)
        two_level_sd.append(result.mean_replicates()[0].std())
        test_only_sd.append(test_only.mean(axis=1)[0].std())
    assert 0.82 < np.mean(two_level_sd) / true_sd < 1.08
    assert np.mean(test_only_sd) / true_sd < 0.7


def test_two_level_replicates_equal_a_plain_loop():
    """Same patient draws as the test-set bootstrap, seeds drawn per model; roc_auc_score per drawn run."""
    rng = np.random.default_rng(1)
    scores, targets = _runs(rng, n_models=2)
    scores, targets = scores[:, :3, :40], targets[:40]
    weights = np.ones_like(targets)
    result, point, _ = seeds.two_level_bootstrap(scores, targets, weights, ["a", "b"], ["t"], 25, 5, 0.9)
    counts = bootstrap.bootstrap_multiplicities(40, 25, 5)
    drawn = seeds.seed_multiplicities(3, 2, 25, 5)
    for r in range(25):
        for m in range(2):
            runs = [roc_auc_score(targets[:, 0], scores[m, s, :, 0], sample_weight=counts[r]) for s in range(3)]
            expected = sum(drawn[r, m, s] * runs[s] for s in range(3)) / 3
            assert result.replicates[m, 0, r] == pytest.approx(expected, abs=1e-12)
    assert point[1, 2, 0] == pytest.approx(roc_auc_score(targets[:, 0], scores[1, 2, :, 0]))
    assert result.point[1, 0] == pytest.approx(np.mean([roc_auc_score(targets[:, 0], scores[1, s, :, 0])
                                                        for s in range(3)]))


def test_seed_draws_are_resamples_per_model_and_seeded():
    drawn = seeds.seed_multiplicities(4, 3, 200, seed=2)
    assert drawn.shape == (200, 3, 4) and (drawn.sum(axis=2) == 4).all()
    assert not (drawn[:, 0] == drawn[:, 1]).all()   # each model draws its own seeds
    assert (drawn == seeds.seed_multiplicities(4, 3, 200, seed=2)).all()
    assert 0.25 < (drawn == 0).mean() < 0.4          # (3/4)^4 = 0.316 of a seed's draws leave it out


def test_summary_and_rank_first_by_hand():
    """Two models, two replicates, mean AUCs written out: a ranks first in one of two; SD as statistics.stdev."""
    result = bootstrap.Bootstrap(["a", "b"], ["t"], np.array([[0.7], [0.6]]), np.array([[[0.8, 0.5]], [[0.6, 0.7]]]),
                                 2, 0, 0.9)
    assert seeds.rank_first(result, {"random": ["a", "b"]}) == {"random": {"a": 0.5, "b": 0.5}}
    run_point = np.array([[[0.70], [0.74], [0.66]], [[0.6], [0.6], [0.6]]])
    summary = seeds.seed_summary(result, run_point, np.zeros((2, 1, 2)), [0, 1, 2])
    assert summary["a"]["seed_sd"] == pytest.approx(statistics.stdev([0.70, 0.74, 0.66]))
    assert summary["a"]["seed_auc"] == {"0": 0.70, "1": 0.74, "2": 0.66}
    assert summary["b"]["seed_sd"] == 0.0


def test_comparisons_run_on_seed_averaged_aucs():
    """A truncation difference on the two-level result: the difference of the seed means, two-level CI."""
    rng = np.random.default_rng(3)
    scores, targets = _runs(rng, n_models=2)
    result, point, _ = seeds.two_level_bootstrap(scores, targets, np.ones_like(targets), ["a-x", "a-k1"], ["t"],
                                                 200, 0, 0.95)
    models = pd.DataFrame({"model": ["a-x", "a-k1"], "arch": "a", "init": "x", "family": "f", "truncate": [0, 1],
                           "params": [10, 5]})
    difference = comparisons.truncation_differences(result, models)["a-k1"]
    assert difference["diff"] == pytest.approx(point[1].mean() - point[0].mean())
    assert difference["ci_low"] < difference["diff"] < difference["ci_high"]
