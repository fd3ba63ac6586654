"""Read reports/summary.md back into numbers and check each one against the metrics it comes from.

The parser is generic: every `## ` section, every markdown table in it (header and rows), every number
printed in a cell with the precision it was printed at. `SECTION_CHECKS` maps a section title to the
function that says which metrics value each cell must show; a section without an entry there (one added
later) is still checked by `unexplained_numbers`: each of its numbers must be some value of the inputs.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable, Mapping

import pandas as pd

# A number standing alone: "r18" or "densenet121-k1" hold none, "0.871", "+0.012", "1.2e-05", "6.96" do.
NUMBER = re.compile(r"(?<![\w.])[+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])")
DASH = "–"
BELOW = "< 1e-06"  # how a p-value stored as 0 (rounded) is printed


def sections(text: str) -> dict[str, str]:
    """Section title -> its text (the part before the first `## ` under the key '')."""
    found: dict[str, str] = {}
    title = ""
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            found[title] = ""
        else:
            found[title] = found.get(title, "") + line + "\n"
    return found


def tables(section_text: str) -> list[list[dict[str, str]]]:
    """Every markdown table of a section, as one dict (header -> cell) per row."""
    found, block = [], []
    for line in section_text.splitlines() + [""]:
        if line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        if block:
            header, separator, *rows = block
            assert set("".join(separator)) == {"-"}, f"not a table separator: {separator}"
            assert all(len(row) == len(header) for row in rows), f"ragged table under {header}"
            found.append([dict(zip(header, row)) for row in rows])
            block = []
    return found


def printed_numbers(text: str) -> list[tuple[float, float]]:
    """(value, half a unit of the last printed digit) for every number in `text`; "73%" is 0.73 +- 0.005."""
    out = []
    for match in NUMBER.finditer(text):
        token = match.group()
        mantissa, _, exponent = token.partition("e")
        decimals = len(mantissa.partition(".")[2])
        scale = 0.01 if text[match.end():match.end() + 1] == "%" else 1.0
        out.append((float(token) * scale, 0.5 * 10.0 ** (int(exponent or 0) - decimals) * scale))
    return out


def assert_cell(cell: str, expected: Iterable[Any], where: str) -> None:
    """The numbers of `cell` are `expected`, in order, each to the precision printed; None prints a dash."""
    expected = list(expected)
    if any(value is None or (isinstance(value, float) and math.isnan(value)) for value in expected):
        assert cell == DASH, f"{where}: {cell!r} where the metrics hold no value"
        return
    if cell == BELOW:
        assert expected == [0], f"{where}: {cell!r} but the metrics hold {expected}"
        return
    numbers = printed_numbers(cell)
    assert len(numbers) == len(expected), f"{where}: {cell!r} prints {len(numbers)} numbers, expected {expected}"
    for (printed, tolerance), value in zip(numbers, expected):
        assert abs(printed - value) <= tolerance * (1 + 1e-9) + 1e-12, f"{where}: {cell!r} but the metrics hold {value}"


def ci(entry: Mapping[str, Any] | None, key: str = "diff") -> list[Any]:
    if entry is None or entry.get(key) is None:
        return [None]
    return [entry[key], entry["ci_low"], entry["ci_high"]]


def _p(entry: Mapping[str, Any] | None, key: str = "p") -> list[Any]:
    return [None] if entry is None or entry.get(key) is None else [entry[key]]


def _rows(section_text: str) -> list[dict[str, str]]:
    found = tables(section_text)
    assert found, "section without a table"
    return found[0]


def check_models(text: str, m: Mapping[str, Any]) -> int:
    points, bootstrap, baseline = m["points"], m["bootstrap"], m["baseline_init"]
    rows = _rows(text)
    assert sorted(r["Architecture"] for r in rows) == sorted(points["arch"].unique())
    for row in rows:
        arch = row["Architecture"]
        group = points[points["arch"] == arch].set_index("init")
        where = f"Models, {arch}"
        assert row["Family"] == group["family"].iloc[0], where
        assert_cell(row["Params"], [group["params"].max() / 1e6], where + ", Params")
        assert_cell(row["ImageNet top-1"], [group["imagenet_top1"].iloc[0]], where + ", top-1")
        assert_cell(row["top-1 (2020)"], [group["imagenet_top1_2020"].iloc[0]], where + ", top-1 (2020)")
        for init in group.index:
            entry = bootstrap["models"][group.loc[init, "model"]]
            assert_cell(row[f"AUC {init}"], [entry["mean_auc"], entry["mean_auc_ci_low"], entry["mean_auc_ci_high"]],
                        f"{where}, AUC {init}")
            if init == baseline:
                continue
            boost = bootstrap.get("boosts", {}).get(arch, {}).get(init)
            assert_cell(row[f"Boost {init} − {baseline}"], ci(boost), f"{where}, boost {init}")
            assert_cell(row[f"p (Holm) {init}"], [None] if boost is None else [boost["p"], boost["p_holm"]],
                        f"{where}, p {init}")
        papers = [b.get("paper") for b in (bootstrap.get("boosts", {}).get(arch, {}).get(i)
                                           for i in sorted(set(points["init"]) - {baseline})) if b]
        if "Paper boost" in row:
            assert_cell(row["Paper boost"], [papers[0] if papers else None], where + ", paper boost")
    return len(rows)


def check_mean_boost(text: str, m: Mapping[str, Any]) -> int:
    rows = _rows(text)
    entries = m["bootstrap"].get("mean_boost", {})
    assert len(rows) == len(entries)
    for row in rows:
        init = row["Boost"].split(" − ")[0]
        v = entries[init]
        assert_cell(row["Architectures"], [v["architectures"]], f"mean boost {init}")
        assert_cell(row["Mean boost"], ci(v), f"mean boost {init}")
        assert_cell(row["p"], _p(v), f"mean boost {init}, p")
        assert_cell(row["p Holm"], _p(v, "p_holm"), f"mean boost {init}, p Holm")
        assert_cell(row["Paper (ImageNet − none)"], [v["paper"]], f"mean boost {init}, paper")
    return len(rows)


def check_best_worst(text: str, m: Mapping[str, Any]) -> int:
    rows = _rows(text)
    entries = m["bootstrap"].get("best_vs_worst", {})
    assert len(rows) == len(entries)
    for row in rows:
        v = entries[row["Init"]]
        where = f"best vs worst {row['Init']}"
        for column, name, auc in (("Best", v["best"], v["best_auc"]), ("Worst", v["worst"], v["worst_auc"])):
            assert row[column].startswith(name + " "), where
            assert_cell(row[column][len(name):], [auc], f"{where}, {column}")
        assert_cell(row["Best − worst"], ci(v), where)
        assert_cell(row["p"], _p(v), where + ", p")
        assert_cell(row["p Holm"], _p(v, "p_holm"), where + ", p Holm")
        paper = v.get("paper")
        if paper:
            assert row["Paper"].startswith(f"{paper['best']} "), where
            assert f" − {paper['worst']} " in row["Paper"], where
            assert_cell(row["Paper"].replace(paper["best"], "").replace(paper["worst"], ""),
                        [paper["best_auc"], paper["worst_auc"], paper["diff"]], where + ", paper")
    return len(rows)


def check_tasks(text: str, m: Mapping[str, Any]) -> int:
    rows = _rows(text)
    models = m["bootstrap"]["models"]
    assert sorted(r["Model"] for r in rows) == sorted(models)
    for row in rows:
        tasks = models[row["Model"]]["tasks"]
        assert set(row) - {"Model"} == set(tasks)
        for task, entry in tasks.items():
            assert_cell(row[task], ci(entry, "auc"), f"AUC per task, {row['Model']}, {task}")
    return len(rows) * len(next(iter(models.values()))["tasks"])


def check_delong(text: str, m: Mapping[str, Any]) -> int:
    rows = _rows(text)
    boosts = m["bootstrap"].get("boosts", {})
    expected = sum(len(b.get("tasks", {})) for by_init in boosts.values() for b in by_init.values())
    assert len(rows) == expected
    for row in rows:
        v = boosts[row["Architecture"]][row["Init"]]["tasks"][row["Task"]]
        where = f"per-task boost {row['Architecture']} {row['Init']} {row['Task']}"
        assert_cell(row["Δ AUC"], ci(v), where)
        assert_cell(row["p bootstrap"], _p(v), where + ", p")
        assert_cell(row["p Holm"], _p(v, "p_holm"), where + ", p Holm")
        assert_cell(row["p DeLong"], _p(v, "p_delong"), where + ", p DeLong")
    return len(rows)


def check_correlations(text: str, m: Mapping[str, Any]) -> int:
    rows = _rows(text)
    correlations = m["correlations"]
    titles = m["correlation_titles"]
    by_title = {title: key for key, title in titles.items()}
    assert len(rows) == sum(len(correlations.get(key, {})) for key in titles)
    for row in rows:
        v = correlations[by_title[row["Correlation"]]][row["Init"]]
        where = f"correlation {row['Correlation']}, {row['Init']}"
        assert_cell(row["ρ"], [v["rho"]], where + ", rho")
        assert_cell(row["p"], _p(v), where + ", p")
        assert_cell(row["p Holm"], _p(v, "p_holm"), where + ", p Holm")
        assert_cell(row["n"], [v["n"]], where + ", n")
        assert_cell(row["Paper ρ"], [v["paper_rho"]], where + ", paper rho")
        assert row["Paper p"] == str(v.get("paper_p") or DASH), where + ", paper p"
    return len(rows)


def check_families(text: str, m: Mapping[str, Any]) -> int:
    rows = _rows(text)
    families = m["bootstrap"].get("families", {})
    for row in rows:
        entry = families[row["Init"]]
        where = f"family {row['Init']} {row['Family']}"
        v = entry["across"] if row["Family"] == "across families" else entry["within"][row["Family"]]
        if v.get("diff") is None:
            assert row["Largest − smallest"] == v.get("reason", DASH), where
            continue
        assert_cell(row["Δ mean AUC"], ci(v), where)
        assert_cell(row["p"], _p(v), where + ", p")
        if row["Family"] != "across families":
            assert_cell(row["p Holm"], _p(v, "p_holm"), where + ", p Holm")
            assert row["Largest − smallest"] == f"{v['largest']} − {v['smallest']}", where
            if v.get("paper") is not None:
                assert row["Paper"].startswith(v["paper_pair"]), where
                assert_cell(row["Paper"][len(v["paper_pair"]):], [v["paper"]], where + ", paper")
    within = sum(len(e["within"]) + (e["across"].get("diff") is not None) for e in families.values())
    assert len(rows) == within
    return len(rows)


def check_truncation(text: str, m: Mapping[str, Any]) -> int:
    bootstrap, models = m["bootstrap"], m["models"].set_index("model")
    rows = _rows(text)
    truncation = bootstrap.get("truncation", {})
    for row in rows:
        name = row["Model"]
        entry = bootstrap["models"][name]
        where = f"truncation {name}"
        assert int(row["k"]) == models.loc[name, "truncate"], where
        assert_cell(row["Params"], [models.loc[name, "params"] / 1e6], where + ", params")
        assert_cell(row["Mean AUC"], [entry["mean_auc"], entry["mean_auc_ci_low"], entry["mean_auc_ci_high"]], where)
        difference = truncation.get(name)
        if difference is None:
            assert row["Δ vs k=0"] == "(reference)", where
        elif difference.get("diff") is not None:
            assert_cell(row["Δ vs k=0"], ci(difference), where + ", diff")
            assert_cell(row["p"], _p(difference), where + ", p")
            assert_cell(row["p Holm"], _p(difference, "p_holm"), where + ", p Holm")
    efficiency = bootstrap.get("truncation_efficiency", {})
    bullets = [line for line in text.splitlines() if line.startswith("- ")]
    for reference, gain in efficiency.get("by_reference", {}).items():
        line = next(b for b in bullets if f"({reference})" in b)
        assert_cell(line.split(", ")[-1].split("x ")[0], [gain["gain"]], f"truncation gain {reference}")
    if efficiency.get("average_gain") is not None:
        line = next(b for b in bullets if b.startswith("- Average parameter-efficiency gain"))
        assert_cell(line.split(": ")[1].split("x")[0], [efficiency["average_gain"]], "average gain")
    return len(rows)


def check_comparisons(text: str, m: Mapping[str, Any]) -> int:
    rows = _rows(text)
    comparisons = m["bootstrap"].get("comparisons", {})
    assert sorted(r["a − b"] for r in rows) == sorted(comparisons)
    for row in rows:
        c = comparisons[row["a − b"]]
        if "diff" not in c:
            assert row["Δ mean AUC"] == c.get("reason", DASH)
            continue
        assert_cell(row["Δ mean AUC"], ci(c), f"comparison {row['a − b']}")
        assert_cell(row["p"], _p(c), f"comparison {row['a − b']}, p")
        assert_cell(row["p Holm"], _p(c, "p_holm"), f"comparison {row['a − b']}, p Holm")
    return len(rows)


def check_intro(text: str, m: Mapping[str, Any]) -> int:
    bootstrap = m["bootstrap"]
    replicates = bootstrap["replicates"]
    first = text.split("Mean AUC")[0]
    assert_cell(first.split(";")[0], [len(bootstrap["models"]), bootstrap["studies"]], "intro: models, studies")
    counts = text.split("intervals over ")[1].split("dropped")[0]
    assert_cell(counts, [replicates["kept"], replicates["dropped"], replicates["drawn"]], "intro: replicates")
    return 1


SECTION_CHECKS: dict[str, Callable[[str, Mapping[str, Any]], int]] = {
    "": check_intro,
    "Models": check_models,
    "Mean pretraining boost across architectures": check_mean_boost,
    "Best versus worst architecture": check_best_worst,
    "AUC per task": check_tasks,
    "Per-task boosts: bootstrap against DeLong": check_delong,
    "Correlations (Spearman)": check_correlations,
    "Family versus size": check_families,
    "Truncation": check_truncation,
    "Comparisons": check_comparisons,
}


def numeric_leaves(value: Any) -> Iterable[float]:
    """Every number in a JSON-like value, a DataFrame or a string of it."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, str):
        yield from (v for v, _ in printed_numbers(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from numeric_leaves(item)
    elif isinstance(value, pd.DataFrame):
        for column in value.select_dtypes("number"):
            yield from (float(v) for v in value[column].dropna())
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from numeric_leaves(item)


def unexplained_numbers(section_text: str, sources: Iterable[Any]) -> list[str]:
    """Numbers printed in a section's tables that are no value of the sources (nor a count of a million)."""
    pool = sorted(set(numeric_leaves(list(sources))))
    bad = []
    for table in tables(section_text):
        for row in table:
            for header, cell in row.items():
                for printed, tolerance in printed_numbers(cell):
                    if not any(abs(printed - v) <= tolerance * (1 + 1e-9) or abs(printed - v / 1e6) <= tolerance
                               for v in pool):
                        bad.append(f"{header}: {cell}")
    return bad
