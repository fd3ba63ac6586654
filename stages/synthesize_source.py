"""Stage synthesize_source: write the synthetic in-domain source (RadImageNet layout) for pretraining.

Reads the `source:` params section; writes <out>/<modality>/<anatomy>/<label>/<anatomy>NNNNN.png atomically.
Nothing else goes into <out>, so it reads back with cxrtransfer.data.sources.read_folder_dataset.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Sequence

from cxrtransfer.embedded import synthetic_source
from cxrtransfer.errors import InputError
from cxrtransfer.fileio import atomic_dir
from cxrtransfer.pipeline.config import checked_section, load_params, run_stage, section

KEYS = {"seed": int, "images_per_class": int, "height": int, "width": int, "classes": object}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--section", default="source", help="params section with the generator settings")
    parser.add_argument("--out", type=Path, required=True, help="root folder of the source tree")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="rendering processes (the output does not depend on it)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = checked_section(section(load_params(args.params), args.section, args.params), args.section, KEYS,
                             args.params)
    started = time.perf_counter()
    try:
        synthetic_source.source_classes(config.get("classes"))  # fail on bad classes before touching the output
    except InputError as err:
        raise InputError(f"{args.section}.classes: {err}", args.params) from None
    with atomic_dir(args.out) as tmp:
        summary = synthetic_source.generate_source(
            tmp, images_per_class=config.get("images_per_class", 64), height=config.get("height", 128),
            width=config.get("width", 156), seed=config.get("seed", 0), classes=config.get("classes"),
            workers=max(1, args.workers))
    seconds = time.perf_counter() - started
    print(f"synthesize_source: {summary['images']} images, {len(summary['classes'])} classes x "
          f"{summary['images_per_class']} ({', '.join(summary['modalities'])}; {', '.join(summary['anatomies'])}), "
          f"{summary['height']}x{summary['width']} px in {seconds:.1f} s -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
