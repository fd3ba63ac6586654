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
- fit: the loop end to end on the device (evaluation, top-k checkpoint, resume state);
- train_stage: stages/train.py run as DVC would run it (preprocess, split, normalization and init
  first, also as scripts), on the embedded data at the check's image size, without DVC or dvclive;
- ddp: two ranks of fit() under torchrun: on two GPUs with NCCL where there are two, else both on one
  GPU with gloo and SyncBatchNorm off (NCCL refuses two ranks on one GPU);
- packed: the summed img/s of `packed` processes training the same architecture at once on the GPU
  (what `cxrtransfer parallel --models-per-gpu` does), beside one process alone; within a time budget;
- time_to_paper: the paper grid's training hours at the measured img/s against its FLOPs ideal at the
  device's bf16 peak (cxrtransfer/models/flops.csv, lab/gpu_plan.py).
Without CUDA (and without --dry-run) it stops with one line. The whole check stays under 8 minutes on an
H100/H200-class GPU: the packed rows stop at `budget_seconds` and name what they skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import yaml

from ..data import chexpert, images
from ..embedded import synthetic_chexpert
from ..errors import PipelineError
from ..models import architectures
from ..pipeline.grid import declared_models
from ..stats.paper_settings import paper_value
from ..training import dataset, devices, layouts, loop
from ..training.distributed import Distributed
from .gpu_plan import PEAKS, training_gflop

SCHEMA = 2
REPO = Path(__file__).resolve().parents[2]
PAPER_TRAIN_IMAGES = 223_414  # CheXpert-v1.0 training images (the count; ../shared/reference.md)


@dataclass(frozen=True)
class Sizes:
    image_size: int
    batch_size: int
    steps: int               # timed training steps per architecture
    warmup: int              # untimed steps first (cuDNN's kernel choice, allocator)
    patients: int            # synthetic training patients rendered at image_size
    architectures: tuple[str, ...]
    packed: int = 4          # processes sharing the GPU in the packed rows
    budget_seconds: float = 420.0  # the packed rows stop here (the rest of the check comes first)


GPU_SIZES = Sizes(image_size=paper_value("data.image_size"), batch_size=paper_value("train.batch_size"), steps=50,
                  warmup=5, patients=64, architectures=tuple(paper_value("architectures")))
DRY_SIZES = Sizes(image_size=64, batch_size=4, steps=2, warmup=1, patients=8, architectures=("resnet18", "mnasnet"),
                  packed=2, budget_seconds=600.0)


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
    """Training images/s of `arch` over sizes.steps steps of the loop's own step with prefetch, on the
    trainer fit() prepares (its device tuning, optimizer and precision); `around` wraps the timed steps."""
    layout = layouts.ChexpertLayout(policies)
    norm = architectures.normalization(arch)
    config = loop.FitConfig(epochs=1, batch_size=sizes.batch_size, lr=1e-4, eval_every_images=sizes.batch_size,
                            top_k=1)
    t = loop.prepare(architectures.build_model(arch, layout.width, seed=0), layout, data, config, device, norm,
                     Distributed(), log=lambda _: None)
    t.model.train()
    order = np.random.default_rng(0).permutation(len(data))
    batches = [data.batch(order[np.arange(i * sizes.batch_size, (i + 1) * sizes.batch_size) % len(data)])
               for i in range(sizes.warmup + sizes.steps)]
    step = iter(dataset.prefetched(iter(batches), device, norm))
    for _ in range(sizes.warmup):
        loop.train_step(t.net, layout, t.optimizer, next(step), device, norm, t.precision)
    synchronize(device)
    started = time.perf_counter()
    with around or contextlib.nullcontext():
        for _ in range(sizes.steps):
            loop.train_step(t.net, layout, t.optimizer, next(step), device, norm, t.precision)
    synchronize(device)
    return sizes.steps * sizes.batch_size / (time.perf_counter() - started), t.model, layout


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
    saved = save_training_set(data, policies, work / "training-set.npz")
    log(f"{len(data)} synthetic images at {sizes.image_size} px on {device}")
    record["sync_free"] = sync_check(data, policies, device, sizes)
    log(f"sync_free: {record['sync_free']}")
    record["throughput"], record["errors"] = {}, {}
    for arch in sizes.architectures:
        try:
            rate, model, layout = timed_steps(arch, data, policies, device, sizes)
        except Exception as error:  # noqa: BLE001 - one architecture's failure (e.g. out of memory) is a result
            record["errors"][f"throughput/{arch}"] = f"{type(error).__name__}: {error}"[:300]
            log(f"  {arch:<16} failed: {record['errors'][f'throughput/{arch}']}")
            continue
        record["throughput"][arch] = round(rate, 1)
        log(f"  {arch:<16} {rate:9.1f} img/s")
        if arch == "resnet18":
            record["evaluation"] = evaluation_check(model, layout, data, device, arch)
        del model
    record["fit"] = guarded(lambda: fit_check(data, policies, device, sizes, work / "state"))
    record["train_stage"] = train_stage_check(work, device, sizes)
    log(f"train_stage: {record['train_stage']}")
    record["ddp"] = ddp_check(saved, work, sizes)
    log(f"ddp: {record['ddp']}")
    record["packed"] = packed_check(record["throughput"], saved, work, sizes, started + sizes.budget_seconds, log)
    record["time_to_paper"] = guarded(lambda: time_to_paper(record["throughput"], record["packed"],
                                                            record["device"].get("name", "cpu")))
    log(f"time_to_paper: {record['time_to_paper']}")
    record["seconds"] = round(time.perf_counter() - started, 1)
    return record


def guarded(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A check's record, or its failure as {"ok": false, "error": ...}: the other checks still report."""
    try:
        return check()
    except Exception as error:  # noqa: BLE001 - recorded, and the JSON is still written
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}


def result_name(record: dict[str, Any]) -> str:
    """gpu-<device>: the device's name as a file name (gpu-cpu-dry-run without CUDA)."""
    if record["dry_run"]:
        return "gpu-cpu-dry-run"
    return "gpu-" + re.sub(r"[^a-z0-9]+", "-", record["device"]["name"].lower()).strip("-")


def gpu_check(args: argparse.Namespace) -> None:
    if args.worker:  # one of the check's own processes (packed steps, a DDP rank)
        {"packed": packed_worker, "ddp": ddp_worker}[args.worker](args)
        return
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
    parser.add_argument("--worker", choices=["packed", "ddp"], help=argparse.SUPPRESS)  # the check's own processes
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    parser.set_defaults(func=gpu_check)


def save_training_set(data: dataset.ImageSet, policies: list[str], path: Path) -> Path:
    """The check's training set as one .npz the worker processes read."""
    np.savez(path, images=data.images, targets=data.targets, mask=data.mask, policies=np.array(policies))
    return path


def load_training_set(path: Path) -> tuple[dataset.ImageSet, list[str]]:
    with np.load(path) as f:
        images, targets, mask, policies = f["images"], f["targets"], f["mask"], [str(p) for p in f["policies"]]
    return dataset.ImageSet(images, np.arange(len(images)), targets, mask), policies


def worker_env() -> dict[str, str]:
    """Workers import this checkout (the GPU machine installs nothing)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def worker_command(kind: str, data: Path, out: Path, sizes: Sizes, arch: str = "resnet18") -> list[str]:
    return ["-m", "cxrtransfer", "gpu-check", "--worker", kind, "--data", str(data), "--out", str(out),
            "--sizes", json.dumps(asdict(sizes)), "--architectures", arch]


@contextlib.contextmanager
def start_together(folder: Path, name: str) -> Iterator[None]:
    """A barrier between processes: announce `ready-<name>`, wait for `go` (the parent's), then time."""
    (folder / f"ready-{name}").touch()
    while not (folder / "go").exists():
        time.sleep(0.005)
    yield


def packed_worker(args: argparse.Namespace) -> None:
    """One of the packed processes: timed steps of one architecture, started with the others."""
    data, policies = load_training_set(args.data)
    sizes = Sizes(**json.loads(args.sizes))
    device = devices.pick_device("cuda" if torch.cuda.is_available() else "cpu")
    rate, _, _ = timed_steps(args.architectures[0], data, policies, device, sizes,
                             around=start_together(args.out, str(os.getpid())))
    (args.out / f"rate-{os.getpid()}.json").write_text(json.dumps({"images_per_second": rate}))


def packed_rate(arch: str, data: Path, work: Path, sizes: Sizes) -> float:
    """Summed img/s of sizes.packed processes training `arch` at the same time (each twice as many steps
    as the single row, so that the timed windows overlap)."""
    folder = work / f"packed-{arch}"
    folder.mkdir()
    longer = Sizes(**{**asdict(sizes), "steps": 2 * sizes.steps})
    procs = [subprocess.Popen([sys.executable, *worker_command("packed", data, folder, longer, arch)], env=worker_env())
             for _ in range(sizes.packed)]
    try:
        while len(list(folder.glob("ready-*"))) < sizes.packed and all(p.poll() is None for p in procs):
            time.sleep(0.01)
        (folder / "go").touch()
        if any(p.wait(timeout=300) != 0 for p in procs):
            raise PipelineError(f"a packed {arch} process failed (exit codes {[p.returncode for p in procs]})")
    finally:
        for proc in procs:
            if proc.poll() is None:  # a timeout: none of the check's processes outlives it
                proc.kill()
                proc.wait()
    return sum(json.loads(f.read_text())["images_per_second"] for f in folder.glob("rate-*.json"))


def packed_check(throughput: dict[str, float], data: Path, work: Path, sizes: Sizes, deadline: float,
                 log: Callable[[str], None]) -> dict[str, Any]:
    """Packed img/s per architecture beside the single process's, until `deadline` (perf_counter)."""
    rows: dict[str, Any] = {}
    for arch in sizes.architectures:
        if time.perf_counter() > deadline or arch not in throughput:
            rows[arch] = {"skipped": "time budget" if arch in throughput else "no single-process figure"}
            continue
        try:
            rate = packed_rate(arch, data, work, sizes)
        except (PipelineError, subprocess.TimeoutExpired) as error:
            rows[arch] = {"error": str(error)[:300]}
            continue
        rows[arch] = {"processes": sizes.packed, "images_per_second": round(rate, 1),
                      "ratio_to_one_process": round(rate / throughput[arch], 3)}
        log(f"  packed x{sizes.packed} {arch:<16} {rate:9.1f} img/s ({rows[arch]['ratio_to_one_process']:.2f} x alone)")
    return rows


def ddp_worker(args: argparse.Namespace) -> None:
    """A torchrun rank: fit() on the check's data; NCCL with a GPU per rank, else gloo (on one shared GPU
    with SyncBatchNorm off: NCCL refuses two ranks on one GPU; or on the CPU in the dry run)."""
    import torch.distributed as dist  # here: only the torchrun ranks use it
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = torch.device("cuda", rank if gpus >= world else 0) if gpus else torch.device("cpu")
    if gpus:
        torch.cuda.set_device(device)
    backend = "nccl" if gpus >= world else "gloo"
    dist.init_process_group(backend)
    try:
        data, policies = load_training_set(args.data)
        batch = json.loads(args.sizes)["batch_size"]
        layout = layouts.ChexpertLayout(policies)
        # train.batch_size is the global batch (the paper's 16 over the ranks): four steps, two evaluations
        config = loop.FitConfig(epochs=1, batch_size=batch, lr=1e-4, eval_every_images=2 * batch, top_k=1,
                                max_images=4 * batch, sync_batchnorm=backend == "nccl")
        result = loop.fit(architectures.build_model("resnet18", layout.width, seed=0), layout, data, data,
                          lambda p: (float(p.mean()), {}), config, args.out / f"state-{rank}", "gpu-check-ddp",
                          device=device, log=lambda _: None, normalization=architectures.normalization("resnet18"))
        if rank == 0:
            (args.out / "ddp.json").write_text(json.dumps({
                "backend": backend, "world": world, "device": str(device), "sync_batchnorm": config.sync_batchnorm,
                "images": result.history[-1]["step"], "evaluations": len(result.history),
                "train_loss": result.history[-1]["train_loss"]}))
    finally:
        dist.destroy_process_group()


def ddp_check(data: Path, work: Path, sizes: Sizes) -> dict[str, Any]:
    """Two ranks under torchrun (at most 3 minutes): what rank 0 reports, or the failure."""
    folder = work / "ddp"
    folder.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               *worker_command("ddp", data, folder, sizes)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, env=worker_env(), capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "no result within 180 s (a rank hung)"}
    if done.returncode != 0 or not (folder / "ddp.json").exists():
        return {"ok": False, "error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return {"ok": True, "seconds": round(time.perf_counter() - started, 1), **json.loads((folder / "ddp.json").read_text())}


def stage_params(root: Path, device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """The demo's params.yaml on `root`'s embedded data at the check's size: ResNet18 from random init,
    four batches with two evaluations on `device`."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(root=str(root), image_size=sizes.image_size)
    batch = sizes.batch_size
    params["train"].update(epochs=1, batch_size=batch, max_images=4 * batch, eval_every_images=2 * batch, top_k=1,
                           devices=1, device=device.type)
    return params


def stage_commands(folder: Path) -> list[tuple[str, list[str]]]:
    """The chain of stage scripts a train stage needs, with dvc.yaml's arguments, relative to `folder`."""
    stages = REPO / "stages"
    return [
        ("preprocess", [f"{stages}/preprocess.py", "--params", "params.yaml", "--section", "data", "--out", "cache",
                        "--workers", "2"]),
        ("split", [f"{stages}/split.py", "--params", "params.yaml", "--index", "cache/index.csv", "--out", "split.csv",
                   "--summary", "split.json"]),
        ("normalization", [f"{stages}/normalization.py", "--cache", "cache", "--split", "split.csv",
                           "--out", "normalization.json"]),
        ("init", [f"{stages}/init.py", "--params", "params.yaml", "--arch", "resnet18", "--init", "random",
                  "--out", "init.safetensors", "--metrics", "init.json"]),
        ("train", [f"{stages}/train.py", "--params", "params.yaml", "--arch", "resnet18", "--init", "random",
                   "--init-weights", "init.safetensors", "--cache", "cache", "--split", "split.csv", "--out", "model",
                   "--metrics", "metrics.json", "--live", "live", "--state", "state",
                   "--normalization", "normalization.json", "--timing", "timing.json"]),
    ]


def train_stage_check(work: Path, device: torch.device, sizes: Sizes) -> dict[str, Any]:
    """stages/train.py end to end on the embedded data, each stage script run as DVC runs it (no DVC)."""
    folder = work / "stage"
    folder.mkdir()
    synthetic_chexpert.generate_chexpert(folder / "data", n_train_patients=sizes.patients, n_valid_patients=40,
                                         n_test_patients=16, height=sizes.image_size,
                                         width=round(sizes.image_size * 390 / 320), labels="invented")
    (folder / "params.yaml").write_text(json.dumps(stage_params(folder / "data", device, sizes)))  # JSON is YAML
    seconds: dict[str, float] = {}
    for name, command in stage_commands(folder):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, *command], cwd=folder, env=worker_env(), capture_output=True, text=True)
        seconds[name] = round(time.perf_counter() - started, 1)
        if done.returncode != 0:
            return {"ok": False, "failed": name, "seconds": seconds,
                    "error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    metrics, timing = (json.loads((folder / f).read_text()) for f in ("metrics.json", "timing.json"))
    return {"ok": True, "seconds": seconds, "kept_checkpoints": metrics["kept_checkpoints"],
            "val_auc_mean": metrics["val_auc_mean"], "device": timing["device"],
            "images_per_second": timing["images_per_second"]}


def peak_for(device_name: str) -> str:
    """The PEAKS entry of a CUDA device name (H100 SXM where none matches, said so in the record)."""
    name = re.sub(r"[^a-z0-9]+", "-", device_name.lower())
    return next((key for key, (_, pattern, _) in PEAKS.items() if pattern in name), "h100-sxm")


def time_to_paper(throughput: dict[str, float], packed: dict[str, Any], device_name: str) -> dict[str, Any]:
    """Training hours of the paper grid (3 epochs of 223,414 images per model, truncated models at full
    cost) at the measured img/s, one model at a time and packed, against the FLOPs ideal at the peak."""
    runs: dict[str, int] = {}
    for model in declared_models(paper_grid()):
        runs[model.arch] = runs.get(model.arch, 0) + 1
    images = paper_value("train.epochs") * PAPER_TRAIN_IMAGES
    peak_name = peak_for(device_name)
    peak, _, source = PEAKS[peak_name]
    ideal = sum(n * images * training_gflop(a, paper_value("data.image_size")) * 1e9 for a, n in runs.items()) / peak / 3600
    record: dict[str, Any] = {"peak": peak_name, "peak_matched": PEAKS[peak_name][1] in re.sub(r"[^a-z0-9]+", "-", device_name.lower()),
                              "peak_tflops": peak / 1e12, "peak_source": source,
                              "ideal_hours": round(ideal, 2), "runs": runs, "images_per_run": images}
    if set(runs) <= set(throughput):
        alone = sum(n * images / throughput[a] for a, n in runs.items()) / 3600
        record.update(expected_hours=round(alone, 2), ratio_to_ideal=round(alone / ideal, 2))
        if all("images_per_second" in packed.get(a, {}) for a in runs):
            shared = sum(n * images / packed[a]["images_per_second"] for a, n in runs.items()) / 3600
            record.update(expected_hours_packed=round(shared, 2), packed_ratio_to_ideal=round(shared / ideal, 2))
    return record


def paper_grid() -> dict[str, Any]:
    """configs/paper.yaml: the paper's grid (its checks against the paper's values: tests/lab/test_paper.py)."""
    return yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
