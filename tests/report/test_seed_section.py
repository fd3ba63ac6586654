"""The report's training-seed section: the verdict per comparison, and nothing with a single seed."""

from __future__ import annotations

import pytest

from cxrtransfer.report import seeds


def _d(diff, low, high):
    return {"diff": diff, "ci_low": low, "ci_high": high, "p": 0.04}


@pytest.mark.parametrize("single, averaged, expected", [
    (_d(0.07, 0.04, 0.10), _d(0.04, -0.01, 0.08), "does not survive"),
    (_d(0.07, 0.04, 0.10), _d(0.05, 0.01, 0.09), "survives seed noise"),
    (_d(-0.07, -0.10, -0.04), _d(0.05, 0.01, 0.09), "does not survive"),   # the sign flips: not the same verdict
    (_d(0.02, -0.01, 0.05), _d(0.05, 0.01, 0.09), "significant only on the seed mean"),
    (_d(0.02, -0.01, 0.05), _d(0.01, -0.02, 0.04), "not significant either way"),
])
def test_verdict_reads_both_intervals(single, averaged, expected):
    assert expected in seeds.verdict(single, averaged)


def test_one_seed_adds_no_section_and_no_figure(tmp_path):
    bootstrap = {"models": {"a": {}}, "truncation": {"a-k1": _d(0.1, 0.05, 0.15)}}
    assert seeds.seeds_markdown(bootstrap, {}) == ""
    assert seeds.write_seed_figure(tmp_path, bootstrap) == [] and not list(tmp_path.iterdir())


def test_a_truncation_sentence_names_both_verdicts():
    bootstrap = {"truncation": {"a-k1": _d(0.072, 0.038, 0.105)},
                 "seeds": {"boosts": {}, "mean_boost": {}, "best_vs_worst": {}, "truncation": {"a-k1": _d(0.036, -0.006, 0.084)}}}
    [line] = seeds.headline_sentences(bootstrap)
    assert line.startswith("- a-k1 − its k = 0 model: seed 0 +0.072 [+0.038, +0.105]")
    assert "seed mean +0.036 [-0.006, +0.084]" in line and "does not survive seed noise" in line
