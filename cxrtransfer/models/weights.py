"""Weights in and out: safetensors files, external checkpoints, ImageNet resolution, initial bodies.

ImageNet weights are resolved offline first (see :func:`resolve_imagenet_weights`);
nothing is downloaded unless ``CXR_ALLOW_DOWNLOAD=1``.  Any ``torch.load`` uses
``weights_only=True``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

import timm
import torch
import torchvision
from huggingface_hub import try_to_load_from_cache
from torch import nn

from ..errors import InputError
from .architectures import architecture, body_state_dict, build_model, head_prefixes, is_under, model_head_name
from .tensorfiles import load_safetensors, save_safetensors

ALLOW_DOWNLOAD_ENV = "CXR_ALLOW_DOWNLOAD"
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pth.tar")
STRIP_PREFIXES = ("module.", "model.", "backbone.", "encoder.")
# Keys a checkpoint may lack without harm: BatchNorm's step counter (unused with momentum set).
OPTIONAL_SUFFIXES = ("num_batches_tracked",)
# Containers that training scripts wrap a state dict in, most specific first.
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
_MOCO_QUERY = "encoder_q."
_LEGACY_DENSENET = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
                              r"((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$")
_SHOW = 5  # keys named in an error message


def strip_prefixes(state_dict: Mapping[str, torch.Tensor],
                   prefixes: tuple[str, ...] = STRIP_PREFIXES) -> dict[str, torch.Tensor]:
    """Remove wrapper prefixes ("module.", ...) shared by every key; keep a MoCo query encoder only."""
    state = dict(state_dict)
    changed = True
    while changed and state:
        changed = False
        if any(k.startswith(_MOCO_QUERY) for k in state):
            # MoCo checkpoints hold query and key encoders plus a queue; the query encoder is the backbone
            state = {k[len(_MOCO_QUERY):]: v for k, v in state.items() if k.startswith(_MOCO_QUERY)}
            changed = True
            continue
        for prefix in prefixes:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
                break
    return state


def load_torch_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a .pth/.pt/.bin checkpoint via torch.load(weights_only=True), prefixes stripped."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint file not found", path=path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ... here
        raise InputError("cannot be read by torch.load(weights_only=True) (only tensors and plain "
                         f"containers are allowed; convert it to safetensors): {error}", path=path) from error
    if isinstance(checkpoint, dict):
        for key in _STATE_DICT_KEYS:
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, dict):
        raise InputError(f"holds a {type(checkpoint).__name__}, not a state dict", path=path)
    tensors = {str(k): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise InputError("holds no tensors", path=path)
    return strip_prefixes(tensors)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a torch checkpoint, chosen by the file name; prefixes stripped."""
    path = Path(path)
    if path.name.endswith(".safetensors"):
        return strip_prefixes(load_safetensors(path)[0])
    if path.name.endswith(TORCH_SUFFIXES):
        return load_torch_checkpoint(path)
    raise InputError(f"unknown weights format: expected .safetensors or one of {', '.join(TORCH_SUFFIXES)}",
                     path=path)


# --------------------------------------------------------------------------- loading a body

@dataclass
class LoadReport:
    """What load_body did with each key of the source state dict."""

    loaded: list[str] = field(default_factory=list)
    skipped_head: list[str] = field(default_factory=list)
    ignored_truncated: list[str] = field(default_factory=list)
    kept_default: list[str] = field(default_factory=list)


def _legacy_densenet_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's pre-0.3 DenseNet names ('norm.1') -> current ('norm1')."""
    return {(m.group(1) + m.group(2) if (m := _LEGACY_DENSENET.match(k)) else k): v
            for k, v in state_dict.items()}


def _first(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOW]) + (f" (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else "")


def load_body(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
              source: str | os.PathLike | None = None) -> LoadReport:
    """Copy body weights from `state_dict` into `model` (from build_model, possibly truncated).

    Head keys are skipped, keys of blocks removed by truncation are ignored; a body key the
    model needs but `state_dict` lacks, an unknown key or a shape mismatch raises InputError
    naming `source` and the first offending keys.
    """
    arch = getattr(model, "cxr_arch", None)
    heads = head_prefixes(arch) if arch else (model_head_name(model),)
    removed = tuple(getattr(model, "cxr_removed", ()))
    if arch and architecture(arch).family == "densenet":
        state_dict = _legacy_densenet_names(dict(state_dict))
    target = model.state_dict()
    report = LoadReport()
    unexpected, mismatched, to_load = [], [], {}
    for key, value in state_dict.items():
        if is_under(key, heads):
            report.skipped_head.append(key)
        elif key in target:
            if tuple(value.shape) != tuple(target[key].shape):
                mismatched.append(f"{key} {tuple(value.shape)} vs model {tuple(target[key].shape)}")
            else:
                to_load[key] = value
                report.loaded.append(key)
        elif is_under(key, removed):
            report.ignored_truncated.append(key)
        else:
            unexpected.append(key)
    missing = [k for k in target if k not in to_load and not is_under(k, heads)]
    report.kept_default = [k for k in missing if k.endswith(OPTIONAL_SUFFIXES)]
    missing = [k for k in missing if not k.endswith(OPTIONAL_SUFFIXES)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} body keys missing: {_first(missing)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {_first(mismatched)}")
    if unexpected:
        problems.append(f"{len(unexpected)} keys the model does not have: {_first(unexpected)}")
    if problems:
        name = arch or type(model).__name__
        raise InputError(f"weights do not fit {name}: " + "; ".join(problems), path=source)
    model.load_state_dict(to_load, strict=False)  # copies values: model and source never alias
    return report


# --------------------------------------------------------------------------- ImageNet weights

def imagenet_weights_filename(arch: str) -> str:
    """File name expected in the weights folder, e.g. ``resnet18.tv_in1k.safetensors``."""
    return f"{architecture(arch).timm_name}.safetensors"


TORCHVISION_WEIGHTS_ENUM = "IMAGENET1K_V1"   # torchvision's first (2017-2020) ImageNet weights of every builder


def _torchvision_weights(builder: str) -> Any:
    """torchvision's IMAGENET1K_V1 weights entry of `builder` (its URL and documented top-1)."""
    return getattr(torchvision.models.get_model_weights(builder), TORCHVISION_WEIGHTS_ENUM)


def torchvision_to_timm(state_dict: Mapping[str, torch.Tensor], arch: str,
                        source: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """A torchvision state dict of `arch`'s builder renamed to timm's module names.

    torchvision's MNASNet and MobileNetV2 register the same layers as timm's mnasnet_100 and
    mobilenetv2_100 in the same order with the same shapes (tests/models/test_weights.py proves the
    mapping by equal outputs of both models on the same random weights), so keys map by position;
    a count or shape mismatch is an InputError naming `source`.
    """
    target = build_model(arch, _BODY_OUTPUTS).state_dict()
    if len(state_dict) != len(target):
        raise InputError(f"{len(state_dict)} tensors, but timm's {architecture(arch).timm_model} has "
                         f"{len(target)}: not torchvision's {architecture(arch).torchvision_builder}", path=source)
    mapped = {}
    for (name, value), (timm_key, expected) in zip(state_dict.items(), target.items()):
        if tuple(value.shape) != tuple(expected.shape):
            raise InputError(f"torchvision {name} {tuple(value.shape)} does not fit {arch}'s timm {timm_key} "
                             f"{tuple(expected.shape)}: not torchvision's {architecture(arch).torchvision_builder}",
                             path=source)
        mapped[timm_key] = value
    return mapped


def read_imagenet_state(arch: str, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ImageNet weights file of `arch` in timm's names: torchvision-named files (torch hub's cache)
    of a torchvision-weights row are mapped; files written by export are already in timm's names."""
    state = read_state_dict(path)
    target = build_model(arch, _BODY_OUTPUTS).state_dict()
    if architecture(arch).torchvision_builder and not set(state) <= set(target):
        return torchvision_to_timm(state, arch, source=path)
    return state


def _hub_locations(arch: str) -> tuple[str | None, tuple[str, ...], str | None]:
    """(hf repo id with optional @revision, candidate file names, torch-hub URL) from timm's cfg, or
    torchvision's URL for a row whose weights are torchvision's."""
    builder = architecture(arch).torchvision_builder
    if builder:
        return None, (), _torchvision_weights(builder).url
    cfg = timm.models.get_pretrained_cfg(architecture(arch).timm_name)
    files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else ("model.safetensors", "pytorch_model.bin")
    return cfg.hf_hub_id or None, files, cfg.url or None


def _cached_hub_file(arch: str, hf_cache_dir: str | os.PathLike | None,
                     torch_hub_dir: str | os.PathLike | None) -> Path | None:
    """The weights file in the local Hugging Face cache or torch-hub checkpoints folder, if there."""
    hf_hub_id, filenames, url = _hub_locations(arch)
    if hf_hub_id:
        repo_id, _, revision = hf_hub_id.partition("@")
        for filename in filenames:
            found = try_to_load_from_cache(repo_id, filename, cache_dir=hf_cache_dir,
                                           revision=revision or None)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    if url:
        hub_dir = Path(torch_hub_dir) if torch_hub_dir is not None else Path(torch.hub.get_dir())
        candidate = hub_dir / "checkpoints" / Path(urlparse(url).path).name
        if candidate.is_file():
            return candidate
    return None


def _download_with_timm(arch: str) -> nn.Module:
    """timm's model with the pinned weights, fetched into timm's usual cache (network needed); for a
    torchvision-weights row, timm's module holding torchvision's file (fetched into torch hub's cache)."""
    spec = architecture(arch)
    if spec.torchvision_builder:
        try:
            state = _torchvision_weights(spec.torchvision_builder).get_state_dict(progress=False)
        except Exception as error:  # network and hub errors all mean "not available here"
            raise InputError(f"downloading torchvision's {spec.torchvision_builder} {TORCHVISION_WEIGHTS_ENUM} "
                             f"failed (no internet?): {error}") from error
        model = build_model(arch, _BODY_OUTPUTS)
        model.load_state_dict(torchvision_to_timm(state, arch, source=_torchvision_weights(spec.torchvision_builder).url))
        return model
    try:
        return timm.create_model(spec.timm_name, pretrained=True)
    except Exception as error:  # network, hub and timm errors all mean "not available here"
        raise InputError(f"downloading ImageNet weights {spec.timm_name} through timm failed "
                         f"(no internet?): {error}") from error


def resolve_imagenet_weights(arch: str, weights_dir: str | os.PathLike | None, *,
                             hf_cache_dir: str | os.PathLike | None = None,
                             torch_hub_dir: str | os.PathLike | None = None) -> Path:
    """Path of the pinned ImageNet weights for `arch`, looked up offline first.

    1. ``weights_dir/<timm_model>.<tag>.safetensors`` or ``weights_dir/<timm_model>.<tag>/model.safetensors``;
    2. the local Hugging Face cache (timm's hf_hub_id), then torch hub's ``checkpoints/`` (timm's URL);
    3. only with ``CXR_ALLOW_DOWNLOAD=1``: a download through timm, then step 2 again.
    Otherwise InputError saying which file to put where.
    """
    spec = architecture(arch)
    expected = None
    if weights_dir is not None:
        weights_dir = Path(weights_dir)
        expected = weights_dir / imagenet_weights_filename(arch)
        for candidate in (expected, weights_dir / spec.timm_name / "model.safetensors"):
            if candidate.is_file():
                return candidate
    cached = _cached_hub_file(arch, hf_cache_dir, torch_hub_dir)
    if cached is not None:
        return cached
    if os.environ.get(ALLOW_DOWNLOAD_ENV) == "1":
        _download_with_timm(arch)  # fills timm's (or, for torchvision weights, torch hub's) cache
        cached = _cached_hub_file(arch, hf_cache_dir, torch_hub_dir)
        if cached is not None:
            return cached
        raise InputError(f"timm downloaded {spec.timm_name} but no file was found in the Hugging Face "
                         "or torch hub cache")
    where = str(expected) if expected else f"<weights_dir>/{imagenet_weights_filename(arch)}"
    hf_hub_id, filenames, url = _hub_locations(arch)
    cache = (f"place {filenames[0]} of Hugging Face repo {hf_hub_id} in the local Hugging Face cache" if hf_hub_id
             else f"place {Path(urlparse(url or '').path).name} ({url}) in torch hub's checkpoints folder")
    raise InputError(
        f"no ImageNet weights for {arch} ({spec.weights} {spec.timm_name}) and downloads are off: put the file at "
        f"{where} (run `make weights` on a machine with internet, then copy or `dvc pull` the weights "
        f"folder), or {cache}, or set {ALLOW_DOWNLOAD_ENV}=1 to let it be downloaded")


def export_imagenet_weights(arch: str, weights_dir: str | os.PathLike) -> Path:
    """Download the pinned weights (timm's, or torchvision's mapped to timm's names) and write ``weights_dir/<timm_model>.<tag>.safetensors``."""
    spec = architecture(arch)
    model = _download_with_timm(arch)
    hf_hub_id, _, url = _hub_locations(arch)
    path = Path(weights_dir) / imagenet_weights_filename(arch)
    save_safetensors(path, model.state_dict(), metadata={
        "arch": spec.arch, "timm_model": spec.timm_model, "pretrained_tag": spec.pretrained_tag,
        "weights": spec.weights, "timm_version": timm.__version__, "torchvision_version": torchvision.__version__,
        "source": hf_hub_id or url or "",
    })
    return path


# --------------------------------------------------------------------------- initial bodies

# Bodies are built with the ImageNet head size so a random body does not depend on the task.
_BODY_OUTPUTS = 1000


def initial_body(arch: str, init: str, *, weights_dir: str | os.PathLike | None, seed: int,
                 files: Mapping[str, str | os.PathLike] | None = None) -> dict[str, torch.Tensor]:
    """Body weights (timm names, untruncated) to start training `arch` from.

    `init`: "random" (seeded, no global RNG side effect), "imagenet" (the pinned weights, see
    resolve_imagenet_weights) or a key of `files` naming a safetensors/torch checkpoint.
    """
    files = dict(files or {})
    model = build_model(arch, _BODY_OUTPUTS, 0, seed=seed)
    if init == "random":
        return body_state_dict(model)
    if init == "imagenet":
        path = resolve_imagenet_weights(arch, weights_dir)
    elif init in files:
        path = Path(files[init])
    else:
        raise InputError(f"unknown init {init!r} for {arch}: expected 'random', 'imagenet' or one of "
                         f"{sorted(files) or 'the named weight files (none given)'}")
    load_body(model, read_imagenet_state(arch, path) if init == "imagenet" else read_state_dict(path), source=path)
    return body_state_dict(model)
