"""Crash-safe resume, the hard way: SIGKILL a training run at seeded random moments, start it again each
time, and compare with an uninterrupted run: final weights, kept checkpoints and curves byte for byte."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import resume_worker
import torch

HERE = Path(__file__).parent
REPO = Path(__file__).resolve().parents[2]
WORKER = [sys.executable, str(HERE / "resume_worker.py")]


def environment() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(REPO)]), OMP_NUM_THREADS="1")


def run_to_end(out: Path, cwd: Path) -> str:
    done = subprocess.run([*WORKER, str(out)], env=environment(), cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def start_and_kill(out: Path, cwd: Path, delay: float) -> tuple[int, str]:
    """Start the worker, SIGKILL it `delay` seconds after it starts fitting; (exit code, its output)."""
    worker = subprocess.Popen([*WORKER, str(out)], env=environment(), cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    first = worker.stdout.readline()
    assert first.strip() == "fitting", first
    time.sleep(delay)
    worker.send_signal(signal.SIGKILL)
    rest = worker.communicate(timeout=60)[0]
    return worker.returncode, first + rest


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    monkeypatch.chdir(tmp_path)  # dvclive looks for a DVC repository from the working directory
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the worker processes
    try:
        started = time.perf_counter()
        resume_worker.main(reference)  # uninterrupted, in this process (one interpreter start less)
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    # Kill moments as fractions of the run's own duration, so they land while it trains on any machine.
    rng = np.random.default_rng(11)
    outcomes = [start_and_kill(killed, tmp_path, seconds * fraction) for fraction in rng.uniform(0.05, 0.3, size=3)]
    final_log = run_to_end(killed, tmp_path)
    assert [code for code, _ in outcomes].count(-signal.SIGKILL) >= 2, outcomes  # the kills landed mid-run
    assert "resuming at" in final_log  # the last start continued from a state saved before a kill
    print("kills:", [code for code, _ in outcomes], "restarts:",
          [line for _, log in [*outcomes, (0, final_log)] for line in log.splitlines() if "resuming" in line])
    assert (killed / "final.safetensors").read_bytes() == (reference / "final.safetensors").read_bytes()
    assert json.loads((killed / "history.json").read_text()) == json.loads((reference / "history.json").read_text())
    assert files(killed / "state" / "checkpoints") == files(reference / "state" / "checkpoints")
    assert len(files(reference / "state" / "checkpoints")) == 3  # top_k
    assert files(killed / "live") == files(reference / "live")  # the curves continue across the kills
    # 3 epochs x 2,048 images = 6,144: evaluations at 200, 400, ..., 6,000 and the final 6,144 (31), + header
    assert len((reference / "live" / "plots" / "metrics" / "score.tsv").read_text().splitlines()) == 1 + 31
