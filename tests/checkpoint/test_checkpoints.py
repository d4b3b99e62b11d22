"""Official checkpoints load safely; kpr checkpoints round-trip atomically; bad files get clear errors."""

import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from kpr.checkpoint import load_checkpoint, load_model, save_model
from kpr.checkpoint.convert import infer_config
from kpr.checkpoint.official import read_official_checkpoint
from kpr.errors import CheckpointError
from kpr.modeling.build import create_model

FIXTURES = Path(__file__).parents[1] / "fixtures"
CKPT_A = FIXTURES / "model_A" / "checkpoint_official_format.pth.tar"
CKPT_B = FIXTURES / "model_B" / "checkpoint_official_format.pth.tar"


def test_official_checkpoint_is_read_without_yacs_and_on_cpu():
    ckpt = read_official_checkpoint(CKPT_B)
    assert "yacs" not in sys.modules
    assert all(t.device.type == "cpu" for t in ckpt.state_dict.values())
    assert not any(k.startswith("module.") for k in ckpt.state_dict)
    assert ckpt.epoch == 120 and set(ckpt.metrics) == {"rank1", "mAP", "ssmd"}
    assert ckpt.config["model"]["kpr"]["backbone"] == "solider_swin_base_patch4_window7_224"


def test_architecture_is_inferred_from_shapes_not_the_backbone_name():
    a = infer_config(read_official_checkpoint(CKPT_A))
    assert (a.backbone.family, a.backbone.embed_dim, a.backbone.depths, a.backbone.num_heads) == (
        "timm", 16, (2, 2, 2, 2), (1, 2, 4, 8)
    )
    assert (a.num_parts, a.prompt_channels, a.num_cameras, a.num_classes, a.fusion_dim) == (8, 10, 0, 11, 128)
    assert a.image_size == (256, 128) and a.pixel_mean == (0.485, 0.456, 0.406)
    b = infer_config(read_official_checkpoint(CKPT_B))
    assert (b.backbone.family, b.num_parts, b.prompt_channels, b.num_cameras, b.num_classes) == ("solider", 5, 8, 6, 13)
    # The Market test recipe runs with semantic weight -1 (off); other recipes keep 0.2.
    assert b.backbone.semantic_weight is None
    assert infer_config(read_official_checkpoint(CKPT_B), semantic_weight=0.2).backbone.semantic_weight == 0.2
    assert b.image_size == (384, 128) and b.pixel_std == (0.5, 0.5, 0.5)


def test_kpr_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = load_model(CKPT_B)
    directory = save_model(model, tmp_path / "ckpt")
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    reloaded = load_model(directory)
    inputs = np.load(FIXTURES / "model_B" / "inputs.npz")
    images, prompts = torch.from_numpy(inputs["images"]), torch.from_numpy(inputs["prompt_masks"])
    cams = torch.from_numpy(inputs["cam_labels"])
    with torch.inference_mode():
        assert torch.equal(model(images, prompts, cams).embeddings, reloaded(images, prompts, cams).embeddings)
    # Saving again over an existing checkpoint replaces it and leaves no temporary files behind.
    save_model(reloaded, directory)
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]


def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "config": Exploit()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pth\.tar.*refused"):
        read_official_checkpoint(path)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a checkpoint"])
def test_corrupt_or_truncated_files_are_named(tmp_path, content):
    path = tmp_path / "broken.pth.tar"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="broken.pth.tar"):
        load_model(path)


def test_truncated_zip_is_named(tmp_path):
    path = tmp_path / "cut.pth.tar"
    path.write_bytes(CKPT_A.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="cut.pth.tar"):
        load_model(path)


def test_checkpoint_of_the_wrong_shape_names_the_tensors(tmp_path):
    small = create_model("kpr_tiny_128x64")
    directory = save_model(small, tmp_path / "tiny")
    config = (directory / "config.json").read_text().replace('"embedding_dim": 128', '"embedding_dim": 64')
    (directory / "config.json").write_text(config)
    with pytest.raises(CheckpointError, match=r"wrong shape: head\.reduce_.*\[128, 256\] vs model \[64, 256\]"):
        load_model(directory)


def test_unknown_backbone_and_missing_files_are_clear(tmp_path):
    small = create_model("kpr_tiny_128x64")
    directory = save_model(small, tmp_path / "tiny")
    text = (directory / "config.json").read_text().replace('"solider_swin"', '"resnet50"')
    (directory / "config.json").write_text(text)
    with pytest.raises(Exception, match="resnet50"):
        load_model(directory)
    (directory / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(directory)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nothing.pth.tar")


def test_official_file_with_unknown_tensor_is_refused(tmp_path):
    # Re-save the official state dict with an extra tensor: conversion must name it.
    ckpt = read_official_checkpoint(CKPT_A)
    state = dict(ckpt.state_dict)
    state["mystery_head.weight"] = torch.zeros(3)
    path = tmp_path / "extra.pth.tar"
    torch.save({"state_dict": state, "config": {"model": {"kpr": {"backbone": "swinv2_base_window12to16_192to256",
        "masks": {"preprocess": "eight"}, "keypoints": {"prompt_preprocess": "cck8"}}}}}, path)
    with pytest.raises(CheckpointError, match="mystery_head.weight"):
        load_model(path)
    assert zipfile.is_zipfile(path)
