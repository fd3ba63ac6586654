"""Run by test_ddp under torchrun (or alone): fit a small CNN and save the final weights from rank 0.

Usage: ddp_worker.py OUT BATCH_SIZE [tiny|batchnorm]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from cxrtransfer.training import distributed, layouts, loop
from tests.training.test_loop import TinyNet, accuracy_score, learnable_set


class BatchNormNet(torch.nn.Module):
    """conv -> BatchNorm2d -> ReLU -> GAP -> linear: its output depends on the statistics of the whole batch.
    The conv has no bias, as in every paper architecture: BatchNorm cancels it, its gradient is rounding
    noise, and Adam would amplify that noise into steps that differ between 1 and 2 processes."""

    def __init__(self, outputs: int):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, outputs)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def main(out: Path, batch_size: int, net: str) -> None:
    layout = layouts.ChexpertLayout(["ones", "multiclass"])
    model = loop.seeded(0, {"tiny": TinyNet, "batchnorm": BatchNormNet}[net], layout.width)
    train, valid = learnable_set(96, 1), learnable_set(48, 2)
    config = loop.FitConfig(epochs=1, batch_size=batch_size, lr=3e-3, eval_every_images=48, top_k=2, seed=0)
    result = loop.fit(model, layout, train, valid, accuracy_score(valid), config, out / "state", "f",
                          device=torch.device("cpu"), log=lambda _: None)
    if distributed.is_main_process():
        save_file({k: v.clone() for k, v in model.state_dict().items()}, str(out / "final.safetensors"))
        (out / "steps.txt").write_text(" ".join(str(h["step"]) for h in result.history))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "tiny")
