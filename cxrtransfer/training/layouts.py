"""What a model's logits mean: the loss and the probabilities of each output layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.special import expit

from ..data.chexpert import MULTICLASS_CLASSES
from ..layout import logit_columns


class OutputLayout(Protocol):
    width: int

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor: ...


@dataclass
class ChexpertLayout:
    """One logit per binary task, three (negative, positive, uncertain) per U-MultiClass task."""

    policies: Sequence[str]
    slices: list[slice] = field(init=False)
    width: int = field(init=False)

    def __post_init__(self) -> None:
        self.slices, start = [], 0
        for policy in self.policies:
            n = MULTICLASS_CLASSES if policy == "multiclass" else 1
            self.slices.append(slice(start, start + n))
            start += n
        self.width = start

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked BCE for binary tasks, cross-entropy for U-MultiClass tasks; mean over labelled cells."""
        total = logits.new_zeros(())
        count = mask.sum().clamp_min(1.0)
        for j, (policy, sl) in enumerate(zip(self.policies, self.slices)):
            if policy == "multiclass":
                ce = F.cross_entropy(logits[:, sl].float(), targets[:, j].long(), reduction="none")
                total = total + (ce * mask[:, j]).sum()
            else:
                bce = F.binary_cross_entropy_with_logits(logits[:, sl.start].float(), targets[:, j], reduction="none")
                total = total + (bce * mask[:, j]).sum()
        return total / count

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """P(positive) per task; U-MultiClass: softmax over the (negative, positive) logits, keep positive."""
        columns = []
        for policy, sl in zip(self.policies, self.slices):
            if policy == "multiclass":
                columns.append(torch.softmax(logits[:, sl.start:sl.start + 2].float(), dim=1)[:, 1])
            else:
                columns.append(torch.sigmoid(logits[:, sl.start].float()))
        return torch.stack(columns, dim=1)


@dataclass
class ClassificationLayout:
    """Single-label multi-class (in-domain pretraining): cross-entropy over `width` classes."""

    width: int

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets[:, 0].long())

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=1)


# The reference scoring order (CheXpert predict/predict.py) needs logits, not probabilities: see
# cxrtransfer.training.validation and cxrtransfer.stats.predictions.


@dataclass
class RawLogits:
    """`layout` whose `probabilities()` returns the raw logits (as float32): predict() then yields logits."""

    layout: ChexpertLayout

    @property
    def width(self) -> int:
        return self.layout.width

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.layout.loss(logits, targets, mask)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float()


def score_columns(logits: np.ndarray, layout: ChexpertLayout, columns: Sequence[int], tasks: Sequence[str]
                  ) -> pd.DataFrame:
    """Per row, each task's probability and, for a U-MultiClass task, its negative and positive logits
    (cxrtransfer.layout.logit_columns). `columns`: the tasks' positions among the layout's tasks."""
    out: dict[str, np.ndarray] = {}
    for task, j in zip(tasks, columns):
        start = layout.slices[j].start
        if layout.policies[j] == "multiclass":
            negative, positive = logits[:, start], logits[:, start + 1]
            out[task] = expit(positive - negative)
            out.update(zip(logit_columns(task), (negative, positive)))
        else:
            out[task] = expit(logits[:, start])
    frame = pd.DataFrame({task: out[task] for task in tasks})
    for name in (c for c in out if c not in tasks):
        frame[name] = out[name]
    return frame
