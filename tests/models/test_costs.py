"""Parameters and forward FLOPs of (truncated) models, counted on the meta device."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cxrtransfer.models import architectures, costs


def test_costs_match_a_real_forward_and_fall_with_truncation():
    measured = costs.truncation_costs("resnet18", [1, 2], 64, 6)
    model = architectures.build_model("resnet18", 6, 1, seed=0).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, 64, 64))
    assert measured[1] == {"params": float(architectures.count_parameters(model)),
                           "forward_flops": float(counter.get_total_flops())}
    assert measured[0]["params"] > measured[1]["params"] > measured[2]["params"]
    assert measured[0]["forward_flops"] > measured[1]["forward_flops"] > measured[2]["forward_flops"]


def test_resnet18_forward_flops_at_224_px():
    # torchvision documents ResNet18 at 1.81 GFLOPs (multiply-adds) at 224 px: FlopCounterMode counts 2 per MAC
    assert costs.model_costs("resnet18", 0, 224, 1000)["forward_flops"] / 2e9 == pytest.approx(1.81, abs=0.01)
