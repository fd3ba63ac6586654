"""CheXtransfer's own figures, each written once, to stand beside ours in the bootstrap and correlation metrics.

Ke et al., "CheXtransfer: Performance and Parameter Efficiency of ImageNet Models for Chest X-Ray
Interpretation", CHIL 2021 (see ../shared/reference.md). The paper's settings are in paper_settings.py:
every stage reads those (params defaults), none but the study stages reads these.
"""

from __future__ import annotations

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
