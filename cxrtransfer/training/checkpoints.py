"""The top-k checkpoint keeper and the resumable training state, both as safetensors + JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from ..models.tensorfiles import save_safetensors as save_tensors  # the one writer: atomic, cloned tensors


def checkpoint_path(folder: Path, step: int) -> Path:
    """The file of the checkpoint taken after `step` training images."""
    return folder / f"step{step:010d}.safetensors"


@dataclass
class TopK:
    """Keep the k best checkpoints by score in `folder`; ties keep the earlier checkpoint.

    A checkpoint pushed out of the top k stays on disk until `prune()`, which the loop calls after the
    resume state that no longer names it is saved: a crash in between never loses a named checkpoint.
    """

    folder: Path
    k: int
    entries: list[tuple[float, int]] = field(default_factory=list)  # (score, step), best first

    def path(self, step: int) -> Path:
        return checkpoint_path(self.folder, step)

    def offer(self, step: int, score: float, state_dict: dict[str, torch.Tensor]) -> bool:
        """Save the checkpoint if it ranks in the top k. True if kept."""
        candidates = sorted(self.entries + [(score, step)], key=lambda e: (-e[0], e[1]))
        kept = candidates[: self.k]
        if (score, step) not in kept:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        save_tensors(self.path(step), state_dict, {"step": str(step), "score": repr(score)})
        self.entries = kept
        return True

    def prune(self) -> None:
        """Delete every file in the folder that is not a kept checkpoint (dropped ones, crash leftovers)."""
        named = {self.path(step).name for _, step in self.entries}
        for path in self.folder.glob("*") if self.folder.is_dir() else []:
            if path.name not in named:
                path.unlink()

    def kept(self) -> list[tuple[float, int]]:
        return list(self.entries)


STATE_FILE = "resume.safetensors"


def save_resume_state(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      info: dict[str, Any], scaler: Any = None) -> None:
    """Everything needed to continue training, in one file written by one rename: weights, optimizer
    moments, RNG states (CPU and CUDA), fp16 loss scale, and `info` (position, history) as metadata."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    for index, state in opt_state["state"].items():
        for name, value in state.items():
            tensors[f"optimizer.{index}.{name}"] = torch.as_tensor(value)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for device, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{device}"] = rng
    payload = dict(info, param_groups=opt_state["param_groups"])
    if scaler is not None:
        payload["grad_scaler"] = scaler.state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / STATE_FILE, tensors, {"info": json.dumps(payload, sort_keys=True)})


def load_resume_state(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      fingerprint: str, scaler: Any = None) -> dict[str, Any] | None:
    """Restore a saved state if it belongs to the same run (same fingerprint); else None."""
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as handle:
        info = json.loads(handle.metadata()["info"])
    if info.get("fingerprint") != fingerprint:
        return None
    tensors = load_file(str(path))
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(sum(k.startswith("rng.cuda.") for k in tensors))]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    if scaler is not None and "grad_scaler" in info:
        scaler.load_state_dict(info["grad_scaler"])
    return info
