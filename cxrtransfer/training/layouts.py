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

    def loss_terms(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor: ...


@dataclass
class ChexpertLayout:
    """One logit per binary task, three (negative, positive, uncertain) per U-MultiClass task."""

    policies: Sequence[str]
    slices: list[slice] = field(init=False)
    width: int = field(init=False)
    _indices: dict[torch.device, tuple[torch.Tensor, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.slices, start = [], 0
        for policy in self.policies:
            n = MULTICLASS_CLASSES if policy == "multiclass" else 1
            self.slices.append(slice(start, start + n))
            start += n
        self.width = start
        self.binary_tasks = [j for j, p in enumerate(self.policies) if p != "multiclass"]
        self.multiclass_tasks = [j for j, p in enumerate(self.policies) if p == "multiclass"]
        binary_columns = [self.slices[j].start for j in self.binary_tasks]
        multiclass_columns = [c for j in self.multiclass_tasks for c in range(self.slices[j].start, self.slices[j].stop)]
        self._indices = {torch.device("cpu"): tuple(torch.tensor(i, dtype=torch.long) for i in (
            self.binary_tasks, binary_columns, self.multiclass_tasks, multiclass_columns))}

    def indices(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """(binary tasks, their logit columns, U-MultiClass tasks, their 3 logit columns each) as index
        tensors, copied to a device once: an index built from host values at every step (a Python list
        included) would be a host-to-device copy that makes the host wait for the GPU."""
        if device not in self._indices:
            self._indices[device] = tuple(i.to(device) for i in self._indices[torch.device("cpu")])
        return self._indices[device]

    def loss_terms(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed loss over the labelled cells, number of labelled cells): masked BCE over the (batch,
        binary tasks) matrix and one cross-entropy over every (row, U-MultiClass task) pair, two kernels
        for any number of tasks."""
        binary, binary_columns, multiclass, multiclass_columns = self.indices(logits.device)
        logits = logits.float()
        total = logits.new_zeros(())
        if self.binary_tasks:
            bce = F.binary_cross_entropy_with_logits(logits.index_select(1, binary_columns),
                                                     targets.index_select(1, binary), reduction="none")
            total = total + (bce * mask.index_select(1, binary)).sum()
        if self.multiclass_tasks:
            rows = logits.index_select(1, multiclass_columns).reshape(-1, MULTICLASS_CLASSES)
            classes = targets.index_select(1, multiclass).reshape(-1).long()
            ce = F.cross_entropy(rows, classes, reduction="none")
            total = total + (ce * mask.index_select(1, multiclass).reshape(-1)).sum()
        return total, mask.sum()

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked BCE for binary tasks, cross-entropy for U-MultiClass tasks; mean over labelled cells."""
        total, count = self.loss_terms(logits, targets, mask)
        return total / count.clamp_min(1.0)

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

    def loss_terms(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed cross-entropy, rows): every row has its one label."""
        ce = F.cross_entropy(logits.float(), targets[:, 0].long(), reduction="sum")
        return ce, ce.new_full((), float(len(logits)))

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

    def loss_terms(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.layout.loss_terms(logits, targets, mask)

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
