"""Output layouts: widths, U-MultiClass probabilities, the masked loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrtransfer.training import layouts


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


def per_task_loss(policies, slices, logits, targets, mask):
    """The loss as it was before it was vectorized: one BCE or cross-entropy per task, summed in a loop."""
    total = logits.new_zeros(())
    for j, (policy, sl) in enumerate(zip(policies, slices)):
        if policy == "multiclass":
            ce = torch.nn.functional.cross_entropy(logits[:, sl].float(), targets[:, j].long(), reduction="none")
            total = total + (ce * mask[:, j]).sum()
        else:
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, sl.start].float(), targets[:, j],
                                                                       reduction="none")
            total = total + (bce * mask[:, j]).sum()
    return total / mask.sum().clamp_min(1.0)


@pytest.mark.parametrize("policies", [
    ["ones", "multiclass", "ignore", "zeros", "multiclass", "ones"],   # the classes interleaved
    ["multiclass", "multiclass"],                                       # U-MultiClass only
    ["ignore", "ones", "zeros"],                                        # binary only
])
def test_vectorized_loss_equals_the_per_task_loss(policies):
    """Random logits and CheXpert labels (blank, uncertain, 0, 1) through the policies, blanks masked:
    the vectorized loss and its gradient equal the per-task loop's to 1e-6."""
    from cxrtransfer.data.chexpert import policy_targets
    rng = np.random.default_rng(len(policies))
    raw = rng.choice([np.nan, -1.0, 0.0, 1.0], size=(37, len(policies)))
    targets, mask = (torch.from_numpy(a) for a in policy_targets(raw, policies, blank_as_negative=False))
    assert 0 < mask.sum() < mask.numel()   # some cells are masked out, some are not
    layout = layouts.ChexpertLayout(policies)
    logits = torch.from_numpy(rng.normal(0, 3, (37, layout.width))).float().requires_grad_()
    reference_logits = logits.detach().clone().requires_grad_()
    vectorized = layout.loss(logits, targets, mask)
    reference = per_task_loss(policies, layout.slices, reference_logits, targets, mask)
    vectorized.backward()
    reference.backward()
    assert vectorized.item() == pytest.approx(reference.item(), rel=1e-6, abs=1e-6)
    torch.testing.assert_close(logits.grad, reference_logits.grad, rtol=1e-6, atol=1e-7)
    total, count = layout.loss_terms(logits.detach(), targets, mask)
    assert count.item() == mask.sum().item() and total.item() == pytest.approx(vectorized.item() * count.item(), rel=1e-6)


def test_multiclass_loss_is_the_cross_entropy_of_the_three_logits():
    """A hand-computed cell: logits (1, 2, 0), class 2 (uncertain): -log(e^0 / (e^1 + e^2 + e^0))."""
    layout = layouts.ChexpertLayout(["ones", "multiclass"])
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.0]])
    loss = layout.loss(logits, torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 1.0]]))
    assert loss.item() == pytest.approx(np.log(np.e + np.e ** 2 + 1.0), rel=1e-6)


class OpCounter(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts the ATen operations run (on CUDA each is at least one kernel launch)."""

    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def loss_ops(policies, loss) -> int:
    layout = layouts.ChexpertLayout(policies)
    logits = torch.randn(16, layout.width, requires_grad=True)
    targets, mask = torch.zeros(16, len(policies)), torch.ones(16, len(policies))
    layout.loss(logits, targets, mask)   # warm-up: nothing made once per layout is counted
    with OpCounter() as counter:
        loss(layout, logits, targets, mask).backward()
    return counter.ops


def test_the_loss_runs_the_same_operations_for_2_or_14_tasks():
    """The paper config trains 14 observations (2 of them U-MultiClass): the vectorized loss (forward and
    backward) runs as many operations as for 2 tasks, the per-task loop grows with every task."""
    two, paper = ["ones", "multiclass"], ["ones"] * 4 + ["multiclass"] + ["ones"] * 5 + ["multiclass"] + ["ones"] * 3
    vectorized = lambda layout, *a: layout.loss(*a)   # noqa: E731
    looped = lambda layout, *a: per_task_loss(layout.policies, layout.slices, *a)   # noqa: E731
    assert loss_ops(paper, vectorized) == loss_ops(two, vectorized)
    assert loss_ops(paper, looped) > 4 * loss_ops(paper, vectorized)
