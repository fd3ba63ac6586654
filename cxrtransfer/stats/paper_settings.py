"""CheXtransfer's settings, each written once with its source: what `cxrtransfer paper` prints and checks,
and the defaults of the params schema (so every stage depends on this module, not on the paper's figures).

Ke et al., CHIL 2021, and the CheXpert reference code (see ../shared/reference.md).
"""

from __future__ import annotations

from typing import Any

from ..data.chexpert import PAPER_TASKS

CHEXTRANSFER = "CheXtransfer"
REFERENCE_CODE = "CheXpert ref. code"
# (setting, the paper's value, source): see ../shared/reference.md. Settings are dotted params keys.
PAPER_SETTINGS: tuple[tuple[str, Any, str], ...] = (
    ("architectures", ["densenet121", "densenet169", "densenet201", "resnet18", "resnet34", "resnet50",
                       "resnet101", "inception_v3", "inception_v4", "mnasnet", "efficientnet_b0",
                       "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "mobilenet_v2", "mobilenet_v3"],
     CHEXTRANSFER),
    ("inits", ["random", "imagenet"], CHEXTRANSFER),
    ("data.image_size", 320, CHEXTRANSFER),
    ("data.tasks", list(PAPER_TASKS), CHEXTRANSFER),
    ("split.method", "official", CHEXTRANSFER),
    ("train.epochs", 3, CHEXTRANSFER),
    ("train.max_images", 0, CHEXTRANSFER),   # 0: every training image, no cap
    ("train.batch_size", 16, CHEXTRANSFER),
    ("train.lr", 1e-4, CHEXTRANSFER),
    ("train.betas", [0.9, 0.999], REFERENCE_CODE),
    ("train.weight_decay", 0.0, REFERENCE_CODE),
    ("train.eval_every_images", 8192, CHEXTRANSFER),
    ("train.top_k", 10, CHEXTRANSFER),
    ("train.selection_tasks", list(PAPER_TASKS), CHEXTRANSFER),
    ("overrides", "none", CHEXTRANSFER),   # no per-architecture change of a train.* setting above
    ("normalization", "random: train mean/std, else ImageNet", CHEXTRANSFER),
    ("truncation.architectures", ["densenet121", "mnasnet", "resnet18", "efficientnet_b0"], CHEXTRANSFER),
    ("truncation.blocks", [1, 2, 3, 4], CHEXTRANSFER),
    ("truncation.init", "imagenet", CHEXTRANSFER),
    ("bootstrap.replicates", 1000, CHEXTRANSFER),
    ("bootstrap.confidence", 0.95, CHEXTRANSFER),
)


def paper_value(setting: str) -> Any:
    """The paper's value of a setting of PAPER_SETTINGS (a dotted params key)."""
    return next(value for name, value, _ in PAPER_SETTINGS if name == setting)

# The uncertainty policy per task: (CheXpert's best policy, its validation AUROC, our stand-in or None) from
# the CheXpert paper's table (Irvin et al., AAAI 2019); tasks absent here have no policy in that table.
CHEXPERT_PAPER = "CheXpert paper table"
CHEXPERT_BEST_POLICIES: dict[str, tuple[str, float]] = {
    "Atelectasis": ("ones", 0.858),
    "Cardiomegaly": ("multiclass", 0.854),
    "Consolidation": ("selftrained", 0.939),
    "Edema": ("ones", 0.941),
    "Pleural Effusion": ("multiclass", 0.936),
}
# Where our policy cannot be the paper's: why, and what stands in.
POLICY_ASSUMPTIONS: dict[str, str] = {
    "selftrained": "assumption: U-SelfTrained needs a first model's predictions as labels; U-Zeros stands in",
    "untabled": "assumption: the CheXpert paper gives no policy for this task (not a competition task); "
                "params default",
}
# The scoring order: CheXpert reference code (predict/predict.py), used for validation and the test ensembles.
SCORING_ORDER = ("per checkpoint: max over a study's views of the logits, then probabilities; then mean over "
                 "checkpoints", "CheXpert ref. code predict/predict.py")
