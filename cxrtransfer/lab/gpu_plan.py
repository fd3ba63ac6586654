"""Which model stage trains on which GPU, and for how long: the plan `cxrtransfer parallel` prints and
follows, and the time-to-paper arithmetic of `cxrtransfer paper --plan`.

GPUs are named by their CUDA ids, found without a CUDA context in this process (CUDA_VISIBLE_DEVICES,
else `nvidia-smi`): the workers train, the parent only schedules. A stage with `devices: k` gets k GPUs of
its own; single-GPU stages share a GPU `models_per_gpu` at a time (an H200 holds many batch-16 CNNs).
Stages are placed longest first on the least loaded lane (the LPT rule), from their expected hours:
training images x training FLOPs per image (cxrtransfer/models/flops.csv) / a device's rate.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..errors import InputError
from ..models.flops import read_flops_table

# bf16 dense tensor-core peaks (the datasheets print twice these "with sparsity").
PEAKS: dict[str, tuple[float, str, str]] = {  # name: (FLOP/s, results-file pattern, source)
    "h100-sxm": (989.4e12, "h100-80gb-hbm3", "NVIDIA H100 Tensor Core GPU datasheet: BF16 1,979 TFLOPS with sparsity (SXM)"),
    "h200": (989.4e12, "h200", "NVIDIA H200 Tensor Core GPU datasheet: BF16 1,979 TFLOPS with sparsity (SXM)"),
    "a100-sxm": (312e12, "a100-sxm4", "NVIDIA A100 Tensor Core GPU datasheet: BF16 312 TFLOPS dense (624 sparse)"),
}
RESULTS = Path("benchmarks/results")


def visible_gpus(environ: Mapping[str, str] = os.environ,
                 query: Callable[[], str] | None = None) -> list[str]:
    """CUDA ids of this machine's GPUs: CUDA_VISIBLE_DEVICES when set, else `nvidia-smi`'s list (none
    without the tool); no CUDA context is made here."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        return [g.strip() for g in environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip() and g.strip() != "-1"]
    text = (query or _nvidia_smi_ids)()
    return [line.strip() for line in text.splitlines() if line.strip()]


def _nvidia_smi_ids() -> str:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


@dataclass
class Lane:
    """One worker: the GPUs its CUDA_VISIBLE_DEVICES names (none: a CPU worker) and its stages, in order."""

    gpus: tuple[str, ...]
    devices: int = 1
    stages: list[str] = field(default_factory=list)
    hours: float = 0.0


def assign_lanes(stages: Mapping[str, tuple[int, float]], gpus: Sequence[str], models_per_gpu: int = 1,
                 cpu_workers: int = 1) -> list[list[Lane]]:
    """Phases of lanes for `stages` (name -> (devices, expected hours)): one phase per device count,
    smallest first; a phase of k-GPU stages has len(gpus) // k lanes of k GPUs each (single-GPU stages:
    models_per_gpu lanes per GPU). Without GPUs: one phase of `cpu_workers` lanes."""
    if models_per_gpu < 1:
        raise InputError(f"--models-per-gpu must be at least 1, got {models_per_gpu}")
    if not gpus:
        return [_fill([Lane(()) for _ in range(max(1, cpu_workers))], stages)] if stages else []
    phases = []
    for k in sorted({devices for devices, _ in stages.values()}):
        if k > len(gpus):
            named = sorted(s for s, (d, _) in stages.items() if d == k)
            raise InputError(f"{named[0]} asks for train.devices = {k} GPUs; this machine shows {len(gpus)} "
                             f"({', '.join(gpus)})")
        groups = [tuple(gpus[i * k:(i + 1) * k]) for i in range(len(gpus) // k)]
        lanes = [Lane(group, k) for group in groups for _ in range(models_per_gpu if k == 1 else 1)]
        phases.append(_fill(lanes, {s: c for s, c in stages.items() if c[0] == k}))
    return phases


def _fill(lanes: list[Lane], stages: Mapping[str, tuple[int, float]]) -> list[Lane]:
    """Longest stage first onto the least loaded lane (ties: fewer stages, then the first lane; stages of
    equal hours in name order)."""
    for stage in sorted(stages, key=lambda s: (-stages[s][1], s)):
        lane = min(lanes, key=lambda ln: (ln.hours, len(ln.stages)))
        lane.stages.append(stage)
        lane.hours += stages[stage][1]
    return lanes


def training_gflop(arch: str, image_size: int, column: str = "training_gflop") -> float:
    """Training (forward + backward; `column="forward_gflop"`: forward) GFLOP per image from the committed
    table; other sizes scale with the pixel count (convolutions' cost is proportional to it)."""
    rows = read_flops_table().xs(arch, level="arch")
    if image_size in rows.index:
        return float(rows.loc[image_size, column])
    return float(rows.iloc[0][column]) * (image_size / int(rows.index[0])) ** 2


def grid_flops(runs: Mapping[str, int], work: Mapping[str, float], image_size: int) -> float:
    """FLOPs of the grid: per architecture, runs x (training images x training FLOPs + inference images
    x forward FLOPs)."""
    return sum(n * 1e9 * (work["train"] * training_gflop(arch, image_size)
                          + work["inference"] * training_gflop(arch, image_size, "forward_gflop"))
               for arch, n in runs.items())


def measured_rates(device: str, results: Path = RESULTS) -> tuple[dict[str, float], Path | None]:
    """Training img/s per architecture measured by gpu-check on `device` (a PEAKS name), and the file."""
    pattern = PEAKS[device][1]
    for path in sorted(glob.glob(str(results / f"gpu-*{pattern}*.json"))):
        record = json.loads(Path(path).read_text())
        if not record.get("dry_run"):
            return {a: float(r) for a, r in record.get("throughput", {}).items()}, Path(path)
    return {}, None


def stage_hours(images: float, arch: str, image_size: int, device: str, rates: Mapping[str, float]) -> tuple[float, float | None]:
    """(ideal hours at the device's peak, expected hours at the measured rate or None) for `images`
    training images of `arch`."""
    ideal = images * training_gflop(arch, image_size) * 1e9 / PEAKS[device][0] / 3600
    return ideal, (images / rates[arch] / 3600 if arch in rates else None)


def plan_lines(phases: Sequence[Sequence[Lane]]) -> list[str]:
    """The plan as printed: per phase, each lane's GPUs, expected hours and stages."""
    lines = []
    for phase in phases:
        for lane in phase:
            where = f"GPU {','.join(lane.gpus)}" if lane.gpus else "CPU"
            lines.append(f"  {where:<12} {lane.hours:8.1f} h  {len(lane.stages):>3} stages: {', '.join(lane.stages)}")
        lines.append(f"  phase of {phase[0].devices}-GPU stages: {max(ln.hours for ln in phase):.1f} h (its longest lane)")
    return lines
