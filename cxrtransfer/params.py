"""The params schema: every key a stage reads, with its type and range, checked before any work.

A stage calls :func:`check` with the sections it reads right after loading params.yaml. A wrong type,
a value out of range or an unknown key (with the closest known key suggested) is one InputError
naming the file and the dotted key; nothing has been trained or written yet.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .chexpert import OBSERVATIONS, POLICIES
from .cli import section
from .errors import InputError


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
    nullable: bool = False


NUMBER = (int, float)
INT, POSITIVE, COUNT = Key(int, minimum=0), Key(int, minimum=1), Key(int, minimum=0)
NAMES = Key(list, items=str)

TRAIN: dict[str, Key] = {
    "epochs": POSITIVE,
    "batch_size": POSITIVE,
    "lr": Key(NUMBER, above=0),
    "betas": Key(list, items=NUMBER, length=2, minimum=0, below=1),
    "weight_decay": Key(NUMBER, minimum=0),
    "eval_every_images": POSITIVE,
    "top_k": POSITIVE,
    "seed": INT,
    "eval_batch_size": POSITIVE,
    "max_images": COUNT,                                   # 0: no cap
    "selection_tasks": Key(list, items=str, choices=OBSERVATIONS, nullable=True),
    "tasks": Key(list, items=str, choices=OBSERVATIONS, nullable=True),   # null: data.tasks
    "devices": POSITIVE,
    "sync_batchnorm": Key(bool),
    "device": Key(str),
}
DATA: dict[str, Key] = {
    "kind": Key(str, choices=("chexpert", "folder")),
    "root": Key(str),
    "dataset": Key(str),
    "test_groundtruth": Key(str),
    "image_size": Key(int, minimum=16),
    "frontal_only": Key(bool),
    "tasks": Key(list, items=str, choices=OBSERVATIONS),
    "uncertainty": Key(dict, items=str, choices=POLICIES),
    "blank_as_negative": Key(bool),
}
SOURCE_DATA: dict[str, Key] = {"kind": DATA["kind"], "root": DATA["root"], "image_size": DATA["image_size"]}
PRETRAIN: dict[str, Key] = {
    **{k: v for k, v in TRAIN.items() if k not in ("selection_tasks", "tasks", "devices")},
    "data": Key(dict), "valid_fraction": Key(NUMBER, above=0, below=1),
}
SPLIT: dict[str, Key] = {
    "method": Key(str, choices=("official", "fractions")),
    "fractions": Key(dict, items=NUMBER, minimum=0),
    "seed": INT,
}
INIT_KINDS = ("random", "weights", "indomain")
INIT: dict[str, Key] = {"seed": INT, "weights_dir": Key(str), "files": Key(dict, items=str)}
BOOTSTRAP: dict[str, Key] = {
    "replicates": POSITIVE, "seed": INT, "confidence": Key(NUMBER, above=0, below=1),
    "unit": Key(str, choices=("patient", "study")),
    "baseline_init": Key(str), "compare": Key(list, items=list),
}
TRUNCATION: dict[str, Key] = {"architectures": NAMES, "blocks": Key(list, items=int, minimum=1),
                              "init": Key(str)}
TOP: dict[str, Key] = {
    "model": Key(str), "architectures": NAMES,
    "inits": Key(dict),                   # kind of init -> list of names (dvc.yaml has one stage group per kind)
    "synthetic": Key(dict), "source": Key(dict), "data": Key(dict), "split": Key(dict), "train": Key(dict),
    "overrides": Key(dict), "init": Key(dict), "pretrain": Key(dict), "bootstrap": Key(dict),
    "truncation": Key(dict),
}
SECTIONS: dict[str, dict[str, Key]] = {
    "data": DATA, "pretrain.data": SOURCE_DATA, "split": SPLIT, "train": TRAIN, "pretrain": PRETRAIN,
    "init": INIT, "bootstrap": BOOTSTRAP, "truncation": TRUNCATION,
}


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
            _check_scalar(f"{name}[{label!r}]" if isinstance(value, dict) else f"{name}[{label}]",
                          entry, key, key.items, source)
        return
    _check_scalar(name, value, key, key.kind, source)


def check_section(config: Any, name: str, schema: Mapping[str, Key], source: str | Path = "params.yaml",
                  required: Sequence[str] = ()) -> dict[str, Any]:
    """A params section checked against its schema: known keys only, types, ranges. Returns it."""
    source = Path(source)
    if not isinstance(config, dict):
        raise InputError(f"'{name}' must be a mapping, got {config!r}", source)
    for key in config:
        if key not in schema:
            raise InputError(f"unknown key '{name}.{key}'{suggestion(str(key), list(schema))}", source)
    for key in required:
        if key not in config:
            raise InputError(f"missing key '{name}.{key}'", source)
    for key, value in config.items():
        check_value(f"{name}.{key}", value, schema[key], source)
    return config


def check(params: Mapping[str, Any], sections: Sequence[str], source: str | Path = "params.yaml",
          arch: str | None = None) -> None:
    """Check the top level and the named sections (dotted names, e.g. "pretrain.data") of params.

    "train" also checks overrides.<arch> (its keys are train keys) and that train.selection_tasks
    is a subset of data.tasks.
    """
    source = Path(source)
    check_section(dict(params), "params", TOP, source)
    inits = params.get("inits")
    for kind, names in (inits or {}).items():
        if kind not in INIT_KINDS:
            raise InputError(f"unknown key 'inits.{kind}'{suggestion(kind, INIT_KINDS)}", source)
        check_value(f"inits.{kind}", names, NAMES, source)
    schemas = SECTIONS
    for name in sections:
        check_section(section(params, name, source), name, schemas[name], source)
    if "train" in sections:
        train = section(params, "train", source)
        if arch is not None:
            override = (params.get("overrides") or {}).get(arch) or {}
            check_section(override, f"overrides.{arch}", schemas["train"], source)
            train = {**train, **override}
        tasks = section(params, "data.tasks", source)
        outside = [t for t in train.get("selection_tasks") or [] if t not in tasks]
        if outside:
            raise InputError(f"train.selection_tasks {outside} not in data.tasks {list(tasks)}", source)
