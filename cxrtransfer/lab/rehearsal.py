"""The paper rehearsal: configs/paper.yaml run end to end on CPU, changed only by named scale knobs.

    cxrtransfer rehearsal --preset small|large --workdir DIR   (make rehearsal)

It copies the pipeline (dvc.yaml, stages/, cxrtransfer/, configs/) into a fresh git + DVC repository
under DIR, so the checkout's params.yaml is never touched, and writes params.yaml there: the paper's
complete params file with only the knobs of SCALE_KNOBS changed (the settings table says which). The
dataset is the pipeline's own `synthesize` stage in the real CheXpert-v1.0-small layout: full-size
JPEGs (320 x 390) and label rows drawn from the real CheXpert train.csv. ImageNet weights cannot be
downloaded here, so the rehearsal writes, for every architecture, a seeded random timm model in the
file layout `make weights` produces (weights/<timm_model>.<tag>.safetensors): init_weights@<arch>-imagenet
loads them through the real offline lookup (cxrtransfer.models.weights.resolve_imagenet_weights).

After `dvc repro` (through `report`) it checks what only a real run shows: every model's ensemble
holds train.top_k checkpoints, every model evaluated at the train.eval_every_images cadence, and every
model trained train.epochs full passes over the whole training split (no image cap).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from ..errors import PipelineError
from ..models.architectures import build_model
from ..models.tensorfiles import save_safetensors
from ..models.weights import imagenet_weights_filename
from ..pipeline.config import load_params
from ..pipeline.grid import declared_models
from ..stats.paper_settings import paper_value
from .paper import print_table, settings_table

PAPER_CONFIG = Path("configs") / "paper.yaml"   # in the checkout
COPIED = ("dvc.yaml", "stages", "cxrtransfer", "configs")
WEIGHTS_SEED = 1  # the stand-in ImageNet weights differ from the random init (seed 0)

# Each scale knob, and why it may differ from the paper. Nothing else is changed.
SCALE_KNOBS = {
    "data.image_size": "CPU time",
    "patients": "dataset size (synthetic.*_patients)",
    "architectures": "CPU time",
    "truncation.architectures": "CPU time",
    "train.eval_every_images": "keeps >= top_k evaluations on a small train split",
    "bootstrap.compare": "pairs among the rehearsed models only",
}
PRESETS: dict[str, dict[str, Any]] = {
    # CI: the smallest truncated architecture, both inits, its four truncations; 136 training images.
    "small": {"image_size": 32, "patients": (60, 40, 60), "architectures": ["mnasnet"],
              "truncation": ["mnasnet"], "eval_every_images": 32},
    # README: two families, one truncated architecture, about 700 training images.
    "large": {"image_size": 64, "patients": (300, 80, 120), "architectures": ["mnasnet", "mobilenet_v3"],
              "truncation": ["mnasnet"], "eval_every_images": 160},
}


def rehearsal_params(paper: Mapping[str, Any], image_size: int, patients: Sequence[int],
                     architectures: Sequence[str], truncation: Sequence[str], eval_every_images: int
                     ) -> dict[str, Any]:
    """The paper params with the scale knobs set, the dataset pointed at the synthesize stage's output,
    the stand-in weights folder and the CPU."""
    params = json.loads(json.dumps(paper))  # a deep copy
    params["architectures"], params["truncation"]["architectures"] = list(architectures), list(truncation)
    params["data"]["image_size"] = int(image_size)
    params["data"]["root"] = "data/synthetic"          # the synthesize stage's output
    params["data"]["test_groundtruth"] = "groundtruth.csv"  # its study-level test labels
    params["readers"]["dir"] = "data/simulated_readers"    # its test set's stand-in radiologists
    params["train"]["eval_every_images"] = int(eval_every_images)
    params["train"]["device"] = "cpu"
    params["init"]["weights_dir"] = "weights"
    synthetic = params["synthetic"]
    synthetic.update({"train_patients": patients[0], "valid_patients": patients[1], "test_patients": patients[2],
                      "height": 320, "width": 390, "labels": "real"})   # CheXpert-v1.0-small's size, real rows
    models = {m.name for m in declared_models(params) if not m.truncate}
    params["bootstrap"]["compare"] = [p for p in params["bootstrap"]["compare"] if set(p) <= models]
    return params


def make_repo(workdir: Path, params: Mapping[str, Any], checkout: Path) -> Path:
    """A fresh git + DVC repository holding the pipeline of `checkout` and `params` (workdir must not exist)."""
    if workdir.exists():
        raise PipelineError(f"{workdir} exists: give a new --workdir (the rehearsal never reuses one)")
    repo = workdir / "repo"
    repo.mkdir(parents=True)
    for name in COPIED:
        source = checkout / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, repo / name)
    (repo / "params.yaml").write_text(yaml.safe_dump(dict(params), sort_keys=False))
    (repo / ".gitignore").write_text("/.state/\n__pycache__/\n/weights/\n")
    commit_new_repo(repo, "rehearsal", run)
    return repo


def commit_new_repo(repo: Path, message: str, run: Callable[[list[str], Path], Any]) -> None:
    """git init + dvc init (analytics off) in `repo`, then commit everything there with `run(command, cwd)`."""
    for command in (["git", "init", "-q", "-b", "main"], ["dvc", "init", "-q"],
                    ["dvc", "config", "core.analytics", "false"], ["git", "add", "-A"],
                    ["git", "commit", "-qm", message]):
        run(command, repo)


def write_standin_weights(repo: Path, architectures: Sequence[str]) -> list[Path]:
    """weights/<timm_model>.<tag>.safetensors per architecture: a seeded random model, ImageNet-shaped."""
    paths = []
    for arch in architectures:
        path = repo / "weights" / imagenet_weights_filename(arch)
        save_safetensors(path, build_model(arch, 1000, seed=WEIGHTS_SEED).state_dict(),
                         {"arch": arch, "source": f"rehearsal stand-in: seeded random (seed {WEIGHTS_SEED})"})
        paths.append(path)
    return paths


def repo_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) for git and dvc in a throwaway repository: this
    interpreter's folder first on PATH (DVC stages call `python`), no analytics, a commit identity."""
    base = os.environ if base is None else base
    # One intra-op thread unless told otherwise: with 2 threads on 2 busy cores a training step of the
    # small preset took 17 s instead of 0.5 s (OpenMP threads waiting for a core).
    return dict(base, PATH=f"{Path(sys.executable).parent}{os.pathsep}{base['PATH']}",
                OMP_NUM_THREADS=base.get("OMP_NUM_THREADS", "1"),
                DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="rehearsal", GIT_AUTHOR_EMAIL="rehearsal@localhost",
                GIT_COMMITTER_NAME="rehearsal", GIT_COMMITTER_EMAIL="rehearsal@localhost")


def run(command: Sequence[str], cwd: Path) -> str:
    done = subprocess.run(list(command), cwd=cwd, env=repo_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise PipelineError(f"`{' '.join(command)}` failed (exit {done.returncode}): "
                            f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return done.stdout


def expected_evaluations(total: int, batch: int, every: int) -> list[int]:
    """Image counts at which the loop evaluates: the first batch boundary at or past each multiple
    of `every`, then the end of training when that is not one of them."""
    steps, target = [], every
    for step in range(batch, total + 1, batch):
        if step >= target:
            steps.append(step)
            target += every
    if not steps or steps[-1] != total:
        steps.append(total)
    return steps


def evaluation_steps(live_dir: Path) -> list[int]:
    """Steps (images) of every evaluation the train stage logged with dvclive."""
    lines = (live_dir / "plots" / "metrics" / "score.tsv").read_text().splitlines()
    column = lines[0].split("\t").index("step")
    return [int(line.split("\t")[column]) for line in lines[1:]]


def check_run(repo: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """The rehearsal's checks on a finished run; a list of failures (empty: passed) and the figures."""
    train = params["train"]
    n_train = json.loads((repo / "metrics" / "split.json").read_text())["train"]["images"]
    batch, epochs, every, top_k = train["batch_size"], train["epochs"], train["eval_every_images"], train["top_k"]
    total = epochs * (n_train // batch) * batch   # full batches of every epoch: no cap
    expected = expected_evaluations(total, batch, every)
    ensemble = json.loads((repo / "metrics" / "ensemble.json").read_text())["models"]
    failures, figures = [], {}
    names = {model.name: model.curves for model in declared_models(params)}
    if sorted(ensemble) != sorted(names):
        failures.append(f"ensemble models {sorted(ensemble)} != the grid {sorted(names)}")
    for name, live in names.items():
        steps = evaluation_steps(repo / live)
        checkpoints = ensemble.get(name, {}).get("checkpoints")
        figures[name] = {"checkpoints": checkpoints, "evaluations": len(steps), "last_step": steps[-1]}
        if checkpoints != top_k:
            failures.append(f"{name}: ensemble holds {checkpoints} checkpoints, configured top_k {top_k}")
        if steps != expected:
            failures.append(f"{name}: evaluated at {steps}, expected every {every} images: {expected}")
        if steps[-1] != total:
            failures.append(f"{name}: trained {steps[-1]} images, expected {epochs} epochs x {n_train} = {total}")
    if not (repo / "reports" / "summary.md").is_file():
        failures.append("reports/summary.md was not written")
    return {"failures": failures, "train_images": n_train, "epochs": epochs, "images_per_model": total,
            "evaluations_per_model": len(expected), "models": figures}


def rehearse(workdir: Path, knobs: Mapping[str, Any], checkout: Path = Path(".")) -> dict[str, Any]:
    """Build the rehearsal repository from the pipeline in `checkout`, run it through `report`, check it;
    returns the summary."""
    if not (checkout / "dvc.yaml").is_file():
        raise PipelineError(f"{checkout.resolve()} holds no dvc.yaml: run the rehearsal in the project's "
                            "checkout (or pass --checkout)")
    paper = load_params(checkout / PAPER_CONFIG)
    params = rehearsal_params(paper, knobs["image_size"], knobs["patients"], knobs["architectures"],
                              knobs["truncation"], knobs["eval_every_images"])
    print(f"paper rehearsal in {workdir}: configs/paper.yaml with these scale knobs only")
    print_table(settings_table(params, SCALE_KNOBS))
    print(f"  patients (train, valid, test): {tuple(knobs['patients'])}; JPEGs 320 x 390, real label rows; "
          f"imagenet init: seeded random stand-in weights in weights/ (seed {WEIGHTS_SEED})")
    started = time.perf_counter()
    repo = make_repo(workdir, params, checkout)
    weights_archs = sorted(set(params["architectures"]) | set(params["truncation"]["architectures"]))
    write_standin_weights(repo, weights_archs)
    (workdir / "dvc_repro.log").write_text(run(["dvc", "repro"], repo))
    summary = check_run(repo, params)
    summary.update({"seconds": round(time.perf_counter() - started, 1), "knobs": dict(knobs),
                    "models_trained": len(summary["models"])})
    (workdir / "rehearsal.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=Path, required=True, help="a new folder for the rehearsal repository")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--image-size", type=int, help="data.image_size (paper 320)")
    parser.add_argument("--patients", type=int, nargs=3, metavar=("TRAIN", "VALID", "TEST"))
    parser.add_argument("--architectures", nargs="+", help="the training grid (paper: 16)")
    parser.add_argument("--truncation", nargs="+", help="truncation.architectures (paper: 4)")
    parser.add_argument("--eval-every-images", type=int, help=f"train.eval_every_images (paper {paper_value('train.eval_every_images')})")
    parser.add_argument("--checkout", type=Path, default=Path("."),
                        help="the project checkout whose pipeline is rehearsed (default: here)")
    parser.set_defaults(func=run_rehearsal)


def run_rehearsal(args: argparse.Namespace) -> None:
    knobs = dict(PRESETS[args.preset])
    for key in ("image_size", "patients", "architectures", "truncation", "eval_every_images"):
        if getattr(args, key) is not None:
            knobs[key] = getattr(args, key)
    summary = rehearse(args.workdir, knobs, args.checkout)
    for name, figure in summary["models"].items():
        print(f"  {name:<28} {figure['checkpoints']} checkpoints, {figure['evaluations']} evaluations, "
              f"{figure['last_step']} images")
    print(f"rehearsal: {summary['models_trained']} models, {summary['train_images']} training images x "
          f"{summary['epochs']} epochs, {summary['seconds']:.0f} s; "
          f"summary {args.workdir / 'rehearsal.json'}")
    if summary["failures"]:
        raise PipelineError("rehearsal failed: " + "; ".join(summary["failures"]))
    print("rehearsal passed")
