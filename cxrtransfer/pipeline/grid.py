"""The grid that params declare: every model, its stages and its folders, named in one place.

dvc.yaml expands the same grid from the same params (`architectures` x `inits.<kind>` for the
init_<kind>@ and train_<kind>@ groups, `truncation.architectures` x `truncation.blocks` for
truncate@); the ensemble stage, the lab commands, the rehearsal and SLURM read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .config import init_kind, section


def init_names(params: Mapping[str, Any]) -> list[str]:
    """Every initialization of the grid: params `inits` maps each kind to its list of names."""
    return [name for names in section(dict(params), "inits").values() for name in names]


@dataclass(frozen=True)
class DeclaredModel:
    """One trained model of the grid: <arch>-<init>, or <arch>-k<k> truncated from <arch>-<truncation.init>."""

    arch: str
    init: str
    truncate: int = 0

    @property
    def name(self) -> str:
        return f"{self.arch}-k{self.truncate}" if self.truncate else f"{self.arch}-{self.init}"

    @property
    def kind(self) -> str:
        return init_kind(self.init)

    @property
    def stage(self) -> str:
        """The DVC stage that trains it (DVC names a matrix item <group>@<values joined by '-'>)."""
        if self.truncate:
            return f"truncate@{self.arch}-{self.truncate}"
        return f"train_{self.kind}@{self.arch}-{self.init}"

    @property
    def init_stage(self) -> str:
        """The DVC stage that writes its starting weights."""
        return f"init_{self.kind}@{self.arch}-{self.init}"

    @property
    def folder(self) -> str:
        """Its model folder (the stage's output), relative to the repository."""
        return f"data/trunc/{self.name}" if self.truncate else f"data/models/{self.name}"

    @property
    def curves(self) -> str:
        """Its dvclive folder."""
        return f"metrics/curves/trunc/{self.name}" if self.truncate else f"metrics/curves/{self.name}"


def declared_models(params: Mapping[str, Any], selected: str = "all") -> list[DeclaredModel]:
    """Every model the params declare (trained grid, then truncations; each group sorted by name),
    only those of architecture `selected` unless it is "all"."""
    trained = [DeclaredModel(arch, init) for arch in section(dict(params), "architectures") for init in init_names(params)]
    truncation = params.get("truncation") or {}
    truncated = [DeclaredModel(arch, truncation.get("init", ""), k) for arch in truncation.get("architectures", [])
                 for k in truncation.get("blocks", [])]
    models = sorted(trained, key=lambda m: m.name) + sorted(truncated, key=lambda m: m.name)
    return [m for m in models if selected in ("all", m.arch)]


def init_stages(params: Mapping[str, Any]) -> list[str]:
    """The init_<kind>@ stages of the grid (each independent of the others)."""
    return [DeclaredModel(arch, init).init_stage for arch in section(dict(params), "architectures")
            for init in init_names(params)]


def grid_plan(params: Mapping[str, Any]) -> dict[str, int]:
    """Stages and trained models that the params describe (what dvc.yaml's matrices expand)."""
    models = declared_models(params)
    trained = [m for m in models if not m.truncate]
    return {"init_stages": len(init_stages(params)),
            "pretraining_runs": sum(m.kind == "indomain" for m in trained),
            "train_stages": len(trained), "truncate_stages": len(models) - len(trained),
            "trained_models": len(models)}
