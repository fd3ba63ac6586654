"""Validation scoring in the reference order: the checkpoint's logits, max over a study's views, then the
probability; and the raw-logit view of a layout that predict() uses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cxrtransfer.training import layouts, validation


def test_score_columns_give_probabilities_and_multiclass_logits():
    layout = layouts.ChexpertLayout(["multiclass", "ones"])
    logits = np.array([[2.0, 3.0, -1.0, 0.5]])
    columns = layouts.score_columns(logits, layout, [0, 1], ["Cardiomegaly", "Edema"])
    assert columns["Cardiomegaly"].iloc[0] == pytest.approx(0.7310585786300049)  # softmax(2, 3)[1]
    assert columns["Edema"].iloc[0] == pytest.approx(0.6224593312018546)         # sigmoid(0.5)
    assert columns["Cardiomegaly:negative_logit"].iloc[0] == 2.0
    assert columns["Cardiomegaly:positive_logit"].iloc[0] == 3.0
    assert "Edema:positive_logit" not in columns
    # the same probabilities as the layout's own (the values the files held before)
    expected = layout.probabilities(torch.tensor(logits)).numpy()
    np.testing.assert_allclose(columns[["Cardiomegaly", "Edema"]].to_numpy(), expected, rtol=1e-6)


def test_raw_logits_layout_keeps_the_loss_and_returns_logits():
    layout = layouts.ChexpertLayout(["multiclass", "ones"])
    raw = layouts.RawLogits(layout)
    logits = torch.tensor([[2.0, 3.0, -1.0, 0.5]])
    targets, mask = torch.tensor([[1.0, 0.0]]), torch.ones(1, 2)
    assert raw.width == layout.width == 4
    assert raw.loss(logits, targets, mask) == layout.loss(logits, targets, mask)
    # DDP steps on loss_terms: the same (sum, count) as the layout's
    assert all(torch.equal(a, b) for a, b in zip(raw.loss_terms(logits, targets, mask),
                                                  layout.loss_terms(logits, targets, mask)))
    assert torch.equal(raw.probabilities(logits), logits)


def test_validation_selection_score_changes_with_the_reference_order():
    # Two studies with two views each; Cardiomegaly (U-MultiClass): s1 positive, s2 negative.
    frame = pd.DataFrame({"study": ["s1", "s1", "s2", "s2"], "patient": ["p1", "p1", "p2", "p2"],
                          "Cardiomegaly": [1.0, 1.0, 0.0, 0.0]})
    layout = layouts.ChexpertLayout(["multiclass"])
    # s1 views: (neg, pos) = (0, 1) and (3, 2.5): reference max (3, 2.5) -> sigmoid(-0.5) = 0.378
    #   (max of view probabilities: sigmoid(1) = 0.731).
    # s2 views: (0, 0.8) and (0, -5): reference max (0, 0.8) -> sigmoid(0.8) = 0.690 (max of probabilities: 0.690).
    logits = np.array([[0.0, 1.0, 0.0], [3.0, 2.5, 0.0], [0.0, 0.8, 0.0], [0.0, -5.0, 0.0]])
    score = validation.study_auc_scorer(frame, ["Cardiomegaly"], ["Cardiomegaly"])
    value, metrics = score(layouts.score_columns(logits, layout, [0], ["Cardiomegaly"]))
    assert value == 0.0 and metrics == {"auc/Cardiomegaly": 0.0}  # the max-of-probabilities order gives 1.0
