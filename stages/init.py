"""Stages init_<kind>@<arch>-<init>: the starting body weights of one architecture, as safetensors.

Each kind reads only its own params and data (dvc.yaml declares exactly these):
- random (init.seed): the seeded default initialization of timm
- weights (init.weights_dir, init.files): "imagenet", timm's pinned ImageNet weights resolved
  offline-first (see cxrtransfer.models.weights), or a name under init.files: that backbone checkpoint
  inside init.weights_dir (safetensors, or .pth/.pt loaded with weights_only=True)
- indomain (pretrain, the source cache): in-domain pretraining (RadImageNet-style) with the training
  loop of the train stage, then the body of the best checkpoint
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from cxrtransfer.data import images
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import write_json
from cxrtransfer.models import architectures, tensorfiles, weights
from cxrtransfer.pipeline import config as schema
from cxrtransfer.training import dataset, devices, layouts, loop, outputs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--arch", required=True)
    parser.add_argument("--init", required=True)
    parser.add_argument("--source-cache", type=Path, default=Path("data/source_cache"),
                        help="preprocessed source dataset (indomain only)")
    parser.add_argument("--out", type=Path, required=True, help="body weights (safetensors)")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON (pretraining figures)")
    parser.add_argument("--state", type=Path, default=Path(".state/init"), help="resume state folder (indomain)")
    parser.add_argument("--timing", type=Path, default=None,
                        help="throughput and wall time JSON, not a DVC output (default: <state>.timing.json)")
    return parser.parse_args(argv)


def pretrain_indomain(args: argparse.Namespace, config: dict) -> tuple[dict, dict]:
    """Pretrain the architecture as a classifier of the source classes; return (body, metrics)."""
    image_array, index = images.read_cache(args.source_cache)
    n_classes = int(index["class_index"].max()) + 1
    fit_config = loop.fit_config(config)
    in_valid = dataset.holdout_rows(len(index), config["valid_fraction"], fit_config.seed)
    labels = index["class_index"].to_numpy(np.float32)[:, None]
    ones = np.ones_like(labels)
    train_rows, valid_rows = np.flatnonzero(~in_valid), np.flatnonzero(in_valid)
    train_set = dataset.ImageSet(image_array, train_rows, labels[train_rows], ones[train_rows])
    valid_set = dataset.ImageSet(image_array, valid_rows, labels[valid_rows], ones[valid_rows])
    valid_labels = labels[valid_rows, 0]

    def accuracy(probabilities: np.ndarray) -> tuple[float, dict[str, float]]:
        return float((probabilities.argmax(axis=1) == valid_labels).mean()), {}

    layout = layouts.ClassificationLayout(n_classes)
    model = loop.seeded(fit_config.seed, architectures.build_model, args.arch, n_classes)
    fingerprint = loop.fingerprint(vars(args), config, [args.source_cache / images.INDEX_FILE])
    print(f"pretrain {args.arch}: {len(train_rows)} train / {len(valid_rows)} valid source images, {n_classes} classes")
    device, started = devices.pick_device(config["device"]), time.perf_counter()
    result = loop.fit(model, layout, train_set, valid_set, accuracy, fit_config, args.state, fingerprint,
                      device=device, normalization=architectures.normalization(args.arch))
    outputs.write_timing(args.timing or outputs.timing_path(args.state), result, device, started)
    best_score, best_step = result.kept[0]
    state, _ = tensorfiles.load_safetensors(result.checkpoint(best_step))
    model.load_state_dict(state)
    curve = [{"step": h["step"], "valid_accuracy": h["score"], "train_loss": h["train_loss"]} for h in result.history]
    metrics = {"curve": curve, "source_classes": n_classes, "source_images": len(index), "best_step": best_step,
               "valid_accuracy": best_score, "chance_accuracy": float(np.bincount(valid_labels.astype(int)).max() / len(valid_labels))}
    return architectures.body_state_dict(model), metrics


def file_weights(arch: str, init: str, settings: dict, source: Path) -> dict:
    """Body from the weights folder: "imagenet" or a name under init.files (a file inside the folder)."""
    weights_dir, files = Path(settings["weights_dir"]), settings["files"]
    if init != "imagenet":
        if init not in files:
            raise InputError(f"unknown init {init!r}: use random, indomain, imagenet or a name under init.files "
                             f"({sorted(files)})", source)
        if weights_dir.resolve() not in Path(files[init]).resolve().parents:
            raise InputError(f"init.files.{init} = {files[init]!r} is not inside init.weights_dir "
                             f"({weights_dir}), which is what the stage depends on", source)
    return weights.initial_body(arch, init, weights_dir=weights_dir, seed=settings["seed"], files=files)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    kind = schema.init_kind(args.init)
    settings = schema.check(schema.load_params(args.params), ["init", "pretrain"] if kind == "indomain" else ["init"],
                            args.params)
    architectures.architecture(args.arch)  # unknown names fail here, before any work
    metrics: dict = {"init": args.init}
    if kind == "indomain":
        body, pretrain_metrics = pretrain_indomain(args, settings["pretrain"])
        metrics.update(pretrain_metrics)
        shutil.rmtree(args.state, ignore_errors=True)
    elif kind == "random":
        body = weights.initial_body(args.arch, "random", weights_dir=None, seed=settings["init"]["seed"])
    else:
        body = file_weights(args.arch, args.init, settings["init"], args.params)
    tensorfiles.save_safetensors(args.out, body, {"arch": args.arch, "init": args.init})
    metrics["tensors"] = len(body)
    write_json(args.metrics, metrics)
    print(f"init {args.arch}-{args.init}: {len(body)} body tensors -> {args.out}")


if __name__ == "__main__":
    schema.run_stage(main)
