"""Truncation rules (non-inferiority at a margin, the paper's no-significant-drop) and their gains."""

from __future__ import annotations

import pandas as pd
import pytest

from cxrtransfer.stats import truncation

MODELS = pd.DataFrame([
    {"model": "r18-imagenet", "arch": "r18", "init": "imagenet", "truncate": 0, "params": 0},
    {"model": "r18-k1", "arch": "r18", "init": "imagenet", "truncate": 1, "params": 0},
    {"model": "r18-k2", "arch": "r18", "init": "imagenet", "truncate": 2, "params": 0},
    {"model": "d121-imagenet", "arch": "d121", "init": "imagenet", "truncate": 0, "params": 0},
    {"model": "d121-k1", "arch": "d121", "init": "imagenet", "truncate": 1, "params": 0},
])
COSTS = {"r18": {0: {"params": 12.0, "training_flops": 8.0}, 1: {"params": 3.0, "training_flops": 4.0},
                 2: {"params": 1.0, "training_flops": 2.0}},
         "d121": {0: {"params": 8.0, "training_flops": 12.0}, 1: {"params": 4.0, "training_flops": 10.0}}}


def test_two_rules_and_their_gains():
    differences = {
        # r18 k1: CI [-0.015, 0.004], not significant (p 0.3) but not non-inferior at 0.01
        "r18-k1": {"diff": -0.005, "ci_low": -0.015, "ci_high": 0.004, "p": 0.3},
        "r18-k2": {"diff": -0.002, "ci_low": -0.008, "ci_high": 0.004, "p": 0.6},
        # d121 k1: non-inferior at 0.01 (lower bound -0.009)
        "d121-k1": {"diff": -0.001, "ci_low": -0.009, "ci_high": 0.007, "p": 0.8},
    }
    out = truncation.truncation_rules(differences, MODELS, confidence=0.95, margin=0.01, costs=COSTS)
    r18, d121 = out["by_reference"]["r18-imagenet"], out["by_reference"]["d121-imagenet"]
    assert r18["non_inferior"] == {"k": 0, "params_gain": 1.0, "flops_gain": 1.0}  # stops at k1
    assert r18["no_significant_drop"] == {"k": 2, "params_gain": 12.0, "flops_gain": 4.0}
    assert d121["non_inferior"] == d121["no_significant_drop"] == {"k": 1, "params_gain": 2.0, "flops_gain": 1.2}
    means = out["means"]["no_significant_drop"]["params_gain"]
    assert means["arithmetic"] == pytest.approx(7.0) and means["geometric"] == pytest.approx(24 ** 0.5)
    assert out["means"]["non_inferior"]["flops_gain"]["geometric"] == pytest.approx(1.2 ** 0.5)
    # a wider margin makes r18 k1 non-inferior too
    wide = truncation.truncation_rules(differences, MODELS, confidence=0.95, margin=0.02, costs=COSTS)
    assert wide["by_reference"]["r18-imagenet"]["non_inferior"]["k"] == 2
    assert out["paper_average_gain"] == 3.25


def test_gain_combinations_find_the_choices_near_the_target():
    # mean gains: (1, 1)=1, (4, 1)=2.5, (12, 1)=6.5, (1, 2)=1.5, (4, 2)=3.0, (12, 2)=7.0
    found = truncation.gain_combinations(COSTS, 3.0, tolerance=0.01)
    assert found == [{"k": {"d121": 1, "r18": 1}, "mean": 3.0}]
    assert [c["k"] for c in truncation.gain_combinations(COSTS, 2.75, tolerance=0.3)] == [
        {"d121": 0, "r18": 1}, {"d121": 1, "r18": 1}]


def test_without_costs_the_trained_models_parameters_give_the_gain():
    models = MODELS.assign(params=[12, 3, 1, 8, 4])
    differences = {"d121-k1": {"diff": -0.001, "ci_low": -0.009, "ci_high": 0.007, "p": 0.8}}
    out = truncation.truncation_rules(differences, models, confidence=0.95, margin=0.01, costs={})
    assert out["by_reference"]["d121-imagenet"]["non_inferior"] == {"k": 1, "params_gain": 2.0, "flops_gain": None}
    assert out["means"]["non_inferior"]["flops_gain"] == {"arithmetic": None, "geometric": None}
    assert out["paper_gain_combinations"] == []
