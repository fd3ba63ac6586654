"""`cxrtransfer gpu-check` (make gpu-check): the paper's training path measured on the first GPU machine lent.

    PYTHONPATH=. python3 -m cxrtransfer gpu-check --out benchmarks/results        on the GPU machine
    cxrtransfer gpu-check --dry-run --out DIR                                     every step on the CPU, toy sizes

It needs torch, timm, numpy, pandas, scipy, Pillow and PyYAML only (no DVC, no dvclive, no install), and
data it makes itself:
the embedded synthetic CheXpert rendered at the paper's 320 px. It writes <out>/gpu-<device>.json and
<out>/gpu-<device>.log. Measured, each in its own section of the JSON:
- sync_free: `torch.cuda.set_sync_debug_mode("error")` around training steps of ResNet18 with the
  prefetching loop; ok is false, with the error, where a step makes the host wait for the GPU;
- throughput: training images/s of every paper architecture at 320 px and the paper's batch, the loop's
  own steps with prefetch, in the precision a run would use (timing: never a DVC metric);
- evaluation: the largest difference between fp32 predictions (what `predict` returns) and predictions
  under the training autocast, on the same weights;
- fit: the loop end to end on the device (evaluation, top-k checkpoint, resume state).
Without CUDA (and without --dry-run) it stops with one line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..data import chexpert, images
from ..embedded import synthetic_chexpert
from ..errors import PipelineError
from ..models import architectures
from ..stats.paper_settings import paper_value
from ..training import dataset, devices, layouts, loop

SCHEMA = 1


@dataclass(frozen=True)
class Sizes:
    image_size: int
    batch_size: int
    steps: int               # timed training steps per architecture
    warmup: int              # untimed steps first (cuDNN's kernel choice, allocator)
    patients: int            # synthetic training patients rendered at image_size
    architectures: tuple[str, ...]


GPU_SIZES = Sizes(image_size=paper_value("data.image_size"), batch_size=paper_value("train.batch_size"), steps=50,
                  warmup=5, patients=64, architectures=tuple(paper_value("architectures")))
DRY_SIZES = Sizes(image_size=64, batch_size=4, steps=2, warmup=1, patients=8, architectures=("resnet18", "mnasnet"))


def device_record(device: torch.device) -> dict[str, Any]:
    """What ran: the device, its capability and the software stack."""
    record = {"type": device.type, "torch": torch.__version__, "python": platform.python_version(),
              "precision": str(devices.Precision.for_device(device).dtype)}
    if device.type == "cuda":
        record.update(name=torch.cuda.get_device_name(device), capability=list(torch.cuda.get_device_capability(device)),
                      cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                      memory_gib=round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1))
    return record


def synthetic_training_set(folder: Path, sizes: Sizes) -> tuple[dataset.ImageSet, list[str]]:
    """The embedded generator's training split at sizes.image_size, as the training loop reads it."""
    synthetic_chexpert.generate_chexpert(folder, n_train_patients=sizes.patients, n_valid_patients=2,
                                         n_test_patients=2, height=sizes.image_size,
                                         width=round(sizes.image_size * 390 / 320), labels="invented")
    labels = chexpert.read_labels(folder / "CheXpert-v1.0-small" / "train.csv")
    pixels = np.stack([images.load_image(folder / path, sizes.image_size) for path in labels["path"]])
    tasks = list(chexpert.PAPER_TASKS)
    policies = ["ones"] * len(tasks)
    targets, mask = chexpert.policy_targets(labels[tasks].to_numpy(np.float32), policies)
    return dataset.ImageSet(pixels, np.arange(len(pixels)), targets, mask), policies


def timed_steps(arch: str, data: dataset.ImageSet, policies: list[str], device: torch.device, sizes: Sizes,
                around: contextlib.AbstractContextManager | None = None
                ) -> tuple[float, torch.nn.Module, layouts.ChexpertLayout]:
    """Training images/s of `arch` over sizes.steps steps of the loop's own step with prefetch; `around`
    wraps the timed steps."""
    layout = layouts.ChexpertLayout(policies)
    model = architectures.build_model(arch, layout.width, seed=0).to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    precision, norm = devices.Precision.for_device(device), architectures.normalization(arch)
    order = np.random.default_rng(0).permutation(len(data))
    batches = [data.batch(order[np.arange(i * sizes.batch_size, (i + 1) * sizes.batch_size) % len(data)])
               for i in range(sizes.warmup + sizes.steps)]
    step = iter(dataset.prefetched(iter(batches), device, norm))
    for _ in range(sizes.warmup):
        loop.train_step(model, layout, optimizer, next(step), device, norm, precision)
    synchronize(device)
    started = time.perf_counter()
    with around or contextlib.nullcontext():
        for _ in range(sizes.steps):
            loop.train_step(model, layout, optimizer, next(step), device, norm, precision)
    synchronize(device)
    return sizes.steps * sizes.batch_size / (time.perf_counter() - started), model, layout


@contextlib.contextmanager
def sync_errors(device: torch.device) -> Iterator[None]:
    """CUDA's sync debug mode at "error" inside the block (nothing to check on the CPU)."""
    if device.type == "cuda":
        torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode(0)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sync_check(data: dataset.ImageSet, policies: list[str], device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """Training steps of ResNet18 with every host synchronisation an error."""
    try:
        timed_steps("resnet18", data, policies, device, sizes, around=sync_errors(device))
    except RuntimeError as error:
        return {"checked": device.type == "cuda", "ok": False, "error": str(error).splitlines()[0]}
    return {"checked": device.type == "cuda", "ok": True if device.type == "cuda" else None, "error": None}


def evaluation_check(model: torch.nn.Module, layout: layouts.ChexpertLayout, data: dataset.ImageSet,
                     device: torch.device, arch: str) -> dict[str, Any]:
    """fp32 predictions against the same weights under the training autocast."""
    norm = architectures.normalization(arch)
    subset = dataset.ImageSet(data.images, data.rows[:64], data.targets[:64], data.mask[:64])
    exact = loop.predict(model, layout, subset, device, normalization=norm)
    precision = devices.Precision.for_device(device)
    with torch.inference_mode(), precision.autocast(device):
        model.eval()
        x, _, _ = subset.batch(np.arange(len(subset)))
        reduced = layout.probabilities(model(dataset.to_model_input(x, device, False, norm))).float().cpu().numpy()
    return {"autocast": str(precision.dtype), "max_abs_difference": float(np.abs(exact - reduced).max()),
            "distinct_fp32": int(len(np.unique(exact))), "distinct_autocast": int(len(np.unique(reduced)))}


def fit_check(data: dataset.ImageSet, policies: list[str], device: torch.device, sizes: Sizes, state: Path
              ) -> dict[str, Any]:
    """The loop end to end on the device: two evaluations, the top-k keeper, the resume state."""
    layout = layouts.ChexpertLayout(policies)
    model = architectures.build_model("resnet18", layout.width, seed=0)
    images_per_run = 4 * sizes.batch_size
    config = loop.FitConfig(epochs=1, batch_size=sizes.batch_size, lr=1e-4, eval_every_images=images_per_run // 2,
                            top_k=1, max_images=images_per_run)
    result = loop.fit(model, layout, data, data, lambda p: (float(p.mean()), {}), config, state, fingerprint="gpu-check",
                      device=device, log=lambda _: None, normalization=architectures.normalization("resnet18"))
    return {"images": result.history[-1]["step"], "evaluations": len(result.history), "kept": len(result.kept),
            "images_per_second": result.images_per_second}


def run_checks(work: Path, device: torch.device, sizes: Sizes, log: Callable[[str], None]) -> dict[str, Any]:
    """Every check, in a scratch folder `work`; the JSON record."""
    started = time.perf_counter()
    record: dict[str, Any] = {"schema": SCHEMA, "dry_run": device.type != "cuda", "device": device_record(device),
                              "sizes": asdict(sizes)}
    data, policies = synthetic_training_set(work / "synthetic", sizes)
    log(f"{len(data)} synthetic images at {sizes.image_size} px on {device}")
    record["sync_free"] = sync_check(data, policies, device, sizes)
    log(f"sync_free: {record['sync_free']}")
    record["throughput"] = {}
    for arch in sizes.architectures:
        rate, model, layout = timed_steps(arch, data, policies, device, sizes)
        record["throughput"][arch] = round(rate, 1)
        log(f"  {arch:<16} {rate:9.1f} img/s")
        if arch == "resnet18":
            record["evaluation"] = evaluation_check(model, layout, data, device, arch)
    record["fit"] = fit_check(data, policies, device, sizes, work / "state")
    record["seconds"] = round(time.perf_counter() - started, 1)
    return record


def result_name(record: dict[str, Any]) -> str:
    """gpu-<device>: the device's name as a file name (gpu-cpu-dry-run without CUDA)."""
    if record["dry_run"]:
        return "gpu-cpu-dry-run"
    return "gpu-" + re.sub(r"[^a-z0-9]+", "-", record["device"]["name"].lower()).strip("-")


def gpu_check(args: argparse.Namespace) -> None:
    if not args.dry_run and not torch.cuda.is_available():
        raise PipelineError("no CUDA device here: gpu-check measures a GPU (--dry-run runs its steps on the CPU)")
    device = torch.device("cpu") if args.dry_run else devices.pick_device("cuda")
    sizes = DRY_SIZES if args.dry_run else GPU_SIZES
    if args.architectures:
        sizes = Sizes(**{**asdict(sizes), "architectures": tuple(args.architectures)})
    args.out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        record = run_checks(Path(work), device, sizes, log)
    name = result_name(record)
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    (args.out / f"{name}.log").write_text("\n".join(lines) + "\n")
    log(f"gpu-check: {args.out / name}.json ({record['seconds']:.0f} s)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for the JSON and log")
    parser.add_argument("--dry-run", action="store_true", help="every step on the CPU at toy sizes (no CUDA needed)")
    parser.add_argument("--architectures", nargs="+", help="measure these only (default: the paper's 16)")
    parser.set_defaults(func=gpu_check)
