"""The study stages with two training seeds, on the tiny fixture folders of test_study_stages.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_study_stages import MODELS, TRUNCATED, build_fixture, outputs

from cxrtransfer.errors import InputError
from stages import bootstrap as bootstrap_stage
from stages import correlate as correlate_stage
from stages import ensemble as ensemble_stage
from stages import report as report_stage


def with_seeds(paths: dict[str, Path], seeds: list[int]) -> None:
    params = yaml.safe_load(paths["params"].read_text())
    paths["params"].write_text(yaml.safe_dump({**params, "seeds": seeds}))


def add_repeats(paths: dict[str, Path], seed: int, same: str) -> None:
    """data/seeds/<model>-s<seed>/model for every model: `same` repeats its seed-0 predictions exactly,
    the others get new noise."""
    rng = np.random.default_rng(seed)
    for name in [*MODELS, *TRUNCATED]:
        source = (paths["models"] if name in MODELS else paths["trunc"]) / name
        target = paths["seeds"] / f"{name}-s{seed}" / "model"
        shutil.copytree(source, target)
        if name != same:
            frame = pd.read_csv(target / "test_predictions.csv")
            tasks = [c for c in frame.columns if c not in ("checkpoint", "path", "patient", "study")]
            frame[tasks] = np.clip(frame[tasks] + rng.normal(0, 0.1, frame[tasks].shape), 0, 1).round(3)
            frame.to_csv(target / "test_predictions.csv", index=False)


def run_study(paths: dict[str, Path], out: dict[str, Path]) -> None:
    ensemble_stage.main(["--params", str(paths["params"]), "--models", str(paths["models"]),
                         "--truncated", str(paths["trunc"]), "--seeds", str(paths["seeds"]),
                         "--index", str(paths["index"]), "--split", str(paths["split"]),
                         "--out", str(out["ensemble"]), "--metrics", str(out["ensemble_metrics"])])
    bootstrap_stage.main(["--params", str(paths["params"]), "--ensemble", str(out["ensemble"]),
                          "--out", str(out["bootstrap"]), "--plot", str(out["plot"])])
    correlate_stage.main(["--params", str(paths["params"]), "--bootstrap", str(out["bootstrap"]),
                          "--ensemble", str(out["ensemble"]), "--architectures", str(paths["architectures"]),
                          "--out", str(out["correlations"]), "--points", str(out["points"])])
    report_stage.main(["--bootstrap", str(out["bootstrap"]), "--correlations", str(out["correlations"]),
                       "--points", str(out["points"]), "--ensemble", str(out["ensemble"]),
                       "--out", str(out["summary"]), "--figures", str(out["figures"])])


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """The same fixture study with seeds [0] and with seeds [0, 1] (seed-1 repeats in data/seeds)."""
    runs = {}
    for label, seeds in (("one", [0]), ("two", [0, 1])):
        root = tmp_path_factory.mktemp(label)
        paths = build_fixture(root)
        paths["seeds"] = root / "data/seeds"
        with_seeds(paths, seeds)
        if len(seeds) > 1:
            add_repeats(paths, 1, same="r18-random")
        run_study(paths, outputs(root))
        runs[label] = outputs(root)
    return runs


def test_a_second_seed_leaves_every_single_seed_output_as_it_was(study):
    """Seed 0's tables, CSVs and figures are byte for byte those of the one-seed study; only additions."""
    one, two = study["one"], study["two"]
    for name in ("test_predictions.csv", "test_labels.csv", "models.csv"):   # models.csv names its tmp folders
        roots = [str(out["ensemble"].parents[1]) for out in (one, two)]
        texts = [(out["ensemble"] / name).read_text().replace(root, "ROOT") for out, root in zip((one, two), roots)]
        assert texts[0] == texts[1]
    assert not (one["ensemble"] / "seed_predictions.csv").exists() and (two["ensemble"] / "seed_predictions.csv").exists()
    single, repeated = json.loads(one["bootstrap"].read_text()), json.loads(two["bootstrap"].read_text())
    assert {k: v for k, v in repeated.items() if k != "seeds"} == single and "seeds" not in single
    assert one["plot"].read_bytes() == two["plot"].read_bytes()
    summary_one, summary_two = one["summary"].read_text(), two["summary"].read_text()
    assert "Training seeds" not in summary_one and summary_two.startswith(summary_one.split("## Figures")[0])
    assert sorted(p.name for p in two["figures"].iterdir()) == sorted([*(p.name for p in one["figures"].iterdir()),
                                                                       "auc_by_seed.png"])


def test_the_seed_section_holds_each_seed_and_the_two_level_statistics(study):
    single = json.loads(study["one"]["bootstrap"].read_text())
    seeds = json.loads(study["two"]["bootstrap"].read_text())["seeds"]
    assert seeds["seeds"] == [0, 1] and set(seeds["models"]) == set(single["models"])
    for model, entry in seeds["models"].items():
        assert entry["seed_auc"]["0"] == pytest.approx(single["models"][model]["mean_auc"], abs=1e-6)
        assert entry["mean_auc"] == pytest.approx(np.mean(list(entry["seed_auc"].values())), abs=1e-6)
        assert entry["ci_low"] <= entry["mean_auc"] <= entry["ci_high"]
    assert seeds["models"]["r18-random"]["seed_sd"] == 0   # its seed-1 run repeats seed 0 exactly
    assert seeds["models"]["d121-imagenet"]["seed_sd"] > 0
    for by_init in seeds["rank_first"].values():
        assert sum(by_init.values()) == pytest.approx(1.0)
    assert set(seeds["truncation"]) == {"r34-k1"} and set(seeds["boosts"]) == set(single["boosts"])
    correlations = json.loads(study["two"]["correlations"].read_text())
    assert correlations["seed_means"]["params_vs_auc"]["random"]["n"] == 3
    summary = study["two"]["summary"].read_text()
    assert "## Training seeds" in summary and "r34-k1 − its k = 0 model: seed 0" in summary


def test_a_declared_repeat_without_its_folder_is_an_error_naming_it(tmp_path):
    paths = build_fixture(tmp_path)
    paths["seeds"] = tmp_path / "data/seeds"
    with_seeds(paths, [0, 3])
    with pytest.raises(InputError, match="d121-imagenet seed 3 is declared") as error:
        run_study(paths, outputs(tmp_path))
    assert "data/seeds/d121-imagenet-s3/model" in str(error.value)
