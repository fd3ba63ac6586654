"""Precision per GPU capability, with the capability mocked (no CUDA needed)."""

from __future__ import annotations

import warnings

import pytest
import torch

from cxrtransfer.training import devices

CUDA = torch.device("cuda", 0)


def fake_is_bf16_supported(native: bool, emulated: bool = True):
    """torch.cuda.is_bf16_supported as on a GPU that has bf16 natively or only by emulation."""
    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native or (including_emulation and emulated)
    return is_bf16_supported


def precision(monkeypatch, is_bf16_supported, capability=(9, 0)) -> devices.Precision:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GradScaler("cuda") warns (and disables itself) without CUDA
        return devices.Precision.for_device(CUDA)


def test_native_bf16_gpu_trains_in_bf16_without_a_scaler(monkeypatch):
    chosen = precision(monkeypatch, fake_is_bf16_supported(native=True))
    assert chosen.dtype == torch.bfloat16 and chosen.scaler is None


def test_emulated_bf16_gpu_gets_fp16_with_a_grad_scaler(monkeypatch):
    # V100/T4: is_bf16_supported() is True by default (emulation counts), yet bf16 is slow there.
    chosen = precision(monkeypatch, fake_is_bf16_supported(native=False, emulated=True), capability=(7, 0))
    assert chosen.dtype == torch.float16 and isinstance(chosen.scaler, torch.amp.GradScaler)


@pytest.mark.parametrize("capability, dtype", [((7, 5), torch.float16), ((8, 0), torch.bfloat16)])
def test_torch_without_the_emulation_argument_decides_by_capability(monkeypatch, capability, dtype):
    def old_is_bf16_supported() -> bool:  # older torch: no including_emulation, emulation counted
        return True
    assert precision(monkeypatch, old_is_bf16_supported, capability).dtype == dtype


def test_cpu_trains_in_fp32():
    chosen = devices.Precision.for_device(torch.device("cpu"))
    assert chosen.dtype is None and chosen.scaler is None
