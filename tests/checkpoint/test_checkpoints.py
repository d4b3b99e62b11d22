"""Official checkpoints load safely; kpr checkpoints round-trip; bad files get clear errors."""

import importlib.abc
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from kpr.checkpoint import create_model, inspect_checkpoint, load_checkpoint, load_model, save_model
from kpr.checkpoint.convert import infer_config
from kpr.checkpoint.official import read_official_checkpoint
from kpr.errors import CheckpointError

FIXTURES = Path(__file__).parents[1] / "fixtures"
CKPT_A = FIXTURES / "model_A" / "checkpoint_official_format.pth.tar"
CKPT_B = FIXTURES / "model_B" / "checkpoint_official_format.pth.tar"


class _NoYacs(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "yacs":
            raise AssertionError(f"reading an official checkpoint imported {name}")


def test_official_checkpoint_is_read_without_yacs_and_on_cpu(monkeypatch):
    # Whether or not yacs is installed, any attempt to import it fails the test.
    for name in [m for m in sys.modules if m.split(".")[0] == "yacs"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoYacs(), *sys.meta_path])
    ckpt = read_official_checkpoint(CKPT_B)
    assert all(t.device.type == "cpu" for t in ckpt.state_dict.values())
    assert not any(k.startswith("module.") for k in ckpt.state_dict)
    assert ckpt.epoch == 120 and set(ckpt.metrics) == {"rank1", "mAP", "ssmd"}
    assert ckpt.config["model"]["kpr"]["backbone"] == "solider_swin_base_patch4_window7_224"


def test_architecture_is_inferred_from_shapes_not_the_backbone_name():
    a = infer_config(read_official_checkpoint(CKPT_A))
    assert (a.backbone.family, a.backbone.embed_dim, a.backbone.depths, a.backbone.num_heads) == (
        "timm",
        16,
        (2, 2, 2, 2),
        (1, 2, 4, 8),
    )
    assert (a.num_parts, a.prompt_channels, a.num_cameras, a.num_classes, a.fusion_dim) == (
        8,
        10,
        0,
        11,
        128,
    )
    assert a.image_size == (256, 128) and a.pixel_mean == (0.485, 0.456, 0.406)
    b = infer_config(read_official_checkpoint(CKPT_B))
    assert (b.backbone.family, b.num_parts, b.prompt_channels, b.num_cameras, b.num_classes) == (
        "solider",
        5,
        8,
        6,
        13,
    )
    # The Market test recipe runs with semantic weight -1 (off); other recipes keep 0.2.
    assert b.backbone.semantic_weight is None
    b_sw02 = infer_config(read_official_checkpoint(CKPT_B), semantic_weight=0.2)
    assert b_sw02.backbone.semantic_weight == 0.2
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
        expected = model(images, prompts, cams).embeddings
        assert torch.equal(expected, reloaded(images, prompts, cams).embeddings)
    # Saving again over an existing checkpoint replaces it and leaves no temporary files behind.
    save_model(reloaded, directory)
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]


def test_checkpoint_of_the_wrong_shape_names_the_tensors(tmp_path):
    small = create_model("kpr_tiny_128x64")
    directory = save_model(small, tmp_path / "tiny")
    _edit_config(directory, lambda model: model.update(embedding_dim=64))
    with pytest.raises(
        CheckpointError, match=r"wrong shape: head\.reduce_.*\[128, 256\] vs model \[64, 256\]"
    ):
        load_model(directory)


def test_unknown_backbone_and_missing_files_are_clear(tmp_path):
    small = create_model("kpr_tiny_128x64")
    directory = save_model(small, tmp_path / "tiny")
    _edit_config(directory, lambda model: model["backbone"].update(name="resnet50"))
    with pytest.raises(
        CheckpointError, match=r"tiny: its model config cannot be built: backbone\.name: 'resnet50'"
    ):
        load_model(directory)
    (directory / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(directory)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nothing.pth.tar")


def test_a_training_run_directory_points_at_its_checkpoints(tmp_path):
    run = tmp_path / "run"
    save_model(create_model("kpr_tiny_128x64"), run / "checkpoints" / "best")
    with pytest.raises(CheckpointError) as caught:
        load_model(run)
    message = str(caught.value)
    assert "config.json: missing" in message
    assert f"is a training run: use {run / 'checkpoints' / 'best'})" in message
    # An ordinary directory gets no such hint.
    with pytest.raises(CheckpointError) as caught:
        load_model(tmp_path)
    assert "training run" not in str(caught.value)


def test_official_file_with_unknown_tensor_is_refused(tmp_path):
    # Re-save the official state dict with an extra tensor: conversion must name it.
    ckpt = read_official_checkpoint(CKPT_A)
    state = dict(ckpt.state_dict)
    state["mystery_head.weight"] = torch.zeros(3)
    path = tmp_path / "extra.pth.tar"
    kpr = {
        "backbone": "swinv2_base_window12to16_192to256",
        "masks": {"preprocess": "eight"},
        "keypoints": {"prompt_preprocess": "cck8"},
    }
    torch.save({"state_dict": state, "config": {"model": {"kpr": kpr}}}, path)
    unknown = r"extra\.pth\.tar: unknown tensor 'mystery_head\.weight'"
    with pytest.raises(CheckpointError, match=unknown):
        load_model(path)
    assert zipfile.is_zipfile(path)


def _edit_config(directory, edit) -> None:
    path = directory / "config.json"
    document = json.loads(path.read_text())
    edit(document["model"])
    path.write_text(json.dumps(document))


MODEL_SETTINGS = [
    "pixel_mean",
    "pixel_std",
    "image_size",
    "fusion_stages",
    "backbone.name",
    "backbone.depths",
]


@pytest.mark.parametrize("field", MODEL_SETTINGS)
def test_a_kpr_checkpoint_missing_a_model_setting_is_refused(tmp_path, field):
    # Defaults would silently run it with ImageNet statistics, 256×128 or another architecture.
    directory = save_model(create_model("kpr_tiny_128x64"), tmp_path / "tiny")

    def drop(model):
        *parents, leaf = field.split(".")
        for part in parents:
            model = model[part]
        del model[leaf]

    _edit_config(directory, drop)
    missing = rf"tiny/config\.json: field\(s\) model\.{field} missing"
    with pytest.raises(CheckpointError, match=missing):
        load_checkpoint(directory)


def test_a_semantic_weight_override_that_cannot_take_effect_is_refused(tmp_path):
    # Family A (timm SwinV2) has no SOLIDER semantic layers: the override used to be ignored.
    ignored = rf"{CKPT_A}: semantic_weight=0\.2 cannot take effect: this checkpoint has no SOLIDER"
    with pytest.raises(CheckpointError, match=ignored + " semantic layers"):
        load_checkpoint(CKPT_A, semantic_weight=0.2)
    directory = save_model(create_model("kpr_tiny_128x64"), tmp_path / "tiny")
    refused = (
        r"tiny: semantic_weight=0\.2 cannot be overridden for a kpr checkpoint, which "
        r"stores its own \(model\.backbone\.semantic_weight=None\)"
    )
    with pytest.raises(CheckpointError, match=refused):
        load_checkpoint(directory, semantic_weight=0.2)


def test_inspect_checks_every_tensor_fits_without_loading_the_model(tmp_path):
    assert inspect_checkpoint(CKPT_B).config.num_parts == 5
    directory = save_model(create_model("kpr_tiny_128x64"), tmp_path / "tiny")
    assert inspect_checkpoint(directory).config.embedding_dim == 128
    state = load_file(str(directory / "model.safetensors"))
    del state["head.pixel_classifier.classifier.weight"]
    save_file(state, str(directory / "model.safetensors"))
    missing = (
        r"tiny: checkpoint does not fit the model: missing 1 tensor\(s\), "
        r"e\.g\. \['head\.pixel_classifier\.classifier\.weight'\]"
    )
    with pytest.raises(CheckpointError, match=missing):
        inspect_checkpoint(directory)
    _edit_config(directory, lambda model: model.update(embedding_dim=64))
    with pytest.raises(CheckpointError, match=r"wrong shape: head\.reduce_"):
        inspect_checkpoint(directory)
