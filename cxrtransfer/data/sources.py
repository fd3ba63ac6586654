"""In-domain source data for RadImageNet-style pretraining: the folder reader.

RadImageNet's layout is a folder tree <modality>/<anatomy>/<label>/<image files>; read as a multi-class
dataset, each (modality, anatomy, label) is one class. The embedded demo writes such a tree with
cxrtransfer.embedded.synthetic_source.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import InputError

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
FOLDER_COLUMNS: tuple[str, ...] = ("path", "modality", "anatomy", "label", "class_name", "class_index")
_LAYOUT = "<modality>/<anatomy>/<label>/<image files>"


# ----------------------------------------------------------------------------- reading a folder tree

def _check_name(name: str, where: Path) -> None:
    """File and folder names must be printable UTF-8 (they end up in CSV index files)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"unreadable name {name!r} (not valid UTF-8)", where) from None
    if any(not ch.isprintable() for ch in name) or name != name.strip() or not name:
        raise InputError(f"unusable name {name!r} (control characters or leading/trailing blanks)", where)


def read_folder_dataset(root: str | os.PathLike) -> pd.DataFrame:
    """Index a RadImageNet-style tree <modality>/<anatomy>/<label>/<image files> as a multi-class dataset.

    Columns: path (relative to root, posix), modality, anatomy, label, class_name
    ("modality/anatomy/label") and class_index (sorted class names numbered 0..C-1); one row per
    image, sorted by path. Hidden files and folders (names starting with '.') are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found (expected {_LAYOUT})", root)
    rows: list[tuple[str, str, str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        rel = here.relative_to(root)
        depth = len(rel.parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in dirnames:
            _check_name(d, here / d)
        if depth == 3 and dirnames:
            raise InputError(f"folder nested too deep: images must sit directly in {_LAYOUT}", here / dirnames[0])
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            where = here / name
            _check_name(name, where)
            if depth != 3:
                raise InputError(f"file at the wrong depth ({depth} folder(s) below the root; expected {_LAYOUT})",
                                 where)
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                raise InputError(f"not an image file (expected {', '.join(IMAGE_SUFFIXES)})", where)
            modality, anatomy, label = rel.parts
            rows.append((rel.joinpath(name).as_posix(), modality, anatomy, label))
    if not rows:
        raise InputError(f"no images found (expected {_LAYOUT})", root)
    frame = pd.DataFrame(sorted(rows), columns=["path", "modality", "anatomy", "label"])
    frame["class_name"] = frame["modality"] + "/" + frame["anatomy"] + "/" + frame["label"]
    classes = sorted(frame["class_name"].unique())
    frame["class_index"] = frame["class_name"].map({c: i for i, c in enumerate(classes)}).astype(int)
    return frame[list(FOLDER_COLUMNS)]
