"""The bootstrap stage at the paper's scale, on synthetic predictions: `python -m benchmarks.bootstrap_stage DIR`.

Writes DIR/ensemble (what the ensemble stage writes: models.csv, test_labels.csv, test_predictions.csv)
for the paper grid's 48 models (16 architectures x random/imagenet, 4 architectures x 4 truncations)
on 500 test studies of 500 patients, and DIR/params.yaml (configs/paper.yaml's bootstrap section:
10,000 replicates). Time and peak memory of the stage itself are then measured from outside, e.g.
`/usr/bin/time -v python stages/bootstrap.py --params DIR/params.yaml --ensemble DIR/ensemble
--out DIR/bootstrap.json --plot DIR/plot.csv` (README "Paper fidelity" gives the figures measured).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cxrtransfer.models.architectures import architecture, architecture_names

from .bootstrap import benchmark_data

REPO = Path(__file__).resolve().parents[1]
TASKS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion", "No Finding"]
TRUNCATED = ["densenet121", "mnasnet", "resnet18", "efficientnet_b0"]


def paper_models() -> pd.DataFrame:
    """The paper grid's 48 models as the ensemble stage lists them (parameter counts are placeholders)."""
    rows = [{"model": f"{a}-{i}", "arch": a, "init": i, "family": architecture(a).family, "truncate": 0,
             "params": 10_000_000, "checkpoints": 10} for a in architecture_names() for i in ("random", "imagenet")]
    rows += [{"model": f"{a}-k{k}", "arch": a, "init": "imagenet", "family": architecture(a).family, "truncate": k,
              "params": 10_000_000 // (k + 1), "checkpoints": 10} for a in TRUNCATED for k in (1, 2, 3, 4)]
    return pd.DataFrame(rows)


def write_ensemble(folder: Path, n_studies: int = 500, seed: int = 0) -> None:
    models = paper_models()
    scores, targets, _ = benchmark_data(len(models), len(TASKS), n_studies, seed, studies_per_patient=1)
    studies = [f"study{s:04d}" for s in range(n_studies)]
    (folder / "ensemble").mkdir(parents=True, exist_ok=True)
    models.assign(folder="synthetic").to_csv(folder / "ensemble" / "models.csv", index=False)
    labels = pd.DataFrame(targets, columns=TASKS).assign(study=studies, patient=[f"p{s}" for s in range(n_studies)])
    labels[["study", "patient", *TASKS]].to_csv(folder / "ensemble" / "test_labels.csv", index=False)
    frames = [pd.DataFrame(scores[m], columns=TASKS).assign(model=name, study=studies)
              for m, name in enumerate(models["model"])]
    pd.concat(frames)[["model", "study", *TASKS]].to_csv(folder / "ensemble" / "test_predictions.csv", index=False)
    paper = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
    params = {"model": "all", "data": {**paper["data"], "tasks": TASKS}, "bootstrap": {**paper["bootstrap"], "compare": []}}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    print(f"{len(models)} models x {len(TASKS)} tasks x {n_studies} studies in {folder}; "
          f"{params['bootstrap']['replicates']} replicates", file=sys.stderr)


if __name__ == "__main__":
    write_ensemble(Path(sys.argv[1]))
