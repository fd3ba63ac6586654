"""Safetensors in and out: the one writer (atomic, canonical header) and the one reader of weight files."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Mapping

import safetensors
import safetensors.torch
import torch

from ..errors import InputError
from ..fileio import atomic_path

_SHOW = 5  # keys named in an error message


def save_safetensors(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor],
                     metadata: dict[str, str] | None = None) -> None:
    """Write `state_dict` as safetensors, atomically; tensors are copied (contiguous, on CPU)."""
    if metadata is not None:
        bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"safetensors metadata must map str to str; bad entries: {bad[:_SHOW]}")
    tensors = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"state_dict[{key!r}] is {type(value).__name__}, not a tensor")
        # clone: never alias the live model (or two keys sharing storage) in what we write
        tensors[key] = value.detach().to("cpu").clone().contiguous()
    blob = _canonical_header(safetensors.torch.save(tensors, metadata=metadata))
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(blob)


def _canonical_header(blob: bytes) -> bytes:
    """The safetensors bytes with the JSON header's keys sorted, padded to its old length.

    safetensors writes the metadata map in an order that changes from process to process (a Rust
    HashMap), so equal tensors gave different file hashes in dvc.lock; offsets count from the header's
    end, so a header of the same length keeps them valid.
    """
    length = struct.unpack("<Q", blob[:8])[0]
    header = json.dumps(json.loads(blob[8:8 + length]), sort_keys=True, separators=(",", ":")).encode()
    if len(header) > length:  # cannot happen for a compact header; keep the library's bytes then
        return blob
    return blob[:8] + header + b" " * (length - len(header)) + blob[8 + length:]


def load_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(state_dict, metadata) from a safetensors file; InputError naming the file if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError("weights file not found", path=path)
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            state_dict = {key: handle.get_tensor(key) for key in handle.keys()}
    except (safetensors.SafetensorError, OSError, ValueError) as error:
        raise InputError(f"not a readable safetensors file ({error})", path=path) from error
    return state_dict, metadata
