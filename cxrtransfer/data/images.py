"""Decode and resize radiographs once, into one uint8 array the training loop reads from RAM.

The cache is a folder with `images.npy` (N x size x size, uint8 grayscale) and `index.csv` (one row
per image, same order). At CheXpert-small sizes this is about 100 KB per image at 320 px, so the
accelerator never waits on JPEG decoding.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..fileio import atomic_dir

IMAGES_FILE = "images.npy"
INDEX_FILE = "index.csv"
# ImageNet statistics: the reference recipe normalizes grayscale radiographs, repeated to 3 channels, with them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """Decode one image to grayscale, resize its shorter side to `size`, centre-crop to size x size.

    JPEG draft mode lets libjpeg decode at 1/2, 1/4 or 1/8 scale directly, which is most of the speed.
    """
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("L", (size, size))  # picks the smallest DCT scale still >= size
            gray = img.convert("L")
            gray.load()
    except FileNotFoundError:
        raise InputError("image file not found", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise InputError(f"unreadable or corrupt image ({err})", path) from None
    width, height = gray.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    left, top = (new_w - size) // 2, (new_h - size) // 2
    # Resample only the centre crop (the crop box in source pixels): same result, less work.
    sx, sy = width / new_w, height / new_h
    box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
    return np.asarray(gray.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=None),
                      dtype=np.uint8)


def decode_all(paths: Sequence[str | os.PathLike], size: int, out: np.ndarray, workers: int = 2,
               on_done: Callable[[int], None] | None = None) -> None:
    """Decode `paths` into `out[i]` with a thread pool (Pillow releases the GIL while decoding)."""
    def work(i: int) -> int:
        out[i] = load_image(paths[i], size)
        return i

    chunk = 64
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(paths), chunk * max(1, workers)):
            stop = min(len(paths), start + chunk * max(1, workers))
            for _ in pool.map(work, range(start, stop)):
                if on_done:
                    on_done(1)


def write_cache(out_dir: str | os.PathLike, index: pd.DataFrame, image_root: str | os.PathLike, size: int,
                workers: int = 2, progress: Callable[[int], None] | None = None) -> Path:
    """Decode every image of `index` (column `path`, relative to `image_root`) into a cache folder.

    The folder appears only when every image decoded; a bad image aborts with InputError naming it.
    """
    if index.empty:
        raise InputError("no images to preprocess", image_root)
    image_root = Path(image_root)
    out_dir = Path(out_dir)
    paths = [image_root / p for p in index["path"]]
    with atomic_dir(out_dir) as tmp:
        images = np.lib.format.open_memmap(tmp / IMAGES_FILE, mode="w+", dtype=np.uint8,
                                           shape=(len(paths), size, size))
        decode_all(paths, size, images, workers=workers, on_done=progress)
        images.flush()
        del images
        index.to_csv(tmp / INDEX_FILE, index=False)
    return out_dir


def read_cache(cache_dir: str | os.PathLike) -> tuple[np.ndarray, pd.DataFrame]:
    """The cached images, memory-mapped read-only, and their index table.

    Memory-mapped: a process holds only the pages it reads, and workers or DDP ranks on one machine
    share them through the page cache instead of each loading the whole cache (23 GB at 320 px).
    """
    cache_dir = Path(cache_dir)
    for name in (IMAGES_FILE, INDEX_FILE):
        if not (cache_dir / name).is_file():
            raise InputError(f"missing {name}: run the preprocess stage first", cache_dir)
    images = np.load(cache_dir / IMAGES_FILE, mmap_mode="r")
    index = pd.read_csv(cache_dir / INDEX_FILE, keep_default_na=True)
    if len(index) != len(images):
        raise InputError(f"index has {len(index)} rows but images.npy holds {len(images)} images", cache_dir)
    return images, index
