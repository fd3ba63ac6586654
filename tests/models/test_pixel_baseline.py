"""The demo's external model: area-averaged pixels and per-task logistic regressions."""

from __future__ import annotations

import numpy as np
import pytest

from cxrtransfer.errors import InputError
from cxrtransfer.models import pixel_baseline


def test_area_average_by_hand_and_in_the_order_asked():
    images = np.stack([np.arange(16, dtype=np.uint8).reshape(4, 4) * k for k in (1, 2, 3)])
    # 2 x 2 blocks of the 4 x 4 image 0..15: means 2.5, 4.5, 10.5, 12.5
    expected = np.array([2.5, 4.5, 10.5, 12.5]) / 255.0
    features = pixel_baseline.area_average(images, np.array([2, 0, 1]), 2)
    np.testing.assert_allclose(features, np.stack([3 * expected, expected, 2 * expected]))
    # uneven blocks: 5 rows onto 2 -> rows [0, 2) and [2, 5)
    odd = np.arange(25, dtype=np.uint8).reshape(1, 5, 5)
    np.testing.assert_allclose(pixel_baseline.area_average(odd, np.array([0]), 2)[0] * 255,
                               [odd[0, :2, :2].mean(), odd[0, :2, 2:].mean(), odd[0, 2:, :2].mean(), odd[0, 2:, 2:].mean()])


def test_a_task_with_one_class_in_training_is_refused():
    features = np.random.default_rng(0).random((10, 4))
    with pytest.raises(InputError, match="single class for 'Edema'"):
        pixel_baseline.fit_predict(features, np.zeros((10, 1)), np.ones((10, 1)), features, ["Edema"], 1.0)
