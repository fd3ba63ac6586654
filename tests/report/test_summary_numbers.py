"""Every number reports/summary.md prints, and every point its figures plot, against the metrics it comes from.

Two reports are read back: the study stages' on the fixture of tests/stages/test_study_stages.py (six models,
a truncated one, a comparison), and the report stage run as dvc.yaml runs it on the committed metrics/.
Figures are captured as matplotlib Figure objects where the report saves them, and their data compared.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.colors import to_rgba
from scipy.stats import linregress

from cxrtransfer.report import figures, markdown
from stages import report as report_stage
from tests.report import summary_check
from tests.stages.test_study_stages import build_fixture, outputs, run_all

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def captured(monkeypatch):
    """File name -> the Figure drawn into it (still saved as the report saves it)."""
    drawn = {}
    save = figures._save

    def keep(figure, path):
        drawn[Path(path).name] = figure
        save(figure, path)
    monkeypatch.setattr(figures, "_save", keep)
    return drawn


def _inputs(bootstrap_path: Path, correlations_path: Path, points_path: Path, models_path: Path) -> dict:
    bootstrap = json.loads(bootstrap_path.read_text())
    correlations = json.loads(correlations_path.read_text())
    return {"bootstrap": bootstrap, "correlations": correlations, "points": pd.read_csv(points_path),
            "models": pd.read_csv(models_path), "baseline_init": correlations.get("baseline_init", "random"),
            "correlation_titles": markdown.CORRELATION_TITLES}


@pytest.fixture
def fixture_report(tmp_path, captured):
    paths = build_fixture(tmp_path)
    out = outputs(tmp_path)
    run_all(paths, out)
    inputs = _inputs(out["bootstrap"], out["correlations"], out["points"], out["ensemble"] / "models.csv")
    return out["summary"].read_text(), inputs, dict(captured)


@pytest.fixture
def committed_report(tmp_path, captured):
    """The report stage's command from dvc.yaml on the committed metrics; the ensemble's models.csv (a DVC
    output, not in git) rebuilt from the committed metrics/plots/auc_by_model.csv, which carries its columns."""
    ensemble = tmp_path / "ensemble"
    ensemble.mkdir()
    auc_by_model = pd.read_csv(REPO / "metrics/plots/auc_by_model.csv")
    auc_by_model[["model", "arch", "init", "family", "truncate", "params"]].to_csv(ensemble / "models.csv", index=False)
    command = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["report"]["cmd"]
    argv = shlex.split(command)[2:]  # drop "python stages/report.py"
    replace = {"--ensemble": str(ensemble), "--out": str(tmp_path / "summary.md"), "--figures": str(tmp_path / "fig")}
    argv = [replace.get(argv[i - 1], REPO / a if (REPO / a).exists() else a) if i else a for i, a in enumerate(argv)]
    # The readers' ROC figure reads the ensemble's predictions (DVC outputs, not in git): the committed
    # bootstrap without its readers section (tests/report/test_reader_sections.py checks that section).
    bootstrap = json.loads((REPO / "metrics/bootstrap.json").read_text())
    bootstrap.pop("readers", None)
    (tmp_path / "bootstrap.json").write_text(json.dumps(bootstrap))
    argv[argv.index("--bootstrap") + 1] = tmp_path / "bootstrap.json"
    report_stage.main([str(a) for a in argv])
    arguments = dict(zip(argv[::2], argv[1::2]))
    inputs = _inputs(Path(arguments["--bootstrap"]), Path(arguments["--correlations"]), Path(arguments["--points"]),
                     ensemble / "models.csv")
    return (tmp_path / "summary.md").read_text(), inputs, dict(captured)


def _check_every_section(text: str, inputs: dict, sources: list) -> None:
    found = summary_check.sections(text)
    sources = sources + [markdown.CORRELATION_TITLES]  # row labels such as "top-1 (2020 docs)"
    checked = 0
    for title, section_text in found.items():
        check = summary_check.SECTION_CHECKS.get(title)
        if check is not None:
            checked += check(section_text, inputs)
        # every section, known or added later: no printed table number without a source value
        assert summary_check.unexplained_numbers(section_text, sources) == [], title
    assert checked > 20
    expected_sections = {"", "Models", "AUC per task", "Correlations (Spearman)", "Family versus size"}
    assert expected_sections <= set(found), set(found)


def test_fixture_summary_prints_the_metrics_values(fixture_report):
    text, inputs, _ = fixture_report
    assert {"Truncation", "Comparisons"} <= set(summary_check.sections(text))
    _check_every_section(text, inputs, [inputs["bootstrap"], inputs["correlations"], inputs["points"], inputs["models"]])


def test_committed_summary_prints_the_committed_metrics(committed_report):
    text, inputs, _ = committed_report
    sources = [json.loads(p.read_text()) for p in sorted((REPO / "metrics").rglob("*.json"))]
    sources += [pd.read_csv(p) for p in sorted((REPO / "metrics").rglob("*.csv"))]
    _check_every_section(text, inputs, sources + [inputs["models"]])


def test_the_checker_catches_a_wrong_number(fixture_report):
    """A report whose number is off by one printed unit, or whose cell names another model's value, fails."""
    text, inputs, _ = fixture_report
    name = sorted(inputs["bootstrap"]["models"])[0]
    entry = inputs["bootstrap"]["models"][name]
    printed = f"{entry['mean_auc']:.3f} [{entry['mean_auc_ci_low']:.3f}, {entry['mean_auc_ci_high']:.3f}]"
    assert printed in text
    wrong = f"{entry['mean_auc'] + 0.001:.3f}" + printed[5:]
    section = summary_check.sections(text.replace(printed, wrong))["Models"]
    with pytest.raises(AssertionError, match="but the metrics hold"):
        summary_check.check_models(section, inputs)
    task_section = summary_check.sections(text)["AUC per task"]
    swapped = {**inputs, "bootstrap": {**inputs["bootstrap"], "models": dict(zip(
        sorted(inputs["bootstrap"]["models"]), reversed([inputs["bootstrap"]["models"][m]
                                                         for m in sorted(inputs["bootstrap"]["models"])])))}}
    with pytest.raises(AssertionError):
        summary_check.check_tasks(task_section, swapped)
    assert summary_check.unexplained_numbers("| a |\n|---|\n| 0.123456 |\n", [{"x": 0.5}]) == ["a: 0.123456"]


def test_number_parser_reads_precision_and_ignores_names():
    parsed = summary_check.printed_numbers("r18-imagenet 0.871 [+0.850, -1.2e-05] 6.96 M densenet121-k1 73%")
    expected = [(0.871, 0.0005), (0.85, 0.0005), (-1.2e-05, 0.5e-6), (6.96, 0.005), (0.73, 0.005)]
    np.testing.assert_allclose(np.array(parsed), np.array(expected), rtol=1e-12, atol=0)


def _scatter_points(ax) -> dict[str, set]:
    return {c.get_label(): {tuple(np.round(xy, 9)) for xy in c.get_offsets()} for c in ax.collections
            if c.get_label() and not c.get_label().startswith("_")}


def _check_figures(drawn: dict, inputs: dict) -> None:
    points, bootstrap, baseline = inputs["points"], inputs["bootstrap"], inputs["baseline_init"]
    # the points CSV carries the bootstrap's full-set mean AUCs
    for _, row in points.iterrows():
        assert row["mean_auc"] == pytest.approx(bootstrap["models"][row["model"]]["mean_auc"], abs=1e-6)

    ax = drawn["imagenet_top1_vs_auc.png"].axes[0]
    expected = {init: {(round(x, 9), round(y, 9)) for x, y in zip(g["imagenet_top1"], g["mean_auc"])}
                for init, g in points.dropna(subset=["imagenet_top1"]).groupby("init")}
    assert _scatter_points(ax) == expected
    fitted = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    groups = [g for _, g in points.dropna(subset=["imagenet_top1"]).groupby("init") if g["imagenet_top1"].nunique() > 1]
    assert len(fitted) == len(groups)
    colours = {c.get_label(): tuple(c.get_facecolor()[0]) for c in ax.collections}
    for line in fitted:  # each init's line has its dots' colour
        xs, ys = line.get_data()
        init = next(i for i, colour in colours.items() if np.allclose(colour, to_rgba(line.get_color())))
        group = points[points["init"] == init].dropna(subset=["imagenet_top1"])
        fit = linregress(group["imagenet_top1"], group["mean_auc"])
        assert xs[-1] == pytest.approx(group["imagenet_top1"].max())
        np.testing.assert_allclose(ys, fit.intercept + fit.slope * np.asarray(xs), atol=1e-9)
    assert sorted(t.get_text() for t in ax.texts) == sorted(points.dropna(subset=["imagenet_top1"])["arch"])

    for panel in drawn["auc_by_family.png"].axes:
        init = panel.get_title().removeprefix("init: ")
        lines = {line.get_label(): np.column_stack(line.get_data()) for line in panel.get_lines()}
        group = points[points["init"] == init]
        assert set(lines) == set(group["family"])
        for family, xy in lines.items():
            rows = group[group["family"] == family].sort_values("params")
            np.testing.assert_allclose(xy, rows[["params", "mean_auc"]].to_numpy(float), atol=1e-12)

    if "boost_vs_params.png" in drawn:
        ax = drawn["boost_vs_params.png"].axes[0]
        for container in ax.containers:
            init = container.get_label()
            group = points[(points["init"] == init)].dropna(subset=["boost"])
            np.testing.assert_allclose(np.column_stack(container.lines[0].get_data()).astype(float),
                                       group[["params", "boost"]].to_numpy(float), atol=1e-12)
            segments = container.lines[2][0].get_segments()
            for segment, arch in zip(segments, group["arch"]):
                boost = bootstrap["boosts"][arch][init]
                np.testing.assert_allclose(sorted(segment[:, 1]), [boost["ci_low"], boost["ci_high"]], atol=1e-12)
        assert sorted(c.get_label() for c in ax.containers) == sorted(points.dropna(subset=["boost"])["init"].unique())

    if "truncation.png" in drawn:
        models = inputs["models"].set_index("model")
        ax = drawn["truncation.png"].axes[0]
        for container in ax.containers:
            xs, ys = (np.asarray(v, dtype=float) for v in container.lines[0].get_data())
            names = [t.get_text() for t in ax.texts]
            assert len(xs) == len(ys) > 1 and len(names) >= len(xs)
            for x, y, segment in zip(xs, ys, container.lines[2][0].get_segments()):
                name = next(m for m in models.index if models.loc[m, "params"] == x and m in bootstrap["models"]
                            and bootstrap["models"][m]["mean_auc"] == pytest.approx(y, abs=1e-12))
                entry = bootstrap["models"][name]
                np.testing.assert_allclose(sorted(segment[:, 1]), [entry["mean_auc_ci_low"], entry["mean_auc_ci_high"]],
                                           atol=1e-12)


def test_fixture_figures_plot_the_metrics(fixture_report):
    text, inputs, drawn = fixture_report
    assert set(drawn) == {"imagenet_top1_vs_auc.png", "auc_by_family.png", "boost_vs_params.png", "truncation.png"}
    for name in drawn:
        assert f"figures/{name})" in text
    _check_figures(drawn, inputs)


def test_committed_figures_plot_the_committed_metrics(committed_report):
    _, inputs, drawn = committed_report
    assert {"imagenet_top1_vs_auc.png", "auc_by_family.png"} <= set(drawn)
    _check_figures(drawn, inputs)
