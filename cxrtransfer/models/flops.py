"""Training FLOPs per image of each architecture, counted by torch's FlopCounterMode, and their table.

Counted in training mode: a forward pass on a batch of 2 (BatchNorm needs more than one value per
channel), then the backward of the summed logits; divided by 2. FlopCounterMode counts the matrix
products and convolutions (a multiply-add is 2 FLOPs), which are what a GPU's tensor cores run and what
its peak TFLOP/s rates; element-wise work (BatchNorm, activations, the optimizer) is not counted. The
head has one logit per CheXpert observation (14); the paper's U-MultiClass columns change it by < 0.01 %.

One correction: torch's formula for convolution_backward ignores `groups`, so it counts the weight
gradient of a depthwise convolution (MobileNet, MNASNet, EfficientNet) as if it were dense, 30-60x too
much. Each gradient of a convolution (input, weight) costs what its forward costs, groups included.

Counts depend on shapes only: `--device meta` counts without computing (the committed table), and the
tests recompute rows on the CPU.

    python -m cxrtransfer.models.flops [--image-size 320] [--device meta]   rewrites cxrtransfer/models/flops.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from ..data.chexpert import OBSERVATIONS
from ..fileio import atomic_path
from .architectures import architecture_names, build_model, check_input_size, count_parameters

TABLE = Path(__file__).with_name("flops.csv")
COLUMNS = ["arch", "image_size", "forward_gflop", "training_gflop"]
COUNT_BATCH = 2


def convolution_backward_flops(grad_out_shape: list[int], x_shape: list[int], w_shape: list[int], _bias: Any,
                               _stride: Any, _padding: Any, _dilation: Any, transposed: bool, _output_padding: Any,
                               _groups: int, output_mask: list[bool], out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of a convolution's backward: the forward's count (whose weight shape holds the groups) once
    per gradient computed."""
    return conv_flop_count(x_shape, w_shape, grad_out_shape, transposed) * (int(output_mask[0]) + int(output_mask[1]))


def count_module_flops(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(forward, forward + backward) FLOPs of `model` on the batch `x`, in training mode."""
    counter = FlopCounterMode(display=False,
                              custom_mapping={torch.ops.aten.convolution_backward: convolution_backward_flops})
    with counter:
        logits = model.train()(x)
        forward = counter.get_total_flops()
        logits.sum().backward()
    return forward, counter.get_total_flops()


def model_costs(arch: str, truncate_blocks: int, image_size: int, num_outputs: int) -> dict[str, float]:
    """{"params", "forward_flops", "training_flops"} per image of the (truncated) model at image_size px."""
    # On the meta device: shapes only, no memory and no arithmetic (counts do not depend on values).
    with torch.device("meta"):
        model = build_model(arch, num_outputs, truncate_blocks)
        forward, total = count_module_flops(model, torch.zeros(COUNT_BATCH, 3, image_size, image_size))
    return {"params": float(count_parameters(model)), "forward_flops": forward / COUNT_BATCH,
            "training_flops": total / COUNT_BATCH}


def truncation_costs(arch: str, blocks: Iterable[int], image_size: int, num_outputs: int) -> dict[int, dict[str, float]]:
    """model_costs for k = 0 and every k in `blocks`."""
    return {k: model_costs(arch, k, image_size, num_outputs) for k in sorted({0, *blocks})}


def count_flops(arch: str, image_size: int, device: str = "cpu") -> tuple[float, float]:
    """(forward, forward + backward) FLOPs per image of `arch` at `image_size` px."""
    check_input_size(arch, image_size)
    model = build_model(arch, len(OBSERVATIONS), seed=0).to(device)
    forward, total = count_module_flops(model, torch.zeros(COUNT_BATCH, 3, image_size, image_size, device=device))
    return forward / COUNT_BATCH, total / COUNT_BATCH


def flops_table(archs: Sequence[str], image_size: int, device: str = "cpu") -> pd.DataFrame:
    """One row per architecture: GFLOP per image forward and for training (forward + backward)."""
    rows = []
    for arch in archs:
        forward, training = count_flops(arch, image_size, device)
        rows.append((arch, image_size, round(forward / 1e9, 4), round(training / 1e9, 4)))
    return pd.DataFrame(rows, columns=COLUMNS)


def read_flops_table(path: Path = TABLE) -> pd.DataFrame:
    """The committed table, indexed by (arch, image_size)."""
    return pd.read_csv(path).set_index(["arch", "image_size"])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--out", type=Path, default=TABLE)
    parser.add_argument("--device", default="cpu", help="meta: count from shapes alone (same numbers, no compute)")
    args = parser.parse_args(argv)
    table = flops_table(architecture_names(), args.image_size, args.device)
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
