"""What a (truncated) model costs: parameters and forward FLOPs at an image size.

FLOPs are counted with torch.utils.flop_counter.FlopCounterMode on one image, forward only: its count of
the backward pass ignores the groups of depthwise convolutions, so training FLOPs are taken as 3 x the
forward count (forward + backward for activations and for weights), the same factor for every model.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch.utils.flop_counter import FlopCounterMode

from .architectures import build_model, count_parameters


def model_costs(arch: str, truncate_blocks: int, image_size: int, num_outputs: int) -> dict[str, float]:
    """{"params": count, "forward_flops": FLOPs of one image at image_size px} of the built model."""
    # On the meta device: shapes only, no memory and no arithmetic (counts do not depend on values).
    with torch.device("meta"):
        model = build_model(arch, num_outputs, truncate_blocks).eval()
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(torch.zeros(1, 3, image_size, image_size))
    return {"params": float(count_parameters(model)), "forward_flops": float(counter.get_total_flops())}


def truncation_costs(arch: str, blocks: Iterable[int], image_size: int, num_outputs: int) -> dict[int, dict[str, float]]:
    """model_costs for k = 0 and every k in `blocks`."""
    return {k: model_costs(arch, k, image_size, num_outputs) for k in sorted({0, *blocks})}
