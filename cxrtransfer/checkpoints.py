"""The top-k checkpoint keeper and the resumable training state, both as safetensors + JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from .fileio import atomic_path
from .weights import save_safetensors as save_tensors  # the one writer: atomic, cloned tensors


@dataclass
class TopK:
    """Keep the k best checkpoints by score in `folder`; ties keep the earlier checkpoint."""

    folder: Path
    k: int
    entries: list[tuple[float, int]] = field(default_factory=list)  # (score, step), best first

    def path(self, step: int) -> Path:
        return self.folder / f"step{step:010d}.safetensors"

    def offer(self, step: int, score: float, state_dict: dict[str, torch.Tensor]) -> bool:
        """Save the checkpoint if it ranks in the top k; drop the one it pushes out. True if kept."""
        candidates = sorted(self.entries + [(score, step)], key=lambda e: (-e[0], e[1]))
        kept = candidates[: self.k]
        if (score, step) not in kept:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        save_tensors(self.path(step), state_dict, {"step": str(step), "score": repr(score)})
        for _, dropped in candidates[self.k:]:
            self.path(dropped).unlink(missing_ok=True)
        self.entries = kept
        return True

    def kept(self) -> list[tuple[float, int]]:
        return list(self.entries)


def save_resume_state(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      info: dict[str, Any]) -> None:
    """Everything needed to continue training: weights, optimizer moments, RNG, position (info)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    for index, state in opt_state["state"].items():
        for name, value in state.items():
            tensors[f"optimizer.{index}.{name}"] = torch.as_tensor(value)
    tensors["rng.torch"] = torch.get_rng_state()
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / "resume.safetensors", tensors)
    payload = dict(info, param_groups=opt_state["param_groups"])
    with atomic_path(folder / "resume.json") as tmp:
        tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))


def load_resume_state(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      fingerprint: str) -> dict[str, Any] | None:
    """Restore a saved state if it belongs to the same run (same fingerprint); else None."""
    info_file, tensor_file = folder / "resume.json", folder / "resume.safetensors"
    if not (info_file.is_file() and tensor_file.is_file()):
        return None
    info = json.loads(info_file.read_text())
    if info.get("fingerprint") != fingerprint:
        return None
    tensors = load_file(str(tensor_file))
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    return info
