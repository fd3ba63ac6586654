"""Parameters and training FLOPs of (truncated) models, counted on the meta device (cxrtransfer.models.flops)."""

from __future__ import annotations

import pytest
import torch

from cxrtransfer.models import architectures, flops


def test_costs_match_a_real_count_on_the_cpu_and_fall_with_truncation():
    measured = flops.truncation_costs("resnet18", [1, 2], 64, 6)
    model = architectures.build_model("resnet18", 6, 1, seed=0)
    forward, total = flops.count_module_flops(model, torch.zeros(flops.COUNT_BATCH, 3, 64, 64))
    assert measured[1] == {"params": float(architectures.count_parameters(model)),
                           "forward_flops": forward / flops.COUNT_BATCH, "training_flops": total / flops.COUNT_BATCH}
    assert measured[0]["params"] > measured[1]["params"] > measured[2]["params"]
    assert measured[0]["training_flops"] > measured[1]["training_flops"] > measured[2]["training_flops"]


def test_resnet18_forward_flops_at_224_px():
    # torchvision documents ResNet18 at 1.81 GFLOPs (multiply-adds) at 224 px: FlopCounterMode counts 2 per MAC
    assert flops.model_costs("resnet18", 0, 224, 1000)["forward_flops"] / 2e9 == pytest.approx(1.81, abs=0.01)
