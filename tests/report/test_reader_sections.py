"""The report's tables on external models and readers."""

from __future__ import annotations

from cxrtransfer.report import readers

BOOTSTRAP = {
    "models": {"m": {"mean_auc": 0.8, "tasks": {"Edema": {}, "No Finding": {}}}},
    "external": {"lab": {
        "family": "external", "tasks_scored": ["Edema"], "tasks_missing": ["No Finding"],
        "mean_auc": 0.75, "mean_auc_ci_low": 0.7, "mean_auc_ci_high": 0.8,
        "tasks": {"Edema": {"auc": 0.75, "ci_low": 0.7, "ci_high": 0.8}},
        "versus": {"m": {"diff": -0.05, "ci_low": -0.1, "ci_high": 0.01, "p": 0.12, "p_holm": 0.12}}}},
    "readers": {"names": ["bc4"],
                "operating_points": {"Edema": {"bc4": {
                    "sensitivity": 0.6, "sensitivity_ci_low": 0.5, "sensitivity_ci_high": 0.7,
                    "specificity": 0.9, "specificity_ci_low": 0.85, "specificity_ci_high": 0.95}}},
                "under_curve": {"lab": {"Edema": {"count": 1, "readers": 1, "ci_low": 0.0, "ci_high": 1.0}},
                                "m": {"Edema": {"count": 0, "readers": 1, "ci_low": 0.0, "ci_high": 1.0},
                                      "No Finding": {"count": 1, "readers": 1, "ci_low": 1.0, "ci_high": 1.0}}}},
}


def test_external_row_says_which_tasks_it_lacks():
    text = readers.readers_markdown(BOOTSTRAP)
    row = next(line for line in text.splitlines() if line.startswith("| lab |"))
    assert row == ("| lab | external | 1 of 2 (no No Finding) | 0.750 [0.700, 0.800] | 0.750 [0.700, 0.800] "
                   "| not predicted |")
    assert "| lab − m | Edema | -0.050 [-0.100, +0.010] | 0.12 | 0.12 |" in text


def test_reader_tables():
    text = readers.readers_markdown(BOOTSTRAP)
    assert "| Edema | bc4 | 0.600 [0.500, 0.700] | 0.900 [0.850, 0.950] |" in text
    assert "| lab | 1/1 [0.0, 1.0] | not predicted |" in text
    assert "| m | 0/1 [0.0, 1.0] | 1/1 [1.0, 1.0] |" in text


def test_nothing_without_external_models_or_readers():
    assert readers.readers_markdown({"models": BOOTSTRAP["models"]}) == ""
