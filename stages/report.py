"""Stage report: reports/summary.md and reports/figures/*.png from the study's metrics.

Reads metrics/bootstrap.json, metrics/correlations.json, the correlate stage's per-model points and
the ensemble's models table. Figures: ImageNet top-1 vs AUC (best-fit line per init), AUC by family
and size, pretraining boost vs parameters, and truncated models' AUC vs parameters when present.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from cxrtransfer.errors import InputError
from cxrtransfer.fileio import atomic_dir, atomic_path, read_json
from cxrtransfer.pipeline.config import run_stage
from cxrtransfer.report import fidelity, figures, markdown
from cxrtransfer.report import readers as outside
from cxrtransfer.report import seeds as seed_report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", type=Path, required=True, help="metrics JSON of the bootstrap stage")
    parser.add_argument("--correlations", type=Path, required=True, help="metrics JSON of the correlate stage")
    parser.add_argument("--points", type=Path, required=True, help="per-model CSV of the correlate stage")
    parser.add_argument("--ensemble", type=Path, required=True, help="the ensemble stage's folder (models.csv)")
    parser.add_argument("--out", type=Path, required=True, help="summary markdown file")
    parser.add_argument("--figures", type=Path, required=True, help="folder for the figures (replaced)")
    return parser.parse_args(argv)




def read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError("not found (run the stage that writes it)", path)
    return pd.read_csv(path, dtype={"model": str, "arch": str, "init": str, "family": str})


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    bootstrap = read_json(args.bootstrap)
    correlations = read_json(args.correlations)
    points = read_csv(args.points)
    models = read_csv(args.ensemble / "models.csv")
    if not bootstrap.get("models"):
        raise InputError("no 'models' section", args.bootstrap)

    with atomic_dir(args.figures) as tmp:
        names = figures.write_figures(tmp, bootstrap, correlations, points, models)
        if bootstrap.get("readers"):
            outside.plot_reader_roc(bootstrap, args.ensemble, tmp / outside.READER_FIGURE)
            names.append(outside.READER_FIGURE)
        names += seed_report.write_seed_figure(tmp, bootstrap)   # with more than one training seed
        links = [os.path.relpath(args.figures / name, args.out.parent) for name in names]
        sections = [outside.readers_markdown(bootstrap), fidelity.fidelity_markdown(bootstrap, correlations),
                    seed_report.seeds_markdown(bootstrap, correlations)]   # "" when the study has none
        text = markdown.summary_markdown(bootstrap, correlations, points, models, links,
                                         extra="\n\n".join(s.strip() for s in sections if s))
    with atomic_path(args.out) as tmp:
        tmp.write_text(text)
    print(f"report: {args.out} and {len(names)} figure(s) in {args.figures}")


if __name__ == "__main__":
    run_stage(main)
