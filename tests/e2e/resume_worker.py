"""Run by test_kill_resume: a training run with dvclive that a test kills (SIGKILL) and starts again.

Usage: resume_worker.py OUT. Writes OUT/state (resume state, checkpoints), OUT/live (curves) and, when
the run completes, OUT/final.safetensors and OUT/history.json. Prints "fitting" once fit() is about to start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from cxrtransfer.training import layouts, loop, outputs
from tests.training.ddp_worker import BatchNormNet
from tests.training.test_loop import accuracy_score, learnable_set

CONFIG = loop.FitConfig(epochs=3, batch_size=8, lr=3e-3, eval_every_images=200, top_k=3, seed=0)


def main(out: Path) -> None:
    import sklearn.metrics  # noqa: F401 (imported here: the time after "fitting" is training)
    layout = layouts.ChexpertLayout(["ones", "multiclass"])
    model = loop.seeded(0, BatchNormNet, layout.width)
    train, valid = learnable_set(2048, 1), learnable_set(64, 2)
    live = outputs.open_live(out / "live")
    print("fitting", flush=True)
    result = loop.fit(model, layout, train, valid, accuracy_score(valid), CONFIG, out / "state", "f",
                          device=torch.device("cpu"), live=live, log=lambda line: print(line, flush=True))
    live.end()
    save_file({k: v.clone() for k, v in model.state_dict().items()}, str(out / "final.safetensors"))
    (out / "history.json").write_text(json.dumps({"history": result.history, "kept": result.kept}))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(Path(sys.argv[1]))
