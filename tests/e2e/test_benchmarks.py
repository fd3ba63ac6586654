"""The benchmark suite in smoke mode: every row present with numbers, and its correctness checks hold.

No timing assertions: speed depends on the machine; the suite's own targets are reported, not tested.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from benchmarks import pipeline, run
from cxrtransfer.data import real_labels

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[int, dict, Path]:
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "metrics" / "bench.json"
    code = run.main(["--smoke", "--out", str(out)])
    return code, json.loads(out.read_text()), folder


def expected_keys() -> set[str]:
    sizes = run.suite_sizes(True, 76, 16, 128)
    train, prep = sizes["train"], sizes["preprocess"]
    keys = {f"train/{a}/{s}px" for a in train.archs for s in train.image_sizes}
    keys |= {f"eval/{a}/{train.image_sizes[0]}px" for a in train.archs}
    keys |= {f"preprocess/{c.key}" for c in prep.cases} | {f"decode/{c.key}" for c in prep.cases}
    keys.add(f"host/{sizes['host'].image_size}px")
    return keys | {"bootstrap", "real-labels"} | set(pipeline.KEYS.values())


def test_every_row_is_written_with_numbers(smoke):
    code, result, folder = smoke
    assert code == 0, result["checks_failed"]
    assert result["mode"] == "smoke"
    assert set(result["rows"]) == expected_keys()
    for key, r in result["rows"].items():
        if "skipped" in r:
            continue
        for field in ("project", "baseline", "ratio"):
            assert isinstance(r[field], (int, float)) and math.isfinite(r[field]) and r[field] > 0, (key, field)
        # ratio = times as fast as the baseline (seconds: baseline / project); stage counts: rerun / all
        direct = r["unit"] in ("img/s", "stages")
        expected = r["project"] / r["baseline"] if direct else r["baseline"] / r["project"]
        assert r["ratio"] == pytest.approx(expected, rel=1e-3), key
        assert r["passed"] in (True, False, None)
    # written atomically: no temporary file left beside the result
    assert [p.name for p in (folder / "metrics").iterdir()] == ["bench.json"]


def test_pipeline_rows_are_skipped_with_a_reason_in_smoke_mode(smoke):
    _, result, _ = smoke
    for key in pipeline.KEYS.values():
        assert "smoke" in result["rows"][key]["skipped"]


@pytest.mark.skipif(real_labels.real_chexpert_labels_path() is None,
                    reason="torchxrayvision (test extra) not installed: no real CheXpert label file to measure")
def test_real_labels_row_is_measured(smoke):
    _, result, _ = smoke
    r = result["rows"]["real-labels"]
    assert r["details"]["rows"] > 200_000
    assert r["details"]["rows_per_s"] == pytest.approx(r["details"]["rows"] / r["project"], rel=1e-3)
    assert all(r["checks"].values()), r["checks"]


def test_bootstrap_equals_sklearn(smoke):
    _, result, _ = smoke
    r = result["rows"]["bootstrap"]
    assert r["details"]["max_abs_difference"] <= 1e-9
    assert r["details"]["loop_replicates_timed"] >= 1
    assert all(r["checks"].values())


def test_preprocessing_output_matches_the_naive_loop(smoke):
    _, result, _ = smoke
    rows = [r for k, r in result["rows"].items() if k.startswith("preprocess/")]
    assert rows
    for r in rows:
        assert r["checks"]["same shape"] is True
        assert r["details"]["mean_abs_diff"] < 2.0
        assert all(r["checks"].values()), r["checks"]


def test_inference_rows_check_predict_outputs(smoke):
    _, result, _ = smoke
    for key, r in result["rows"].items():
        if key.startswith("eval/"):
            assert r["checks"] and all(r["checks"].values()), (key, r["checks"])
            train = result["rows"][key.replace("eval/", "train/")]
            assert r["baseline"] == pytest.approx(train["project"])  # the same run's training step


def test_expected_reruns_follow_dvc_yaml():
    """The stages that read overrides.<arch> in dvc.yaml are the model stages the row expects to rerun,
    named as DVC names them (`dvc stage list` on this repository's dvc.yaml and params.yaml)."""
    import subprocess
    import sys
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    per_arch = {name for name, stage in dvc["stages"].items() if "overrides.${item.arch}" in stage.get("params", [])}
    assert per_arch == {"train_random", "train_weights", "train_indomain", "truncate",
                        "seed_random", "seed_weights", "seed_indomain", "seed_truncate"}   # seed groups: params seeds
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    listed = set(subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout.split())
    truncated = params["truncation"]["architectures"][0]
    plain = pipeline.pick_architecture(params)
    assert plain not in params["truncation"]["architectures"]
    assert params["seeds"] == [0, 1]  # the demo's two seeds: each model's seed-0 note and seed-1 repeat rerun too
    assert pipeline.expected_reruns(params, plain) == {
        f"train_random@{plain}-random", f"train_indomain@{plain}-indomain", f"seed_random@{plain}-random-0",
        f"seed_indomain@{plain}-indomain-0", f"seed_random@{plain}-random-1", f"seed_indomain@{plain}-indomain-1",
        *pipeline.STUDY_STAGES}
    with_truncation = pipeline.expected_reruns(params, truncated)
    assert with_truncation <= listed
    assert {s for s in listed if s.startswith(f"truncate@{truncated}-")} <= with_truncation
    assert set(pipeline.STUDY_STAGES) <= set(dvc["stages"])
