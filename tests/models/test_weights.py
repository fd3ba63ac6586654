"""Safetensors in/out, torch checkpoints (weights_only), body loading, ImageNet resolution, initial bodies."""

from __future__ import annotations

import os

import pytest
import timm
import torch

from cxrtransfer.errors import InputError
from cxrtransfer.lab import cli
from cxrtransfer.lab import weights as lab_weights
from cxrtransfer.models import architectures as models
from cxrtransfer.models import tensorfiles, weights

ARCH = "resnet18"
# The pinned timm weights of resnet18 and the file names the specification asks for.
TIMM_NAME = "resnet18.tv_in1k"
HF_REPO = "timm/resnet18.tv_in1k"
TORCH_HUB_FILE = "resnet18-f37072fd.pth"
HEAD = {"fc.weight", "fc.bias"}

_ran: list[str] = []


def _record(message: str) -> str:
    _ran.append(message)
    return message


class _Payload:
    """Unpickling this runs _record: weights_only loading must refuse it before that happens."""

    def __reduce__(self):
        return _record, ("payload executed",)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.delenv(weights.ALLOW_DOWNLOAD_ENV, raising=False)


def _fake_imagenet_state(seed: int = 123) -> dict[str, torch.Tensor]:
    """A full 1000-class timm resnet18 state dict with weights no seeded build would produce."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(TIMM_NAME, pretrained=False)
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor))  # also moves BN buffers off their defaults
    return model.state_dict()


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], keys) -> None:
    for key in keys:
        assert torch.equal(a[key], b[key]), key


# --------------------------------------------------------------------------- safetensors

def test_safetensors_round_trip_is_exact(tmp_path):
    base = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    state = {
        "dense": base,
        "view_of_dense": base[1:3],         # shares storage with "dense"
        "transposed": base.t(),             # not contiguous
        "same_object": base,                # the same tensor under two names
        "half": torch.randn(3).half(),
        "count": torch.tensor(7, dtype=torch.int64),
    }
    path = tmp_path / "w.safetensors"
    tensorfiles.save_safetensors(path, state, {"arch": ARCH, "note": "ü"})
    loaded, metadata = tensorfiles.load_safetensors(path)
    assert metadata == {"arch": ARCH, "note": "ü"}
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value), key
    base.zero_()  # the file holds copies, not the caller's memory
    assert not torch.equal(tensorfiles.load_safetensors(path)[0]["dense"], base)


def test_safetensors_save_leaves_nothing_on_failure_and_bad_files_are_input_errors(tmp_path):
    path = tmp_path / "w.safetensors"
    with pytest.raises(TypeError):
        tensorfiles.save_safetensors(path, {"a": torch.ones(2)}, {"epoch": 3})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="w.safetensors"):
        tensorfiles.load_safetensors(path)
    path.write_bytes(b"not a safetensors file at all")
    with pytest.raises(InputError, match="w.safetensors"):
        tensorfiles.load_safetensors(path)


# --------------------------------------------------------------------------- torch checkpoints

def test_torch_checkpoint_is_loaded_with_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.ones(1), "extra": _Payload()}, path)
    _ran.clear()
    with pytest.raises(InputError, match="evil.pth"):
        weights.load_torch_checkpoint(path)
    assert _ran == []


def test_torch_checkpoint_unwraps_and_strips_prefixes(tmp_path):
    plain = {"conv1.weight": torch.randn(2, 3), "fc.bias": torch.randn(2)}
    path = tmp_path / "ddp.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in plain.items()}}, path)
    loaded = weights.load_torch_checkpoint(path)
    assert set(loaded) == set(plain)
    _assert_same(loaded, plain, plain)

    moco = {"module.encoder_q.conv1.weight": plain["conv1.weight"],
            "module.encoder_k.conv1.weight": torch.zeros(2, 3),
            "module.queue": torch.zeros(4, 8), "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
    path = tmp_path / "moco.pth.tar"
    torch.save({"arch": "resnet18", "state_dict": moco}, path)
    assert set(weights.read_state_dict(path)) == {"conv1.weight"}
    assert torch.equal(weights.read_state_dict(path)["conv1.weight"], plain["conv1.weight"])


# --------------------------------------------------------------------------- load_body

def test_load_body_into_a_different_head_loads_everything_but_the_head():
    source = models.build_model(ARCH, 6, seed=1).state_dict()
    target = models.build_model(ARCH, 3, seed=2)
    head_before = {k: v.clone() for k, v in target.state_dict().items() if k in HEAD}
    report = weights.load_body(target, source, source="six.safetensors")
    after = target.state_dict()
    assert set(report.skipped_head) == HEAD
    assert set(report.loaded) == set(source) - HEAD
    assert report.ignored_truncated == []
    _assert_same(after, source, set(source) - HEAD)
    _assert_same(after, head_before, HEAD)
    source["conv1.weight"].add_(1.0)  # loaded values are copies
    assert not torch.equal(after["conv1.weight"], source["conv1.weight"])


def test_load_body_into_a_truncated_model_ignores_removed_blocks():
    source = models.build_model(ARCH, 6, seed=1).state_dict()
    target = models.build_model(ARCH, 6, truncate_blocks=2, seed=2)
    report = weights.load_body(target, source)
    assert report.ignored_truncated and all(k.startswith(("layer3.", "layer4.")) for k in report.ignored_truncated)
    assert set(report.loaded) == set(target.state_dict()) - HEAD
    _assert_same(target.state_dict(), source, report.loaded)


def test_load_body_mismatches_are_input_errors_naming_file_and_key():
    source = models.build_model(ARCH, 6, seed=1).state_dict()
    missing = {k: v for k, v in source.items() if k != "layer2.0.conv1.weight"}
    with pytest.raises(InputError, match=r"body\.safetensors.*layer2\.0\.conv1\.weight"):
        weights.load_body(models.build_model(ARCH, 6), missing, source="body.safetensors")
    wrong_shape = dict(source, **{"conv1.weight": torch.zeros(64, 1, 7, 7)})
    with pytest.raises(InputError, match=r"conv1\.weight"):
        weights.load_body(models.build_model(ARCH, 6), wrong_shape, source="body.safetensors")
    stranger = dict(source, **{"queue": torch.zeros(3)})
    with pytest.raises(InputError, match="queue"):
        weights.load_body(models.build_model(ARCH, 6), stranger, source="body.safetensors")
    other_arch = models.build_model("densenet121", 6).state_dict()
    with pytest.raises(InputError, match="missing"):
        weights.load_body(models.build_model(ARCH, 6), other_arch, source="densenet.safetensors")
    # BatchNorm's step counter is optional (older checkpoints lack it)
    no_counter = {k: v for k, v in source.items() if not k.endswith("num_batches_tracked")}
    report = weights.load_body(models.build_model(ARCH, 6), no_counter)
    assert report.kept_default and all(k.endswith("num_batches_tracked") for k in report.kept_default)


# --------------------------------------------------------------------------- ImageNet resolution

def test_resolve_prefers_the_weights_folder(tmp_path):
    empty_cache = tmp_path / "hf"
    flat = tmp_path / "weights" / f"{TIMM_NAME}.safetensors"
    tensorfiles.save_safetensors(flat, {"x": torch.ones(1)})
    assert weights.resolve_imagenet_weights(ARCH, tmp_path / "weights", hf_cache_dir=empty_cache) == flat
    folder = tmp_path / "hfstyle" / TIMM_NAME / "model.safetensors"
    tensorfiles.save_safetensors(folder, {"x": torch.ones(1)})
    assert weights.resolve_imagenet_weights(ARCH, tmp_path / "hfstyle", hf_cache_dir=empty_cache) == folder


def test_resolve_finds_the_local_hugging_face_and_torch_hub_caches(tmp_path):
    repo = tmp_path / "hf" / ("models--" + HF_REPO.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    cached = repo / "snapshots" / "0123abcd" / "model.safetensors"
    tensorfiles.save_safetensors(cached, {"x": torch.ones(1)})
    found = weights.resolve_imagenet_weights(ARCH, tmp_path / "none", hf_cache_dir=tmp_path / "hf",
                                             torch_hub_dir=tmp_path / "hub")
    assert found == cached

    hub_file = tmp_path / "hub" / "checkpoints" / TORCH_HUB_FILE
    hub_file.parent.mkdir(parents=True)
    torch.save({"x": torch.ones(1)}, hub_file)
    found = weights.resolve_imagenet_weights(ARCH, None, hf_cache_dir=tmp_path / "empty",
                                             torch_hub_dir=tmp_path / "hub")
    assert found == hub_file


def test_resolve_without_weights_says_where_to_put_them_and_never_downloads(tmp_path, monkeypatch):
    def no_network(arch):
        raise AssertionError("download attempted")

    monkeypatch.setattr(weights, "_download_with_timm", no_network)
    with pytest.raises(InputError) as error:
        weights.resolve_imagenet_weights(ARCH, tmp_path / "weights", hf_cache_dir=tmp_path / "hf",
                                         torch_hub_dir=tmp_path / "hub")
    message = str(error.value)
    assert str(tmp_path / "weights" / f"{TIMM_NAME}.safetensors") in message
    assert "make weights" in message and weights.ALLOW_DOWNLOAD_ENV in message


def test_download_only_when_allowed_then_found_in_the_cache(tmp_path, monkeypatch):
    hub_file = tmp_path / "hub" / "checkpoints" / TORCH_HUB_FILE
    calls = []

    def fake_download(arch):
        calls.append(arch)
        hub_file.parent.mkdir(parents=True)
        torch.save({"x": torch.ones(1)}, hub_file)

    monkeypatch.setattr(weights, "_download_with_timm", fake_download)
    monkeypatch.setenv(weights.ALLOW_DOWNLOAD_ENV, "1")
    found = weights.resolve_imagenet_weights(ARCH, None, hf_cache_dir=tmp_path / "hf",
                                             torch_hub_dir=tmp_path / "hub")
    assert found == hub_file and calls == [ARCH]


def test_export_writes_the_file_that_resolution_and_imagenet_init_use(tmp_path, monkeypatch):
    fake = _fake_imagenet_state()
    real_create = timm.create_model

    def offline_create(name, pretrained=False, **kwargs):
        assert name == TIMM_NAME and pretrained
        model = real_create(name, pretrained=False, **kwargs)
        model.load_state_dict(fake)
        return model

    monkeypatch.setattr(timm, "create_model", offline_create)
    path = weights.export_imagenet_weights(ARCH, tmp_path / "weights")
    monkeypatch.setattr(timm, "create_model", real_create)
    assert path == tmp_path / "weights" / f"{TIMM_NAME}.safetensors"
    stored, metadata = tensorfiles.load_safetensors(path)
    assert metadata["timm_model"] == "resnet18" and metadata["pretrained_tag"] == "tv_in1k"
    _assert_same(stored, fake, fake)
    body = weights.initial_body(ARCH, "imagenet", weights_dir=tmp_path / "weights", seed=0)
    _assert_same(body, fake, body)


# --------------------------------------------------------------------------- initial bodies

def test_imagenet_init_loads_the_file_and_random_init_differs(tmp_path):
    fake = _fake_imagenet_state()
    tensorfiles.save_safetensors(tmp_path / f"{TIMM_NAME}.safetensors", fake)
    pretrained = weights.initial_body(ARCH, "imagenet", weights_dir=tmp_path, seed=0)
    assert set(pretrained) == set(fake) - HEAD  # the body only
    model = models.build_model(ARCH, 6, seed=5)
    weights.load_body(model, pretrained)
    _assert_same(model.state_dict(), fake, set(fake) - HEAD)

    before = torch.get_rng_state()
    random_a = weights.initial_body(ARCH, "random", weights_dir=tmp_path, seed=0)
    random_b = weights.initial_body(ARCH, "random", weights_dir=tmp_path, seed=0)
    random_c = weights.initial_body(ARCH, "random", weights_dir=tmp_path, seed=1)
    assert torch.equal(torch.get_rng_state(), before)  # no global RNG side effect
    assert set(random_a) == set(pretrained)
    _assert_same(random_a, random_b, random_a)
    assert not torch.equal(random_a["conv1.weight"], random_c["conv1.weight"])
    differs = [k for k in random_a if random_a[k].is_floating_point()
               and not torch.equal(random_a[k], pretrained[k])]
    assert set(differs) == {k for k in random_a if random_a[k].is_floating_point()}


def test_named_file_init_and_unknown_init(tmp_path):
    fake = _fake_imagenet_state(seed=9)
    path = tmp_path / "moco.pth"
    torch.save({"state_dict": {f"module.encoder_q.{k}": v for k, v in fake.items()}}, path)
    body = weights.initial_body(ARCH, "moco", weights_dir=None, seed=0, files={"moco": str(path)})
    _assert_same(body, fake, body)
    assert set(body) == set(fake) - HEAD
    with pytest.raises(InputError, match="radimagenet"):
        weights.initial_body(ARCH, "radimagenet", weights_dir=None, seed=0, files={"moco": str(path)})
    with pytest.raises(InputError, match="missing.safetensors"):
        weights.initial_body(ARCH, "indomain", weights_dir=None, seed=0,
                             files={"indomain": str(tmp_path / "missing.safetensors")})


def test_imagenet_init_of_a_truncated_model_keeps_the_remaining_pretrained_blocks(tmp_path):
    fake = _fake_imagenet_state()
    tensorfiles.save_safetensors(tmp_path / f"{TIMM_NAME}.safetensors", fake)
    body = weights.initial_body(ARCH, "imagenet", weights_dir=tmp_path, seed=0)
    model = models.build_model(ARCH, 6, truncate_blocks=1, seed=0)
    report = weights.load_body(model, body, source=os.fspath(tmp_path))
    assert all(k.startswith("layer4.") for k in report.ignored_truncated) and report.ignored_truncated
    _assert_same(model.state_dict(), fake, report.loaded)


def test_legacy_torchvision_densenet_names_are_mapped():
    source = models.build_model("densenet121", 6, seed=1).state_dict()
    legacy = {k.replace("denselayer1.norm1.", "denselayer1.norm.1.").replace("denselayer1.conv2.", "denselayer1.conv.2."): v
              for k, v in source.items()}
    assert legacy.keys() != source.keys()
    target = models.build_model("densenet121", 6, seed=2)
    weights.load_body(target, legacy)
    _assert_same(target.state_dict(), source, set(source) - {"classifier.weight", "classifier.bias"})


def test_make_weights_cli_checks_every_name_before_downloading(tmp_path, monkeypatch):
    exported = []
    monkeypatch.setattr(lab_weights, "export_imagenet_weights", lambda arch, out: exported.append((arch, out)))
    with pytest.raises(InputError, match="vgg16"):
        cli.main(["weights", "export", "resnet18", "vgg16", "--out", str(tmp_path)])
    with pytest.raises(InputError):
        cli.main(["weights", "export", "--out", str(tmp_path)])
    assert exported == []
    cli.main(["weights", "export", "--all", "--out", str(tmp_path)])
    assert [arch for arch, _ in exported] == models.architecture_names() and len(exported) == 16


# --------------------------------------------------------------------------- torchvision's 2020 weights

TORCHVISION_ROWS = {"mnasnet": "mnasnet1_0", "mobilenet_v2": "mobilenet_v2"}


def _random_torchvision(builder: str, seed: int) -> torch.nn.Module:
    """torchvision's model with random weights and random BatchNorm statistics (eval outputs depend on all)."""
    import torchvision  # only these tests build torchvision's own modules

    model = torchvision.models.get_model(builder, weights=None).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():  # in place: keeps the state dict's version metadata
            if value.dtype.is_floating_point:
                value.copy_(torch.rand(value.shape, generator=generator) + 0.5 if "running_var" in key
                            else torch.randn(value.shape, generator=generator) * 0.1)
    return model


@pytest.mark.parametrize("arch", sorted(TORCHVISION_ROWS))
def test_torchvision_weights_map_into_timms_module_with_equal_outputs(arch):
    reference = _random_torchvision(TORCHVISION_ROWS[arch], seed=3)
    model = models.build_model(arch, 1000, seed=0).eval()
    model.load_state_dict(weights.torchvision_to_timm(reference.state_dict(), arch))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected, got = reference(x), model(x)
    assert expected.abs().max() > 0.1  # the comparison is not between two constants
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_torchvision_mapping_refuses_another_models_file():
    other = _random_torchvision("mobilenet_v2", seed=1).state_dict()
    with pytest.raises(InputError, match="mnasnet"):
        weights.torchvision_to_timm(other, "mnasnet", source="mobilenet.pth")


def test_torchvision_rows_resolve_torch_hubs_file_and_load_it_mapped(tmp_path):
    reference = _random_torchvision("mnasnet1_0", seed=5)
    url = weights._hub_locations("mnasnet")[2]
    assert url.endswith("mnasnet1.0_top1_73.512-f206786ef8.pth")  # torchvision's 2020 file
    hub_file = tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    hub_file.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), hub_file)
    assert weights.resolve_imagenet_weights("mnasnet", tmp_path / "none", hf_cache_dir=tmp_path / "hf",
                                            torch_hub_dir=tmp_path / "hub") == hub_file
    state = weights.read_imagenet_state("mnasnet", hub_file)
    assert state["conv_stem.weight"].equal(reference.state_dict()["layers.0.weight"])
    assert state["conv_head.weight"].equal(reference.state_dict()["layers.14.weight"])


def test_export_of_a_torchvision_row_writes_timm_names(tmp_path, monkeypatch):
    reference = _random_torchvision("mobilenet_v2", seed=6)

    class FakeWeights:
        url = "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"

        def get_state_dict(self, progress=False):
            return reference.state_dict()

    monkeypatch.setattr(weights, "_torchvision_weights", lambda builder: FakeWeights())
    path = weights.export_imagenet_weights("mobilenet_v2", tmp_path / "weights")
    assert path.name == "mobilenetv2_100.tv_in1k.safetensors"
    stored, metadata = tensorfiles.load_safetensors(path)
    assert metadata["weights"] == "torchvision:mobilenet_v2" and metadata["source"] == FakeWeights.url
    assert stored["conv_stem.weight"].equal(reference.state_dict()["features.0.0.weight"])
    body = weights.initial_body("mobilenet_v2", "imagenet", weights_dir=tmp_path / "weights", seed=0)
    assert body["blocks.0.0.conv_dw.weight"].equal(reference.state_dict()["features.1.conv.0.0.weight"])
