"""The `cxrtransfer` command: what users run outside DVC's stages.

    cxrtransfer paper --data-root DIR [--measure] [--run]    switch to the paper's configuration
    cxrtransfer parallel --workers N [--gpus 0,1]            model stages on local workers, then the study
    cxrtransfer slurm [--partition gpu] ...                  model stages as SLURM jobs, then the study
    cxrtransfer rehearsal --preset small|large --workdir DIR the paper configuration rehearsed on CPU
    cxrtransfer weights export --all --out weights           timm's pinned ImageNet weights (needs internet)
    cxrtransfer gpu-check --out benchmarks/results           the training path measured on a GPU (make gpu-check)

`python -m cxrtransfer` and `python -m cxrtransfer.lab` run the same command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .. import __version__
from ..pipeline.config import run_stage

# Subcommand -> (module of this package with add_arguments(parser), one-line help). A command's module
# is imported only when that command runs: several import torch, timm or dvc, which `--help` does not need.
COMMANDS: dict[str, tuple[str, str]] = {
    "paper": ("paper", "check the paper's configuration, plan it, and make it params.yaml"),
    "parallel": ("parallel", "run the model stages on N local workers (one GPU each), then the study"),
    "slurm": ("slurm", "submit the model stages as SLURM jobs (one per stage), then the study"),
    "rehearsal": ("rehearsal", "rehearse the paper configuration on CPU in a new folder"),
    "weights": ("weights", "export timm's pinned ImageNet weights as safetensors (needs internet)"),
    "gpu-check": ("gpu_check", "measure the paper's training path on this machine's GPU (--dry-run: on the CPU)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; `command`'s own arguments are added (its module imported) when it is named."""
    parser = argparse.ArgumentParser(prog="cxrtransfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cxrtransfer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(f"{__package__}.{module}").add_arguments(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    args.func(args)


def entry() -> None:
    """The console script: bad input is one line on stderr and exit status 2."""
    run_stage(main)
