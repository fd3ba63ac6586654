"""`cxrtransfer weights export`: the pinned ImageNet weights (timm's tags, or torchvision's 2020 files mapped
into timm's names: the table's `weights` column) as <out>/<timm_model>.<tag>.safetensors.

Needs internet or a filled Hugging Face cache; `make weights` then tracks the folder with DVC.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..models.architectures import architecture, architecture_names
from ..models.weights import export_imagenet_weights


def export(args: argparse.Namespace) -> None:
    archs = architecture_names() if args.all else list(args.archs)
    if not archs:
        raise InputError("name the architectures to export, or pass --all")
    for arch in archs:
        architecture(arch)  # every name checked before the first download
    for arch in archs:
        print(f"{arch}: {export_imagenet_weights(arch, args.out)}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    commands = p.add_subparsers(dest="weights_command", required=True)
    e = commands.add_parser("export", help="download and write the weights of some or all architectures")
    e.add_argument("archs", nargs="*", help="architecture names (see cxrtransfer/models/architectures.csv)")
    e.add_argument("--all", action="store_true", help="every architecture in the table")
    e.add_argument("--out", type=Path, required=True, help="weights folder (tracked with DVC)")
    e.set_defaults(func=export)
