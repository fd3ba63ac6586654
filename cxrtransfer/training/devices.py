"""The device a run trains on and its mixed precision."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import TrainingError


def pick_device(name: str = "auto") -> torch.device:
    """`auto`: this process's GPU (LOCAL_RANK under torchrun), else the CPU. A CUDA device becomes current."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"device {name!r} requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)  # else every rank creates its context on GPU 0
    return device


def native_bf16() -> bool:
    """Whether the current GPU computes bf16 in hardware. `is_bf16_supported()` counts emulation by default,
    and emulated bf16 (V100, T4) is slower than fp16 with a GradScaler; torch without the argument: bf16 is
    native from compute capability 8 (Ampere) on."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:
        return torch.cuda.get_device_capability()[0] >= 8


@dataclass
class Precision:
    """Mixed precision of a device: bf16 autocast where the GPU has it, fp16 + GradScaler otherwise, fp32 on CPU."""

    dtype: torch.dtype | None
    scaler: Any = None  # torch.amp.GradScaler for fp16

    @classmethod
    def for_device(cls, device: torch.device) -> "Precision":
        if device.type != "cuda":
            return cls(None)
        if native_bf16():
            return cls(torch.bfloat16)
        return cls(torch.float16, torch.amp.GradScaler("cuda"))

    def autocast(self, device: torch.device) -> Any:
        return torch.autocast(device.type, dtype=self.dtype, enabled=self.dtype is not None)
