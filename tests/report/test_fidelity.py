"""The paper-fidelity section of the report: each table shows the numbers of the metrics it is given."""

from __future__ import annotations

from cxrtransfer.report import fidelity

BOOTSTRAP = {
    "confidence": 0.95,
    "holm_floors": [
        {"family": "per-task boosts (imagenet)", "tests": 96, "replicates": 1000, "smallest_p": 2 / 1001,
         "smallest_holm_p": 96 * 2 / 1001},
        {"family": "boosts (imagenet)", "tests": 16, "replicates": 10000, "smallest_p": 2 / 10001,
         "smallest_holm_p": 16 * 2 / 10001},
    ],
    "best_vs_worst": {"random": {"diff": 0.052, "ci_low": 0.031, "ci_high": 0.07, "p": 0.002}},
    "best_vs_worst_reselected": {"random": {"spread": 0.052, "ci_low": 0.04, "ci_high": 0.081, "replicate_mean": 0.06,
                                            "models": 16, "best": "inception_v3", "worst": "mobilenet_v2",
                                            "best_kept_share": 0.25, "worst_kept_share": 0.5}},
    "truncation_rules": {
        "margin": 0.01, "paper_average_gain": 3.25,
        "by_reference": {"resnet18-imagenet": {
            "arch": "resnet18", "tested": [1, 2],
            "non_inferior": {"k": 1, "params_gain": 4.015, "flops_gain": 1.293},
            "no_significant_drop": {"k": 2, "params_gain": 16.35, "flops_gain": 1.829}}},
        "means": {r: {"params_gain": {"arithmetic": 4.0, "geometric": 3.0},
                      "flops_gain": {"arithmetic": 1.3, "geometric": 1.2}} for r in ("non_inferior", "no_significant_drop")},
        "paper_gain_combinations": [{"k": {"densenet121": 0, "mnasnet": 2, "resnet18": 1, "efficientnet_b0": 1},
                                     "mean": 3.2433}],
    },
}
CORRELATIONS = {"params_vs_auc": {"random": {"rho": 0.791, "p": 0.0003, "n": 16, "paper_rho": 0.791,
                                             "ci_low": 0.512, "ci_high": 0.902}}}


def test_section_shows_floors_spread_intervals_and_truncation_rules():
    text = fidelity.fidelity_markdown(BOOTSTRAP, CORRELATIONS)
    assert "| per-task boosts (imagenet) | 96 | 1000 | 0.002 | 0.192 | **no** |" in text
    assert "| boosts (imagenet) | 16 | 10000 | 0.0002 | 0.0032 | yes |" in text
    assert "| random | 16 | inception_v3 − mobilenet_v2 | +0.052 [+0.031, +0.070] | 0.002 | 0.052 [0.040, 0.081] | " \
           "0.060 | 25% / 50% |" in text
    assert "| parameters vs mean AUC | random | 0.791 [0.512, 0.902] | 0.0003 | 16 | 0.791 |" in text
    assert "| resnet18 | 1, 2 | k=1: 4.01x / 1.29x | k=2: 16.35x / 1.83x |" in text
    assert "densenet121 k0, efficientnet_b0 k1, mnasnet k2, resnet18 k1 (3.243x)" in text
    assert "max over a study's views of the logits" in text


def test_section_without_truncated_models_says_so():
    text = fidelity.fidelity_markdown({**BOOTSTRAP, "truncation_rules": {}}, CORRELATIONS)
    assert "(no truncated models)" in text
