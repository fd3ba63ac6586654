"""Run by test_ddp under torchrun (or alone): fit TinyNet and save the final weights from rank 0."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from cxrtransfer import training
from test_training import TinyNet, accuracy_score, learnable_set


def main(out: Path, batch_size: int) -> None:
    layout = training.ChexpertLayout(["ones", "multiclass"])
    model = training.seeded(0, TinyNet, layout.width)
    train, valid = learnable_set(96, 1), learnable_set(48, 2)
    config = training.FitConfig(epochs=1, batch_size=batch_size, lr=3e-3, eval_every_images=48, top_k=2, seed=0)
    result = training.fit(model, layout, train, valid, accuracy_score(valid), config, out / "state", "f",
                          device=torch.device("cpu"), log=lambda _: None)
    if training.is_main_process():
        save_file({k: v.clone() for k, v in model.state_dict().items()}, str(out / "final.safetensors"))
        (out / "steps.txt").write_text(" ".join(str(h["step"]) for h in result.history))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
