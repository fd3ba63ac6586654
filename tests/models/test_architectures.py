"""Architecture table, building all 16 models, truncation and the body/head split."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision

from cxrtransfer.errors import InputError
from cxrtransfer.models import architectures as models

# The CheXtransfer architectures and the paper's truncation models, as the specification names them.
CHEXTRANSFER_ARCHS = {
    "densenet121", "densenet169", "densenet201", "resnet18", "resnet34", "resnet50", "resnet101",
    "inception_v3", "inception_v4", "mnasnet", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "mobilenet_v2", "mobilenet_v3",
}
PAPER_TRUNCATION = ("densenet121", "mnasnet", "resnet18", "efficientnet_b0")
NUM_OUTPUTS = 6


@pytest.fixture(autouse=True)
def _few_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


# ImageNet top-1 of the weights used: torchvision's docs for its tv_in1k weights and Cadene's README for
# InceptionV4 (as /work/shared/reference.md quotes them); timm's results-imagenet.csv for timm's own tags
# (the TF AutoAugment EfficientNet ports and MobileNetV3's ra_in1k, as the table's source column names them).
IMAGENET_TOP1 = {
    "densenet121": 74.434, "densenet169": 75.600, "densenet201": 76.896, "resnet18": 69.758, "resnet34": 73.314,
    "resnet50": 76.130, "resnet101": 77.374, "inception_v3": 77.294, "inception_v4": 80.062, "mnasnet": 73.456,
    "efficientnet_b0": 76.882, "efficientnet_b1": 78.840, "efficientnet_b2": 80.074, "efficientnet_b3": 81.648,
    "mobilenet_v2": 71.878, "mobilenet_v3": 75.784}
# What the paper could have used in 2020: torchvision 1.5.0 docs (100 - top-1 error), else the sources named.
IMAGENET_TOP1_2020 = {
    "densenet121": 74.65, "densenet169": 76.00, "densenet201": 77.20, "resnet18": 69.76, "resnet34": 73.30,
    "resnet50": 76.15, "resnet101": 77.37, "inception_v3": 77.45, "inception_v4": 80.062, "mnasnet": 73.51,
    "efficientnet_b0": 76.3, "efficientnet_b1": 78.8, "efficientnet_b2": 79.8, "efficientnet_b3": 81.1,
    "mobilenet_v2": 71.88, "mobilenet_v3": 75.2}


def test_table_lists_the_chextransfer_architectures():
    table = models.load_architecture_table()
    assert set(table.index) == CHEXTRANSFER_ARCHS
    assert set(table["family"]) == {"densenet", "resnet", "inception", "mnasnet", "efficientnet", "mobilenet"}
    assert table["imagenet_top1"].to_dict() == pytest.approx(IMAGENET_TOP1, abs=1e-9)
    assert table["top1_source"].str.len().gt(0).all()
    assert table["imagenet_top1_2020"].to_dict() == pytest.approx(IMAGENET_TOP1_2020, abs=1e-9)
    assert table["top1_2020_source"].str.len().gt(0).all()
    # where the 2020 source is torchvision's error table, the value is 100 minus the error it quotes
    for arch, source in table["top1_2020_source"].items():
        if "top-1 error" in source:
            error = float(source.split("top-1 error ")[1].split(")")[0])
            assert table.loc[arch, "imagenet_top1_2020"] == pytest.approx(100 - error, abs=1e-9), arch
    for arch in table.index:
        assert arch.startswith(models.architecture(arch).family)


def test_pinned_tags_exist_in_installed_timm():
    available = set(timm.list_models(pretrained=True))
    for arch in models.architecture_names():
        spec = models.architecture(arch)
        # torchvision-weights rows build timm's module under its default tag; their tag names the file only
        if spec.torchvision_builder:
            assert spec.timm_cfg_name in timm.list_models(), arch
        else:
            assert spec.timm_name in available, arch


# The paper's ImageNet weights (early 2020), written out: where they come from, the name the file is
# stored under, and the top-1 of exactly those weights.
PAPER_WEIGHTS = {
    "densenet121": ("timm", "densenet121.tv_in1k", 74.434),
    "densenet169": ("timm", "densenet169.tv_in1k", 75.600),
    "densenet201": ("timm", "densenet201.tv_in1k", 76.896),
    "resnet18": ("timm", "resnet18.tv_in1k", 69.758),
    "resnet34": ("timm", "resnet34.tv_in1k", 73.314),
    "resnet50": ("timm", "resnet50.tv_in1k", 76.130),
    "resnet101": ("timm", "resnet101.tv_in1k", 77.374),
    "inception_v3": ("timm", "inception_v3.tv_in1k", 77.294),
    "inception_v4": ("timm", "inception_v4.tf_in1k", 80.062),
    "mnasnet": ("torchvision:mnasnet1_0", "mnasnet_100.tv_in1k", 73.456),
    "efficientnet_b0": ("timm", "tf_efficientnet_b0.aa_in1k", 76.882),
    "efficientnet_b1": ("timm", "tf_efficientnet_b1.aa_in1k", 78.840),
    "efficientnet_b2": ("timm", "tf_efficientnet_b2.aa_in1k", 80.074),
    "efficientnet_b3": ("timm", "tf_efficientnet_b3.aa_in1k", 81.648),
    "mobilenet_v2": ("torchvision:mobilenet_v2", "mobilenetv2_100.tv_in1k", 71.878),
    "mobilenet_v3": ("timm", "mobilenetv3_large_100.ra_in1k", 75.784),
}


def test_table_pins_the_papers_2020_weights():
    table = {arch: (models.architecture(arch).weights, models.architecture(arch).timm_name,
                    models.architecture(arch).imagenet_top1) for arch in models.architecture_names()}
    assert table == PAPER_WEIGHTS
    assert "CHOICE" in models.architecture("mobilenet_v3").top1_source  # no 2020 torchvision weights: marked


def test_a_bad_weights_column_is_an_input_error(monkeypatch):
    broken = models._read_table().copy()
    broken.loc["mnasnet", "weights"] = "keras:mnasnet"
    monkeypatch.setattr(models.pd, "read_csv", lambda *a, **k: broken.reset_index(drop=True))
    models._read_table.cache_clear()
    try:
        with pytest.raises(InputError, match="keras:mnasnet"):
            models._read_table()
    finally:
        monkeypatch.undo()
        models._read_table.cache_clear()


def test_torchvision_ports_carry_torchvision_top1_and_min_size():
    checked = 0
    for arch in models.architecture_names():
        spec = models.architecture(arch)
        if spec.pretrained_tag != "tv_in1k":
            continue
        weights = torchvision.models.get_model_weights(spec.torchvision_builder or spec.timm_model).IMAGENET1K_V1
        assert spec.imagenet_top1 == pytest.approx(weights.meta["_metrics"]["ImageNet-1K"]["acc@1"], abs=1e-9)
        assert spec.min_input_size >= max(weights.meta["min_size"])
        # the same checkpoint as in 2020 (PyTorch 1.4 era), re-evaluated since: within half a point of the 2020 docs
        top1_2020 = models.load_architecture_table().loc[arch, "imagenet_top1_2020"]
        assert abs(spec.imagenet_top1 - top1_2020) < 0.5
        checked += 1
    assert checked == 10  # resnet x4, densenet x3, inception_v3, mnasnet, mobilenet_v2


@pytest.mark.parametrize("arch", sorted(CHEXTRANSFER_ARCHS))
def test_every_architecture_builds_and_runs_at_its_minimum_size(arch):
    size = models.architecture(arch).min_input_size
    model = models.build_model(arch, NUM_OUTPUTS, seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0)))
        assert out.shape == (2, NUM_OUTPUTS)
        assert torch.isfinite(out).all()
        if arch.startswith("inception"):  # the table's minimum is real, not just a guess
            with pytest.raises(RuntimeError):
                model(torch.zeros(2, 3, size - 1, size - 1))


def test_unknown_architecture_and_small_inputs_are_input_errors():
    with pytest.raises(InputError, match="resnet18"):
        models.architecture("resnet19")
    with pytest.raises(InputError, match="valid"):
        models.build_model("vgg16", NUM_OUTPUTS)
    with pytest.raises(InputError, match="75"):
        models.check_input_size("inception_v3", 74)
    models.check_input_size("inception_v3", 75)
    with pytest.raises(InputError):
        models.check_input_size("resnet18", (320, 31))
    with pytest.raises(InputError):
        models.build_model("resnet18", NUM_OUTPUTS, truncate_blocks=5)
    with pytest.raises(InputError):
        models.build_model("resnet18", 0)


def _sum_params(model, skip):
    return sum(p.numel() for name, p in model.named_parameters() if not models.is_under(name, skip))


@pytest.mark.parametrize("arch", PAPER_TRUNCATION)
def test_truncation_removes_blocks_and_their_parameters(arch):
    spec = models.architecture(arch)
    reference = timm.create_model(spec.timm_cfg_name, num_classes=NUM_OUTPUTS).eval()  # independent of build_model
    head = reference.pretrained_cfg["classifier"]
    reference_keys = set(reference.state_dict())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    counts = []
    for k in range(models.MAX_TRUNCATE_BLOCKS + 1):
        model = models.build_model(arch, NUM_OUTPUTS, truncate_blocks=k, seed=k).eval()
        with torch.no_grad():
            out = model(x)
            channels = model.forward_features(x).shape[1]
        assert out.shape == (2, NUM_OUTPUTS)
        removed = [path for block in models.truncation_blocks(arch)[:k] for path in block]
        keys = set(model.state_dict())
        # removed stages leave nothing behind (timm issue 1849), kept names are the full model's
        assert not any(models.is_under(key, removed) for key in keys)
        assert {key for key in keys if not models.is_under(key, (head,))} <= reference_keys
        new_head = getattr(model, head)
        assert (new_head.in_features, new_head.out_features) == (channels, NUM_OUTPUTS)
        expected = _sum_params(reference, [*removed, head]) + channels * NUM_OUTPUTS + NUM_OUTPUTS
        assert models.count_parameters(model) == expected
        counts.append(models.count_parameters(model))
        if k == 0:  # no truncation: the plain timm model, same outputs for the same weights
            reference.load_state_dict(model.state_dict(), strict=True)
            with torch.no_grad():
                assert torch.equal(reference(x), out)
    assert all(a > b for a, b in zip(counts, counts[1:])), counts
    assert counts[0] == models.count_parameters(reference)
    assert tuple(counts) == TRUNCATED_PARAMS[arch]  # pinned below, with the blocks each k removes


@pytest.mark.parametrize(("arch", "k", "index"), [
    ("resnet18", 1, 3), ("resnet18", 3, 1), ("efficientnet_b0", 2, 3), ("efficientnet_b0", 4, 2)])
def test_truncated_body_computes_the_full_networks_intermediate_features(arch, k, index):
    # timm's own forward_intermediates tells where the cut should be (layer3, layer1, blocks.4, blocks.2)
    full = models.build_model(arch, NUM_OUTPUTS, seed=4).eval()
    truncated = models.build_model(arch, NUM_OUTPUTS, truncate_blocks=k, seed=5).eval()
    body = {key: v for key, v in full.state_dict().items() if key in truncated.state_dict()
            and key not in models.head_parameter_names(truncated)}
    truncated.load_state_dict(body, strict=False)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = full.forward_intermediates(x, indices=[index], intermediates_only=True)[0]
        assert torch.allclose(truncated.forward_features(x), expected, atol=1e-6)


@pytest.mark.parametrize("arch", [*PAPER_TRUNCATION, "mobilenet_v3", "inception_v4"])
def test_head_is_exactly_the_layer_sized_by_the_number_of_outputs(arch):
    model = models.build_model(arch, 6, seed=0)
    six = model.state_dict()
    three = models.build_model(arch, 3, seed=0).state_dict()
    assert set(six) == set(three)
    resized = {key for key in six if six[key].shape != three[key].shape}
    head = set(models.head_parameter_names(model))
    bias = {key for key in head if key.endswith("bias")}
    assert resized == head and len(head) == 2 and len(bias) == 1
    body, head_part = models.split_body_head(six, arch)
    assert set(head_part) == head and set(body) == set(six) - head


def test_seeded_build_is_deterministic_without_touching_the_global_rng():
    before = torch.get_rng_state()
    a = models.build_model("resnet18", NUM_OUTPUTS, seed=7).state_dict()
    b = models.build_model("resnet18", NUM_OUTPUTS, seed=7).state_dict()
    c = models.build_model("resnet18", NUM_OUTPUTS, seed=8).state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_normalization_follows_the_pinned_weights():
    assert models.normalization("resnet18") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert models.normalization("inception_v3") == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


# Parameters of every truncated model of the paper's four truncation architectures, 6 outputs, k = 0..4
# final blocks removed (cxrtransfer.models docstring has the block table). Removed with each k:
#   densenet121      k1 transition3 conv + denseblock4 (16 layers) + norm5; k2 transition2 conv + denseblock3 (24);
#                    k3 transition1 conv + denseblock2 (12); k4 denseblock1 (6): the 7x7 stem is left
#   resnet18         k1 layer4 (2 BasicBlocks, 512 ch); k2 layer3 (256); k3 layer2 (128); k4 layer1 (64): stem left
#   efficientnet_b0  k1 blocks.6 (1 MBConv -> 320 ch) + conv_head (1280) + bn2; k2 blocks.5 (4 MBConv, 192 ch);
#                    k3 blocks.4 (3 MBConv, 112 ch); k4 blocks.3 (3 MBConv, 80 ch)
#   mnasnet (timm mnasnet_100, no SE) the same stages: k1 blocks.6 (320 ch) + conv_head + bn2; k2 blocks.5 (4 x 192);
#                    k3 blocks.4 (2 x 96); k4 blocks.3 (3 x 80)
# Each k adds a new GAP + linear head on the channels left. Counted once with build_model (checked in
# test_truncation_removes_blocks_and_their_parameters), and independently from the block structure by the
# closed forms below.
TRUNCATED_PARAMS = {
    "densenet121": (6_960_006, 4_275_590, 1_301_638, 346_630, 9_926),
    "mnasnet": (3_109_998, 2_085_870, 473_838, 264_558, 46_638),
    "resnet18": (11_179_590, 2_784_326, 683_846, 157_894, 9_926),
    "efficientnet_b0": (4_015_234, 2_879_314, 852_486, 309_146, 65_976),
}
# One block removed, as issue 13 states them as built: params(k=0) / params(k=1).
ONE_BLOCK_GAIN = {"densenet121": 1.63, "mnasnet": 1.49, "resnet18": 4.02, "efficientnet_b0": 1.39}


def test_pinned_counts_follow_from_the_block_structure():
    closed_forms = {"densenet121": _densenet121_counts(), "mnasnet": _mnasnet_counts(),
                    "resnet18": _resnet18_counts(), "efficientnet_b0": _efficientnet_b0_counts()}
    for arch, counts in closed_forms.items():
        assert tuple(counts) == TRUNCATED_PARAMS[arch], arch
        assert round(counts[0] / counts[1], 2) == ONE_BLOCK_GAIN[arch]


# Closed forms: convolutions without bias (cin/groups x cout x k x k), BN = 2 x channels, linear head with bias.

def _conv(cin, cout, k=1, bias=False, groups=1):
    return cin // groups * cout * k * k + (cout if bias else 0)


def _bn(c):
    return 2 * c


def _head(c):
    return _conv(c, NUM_OUTPUTS, bias=True)


def _resnet18_counts():
    """Stem 7x7 conv + BN; layer1..4 of two BasicBlocks (two 3x3 convs + BNs; 1x1 downsample at a width change)."""
    def basic(cin, cout):
        return _conv(cin, cout, 3) + _bn(cout) + _conv(cout, cout, 3) + _bn(cout) + (
            _conv(cin, cout) + _bn(cout) if cin != cout else 0)
    stem = _conv(3, 64, 7) + _bn(64)
    widths = [(64, 64), (64, 128), (128, 256), (256, 512)]
    layers = [basic(a, b) + basic(b, b) for a, b in widths]
    counts = []
    for k in range(5):
        kept = 4 - k
        channels = widths[kept - 1][1] if kept else 64
        counts.append(stem + sum(layers[:kept]) + _head(channels))
    return counts


def _densenet121_counts():
    """Growth 32, bottleneck 4 x 32, blocks of 6/12/24/16 layers, transitions halve the channels;
    a block's BN-ReLU after it (transition norm, or norm5) stays with the kept part."""
    def layer(c):
        return _bn(c) + _conv(c, 128) + _bn(128) + _conv(128, 32, 3)
    stem = _conv(3, 64, 7) + _bn(64)
    channels, blocks, transitions, outs = 64, [], [], []
    for n in (6, 12, 24, 16):
        blocks.append(sum(layer(channels + 32 * j) for j in range(n)))
        channels += 32 * n
        outs.append(channels)
        transitions.append(_bn(channels) + _conv(channels, channels // 2))
        channels //= 2
    counts = []
    for k in range(5):
        kept = 4 - k
        total = stem + sum(blocks[:kept]) + sum(transitions[:kept - 1]) if kept else stem
        feature = outs[kept - 1] if kept else 64
        total += _bn(feature) if kept else 0  # the BN after the last kept block: transition<kept>.norm or norm5
        counts.append(total + _head(feature))
    return counts


def _mbconv_stages(stages, stem=32, head_chs=1280, se=True):
    """timm EfficientNet-class model: stem 3x3 conv; stages of (kind, repeats, kernel, expansion, out);
    SE reduces to a quarter of the block's input channels; 1x1 conv_head to head_chs."""
    def block(kind, cin, cout, k, e):
        mid = cin * e
        se_params = _conv(mid, cin // 4, bias=True) + _conv(cin // 4, mid, bias=True) if se else 0
        if kind == "ds":
            return _conv(cin, cin, k, groups=cin) + _bn(cin) + se_params + _conv(cin, cout) + _bn(cout)
        return (_conv(cin, mid) + _bn(mid) + _conv(mid, mid, k, groups=mid) + _bn(mid) + se_params
                + _conv(mid, cout) + _bn(cout))
    params, outs, channels = [], [], stem
    for kind, repeats, k, e, cout in stages:
        total = 0
        for _ in range(repeats):
            total += block(kind, channels, cout, k, e)
            channels = cout
        params.append(total)
        outs.append(cout)
    base = _conv(3, stem, 3) + _bn(stem)
    counts = [base + sum(params) + _conv(outs[-1], head_chs) + _bn(head_chs) + _head(head_chs)]
    for k in range(1, 5):
        kept = 7 - k
        counts.append(base + sum(params[:kept]) + _head(outs[kept - 1]))
    return counts


def _efficientnet_b0_counts():
    return _mbconv_stages([("ds", 1, 3, 1, 16), ("ir", 2, 3, 6, 24), ("ir", 2, 5, 6, 40), ("ir", 3, 3, 6, 80),
                           ("ir", 3, 5, 6, 112), ("ir", 4, 5, 6, 192), ("ir", 1, 3, 6, 320)])


def _mnasnet_counts():
    return _mbconv_stages([("ds", 1, 3, 1, 16), ("ir", 3, 3, 3, 24), ("ir", 3, 5, 3, 40), ("ir", 3, 5, 6, 80),
                           ("ir", 2, 3, 6, 96), ("ir", 4, 5, 6, 192), ("ir", 1, 3, 6, 320)], se=False)
