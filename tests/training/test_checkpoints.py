"""The top-k keeper and the checkpoint files."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from cxrtransfer.models.tensorfiles import _canonical_header
from cxrtransfer.training import checkpoints


def test_top_k_keeper_copies_weights_and_breaks_ties_by_age(tmp_path):
    keeper = checkpoints.TopK(tmp_path, k=2)
    weight = torch.zeros(3)
    assert keeper.offer(10, 0.5, {"w": weight})
    weight += 1  # a live tensor changing after the offer must not change the saved file
    assert load_file(str(keeper.path(10)))["w"].tolist() == [0, 0, 0]
    assert keeper.offer(20, 0.7, {"w": weight})
    assert not keeper.offer(30, 0.5, {"w": weight})  # tie with an older checkpoint: the older stays
    assert keeper.offer(40, 0.9, {"w": weight})
    assert [s for _, s in keeper.kept()] == [40, 20]
    # the dropped checkpoint stays until prune(): the last saved resume state may still name it
    assert (tmp_path / "step0000000010.safetensors").is_file()
    (tmp_path / ".step0000000050.safetensors.x.tmp").write_bytes(b"crash leftover")
    keeper.prune()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step0000000020.safetensors", "step0000000040.safetensors"]


def test_checkpoint_bytes_do_not_depend_on_metadata_order():
    """safetensors writes metadata in a per-process hash order; the project's writer sorts the header."""
    header = b'{"__metadata__":{"step":"20","score":"0.5"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    data = len(header).to_bytes(8, "little") + header + b"\x00\x00\x80\x3f"
    expected = b'{"__metadata__":{"score":"0.5","step":"20"},"w":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}}'
    assert len(expected) == len(header)
    assert _canonical_header(data) == len(header).to_bytes(8, "little") + expected + b"\x00\x00\x80\x3f"
