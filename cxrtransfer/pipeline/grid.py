"""The grid that params declare: every model, its stages and its folders, named in one place.

dvc.yaml expands the same grid from the same params (`architectures` x `inits.<kind>` for the
init_<kind>@ and train_<kind>@ groups, `truncation.architectures` x `truncation.blocks` for
truncate@); the ensemble stage, the lab commands, the rehearsal and SLURM read it from here.

Training seeds (params `seeds`, default [0]): seed 0 is the configured run, trained by the stages
above under today's names and folders. Every other seed s repeats each model in its own stage,
seed_<kind>@<arch>-<init>-<s> or seed_truncate@<arch>-<k>-<s>, writing data/seeds/<model>-s<s>/.
DVC cannot drop an item from a matrix, so these groups also expand seed 0: that item trains nothing
and writes only data/seeds/<model>-s0/metrics.json, naming the configured run it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from ..errors import InputError
from .config import init_kind, section

SEEDS_FOLDER = "data/seeds"


def init_names(params: Mapping[str, Any]) -> list[str]:
    """Every initialization of the grid: params `inits` maps each kind to its list of names."""
    return [name for names in section(dict(params), "inits").values() for name in names]


@dataclass(frozen=True)
class DeclaredModel:
    """One trained model of the grid: <arch>-<init>, or <arch>-k<k> truncated from <arch>-<truncation.init>;
    with seed s > 0, its repeat <model>-s<s> (params `seeds`)."""

    arch: str
    init: str
    truncate: int = 0
    seed: int = 0

    @property
    def model(self) -> str:
        """The model's name, the same for every seed (the seed-0 run's name)."""
        return f"{self.arch}-k{self.truncate}" if self.truncate else f"{self.arch}-{self.init}"

    @property
    def name(self) -> str:
        return f"{self.model}-s{self.seed}" if self.seed else self.model

    @property
    def run_folder(self) -> str:
        """What a seed group's stage writes (seed s, 0 included): model/, metrics.json, curves/."""
        return f"{SEEDS_FOLDER}/{self.model}-s{self.seed}"

    def seed_stage(self, seed: int) -> str:
        """The seed group's stage of this model and seed (for seed 0, the alias item)."""
        if self.truncate:
            return f"seed_truncate@{self.arch}-{self.truncate}-{seed}"
        return f"seed_{self.kind}@{self.arch}-{self.init}-{seed}"

    @property
    def kind(self) -> str:
        return init_kind(self.init)

    @property
    def stage(self) -> str:
        """The DVC stage that trains it (DVC names a matrix item <group>@<values joined by '-'>)."""
        if self.seed:
            return self.seed_stage(self.seed)
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
        if self.seed:
            return f"{self.run_folder}/model"
        return f"data/trunc/{self.name}" if self.truncate else f"data/models/{self.name}"

    @property
    def curves(self) -> str:
        """Its dvclive folder."""
        if self.seed:
            return f"{self.run_folder}/curves"
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


def training_seeds(params: Mapping[str, Any], source: Any = "params.yaml") -> list[int]:
    """params `seeds` (absent: [0]): distinct seeds, 0 first (seed 0 is the configured run, today's stages)."""
    seeds = params.get("seeds")
    seeds = [0] if seeds is None else seeds
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                              for s in seeds):
        raise InputError(f"seeds must be a list of integers >= 0, got {seeds!r}", source)
    if not seeds or seeds[0] != 0 or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must list distinct seeds starting with 0 (the configured run), got {seeds!r}",
                         source)
    return list(seeds)


def seed_runs(params: Mapping[str, Any], selected: str = "all") -> list[DeclaredModel]:
    """Every declared model's repeats with the seeds after 0 (model by model, seeds in params order)."""
    return [replace(model, seed=seed) for model in declared_models(params, selected)
            for seed in training_seeds(params)[1:]]


def seed_stages(params: Mapping[str, Any]) -> list[str]:
    """Every stage the seed groups expand, the seed-0 aliases included (each independent of the others)."""
    return [model.seed_stage(seed) for model in declared_models(params) for seed in training_seeds(params)]


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
            "trained_models": len(models), "seed_runs": len(seed_runs(params))}
