"""The committed table of training FLOPs per image (cxrtransfer/models/flops.csv)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cxrtransfer.models import architectures, flops


def test_the_table_covers_every_architecture_at_the_papers_size():
    table = flops.read_flops_table()
    assert sorted(a for a, size in table.index if size == 320) == sorted(architectures.architecture_names())
    # backward costs about twice the forward (gradients of inputs and weights); the first layer's input
    # gradient is not needed, so a little under 3x in all
    ratio = table["training_gflop"] / table["forward_gflop"]
    assert ratio.between(2.5, 3.0).all(), ratio[~ratio.between(2.5, 3.0)]


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3"])
def test_cheap_rows_recomputed(arch):
    forward, training = flops.count_flops(arch, 320)
    row = flops.read_flops_table().loc[(arch, 320)]
    assert forward / 1e9 == pytest.approx(row["forward_gflop"], abs=1e-4)
    assert training / 1e9 == pytest.approx(row["training_gflop"], abs=1e-4)


def test_resnet18_forward_matches_the_published_count():
    # torchvision's model table: ResNet18_Weights.IMAGENET1K_V1 "GFLOPS 1.81" at 224 px, counting a
    # multiply-add once; FlopCounterMode counts it as 2 FLOPs. (Our head has 14 outputs, not 1000: -1 MFLOP.)
    forward, _ = flops.count_flops("resnet18", 224)
    assert forward / 1e9 == pytest.approx(2 * 1.81, rel=0.01)


def test_depthwise_convolution_backward_counts_its_groups():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    x = torch.zeros(1, 8, 10, 10, requires_grad=True)
    forward, total = flops.count_module_flops(conv, x)
    # by hand: 8 output channels x 100 positions x 9 taps x 1 input channel each = 7,200 multiply-adds;
    # backward: the input's gradient and the weight's, each as many
    assert forward == 2 * 7200 and total == 3 * 2 * 7200


def test_a_dense_convolution_counts_as_torch_does():
    conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
    x = torch.zeros(2, 4, 16, 16, requires_grad=True)
    counter = FlopCounterMode(display=False)
    with counter:
        conv(x).sum().backward()
    assert flops.count_module_flops(conv, x)[1] == counter.get_total_flops()
