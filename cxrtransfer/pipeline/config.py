"""Params for every stage: reading params.yaml, the schema of every key a stage reads, and the stage runner.

The stage scripts pass the params file's path; the library below this layer never reads it.

A stage calls :func:`check` with the sections it reads right after loading params.yaml. A wrong type,
a value out of range or an unknown key (with the closest known key suggested) is one InputError
naming the file and the dotted key; nothing has been trained or written yet. What it returns are the
settings the stage and the library take as they are: every section checked, its absent keys at their
defaults, train.* with the architecture's overrides applied.
"""

from __future__ import annotations

import copy
import difflib
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from ..data.chexpert import OBSERVATIONS, POLICIES
from ..errors import InputError, PipelineError
from ..stats.paper_settings import paper_value

NO_DEFAULT = object()  # a key without a default value


@dataclass(frozen=True)
class Key:
    """One param: its type, optional bounds and choices; `items` types the entries of a list."""

    kind: type | tuple[type, ...]
    minimum: float | None = None       # value >= minimum
    above: float | None = None         # value > above
    below: float | None = None         # value < below
    choices: tuple[Any, ...] | None = None
    items: type | tuple[type, ...] | None = None
    length: int | None = None          # lists of exactly this length
    item_length: int | None = None     # lists whose entries are lists of exactly this length
    nullable: bool = False
    default: Any = NO_DEFAULT          # the value when the key is absent


NUMBER = (int, float)
NAMES = Key(list, items=str)
INIT_KINDS = ("random", "weights", "indomain")   # dvc.yaml's init_<kind>@ and train_<kind>@ stage groups

# Absent training keys take the paper's values (stats.paper): a short params file trains as the paper did.
TRAIN: dict[str, Key] = {
    "epochs": Key(int, minimum=1, default=paper_value("train.epochs")),
    "batch_size": Key(int, minimum=1, default=paper_value("train.batch_size")),
    "lr": Key(NUMBER, above=0, default=paper_value("train.lr")),
    "betas": Key(list, items=NUMBER, length=2, minimum=0, below=1, default=paper_value("train.betas")),
    "weight_decay": Key(NUMBER, minimum=0, default=paper_value("train.weight_decay")),
    "eval_every_images": Key(int, minimum=1, default=paper_value("train.eval_every_images")),
    "top_k": Key(int, minimum=1, default=paper_value("train.top_k")),
    "seed": Key(int, minimum=0, default=0),
    "eval_batch_size": Key(int, minimum=1, default=128),
    "max_images": Key(int, minimum=0, default=paper_value("train.max_images")),   # 0: no cap
    "selection_tasks": Key(list, items=str, choices=OBSERVATIONS, nullable=True, default=None),  # null: data.tasks
    "tasks": Key(list, items=str, choices=OBSERVATIONS, nullable=True, default=None),   # null: data.tasks
    "devices": Key(int, minimum=1, default=1),
    "sync_batchnorm": Key(bool, default=True),
    "device": Key(str, default="auto"),
    "compile": Key(bool, default=False),   # torch.compile on CUDA (off until measured; ignored on CPU)
}
DATA: dict[str, Key] = {
    "kind": Key(str, choices=("chexpert", "folder"), default="chexpert"),
    "root": Key(str),
    "dataset": Key(str),
    "test_groundtruth": Key(str, default=""),
    "image_size": Key(int, minimum=16),
    "frontal_only": Key(bool, default=False),
    "tasks": Key(list, items=str, choices=OBSERVATIONS),
    "uncertainty": Key(dict, items=str, choices=POLICIES, default={}),   # read by the train stages only
    "blank_as_negative": Key(bool, default=True),
}
SOURCE_DATA: dict[str, Key] = {"kind": DATA["kind"], "root": DATA["root"], "image_size": DATA["image_size"]}
PRETRAIN: dict[str, Key] = {
    **{k: v for k, v in TRAIN.items() if k not in ("selection_tasks", "tasks", "devices")},
    "data": Key(dict), "valid_fraction": Key(NUMBER, above=0, below=1, default=0.15),
}
SPLIT: dict[str, Key] = {
    "method": Key(str, choices=("official", "fractions")),
    "fractions": Key(dict, items=NUMBER, minimum=0, default=None),
    "seed": Key(int, minimum=0, default=0),
}
INIT: dict[str, Key] = {"seed": Key(int, minimum=0, default=0), "weights_dir": Key(str, default="weights"),
                        "files": Key(dict, items=str, default={})}
BOOTSTRAP: dict[str, Key] = {
    "replicates": Key(int, minimum=1, default=paper_value("bootstrap.replicates")),
    "seed": Key(int, minimum=0, default=0),
    "confidence": Key(NUMBER, above=0, below=1, default=paper_value("bootstrap.confidence")),
    "unit": Key(str, choices=("patient", "study"), default="patient"),
    "baseline_init": Key(str, default="random"),
    "compare": Key(list, items=list, item_length=2, default=[]),   # [[model_a, model_b], ...]
    # truncated minus full mean AUROC: non-inferior when its interval's lower bound is above -margin
    "truncation_margin": Key(NUMBER, minimum=0, default=0.01),
}
# Models trained elsewhere and radiologists' reads on the test set (cxrtransfer/data/external.py).
EXTERNAL: dict[str, Key] = {
    "dir": Key(str, default="data/external_baseline"),   # folder of the prediction files
    "models": Key(dict, items=str, default={}),          # model name -> prediction file in dir
    "tasks": Key(list, items=str, choices=OBSERVATIONS, nullable=True, default=None),  # every file has them (null: data.tasks)
    "baseline": Key(dict, default={}),                   # stage external_baseline (EXTERNAL_BASELINE)
}
EXTERNAL_BASELINE: dict[str, Key] = {
    "file": Key(str, default="pixels_logreg.csv"),       # written into the stage's --out folder
    "size": Key(int, minimum=1, default=8),              # pixels per side after area-averaging
    "C": Key(NUMBER, above=0, default=1.0),              # inverse L2 strength of the logistic regression
    # the columns it writes, in this order (default: one leaderboard file's order, the five competition tasks)
    "tasks": Key(list, items=str, choices=OBSERVATIONS,
                 default=["Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion"]),
}
READERS: dict[str, Key] = {
    "dir": Key(str, default="data/simulated_readers"),   # folder of the reader files
    "files": Key(dict, items=str, default={}),           # reader name -> file in dir (bc4.csv layout)
    "simulate": Key(dict, default={}),                   # stage simulate_readers (READER_SIMULATION)
}
READER_SIMULATION: dict[str, Key] = {"seed": Key(int, minimum=0, default=0),
                                     "readers": Key(dict, default={})}   # name -> {sensitivity, specificity}
TRUNCATION: dict[str, Key] = {"architectures": NAMES, "blocks": Key(list, items=int, minimum=1),
                              "init": Key(str)}
# The top level: each stage requires the sections it reads (`check`), none is required here.
TOP: dict[str, Key] = {name: replace(key, default=None) for name, key in {
    "model": Key(str), "architectures": NAMES,
    "seeds": Key(list, items=int, minimum=0),   # training seeds, 0 first (pipeline.grid.training_seeds)
    "inits": Key(dict),                   # kind of init -> list of names (dvc.yaml has one stage group per kind)
    "synthetic": Key(dict), "source": Key(dict), "data": Key(dict), "split": Key(dict), "train": Key(dict),
    "overrides": Key(dict), "init": Key(dict), "pretrain": Key(dict), "bootstrap": Key(dict),
    "truncation": Key(dict), "external": Key(dict), "readers": Key(dict),
}.items()}
SECTIONS: dict[str, dict[str, Key]] = {
    "data": DATA, "pretrain.data": SOURCE_DATA, "split": SPLIT, "train": TRAIN, "pretrain": PRETRAIN,
    "init": INIT, "bootstrap": BOOTSTRAP, "truncation": TRUNCATION, "external": EXTERNAL, "readers": READERS,
}


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read the params file (the stage scripts pass its path; the library never reads it)."""
    path = Path(path)
    try:
        with path.open() as f:
            params = yaml.safe_load(f)
    except FileNotFoundError:
        raise InputError("params file not found", path) from None
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML: {err}", path) from None
    if not isinstance(params, dict):
        raise InputError("expected a mapping at the top level", path)
    return params


def section(params: dict[str, Any], key: str, path: str | Path = "params.yaml") -> Any:
    """params[key] with a clear error naming the missing key (dotted keys walk nested mappings)."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise InputError(f"missing key '{key}'", path)
        node = node[part]
    return node


def init_kind(init: str) -> str:
    """The stage group of an init name (params `inits`): random, indomain, or weights (any other name)."""
    return init if init in ("random", "indomain") else "weights"


def suggestion(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else f"; known: {', '.join(sorted(known))}"


def _is(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):  # YAML's true/false is not a number here
        return bool in kinds or object in kinds
    return isinstance(value, kinds)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if kind == NUMBER:
        return "a number"
    return {int: "an integer", str: "a string", bool: "true or false", list: "a list", dict: "a mapping"}.get(
        kind, getattr(kind, "__name__", str(kind)))


def _check_scalar(name: str, value: Any, key: Key, kind: Any, source: Path) -> None:
    if not _is(value, kind):
        hint = ""
        if kind == NUMBER and isinstance(value, str):
            hint = " (YAML reads 1e-4 as a string: write 1.0e-4)"
        raise InputError(f"{name} must be {_kind_name(kind)}, got {value!r}{hint}", source)
    if key.choices is not None and value not in key.choices:
        raise InputError(f"{name} must be one of {list(key.choices)}, got {value!r}"
                         f"{suggestion(str(value), [str(c) for c in key.choices])}", source)
    if key.minimum is not None and value < key.minimum:
        raise InputError(f"{name} must be >= {key.minimum}, got {value!r}", source)
    if key.above is not None and value <= key.above:
        raise InputError(f"{name} must be > {key.above}, got {value!r}", source)
    if key.below is not None and value >= key.below:
        raise InputError(f"{name} must be < {key.below}, got {value!r}", source)


def check_value(name: str, value: Any, key: Key, source: Path) -> None:
    """One value against its Key; collections check their entries with the Key's bounds and choices."""
    if value is None:
        if key.nullable:
            return
        raise InputError(f"{name} must be {_kind_name(key.kind)}, got null", source)
    if key.kind in (list, dict) and key.items is not None:
        if not isinstance(value, key.kind):
            raise InputError(f"{name} must be {_kind_name(key.kind)}, got {value!r}", source)
        if key.length is not None and len(value) != key.length:
            raise InputError(f"{name} must have {key.length} entries, got {value!r}", source)
        entries = value.items() if isinstance(value, dict) else enumerate(value)
        for label, entry in entries:
            entry_name = f"{name}[{label!r}]" if isinstance(value, dict) else f"{name}[{label}]"
            _check_scalar(entry_name, entry, key, key.items, source)
            if key.item_length is not None and len(entry) != key.item_length:
                raise InputError(f"{entry_name} must have {key.item_length} entries, got {entry!r}", source)
        return
    _check_scalar(name, value, key, key.kind, source)


def check_section(config: Any, name: str, schema: Mapping[str, Key], source: str | Path = "params.yaml"
                  ) -> dict[str, Any]:
    """A params section checked against its schema (known keys only, types, ranges); returns it with its
    absent keys at their defaults (a key without one stays absent: the stages that read it need it)."""
    source = Path(source)
    if not isinstance(config, dict):
        raise InputError(f"'{name}' must be a mapping, got {config!r}", source)
    for key in config:
        if key not in schema:
            raise InputError(f"unknown key '{name}.{key}'{suggestion(str(key), list(schema))}", source)
    for key, value in config.items():
        check_value(f"{name}.{key}", value, schema[key], source)
    defaults = {key: copy.deepcopy(spec.default) for key, spec in schema.items()
                if key not in config and spec.default is not NO_DEFAULT}
    return {**defaults, **config}


def check(params: Mapping[str, Any], sections: Sequence[str], source: str | Path = "params.yaml",
          arch: str | None = None) -> dict[str, dict[str, Any]]:
    """Check the top level and the named sections (dotted names, e.g. "pretrain.data") of params;
    returns each named section checked, with its defaults.

    With `arch`, "train" is train.* with overrides.<arch> applied (its keys are train keys, checked as
    such); train.selection_tasks must be a subset of data.tasks.
    """
    source = Path(source)
    check_section(dict(params), "params", TOP, source)
    for kind, names in (params.get("inits") or {}).items():
        if kind not in INIT_KINDS:
            raise InputError(f"unknown key 'inits.{kind}'{suggestion(kind, INIT_KINDS)}", source)
        check_value(f"inits.{kind}", names, NAMES, source)
        for name in names:
            if init_kind(name) != kind:
                raise InputError(f"inits.{kind} lists {name!r}, an init of kind {init_kind(name)!r}: list it under "
                                 f"inits.{init_kind(name)}", source)
    settings = {name: check_section(section(params, name, source), name, SECTIONS[name], source)
                for name in sections}
    if "train" in sections:
        if arch is not None:
            override = (params.get("overrides") or {}).get(arch) or {}
            check_section(override, f"overrides.{arch}", TRAIN, source)
            settings["train"] = {**settings["train"], **override}
            check_batch_split(settings["train"], override, arch, source)
        tasks = section(params, "data.tasks", source)
        outside = [t for t in settings["train"]["selection_tasks"] or [] if t not in tasks]
        if outside:
            raise InputError(f"train.selection_tasks {outside} not in data.tasks {list(tasks)}", source)
    if "external" in sections:
        settings["external"]["baseline"] = check_section(settings["external"]["baseline"], "external.baseline",
                                                         EXTERNAL_BASELINE, source)
    if "readers" in sections:
        settings["readers"]["simulate"] = _reader_simulation(settings["readers"]["simulate"], source)
    return settings


def check_batch_split(train: Mapping[str, Any], override: Mapping[str, Any], arch: str, source: Path) -> None:
    """train.batch_size is the global batch (the paper's 16): its DDP processes must share it evenly."""
    batch, devices = train["batch_size"], train["devices"]
    if batch % devices:
        where = {key: f"overrides.{arch}.{key}" if key in override else f"train.{key}"
                 for key in ("batch_size", "devices")}
        raise InputError(f"{where['batch_size']} {batch} is the global batch: it does not split evenly over "
                         f"{where['devices']} {devices} processes", source)


def _reader_simulation(config: Any, source: Path) -> dict[str, Any]:
    """readers.simulate checked: seed, and per reader a sensitivity and a specificity in [0, 1]."""
    simulate = check_section(config, "readers.simulate", READER_SIMULATION, source)
    for name, spec in simulate["readers"].items():
        where = f"readers.simulate.readers.{name}"
        spec = check_section(spec, where, {k: Key(NUMBER, minimum=0) for k in ("sensitivity", "specificity")}, source)
        for key in ("sensitivity", "specificity"):
            if key not in spec or spec[key] > 1:
                raise InputError(f"{where}.{key} must be a number in [0, 1], got {spec.get(key)!r}", source)
    return simulate


def checked_section(config: Any, name: str, schema: dict[str, type], source: str | Path = "params.yaml"
                    ) -> dict[str, Any]:
    """A params section with known keys only and values of the schema's type (object: anything).

    Keys set to null are dropped, so the caller's defaults apply.
    """
    if not isinstance(config, dict):
        raise InputError(f"'{name}' must be a mapping", source)
    check_section(config, name, {key: Key(kind, nullable=True, default=None) for key, kind in schema.items()},
                  source)
    return {key: value for key, value in config.items() if value is not None}


def run_stage(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    """Run a stage's main(); a PipelineError (bad input, failed training) ends it with one line on stderr and exit status 2."""
    try:
        main(argv)
    except PipelineError as err:
        # one write of the whole line: DDP ranks share torchrun's stderr pipe, and print() writes the text
        # and its newline separately when stderr is unbuffered, so two ranks' lines could run together
        sys.stderr.write(f"error: {err}\n")
        sys.stderr.flush()
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: rerun the stage to resume", file=sys.stderr)
        sys.exit(130)
