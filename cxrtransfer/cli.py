"""What every stage script shares: reading its params and turning bad input into one clear exit."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from .errors import InputError, PipelineError


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


def checked_section(config: Any, name: str, schema: dict[str, type], source: str | Path = "params.yaml"
                    ) -> dict[str, Any]:
    """A params section with known keys only and values of the schema's type (object: anything).

    Keys set to null are dropped, so the caller's defaults apply.
    """
    from .params import Key, check_section  # params imports this module
    if not isinstance(config, dict):
        raise InputError(f"'{name}' must be a mapping", source)
    check_section(config, name, {key: Key(kind, nullable=True) for key, kind in schema.items()}, source)
    return {key: value for key, value in config.items() if value is not None}


def run_stage(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    """Run a stage's main(); a PipelineError (bad input, failed training) ends it with one line on stderr and exit status 2."""
    try:
        main(argv)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: rerun the stage to resume", file=sys.stderr)
        sys.exit(130)
