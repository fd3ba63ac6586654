"""Input normalization per init: the training split's statistics for random init, the weights' own otherwise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cxrtransfer.errors import InputError
from cxrtransfer.models import normalization


def test_histogram_statistics_equal_numpy_on_the_selected_rows():
    images = np.random.default_rng(0).integers(0, 256, (50, 9, 9), dtype=np.uint8)
    images[::2] //= 3  # the rows left out are darker: selecting rows matters
    rows = np.arange(1, 50, 2)
    record = normalization.dataset_statistics(images, rows)
    pixels = images[rows].astype(np.float64) / 255.0
    assert record["mean"] == [round(float(pixels.mean()), 6)] * 3
    assert record["std"] == [round(float(pixels.std()), 6)] * 3
    assert record["images"] == 25 and record["image_size"] == 9


def test_each_init_gets_its_normalization(tmp_path):
    path = tmp_path / "normalization.json"
    path.write_text(json.dumps({"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}))
    assert normalization.for_init("resnet18", "random", path)[0] == ((0.5,) * 3, (0.25,) * 3)
    assert normalization.for_init("resnet18", "imagenet", path)[0] == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert normalization.for_init("inception_v3", "imagenet", None)[0] == ((0.5,) * 3, (0.5,) * 3)
    assert normalization.for_init("resnet18", "indomain", None)[0][0] == (0.485, 0.456, 0.406)
    with pytest.raises(InputError, match="--normalization"):
        normalization.for_init("resnet18", "random", None)
    path.write_text(json.dumps({"mean": [0.5, 0.5, 0.5], "std": [0.0, 0.1, 0.1]}))
    with pytest.raises(InputError, match="positive"):
        normalization.for_init("resnet18", "random", path)
