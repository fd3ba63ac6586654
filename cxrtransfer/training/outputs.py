"""What a training stage leaves behind: the model folder (kept checkpoints, their predictions, model.json),
its small metrics, dvclive curves, and its timing (outside DVC)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..fileio import atomic_dir, write_json
from ..layout import CHECKPOINTS_FOLDER, MODEL_FILE, predictions_file
from ..models.tensorfiles import load_safetensors
from .dataset import ImageSet, Normalization
from .layouts import ChexpertLayout, RawLogits, score_columns
from .loop import FitResult, iter_checkpoints, predict


def open_live(folder: Path) -> Any:
    """dvclive that never writes dvc.yaml (many matrix stages run at once) and never saves an experiment.

    Always a fresh folder (DVC deletes it before a rerun anyway): a resumed fit() replays the curves
    saved in its resume state, so they continue where the interrupted run stopped. Without dvclive
    installed (the lent GPU machine: gpu-check runs the stage script directly) no curves are written.
    """
    try:
        from dvclive import Live  # here: a stage without dvclive installed runs without curves
    except ImportError:
        print(f"dvclive is not installed: no curves in {folder}")
        return NoCurves()
    return Live(str(folder), dvcyaml=False, save_dvc_exp=False)


class NoCurves:
    """dvclive's calls that the loop makes, doing nothing."""

    step = 0

    def log_metric(self, *args: Any, **kwargs: Any) -> None:
        pass

    def make_summary(self) -> None:
        pass

    def end(self) -> None:
        pass


def timing_path(state_dir: Path) -> Path:
    """Where a stage leaves its timing: beside its resume state, outside git and DVC."""
    return state_dir.with_name(state_dir.name + ".timing.json")


def write_timing(path: Path, result: FitResult, device: torch.device, started: float) -> None:
    """Throughput and wall time: they differ run to run, so they stay out of DVC metrics and hashed outputs."""
    write_json(path, {"images_per_second": result.images_per_second, "device": str(device),
                      "fit_seconds": time.perf_counter() - started,
                      "images": result.history[-1]["step"] if result.history else 0}, digits=3)


def checkpoint_predictions(model: torch.nn.Module, layout: ChexpertLayout, result: FitResult,
                           splits: Mapping[str, tuple[pd.DataFrame, ImageSet]], columns: Sequence[int],
                           tasks: Sequence[str], device: torch.device, batch_size: int,
                           normalization: Normalization) -> dict[str, pd.DataFrame]:
    """Per split, every kept checkpoint's outputs on its rows: checkpoint, path, patient, study, one
    probability column per task and a U-MultiClass task's two logits (`columns`: the tasks' positions
    among the layout's), what the reference scoring order needs (cxrtransfer.stats.predictions)."""
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in splits}
    for step, _, path in iter_checkpoints(result):
        state, _ = load_safetensors(path)
        model.load_state_dict(state)
        for name, (rows, images) in splits.items():
            frame = rows[["path", "patient", "study"]].reset_index(drop=True)
            logits = predict(model, RawLogits(layout), images, device, batch_size, normalization)
            frame = pd.concat([frame, score_columns(logits, layout, columns, tasks)], axis=1)
            frame.insert(0, "checkpoint", step)
            frames[name].append(frame)
    return {name: pd.concat(parts) for name, parts in frames.items()}


def write_model_folder(folder: Path, result: FitResult, predictions: Mapping[str, pd.DataFrame],
                       description: Mapping[str, Any]) -> None:
    """The model folder, atomically: checkpoints/ (the kept ones), <split>_predictions.csv, model.json."""
    with atomic_dir(folder) as tmp:
        (tmp / CHECKPOINTS_FOLDER).mkdir()
        for _, _, path in iter_checkpoints(result):
            shutil.copy2(path, tmp / CHECKPOINTS_FOLDER / path.name)
        for name, frame in predictions.items():
            frame.to_csv(tmp / predictions_file(name), index=False, float_format="%.6g")
        write_json(tmp / MODEL_FILE, description)


def best_evaluation(result: FitResult) -> dict[str, float]:
    """The evaluation record with the highest validation score (the first of equal ones)."""
    return result.history[int(np.argmax([h["score"] for h in result.history]))]
