"""The training loop on a tiny CNN: cadence in images, top-k bookkeeping, resume, NaN, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from cxrtransfer.data.chexpert import policy_targets
from cxrtransfer.errors import TrainingError
from cxrtransfer.training import checkpoints, dataset, layouts, loop


class TinyNet(torch.nn.Module):
    def __init__(self, outputs: int):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, outputs)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def learnable_set(n: int, seed: int, policies=("ones", "multiclass")) -> dataset.ImageSet:
    """Bright images are positive for task 0; task 1 follows a dark corner."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 120, (n, 12, 12), dtype=np.uint8)
    y0 = rng.random(n) < 0.5
    images[y0] += 100
    y1 = rng.random(n) < 0.5
    images[y1, :4, :4] = 0
    raw = np.stack([y0, y1], axis=1).astype(np.float32)
    targets, mask = policy_targets(raw, list(policies))
    return dataset.ImageSet(images, np.arange(n), targets, mask)


def accuracy_score(valid: dataset.ImageSet):
    def score(probabilities: np.ndarray):
        aucs = [roc_auc_score(valid.targets[:, j], probabilities[:, j]) for j in range(2)]
        return float(np.mean(aucs)), {"auc/a": aucs[0], "auc/b": aucs[1]}
    return score


def run(tmp_path: Path, config: loop.FitConfig, name: str = "run"):
    layout = layouts.ChexpertLayout(["ones", "multiclass"])
    model = loop.seeded(0, TinyNet, layout.width)
    train, valid = learnable_set(96, 1), learnable_set(48, 2)
    result = loop.fit(model, layout, train, valid, accuracy_score(valid), config, tmp_path / name,
                          fingerprint="f", device=torch.device("cpu"), log=lambda _: None)
    return model, result


def test_cadence_counts_images_and_keeps_top_k(tmp_path):
    config = loop.FitConfig(epochs=2, batch_size=8, lr=3e-3, eval_every_images=40, top_k=3, seed=0)
    _, result = run(tmp_path, config)
    steps = [h["step"] for h in result.history]
    # 96 images x 2 epochs = 192, batches of 8: evaluations at 40, 80, ..., 160 images, then the final 192
    assert steps == [40, 80, 120, 160, 192]
    scores = {h["step"]: h["score"] for h in result.history}
    best3 = sorted(scores, key=lambda s: (-scores[s], s))[:3]
    assert [s for _, s in result.kept] == best3
    files = sorted(p.name for p in result.checkpoint_dir.glob("*.safetensors"))
    assert files == sorted(f"step{s:010d}.safetensors" for s in best3)
    assert max(scores.values()) > 0.8  # it learns


def test_same_inputs_same_metrics(tmp_path):
    config = loop.FitConfig(epochs=1, batch_size=8, lr=3e-3, eval_every_images=48, top_k=2, seed=0)
    _, first = run(tmp_path, config, "a")
    _, second = run(tmp_path, config, "b")
    assert [h["score"] for h in first.history] == [h["score"] for h in second.history]


def test_resume_continues_where_it_stopped(tmp_path):
    config = loop.FitConfig(epochs=2, batch_size=8, lr=3e-3, eval_every_images=40, top_k=3, seed=0)
    reference_model, reference = run(tmp_path, config, "reference")

    # Interrupt a run right after its second evaluation (80 images), then start it again.
    calls = {"n": 0}
    original = checkpoints.save_resume_state

    def interrupt_after_second(*args, **kwargs):
        original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    checkpoints.save_resume_state = interrupt_after_second
    try:
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, config, "interrupted")
    finally:
        checkpoints.save_resume_state = original
    logs = []
    layout = layouts.ChexpertLayout(["ones", "multiclass"])
    model = loop.seeded(0, TinyNet, layout.width)
    train, valid = learnable_set(96, 1), learnable_set(48, 2)
    resumed = loop.fit(model, layout, train, valid, accuracy_score(valid), config, tmp_path / "interrupted",
                           fingerprint="f", device=torch.device("cpu"), log=logs.append)
    assert logs[0].startswith("resuming at 80 images")
    assert [h["step"] for h in resumed.history] == [h["step"] for h in reference.history]
    assert [h["score"] for h in resumed.history] == pytest.approx([h["score"] for h in reference.history], abs=1e-6)
    for key, value in reference_model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, atol=1e-6, rtol=0)


def test_a_different_run_does_not_resume_a_stale_state(tmp_path):
    config = loop.FitConfig(epochs=1, batch_size=8, lr=3e-3, eval_every_images=48, top_k=2, seed=0)
    run(tmp_path, config, "x")
    layout = layouts.ChexpertLayout(["ones", "multiclass"])
    train, valid = learnable_set(96, 1), learnable_set(48, 2)
    logs = []
    loop.fit(loop.seeded(0, TinyNet, layout.width), layout, train, valid, accuracy_score(valid), config,
                 tmp_path / "x", fingerprint="other", device=torch.device("cpu"), log=logs.append)
    assert not any(line.startswith("resuming") for line in logs)


def test_nan_loss_is_a_clear_error(tmp_path):
    config = loop.FitConfig(epochs=1, batch_size=8, lr=1e-3, eval_every_images=48, top_k=1, seed=0)
    layout = layouts.ChexpertLayout(["ones", "multiclass"])
    model = loop.seeded(0, TinyNet, layout.width)
    with torch.no_grad():
        model.fc.bias.fill_(float("nan"))
    train, valid = learnable_set(32, 1), learnable_set(16, 2)
    # finiteness is checked at the evaluation (no per-step host sync): it names the images it covers
    with pytest.raises(TrainingError, match=r"loss is nan in the 4 steps before 32 images \(epoch 1\)"):
        loop.fit(model, layout, train, valid, accuracy_score(valid), config, tmp_path / "nan", "f",
                     device=torch.device("cpu"), log=lambda _: None)


CUDA = torch.device("cuda", 0)   # the choices below are made from the device alone: no GPU is needed to test them


def test_cuda_runs_channels_last_with_cudnn_benchmark_and_cpu_runs_untouched(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    model = TinyNet(3)
    loop.tune_for_device(model, torch.device("cpu"))
    assert model.conv.weight.is_contiguous() and torch.backends.cudnn.benchmark is False
    loop.tune_for_device(model, CUDA)
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not model.conv.weight.is_contiguous()
    assert torch.backends.cudnn.benchmark is True


def test_adam_is_fused_on_cuda_only():
    config = loop.FitConfig(epochs=1, batch_size=8, lr=3e-3, eval_every_images=8, top_k=1)
    assert loop.adam(TinyNet(3), config, CUDA).defaults["fused"] is True
    cpu = loop.adam(TinyNet(3), config, torch.device("cpu"))
    assert not cpu.defaults["fused"] and cpu.defaults["lr"] == 3e-3 and cpu.defaults["betas"] == (0.9, 0.999)


def test_compile_is_off_by_default_and_ignored_with_a_message_off_cuda(monkeypatch):
    calls, logs = [], []
    monkeypatch.setattr(torch, "compile", lambda net: calls.append(net) or "compiled")
    net = TinyNet(3)
    off = loop.FitConfig(epochs=1, batch_size=8, lr=3e-3, eval_every_images=8, top_k=1)
    on = loop.FitConfig(epochs=1, batch_size=8, lr=3e-3, eval_every_images=8, top_k=1, compile=True)
    assert loop.compiled(net, off, CUDA, logs.append) is net and calls == [] and logs == []
    assert loop.compiled(net, on, torch.device("cpu"), logs.append) is net and calls == []
    assert logs == ["train.compile is ignored on cpu: only CUDA runs compile the model"]
    assert loop.compiled(net, on, CUDA, logs.append) == "compiled" and calls == [net]
    assert loop.fit_config({"epochs": 1, "batch_size": 8, "lr": 1e-3, "eval_every_images": 8, "top_k": 1,
                            "compile": True}).compile is True


def test_the_process_world_is_closed_on_every_exit_path(tmp_path, monkeypatch):
    """fit() closes the world it joined when it returns and when it fails (here: a NaN loss)."""
    closed = []

    class Recorded(loop.Distributed):
        def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr(loop.Distributed, "from_env", classmethod(lambda cls, device: Recorded()))
    config = loop.FitConfig(epochs=1, batch_size=8, lr=1e-3, eval_every_images=48, top_k=1, seed=0)
    run(tmp_path, config, "ok")
    assert closed == [True]
    layout = layouts.ChexpertLayout(["ones", "multiclass"])
    model = loop.seeded(0, TinyNet, layout.width)
    with torch.no_grad():
        model.fc.bias.fill_(float("nan"))
    train, valid = learnable_set(32, 1), learnable_set(16, 2)
    with pytest.raises(TrainingError, match="loss is nan"):
        loop.fit(model, layout, train, valid, accuracy_score(valid), config, tmp_path / "nan", "f",
                 device=torch.device("cpu"), log=lambda _: None)
    assert closed == [True, True]
