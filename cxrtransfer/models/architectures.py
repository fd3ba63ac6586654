"""The architecture table, model building, truncation and the body/head split.

Every model is a timm model built with ``pretrained=False`` (weights come from
:mod:`cxrtransfer.models.weights`), so parameter names are timm's own and ImageNet
checkpoints load by name.  The *head* is the final fully connected layer only
(``pretrained_cfg["classifier"]``: ``fc``, ``classifier`` or ``last_linear``);
everything else is the *body*.

Truncation removes the final ``k`` blocks (``k`` in 0..4) by replacing their
modules with ``nn.Identity`` (their parameters are gone, the names of what is
left do not change) and puts global average pooling + one new fully connected
layer on what remains.  ``k = 0`` is the untruncated timm model.  A block, per
layout, listed from the end (block 1 is removed first)::

    layout        block 1 (k>=1)                        block 2              block 3                    block 4
    resnet        layer4                                layer3               layer2                     layer1
    densenet      transition3.conv/pool + denseblock4   transition2.conv/    transition1.conv/pool      denseblock1
                  + norm5                               pool + denseblock3   + denseblock2              + transition1.norm
                                                        + transition3.norm   + transition2.norm
    efficientnet  blocks.6 + conv_head + bn2            blocks.5             blocks.4                   blocks.3
    (tf_efficientnet_b0-b3, mnasnet_100, mobilenetv2_100: timm EfficientNet class, 7 stages)
    mobilenetv3   blocks.6 + conv_head + norm_head+act2 blocks.5             blocks.4                   blocks.3
    inception_v3  Mixed_7a-7c                           Mixed_6a-6e          Pool2 + Mixed_5b-5d        Pool1 + Conv2d_3b + Conv2d_4a
    inception_v4  features.18-21 (ReductionB + C x3)    features.10-17       features.4-9               features.3 (Mixed3a)
                                                        (ReductionA + B x7)  (Mixed4a, 5a, A x4)

DenseNet keeps the BN-ReLU that follows the last remaining dense block
(``transition<i>.norm``, pretrained) in place of ``norm5``, so the pooled
features are activated as in the full network.  Inception blocks are the
groups between timm's feature reductions (strides 32, 16, 8, 4).

Parameters left with 6 outputs (measured with :func:`count_parameters`; the
test checks they fall strictly with ``k`` and that every removed parameter is
really gone, cf. timm issue 1849)::

    arch             k=0         k=1        k=2        k=3        k=4
    densenet121      6,960,006   4,275,590  1,301,638    346,630      9,926
    mnasnet          3,109,998   2,085,870    473,838    264,558     46,638
    resnet18        11,179,590   2,784,326    683,846    157,894      9,926
    efficientnet_b0  4,015,234   2,879,314    852,486    309,146     65,976

At k=4 ResNet and DenseNet keep only their stem (7x7 conv + BN + max pool).
"""

from __future__ import annotations

import contextlib
import functools
import numbers
from dataclasses import dataclass
from importlib import resources
from typing import Iterator

import pandas as pd
import timm
import torch
from torch import nn

from ..errors import InputError

ARCHITECTURES_CSV = "architectures.csv"
COLUMNS = ("arch", "family", "timm_model", "pretrained_tag", "imagenet_top1", "top1_source",
           "min_input_size", "timm_top1", "imagenet_top1_2020", "top1_2020_source", "weights")
# Where an architecture's ImageNet weights come from: timm's pinned tag, or torchvision's IMAGENET1K_V1 file of
# the named builder (the 2020 file; mapped into timm's module by cxrtransfer.models.weights).
TIMM_WEIGHTS, TORCHVISION_WEIGHTS = "timm", "torchvision:"
FAMILIES = ("densenet", "resnet", "inception", "mnasnet", "efficientnet", "mobilenet")
MAX_TRUNCATE_BLOCKS = 4


def _densenet_block(i: int) -> tuple[str, ...]:
    """Dense block i with the transition before it (conv/pool) and the BN-ReLU after it."""
    before = (f"features.transition{i - 1}.conv", f"features.transition{i - 1}.pool") if i > 1 else ()
    after = "features.norm5" if i == 4 else f"features.transition{i}.norm"
    return (*before, f"features.denseblock{i}", after)


_EFFICIENTNET_BLOCKS = (("blocks.6", "conv_head", "bn2"), ("blocks.5",), ("blocks.4",), ("blocks.3",))

# Module paths removed with each block, block 1 (the last one) first.
TRUNCATION_BLOCKS: dict[str, tuple[tuple[str, ...], ...]] = {
    "resnet": (("layer4",), ("layer3",), ("layer2",), ("layer1",)),
    "densenet": tuple(_densenet_block(i) for i in (4, 3, 2, 1)),
    "efficientnet": _EFFICIENTNET_BLOCKS,
    "mobilenetv3": (("blocks.6", "conv_head", "norm_head", "act2"),) + _EFFICIENTNET_BLOCKS[1:],
    "inception_v3": (("Mixed_7a", "Mixed_7b", "Mixed_7c"),
                     ("Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"),
                     ("Pool2", "Mixed_5b", "Mixed_5c", "Mixed_5d"),
                     ("Pool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3")),
    "inception_v4": tuple(tuple(f"features.{i}" for i in range(lo, hi))
                          for lo, hi in ((18, 22), (10, 18), (4, 10), (3, 4))),
}

# Checkpoint keys that belong to an auxiliary head (torchvision's Inception v3 file has one).
_AUX_HEADS = {"inception_v3": ("AuxLogits",)}


@dataclass(frozen=True)
class Architecture:
    """One row of the architecture table."""

    arch: str
    family: str
    timm_model: str
    pretrained_tag: str
    imagenet_top1: float
    top1_source: str
    min_input_size: int
    timm_top1: float
    weights: str = TIMM_WEIGHTS

    @property
    def timm_name(self) -> str:
        """The pinned weights' name, e.g. ``resnet18.tv_in1k`` (``mnasnet_100.tv_in1k``: torchvision's file)."""
        return f"{self.timm_model}.{self.pretrained_tag}"

    @property
    def torchvision_builder(self) -> str | None:
        """torchvision's model builder whose IMAGENET1K_V1 weights this row loads, or None (timm's weights)."""
        return self.weights[len(TORCHVISION_WEIGHTS):] if self.weights.startswith(TORCHVISION_WEIGHTS) else None

    @property
    def timm_cfg_name(self) -> str:
        """The timm name the model is built from: the pinned tag, or timm's default tag when the weights are
        torchvision's (timm knows no such tag; the module and its input normalization are the same)."""
        return self.timm_model if self.torchvision_builder else self.timm_name

    @property
    def layout(self) -> str:
        """Key into TRUNCATION_BLOCKS: which timm module structure this model has."""
        if self.family == "inception":
            return self.timm_model
        if self.timm_model.startswith("mobilenetv3"):
            return "mobilenetv3"
        if self.family in ("mnasnet", "mobilenet"):
            return "efficientnet"
        return self.family


@functools.lru_cache(maxsize=1)
def _read_table() -> pd.DataFrame:
    source = resources.files(__package__).joinpath(ARCHITECTURES_CSV)
    with source.open("r", encoding="utf-8") as handle:
        table = pd.read_csv(handle, dtype={"arch": str, "pretrained_tag": str})
    if tuple(table.columns) != COLUMNS:
        raise InputError(f"columns {list(table.columns)} != {list(COLUMNS)}", path=ARCHITECTURES_CSV)
    if table["arch"].duplicated().any():
        raise InputError("duplicate arch names", path=ARCHITECTURES_CSV, column="arch")
    unknown = sorted(set(table["family"]) - set(FAMILIES))
    if unknown:
        raise InputError(f"unknown families {unknown}", path=ARCHITECTURES_CSV, column="family")
    bad = [w for w in table["weights"] if w != TIMM_WEIGHTS and not (w.startswith(TORCHVISION_WEIGHTS)
                                                                     and len(w) > len(TORCHVISION_WEIGHTS))]
    if bad:
        raise InputError(f"weights {bad[0]!r}: expected {TIMM_WEIGHTS!r} or '{TORCHVISION_WEIGHTS}<builder>'",
                         path=ARCHITECTURES_CSV, column="weights")
    return table.set_index("arch", drop=False)


def load_architecture_table() -> pd.DataFrame:
    """The packaged architecture table, indexed by ``arch`` (a copy, safe to modify)."""
    return _read_table().copy()


def architecture_names() -> list[str]:
    """All architecture names, in table order."""
    return list(_read_table().index)


def architecture(arch: str) -> Architecture:
    """The table row for `arch`; InputError listing the valid names if there is none."""
    table = _read_table()
    if arch not in table.index:
        raise InputError(f"unknown architecture {arch!r}; valid: {', '.join(table.index)}")
    row = table.loc[arch]
    return Architecture(arch=str(row["arch"]), family=str(row["family"]),
                        timm_model=str(row["timm_model"]), pretrained_tag=str(row["pretrained_tag"]),
                        imagenet_top1=float(row["imagenet_top1"]), top1_source=str(row["top1_source"]),
                        min_input_size=int(row["min_input_size"]), timm_top1=float(row["timm_top1"]),
                        weights=str(row["weights"]))


def check_input_size(arch: str, size: int | tuple[int, int]) -> None:
    """InputError if an input of `size` px (or (height, width)) is too small for `arch`."""
    spec = architecture(arch)
    height, width = (size, size) if isinstance(size, numbers.Integral) else size
    if min(height, width) < spec.min_input_size:
        raise InputError(f"input size {height}x{width} px is too small for {arch}: "
                         f"it needs at least {spec.min_input_size} px")


def normalization(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the pinned weights were trained with (Inception: 0.5/0.5, not ImageNet's)."""
    cfg = timm.models.get_pretrained_cfg(architecture(arch).timm_cfg_name)
    return tuple(cfg.mean), tuple(cfg.std)


def head_name(arch: str) -> str:
    """Name of the final fully connected layer (the head) in the timm model."""
    return timm.models.get_pretrained_cfg(architecture(arch).timm_cfg_name).classifier


def head_prefixes(arch: str) -> tuple[str, ...]:
    """Module names whose checkpoint keys are head, not body (classifier + auxiliary heads)."""
    return (head_name(arch), *_AUX_HEADS.get(arch, ()))


def truncation_blocks(arch: str) -> tuple[tuple[str, ...], ...]:
    """Module paths removed with each block, last block first (see module docstring)."""
    return TRUNCATION_BLOCKS[architecture(arch).layout]


def is_under(key: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    """True if state-dict `key` belongs to one of the modules named in `prefixes`."""
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _replace_module(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    if name not in parent._modules:
        raise RuntimeError(f"{type(model).__name__} has no module {path!r}; timm's layout changed")
    setattr(parent, name, new)


def _feature_channels(model: nn.Module, size: int) -> int:
    """Channels of forward_features' output, from one tiny forward pass in eval mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            features = model.forward_features(torch.zeros(1, 3, size, size))
    finally:
        model.train(was_training)
    return int(features.shape[1])


@contextlib.contextmanager
def cpu_independent_normal() -> Iterator[None]:
    """Within the block, Tensor.normal_ on CPU draws by inversion (uniform_, then ndtri in float64).

    torch's own CPU normal_ uses a vectorized Box-Muller kernel on AVX2/AVX512 CPUs and a scalar one
    elsewhere, so a seeded timm initialization had different bytes on different machines; uniform_ and
    ndtri run the same scalar code everywhere. The caller's seed still decides every draw.
    """
    original = torch.Tensor.normal_

    def normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if tensor.device.type != "cpu":
            return original(tensor, mean, std, generator=generator)
        uniform = torch.empty(tensor.shape, dtype=torch.float64).uniform_(generator=generator)
        standard = torch.special.ndtri(uniform.clamp_(2.0 ** -53, 1.0 - 2.0 ** -53))
        with torch.no_grad():
            return tensor.copy_(standard.mul_(float(std)).add_(float(mean)))

    torch.Tensor.normal_ = normal_
    try:
        yield
    finally:
        torch.Tensor.normal_ = original


def _build(spec: Architecture, num_outputs: int, truncate_blocks: int) -> nn.Module:
    # The full name pins model.pretrained_cfg to our tag; pretrained=False: no weights are fetched.
    with cpu_independent_normal():
        model = timm.create_model(spec.timm_cfg_name, pretrained=False, num_classes=num_outputs)
    head = model.pretrained_cfg["classifier"]
    removed: list[str] = []
    if truncate_blocks:
        for block in TRUNCATION_BLOCKS[spec.layout][:truncate_blocks]:
            for path in block:
                _replace_module(model, path, nn.Identity())
                removed.append(path)
        channels = _feature_channels(model, spec.min_input_size)
        # global_pool is already average pooling; the new head is one linear layer on it.
        _replace_module(model, head, nn.Linear(channels, num_outputs))
        model.num_features = channels
        if hasattr(model, "head_hidden_size"):
            model.head_hidden_size = channels
    model.cxr_arch = spec.arch
    model.cxr_truncate_blocks = truncate_blocks
    model.cxr_head = head
    model.cxr_removed = tuple(removed)
    return model


def build_model(arch: str, num_outputs: int, truncate_blocks: int = 0, *,
                seed: int | None = None) -> nn.Module:
    """A timm model for `arch` with `num_outputs` logits and its last `truncate_blocks` blocks removed.

    With `seed`, initialisation is deterministic and leaves the global RNG untouched.
    """
    spec = architecture(arch)
    if not isinstance(truncate_blocks, numbers.Integral) or not 0 <= truncate_blocks <= MAX_TRUNCATE_BLOCKS:
        raise InputError(f"truncate_blocks must be an integer in 0..{MAX_TRUNCATE_BLOCKS}, "
                         f"got {truncate_blocks!r}")
    if not isinstance(num_outputs, numbers.Integral) or num_outputs < 1:
        raise InputError(f"num_outputs must be a positive integer, got {num_outputs!r}")
    truncate_blocks, num_outputs = int(truncate_blocks), int(num_outputs)
    if seed is None:
        return _build(spec, num_outputs, truncate_blocks)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build(spec, num_outputs, truncate_blocks)


def model_head_name(model: nn.Module) -> str:
    """The head module's name in a model from build_model (or any timm model)."""
    return getattr(model, "cxr_head", None) or model.pretrained_cfg["classifier"]


def head_parameter_names(model: nn.Module) -> list[str]:
    """State-dict keys of the head (the final fully connected layer)."""
    head = (model_head_name(model),)
    return [k for k in model.state_dict() if is_under(k, head)]


def split_body_head(state_dict: dict[str, torch.Tensor], arch: str
                    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(body, head) parts of a state dict of `arch` (auxiliary heads count as head)."""
    prefixes = head_prefixes(arch)
    body = {k: v for k, v in state_dict.items() if not is_under(k, prefixes)}
    head = {k: v for k, v in state_dict.items() if is_under(k, prefixes)}
    return body, head


def body_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's body weights and buffers, detached copies (safe to export)."""
    head = (model_head_name(model),)
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not is_under(k, head)}


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (each shared tensor once)."""
    return sum(p.numel() for p in model.parameters())
