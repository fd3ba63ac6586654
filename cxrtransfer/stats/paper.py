"""CheXtransfer's own settings and figures, each written once, with its source.

Ke et al., "CheXtransfer: Performance and Parameter Efficiency of ImageNet Models for Chest X-Ray
Interpretation", CHIL 2021 (see ../shared/reference.md). The settings table is what `cxrtransfer paper`
prints and checks; the figures stand beside ours in the bootstrap and correlation metrics.
"""

from __future__ import annotations

from typing import Any

from ..data.chexpert import PAPER_TASKS

# The paper's figures, put beside ours. "without" is the baseline init (no pretraining), "with" ImageNet
# pretraining (beside every other init: paper_key).
PAPER_SOURCE = "Ke et al., CheXtransfer, CHIL 2021"
PAPER_SPEARMAN: dict[str, dict[str, float]] = {
    "imagenet_top1_vs_auc": {"without_pretraining": 0.082, "with_pretraining": 0.059},
    "params_vs_auc": {"without_pretraining": 0.791, "with_pretraining": 0.565},
    "params_vs_boost": {"with_pretraining": -0.718},  # negative: smaller models gain more
}
PAPER_SPEARMAN_P: dict[str, dict[str, str]] = {
    "imagenet_top1_vs_auc": {"without_pretraining": "0.762", "with_pretraining": "0.829"},
    "params_vs_auc": {"without_pretraining": "< 0.001", "with_pretraining": "0.023"},
    "params_vs_boost": {"with_pretraining": "0.002"},
}
PAPER_MEAN_BOOST = 0.015  # "statistically significant"; another write-up of the paper gives 0.016
PAPER_BOOSTS = {"efficientnet_b0": 0.023, "mobilenet_v2": 0.040, "mobilenet_v3": 0.033, "inception_v4": -0.002,
                "resnet101": 0.013}
PAPER_BEST_VS_WORST = {"without_pretraining": {"best": "inception_v3", "best_auc": 0.866, "worst": "mobilenet_v2",
                                               "worst_auc": 0.814, "diff": 0.052, "significant": True}}
PAPER_WITHIN_FAMILY = {  # largest minus smallest model of the family
    "without_pretraining": {"resnet": ("resnet101 - resnet18", 0.005), "densenet": ("densenet201 - densenet121", 0.004),
                            "efficientnet": ("efficientnet_b3 - efficientnet_b0", 0.003)},
    "with_pretraining": {"resnet": ("resnet101 - resnet18", 0.002), "densenet": ("densenet201 - densenet121", 0.004),
                         "efficientnet": ("efficientnet_b3 - efficientnet_b0", -0.006)},
}
PAPER_TRUNCATION_GAIN = 3.25  # average over DenseNet121, MNASNet, ResNet18, EfficientNetB0
PAPER_TRUNCATION_STATEMENT = "removing one final block did not hurt significantly; removing more did"


def paper_key(init: str, baseline_init: str) -> str:
    """Which of the paper's columns an init stands beside: the baseline is 'without pretraining', every
    other init 'with pretraining' (the paper's is ImageNet; the report names the init)."""
    return "without_pretraining" if init == baseline_init else "with_pretraining"


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
