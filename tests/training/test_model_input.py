"""The pixels a model sees: uint8 grayscale -> [0, 1] -> the init's mean/std per channel, 3 channels.

The learning test cannot see a wrong normalization (its notes: pixels fed as 0..255 still learn the embedded
data), so the transform is pinned here against values worked by hand.
"""

from __future__ import annotations

import torch

from cxrtransfer.training.dataset import to_model_input

NORMALIZATION = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.5))


def test_pixels_are_scaled_then_normalized_per_channel():
    x = torch.tensor([[[[51, 255], [0, 51]]]], dtype=torch.uint8)  # (B=1, 1, 2, 2)
    out = to_model_input(x, torch.device("cpu"), channels_last=False, normalization=NORMALIZATION)
    assert out.shape == (1, 3, 2, 2) and out.dtype == torch.float32
    # 51 / 255 = 0.2: (0.2 - 0.5) / 0.2, (0.2 - 0.4) / 0.25, (0.2 - 0.3) / 0.5
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([-1.5, -0.8, -0.2]), atol=1e-6)
    # 255 / 255 = 1: 2.5, 2.4, 1.4; 0: -2.5, -1.6, -0.6
    assert torch.allclose(out[0, :, 0, 1], torch.tensor([2.5, 2.4, 1.4]), atol=1e-6)
    assert torch.allclose(out[0, :, 1, 0], torch.tensor([-2.5, -1.6, -0.6]), atol=1e-6)


def test_channels_last_changes_the_layout_not_the_values():
    x = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    plain = to_model_input(x, torch.device("cpu"), channels_last=False, normalization=NORMALIZATION)
    last = to_model_input(x, torch.device("cpu"), channels_last=True, normalization=NORMALIZATION)
    assert last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(plain, last)
