"""A train stage memory-maps the image cache: the cache adds almost nothing to the stage's peak RSS.

Measured as the difference between two runs of the same stage, on a 2 GiB cache and on a tiny one: a
process with torch alone is about 1 GB here (RSS counts the touched pages of torch's CUDA libraries).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stages import init as init_stage

ROOT = Path(__file__).resolve().parents[2]
TASKS = ["Atelectasis", "Pneumonia"]
SIZE, BIG, TINY = 128, 131_072, 1_024  # 2 GiB and 16 MiB of uint8 pixels
HELD_OUT = 16                           # valid and test images each


def write_cache(folder: Path, count: int) -> int:
    """images.npy of count x SIZE x SIZE (sparse on disk: zeros cost no blocks) and its index."""
    folder.mkdir(parents=True)
    images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(count, SIZE, SIZE))
    images[:HELD_OUT * 2 + 256] = np.random.default_rng(0).integers(0, 256, (HELD_OUT * 2 + 256, SIZE, SIZE))
    images.flush()
    del images
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, (count, len(TASKS))).astype(float)
    labels[:HELD_OUT * 2] = np.arange(HELD_OUT * 2)[:, None] % 2  # both classes in valid and test
    numbers = np.arange(count)
    index = pd.DataFrame({"path": [f"p{i}/s1/view1_frontal.jpg" for i in numbers], "patient": numbers,
                          "study": numbers, **{task: labels[:, j] for j, task in enumerate(TASKS)}})
    index.to_csv(folder / "index.csv", index=False)
    split = np.where(numbers < HELD_OUT, "valid", np.where(numbers < 2 * HELD_OUT, "test", "train"))
    pd.DataFrame({"path": index["path"], "split": split}).to_csv(folder / "split.csv", index=False)
    return (folder / "images.npy").stat().st_size


@pytest.mark.slow
def test_the_image_cache_adds_almost_nothing_to_a_train_stages_peak_rss(tmp_path):
    params = {
        "data": {"tasks": TASKS, "uncertainty": {"default": "ones", "Pneumonia": "multiclass"},
                 "blank_as_negative": True, "image_size": SIZE},
        "train": {"epochs": 1, "batch_size": 16, "lr": 1e-4, "eval_every_images": 64, "top_k": 1, "seed": 0,
                  "eval_batch_size": 16, "max_images": 64, "selection_tasks": TASKS, "devices": 1, "device": "cpu"},
        "init": {"seed": 0, "weights_dir": "weights", "files": {}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    # a random init is normalized with the training split's statistics (the normalization stage's JSON)
    (tmp_path / "normalization.json").write_text('{"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}')
    init_stage.main(["--params", str(tmp_path / "params.yaml"), "--arch", "resnet18", "--init", "random",
                     "--out", str(tmp_path / "init.safetensors"), "--metrics", str(tmp_path / "init.json"),
                     "--state", str(tmp_path / "init_state")])
    big, tiny = peak_rss(tmp_path, "big", BIG), peak_rss(tmp_path, "tiny", TINY)
    cache_bytes = (tmp_path / "big" / "images.npy").stat().st_size
    print(f"train stage peak RSS {big / 2**20:.0f} MiB with a {cache_bytes / 2**20:.0f} MiB cache, "
          f"{tiny / 2**20:.0f} MiB with a {TINY * SIZE * SIZE / 2**20:.0f} MiB cache")
    assert cache_bytes >= 2 * 2**30
    assert big - tiny < cache_bytes / 10  # loading the cache would add all of it


def peak_rss(root: Path, name: str, count: int) -> int:
    """Peak RSS in bytes of the train stage on a fresh cache of `count` images."""
    write_cache(root / name, count)
    stage = [sys.executable, str(ROOT / "stages" / "train.py"), "--params", str(root / "params.yaml"),
             "--arch", "resnet18", "--init", "random", "--init-weights", str(root / "init.safetensors"),
             "--cache", str(root / name), "--split", str(root / name / "split.csv"),
             "--out", str(root / name / "model"), "--metrics", str(root / name / "metrics.json"),
             "--live", str(root / name / "live"), "--state", str(root / name / "state"),
             "--normalization", str(root / "normalization.json")]
    # A parent of its own, so RUSAGE_CHILDREN holds this stage's peak only (kilobytes on Linux).
    measure = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", measure, *stage], env=env, cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (root / name / "model" / "model.json").is_file()
    return int(done.stdout.strip().splitlines()[-1]) * 1024
