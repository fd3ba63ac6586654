"""The training loop on a tiny CNN: cadence in images, top-k bookkeeping, resume, NaN, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cxrtransfer.training import dataset, layouts, loop
from cxrtransfer.training import checkpoints
from cxrtransfer.errors import TrainingError


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
    targets, mask = __import__("cxrtransfer.data.chexpert", fromlist=["x"]).policy_targets(raw, list(policies))
    return dataset.ImageSet(images, np.arange(n), targets, mask)


def accuracy_score(valid: dataset.ImageSet):
    def score(probabilities: np.ndarray):
        from sklearn.metrics import roc_auc_score
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


def test_top_k_keeper_copies_weights_and_breaks_ties_by_age(tmp_path):
    keeper = checkpoints.TopK(tmp_path, k=2)
    weight = torch.zeros(3)
    assert keeper.offer(10, 0.5, {"w": weight})
    weight += 1  # a live tensor changing after the offer must not change the saved file
    assert load_file(str(keeper.path(10)))["w"].tolist() == [0, 0, 0]
    assert keeper.offer(20, 0.7, {"w": weight})
    assert not keeper.offer(30, 0.5, {"w": weight})  # tie with an older checkpoint: the older stays
    assert keeper.offer(40, 0.9, {"w": weight})
    assert [s for _, s in keeper.kept()] == [40, 20]
    # the dropped checkpoint stays until prune(): the last saved resume state may still name it
    assert (tmp_path / "step0000000010.safetensors").is_file()
    (tmp_path / ".step0000000050.safetensors.x.tmp").write_bytes(b"crash leftover")
    keeper.prune()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step0000000020.safetensors", "step0000000040.safetensors"]


def test_checkpoint_bytes_do_not_depend_on_metadata_order():
    """safetensors writes metadata in a per-process hash order; the project's writer sorts the header."""
    from cxrtransfer.models.tensorfiles import _canonical_header
    header = b'{"__metadata__":{"step":"20","score":"0.5"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    data = len(header).to_bytes(8, "little") + header + b"\x00\x00\x80\x3f"
    expected = b'{"__metadata__":{"score":"0.5","step":"20"},"w":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}}'
    assert len(expected) == len(header)
    assert _canonical_header(data) == len(header).to_bytes(8, "little") + expected + b"\x00\x00\x80\x3f"
