"""Output layouts: widths, U-MultiClass probabilities, the masked loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrtransfer.training import layouts


def test_layout_widths_and_multiclass_probability():
    layout = layouts.ChexpertLayout(["ones", "multiclass", "ignore"])
    assert layout.width == 5 and layout.slices[1] == slice(1, 4)
    logits = torch.tensor([[0.0, 2.0, 1.0, 5.0, -1.0]])
    probabilities = layout.probabilities(logits)
    # U-MultiClass: softmax over (negative, positive) only -- the uncertain logit (5.0) is left out
    assert probabilities[0, 1].item() == pytest.approx(np.exp(1) / (np.exp(1) + np.exp(2)))
    assert probabilities[0, 0].item() == pytest.approx(0.5)


def test_masked_loss_ignores_masked_cells():
    layout = layouts.ChexpertLayout(["ignore"])
    logits = torch.tensor([[3.0], [-3.0]])
    targets = torch.tensor([[0.0], [0.0]])
    full = layout.loss(logits, targets, torch.tensor([[1.0], [1.0]]))
    only_second = layout.loss(logits, targets, torch.tensor([[0.0], [1.0]]))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(-3.0), torch.tensor(0.0))
    assert only_second.item() == pytest.approx(expected.item())
    assert full.item() > only_second.item()
