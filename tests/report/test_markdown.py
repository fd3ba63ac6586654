"""The report's text: numbers formatted as the tables print them, tables that carry the metrics' values."""

from __future__ import annotations

import pandas as pd

from cxrtransfer.report import markdown


def test_numbers_are_formatted_for_tables():
    assert markdown.fmt_ci(0.87149, 0.85, 0.8936) == "0.871 [0.850, 0.894]"
    assert markdown.fmt_ci(0.0123, -0.004, 0.031, signed=True) == "+0.012 [-0.004, +0.031]"
    assert markdown.fmt_ci(float("nan"), 0, 1) == "–" and markdown.fmt(None) == "–"
    assert markdown.fmt_p(0) == "< 1e-06" and markdown.fmt_p(0.012345) == "0.0123" and markdown.fmt_p(None) == "–"
    assert markdown.fmt_p_holm({"p": 0.01, "p_holm": 0.03}) == "0.01 (0.03)" and markdown.fmt_p_holm({}) == "–"
    assert markdown.fmt_params(6_960_006) == "6.96 M"


def test_markdown_table_has_one_row_per_entry_under_its_header():
    table = markdown.markdown_table(["model", "AUC"], [["a", 0.9], ["b", 0.8]]).splitlines()
    assert table == ["| model | AUC |", "|---|---|", "| a | 0.9 |", "| b | 0.8 |"]


def test_the_baseline_init_comes_first():
    assert markdown.inits_in_order(["indomain", "random", "imagenet", "random"], "random") == \
        ["random", "imagenet", "indomain"]
    assert markdown.inits_in_order(["indomain"], "random") == ["indomain"]


def test_resampling_text_says_whether_the_unit_matters():
    unit = {"resampled": "patient", "patients": 3, "studies": 6, "max_studies_per_patient": 3}
    assert "3 test patients, 6 test studies" in markdown.resampling_text({"unit": unit})
    assert "all studies of a drawn patient come along" in markdown.resampling_text({"unit": unit})
    assert "too narrow" in markdown.resampling_text({"unit": {**unit, "resampled": "study"}})
    single = {**unit, "patients": 6, "max_studies_per_patient": 1}
    assert "exactly the replicates of a study bootstrap" in markdown.resampling_text({"unit": single})


def test_task_table_prints_each_task_auc_with_its_interval():
    bootstrap = {"models": {"m": {"mean_auc": 0.8, "tasks": {"Edema": {"auc": 0.9123, "ci_low": 0.88, "ci_high": 0.94},
                                                           "Atelectasis": {"auc": 0.7, "ci_low": 0.6, "ci_high": 0.8}}}}}
    table = markdown.task_table(bootstrap)
    assert "0.912 [0.880, 0.940]" in table and "0.700 [0.600, 0.800]" in table
    assert pd.Series(table.splitlines()).str.startswith("|").all()
