"""Real chest X-ray label files that ship with torchxrayvision (the `test` extra), images not included.

torchxrayvision carries the real CheXpert-v1.0-small train.csv as data/chexpert_train.csv.gz (the demo's
label rows, see cxrtransfer.embedded.synthetic_chexpert). Finding it needs only the package's location, not an import:
importing torchxrayvision loads torch and its models.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from ..errors import InputError
from . import chexpert

PACKAGE = "torchxrayvision"
CHEXPERT_TRAIN_FILE = "chexpert_train.csv.gz"


def packaged_data_dir() -> Path | None:
    """torchxrayvision's data folder, or None when the package is not installed (nothing imported)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "data"
        if folder.is_dir():
            return folder
    return None


def real_chexpert_labels_path() -> Path | None:
    """The packaged real CheXpert-v1.0-small train.csv (gzip), or None when it is not available."""
    folder = packaged_data_dir()
    if folder is None:
        return None
    path = folder / CHEXPERT_TRAIN_FILE
    return path if path.is_file() else None


def read_real_chexpert(path: str | Path | None = None) -> pd.DataFrame:
    """Read the real CheXpert train.csv(.gz) with `chexpert.read_labels` (pandas decompresses .gz by name).

    Without `path`, the copy packaged with torchxrayvision.
    """
    if path is None:
        path = real_chexpert_labels_path()
        if path is None:
            raise InputError(f"{PACKAGE} is not installed (pip install -e '.[test]'), so the real CheXpert "
                             f"labels ({CHEXPERT_TRAIN_FILE}) are not available")
    return chexpert.read_labels(path)
