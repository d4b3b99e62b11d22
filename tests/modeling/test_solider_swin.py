"""SOLIDER-code Swin backbone: structure, window geometry, semantic weight and weight conversion."""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from kpr.checkpoint import load_pretrained_backbone
from kpr.checkpoint.solider import (
    convert_microsoft_swin_state_dict,
    convert_official_state_dict,
    convert_solider_pretrained_state_dict,
)
from kpr.compat.model import (
    official_swin_block,
    official_window_attention,
    official_window_blocks,
)
from kpr.errors import CheckpointError, ConfigError
from kpr.modeling.backbones.solider_swin import (
    PatchMerging,
    SoliderSwin,
    SwinStage,
    WindowAttention,
    compact_bias,
    compact_windows,
    relative_position_index,
    shift_window_mask,
    window_route,
)

TINY = {"embed_dim": 16, "depths": (2, 2, 2, 2), "num_heads": (1, 2, 4, 8)}
FIXTURE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "model_B"
OFFICIAL_PREFIX = "backbone_appearance_feature_extractor.model."
# Microsoft concatenates the 2×2 neighbours as blocks in this (dy, dx) order.
MICROSOFT_BLOCK_OF_OFFSET = {(0, 0): 0, (1, 0): 1, (0, 1): 2, (1, 1): 3}


def tiny(seed: int = 0, **kwargs: object) -> SoliderSwin:
    torch.manual_seed(seed)
    return SoliderSwin(**{**TINY, **kwargs}).eval()


@pytest.fixture(scope="module")
def fixture_dir() -> Path:
    return FIXTURE_DIR


@pytest.fixture(scope="module")
def official_state(fixture_dir: Path) -> dict[str, torch.Tensor]:
    from kpr.checkpoint.official import read_official_checkpoint

    return read_official_checkpoint(fixture_dir / "checkpoint_official_format.pth.tar").state_dict


@pytest.fixture(scope="module")
def official_backbone(official_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Backbone tensors of the family-B fixture checkpoint, keys relative to ``…model.``."""
    prefix = OFFICIAL_PREFIX
    return {k.removeprefix(prefix): v for k, v in official_state.items() if k.startswith(prefix)}


def test_official_checkpoint_loads_strictly(official_backbone: dict[str, torch.Tensor]) -> None:
    model = SoliderSwin(**TINY, semantic_weight=0.2)
    model.load_state_dict(convert_official_state_dict(official_backbone), strict=True)
    for name, tensor in official_backbone.items():
        if name.endswith("relative_position_index"):
            assert torch.equal(tensor, relative_position_index(7)), name
    block, official = model.stages[2].blocks[1], "stages.2.blocks.1."
    assert torch.equal(block.attn.qkv.weight, official_backbone[official + "attn.w_msa.qkv.weight"])
    assert torch.equal(block.mlp.fc1.bias, official_backbone[official + "ffn.layers.0.0.bias"])
    assert torch.equal(model.norms[3].weight, official_backbone["norm3.weight"])


def test_reproduces_official_fixture_features(
    fixture_dir: Path,
    official_state: dict[str, torch.Tensor],
    official_backbone: dict[str, torch.Tensor],
) -> None:
    """Backbone + hand-written prompt/SIE/MSF/pixel-classifier steps (notes §1.1) vs the fixture."""
    sd, wrapper = official_state, "backbone_appearance_feature_extractor."
    model = SoliderSwin(**TINY, semantic_weight=0.2).eval()
    model.load_state_dict(convert_official_state_dict(official_backbone))
    with np.load(fixture_dir / "inputs.npz") as inputs:
        images = torch.from_numpy(inputs["images"])
        prompts = torch.from_numpy(inputs["prompt_masks"]).float()
        cameras = torch.from_numpy(inputs["cam_labels"])

    def bn(x: torch.Tensor, name: str) -> torch.Tensor:
        stats = [sd[f"{name}.{p}"] for p in ("running_mean", "running_var", "weight", "bias")]
        return F.batch_norm(x, *stats, training=False, eps=1e-5)

    def spatial_features(semantic_weight: float | None) -> torch.Tensor:
        model.semantic_weight = semantic_weight
        tok = wrapper + "masks_patch_embed."
        weight, bias = sd[tok + "projection.weight"], sd[tok + "projection.bias"]
        prompt = F.conv2d(prompts, weight, bias, stride=4)
        prompt = F.layer_norm(
            prompt.permute(0, 2, 3, 1), (16,), sd[tok + "norm.weight"], sd[tok + "norm.bias"]
        )
        camera = 3 * sd[wrapper + "sie_embed"][cameras][:, None]  # [N, 1, 1, C]
        stages = model.forward_stages(model.embed(images) + prompt + camera)
        size = stages[0].shape[-2:]
        upsampled = [stages[0]] + [
            F.interpolate(f, size=size, mode="bilinear", align_corners=True) for f in stages[1:]
        ]
        reduce = "msf.dim_reduce.layers.0."
        fused = F.conv2d(torch.cat(upsampled, 1), sd[reduce + "weight"], sd[reduce + "bias"])
        return F.relu(bn(fused, "msf.dim_reduce.layers.1"))

    with torch.no_grad():
        features = spatial_features(None)
        logits = F.conv2d(
            bn(spatial_features(0.2), "pixel_classifier.bn"),
            sd["pixel_classifier.classifier.weight"],
            sd["pixel_classifier.classifier.bias"],
        )
    parts = logits.softmax(1)[:, 1:]
    masks = torch.cat([parts.max(1, keepdim=True).values, parts], 1)
    with np.load(fixture_dir / "outputs.npz") as outputs:
        expected = torch.from_numpy(outputs["spatial_features"])
    with np.load(fixture_dir / "outputs_sw02.npz") as outputs:
        expected_masks = torch.from_numpy(outputs["test.masks"])
    torch.testing.assert_close(features, expected, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(masks, expected_masks, atol=1e-5, rtol=1e-5)


def test_convert_official_names_unknown_keys() -> None:
    sd = {"norm0.weight": torch.ones(16), "stages.0.blocks.0.attn.w_msa.bogus": torch.ones(1)}
    with pytest.raises(CheckpointError, match=r"stages\.0\.blocks\.0\.attn\.w_msa\.bogus"):
        convert_official_state_dict(sd)
    passed = convert_official_state_dict(sd, strict=False)
    assert set(passed) == {"norms.0.weight", "stages.0.blocks.0.attn.w_msa.bogus"}


def test_swin_b_defaults_match_official_shapes() -> None:
    with torch.device("meta"):
        model = SoliderSwin(semantic_weight=0.2)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert model.stage_dims == (128, 256, 512, 1024)
    assert shapes["patch_embed.proj.weight"] == (128, 3, 4, 4)
    assert shapes["stages.2.blocks.17.attn.relative_position_bias_table"] == (169, 16)
    assert shapes["stages.3.blocks.1.attn.relative_position_index"] == (49, 49)
    assert shapes["stages.2.downsample.reduction.weight"] == (1024, 2048)
    assert shapes["semantic_embed_w.0.weight"] == (256, 2)
    assert shapes["semantic_embed_b.3.weight"] == (1024, 2)
    assert "stages.3.downsample.norm.weight" not in shapes
    assert sum(k.startswith("stages.") and k.endswith(".norm1.weight") for k in shapes) == 24
    drop = [b.drop_path.p for stage in model.stages for b in stage.blocks]
    assert drop == pytest.approx([0.1 * i / 23 for i in range(24)])


def test_stage_shapes_at_384x128() -> None:
    model = tiny()
    tokens = model.embed(torch.randn(1, 3, 384, 128))
    assert tokens.shape == (1, 96, 32, 16)
    features = model.forward_stages(tokens)
    assert [tuple(f.shape) for f in features] == [
        (1, 16, 96, 32),
        (1, 32, 48, 16),
        (1, 64, 24, 8),
        (1, 128, 12, 4),
    ]
    assert model.stage_dims == (16, 32, 64, 128)


def test_every_stage_pads_and_shifts_without_clamping() -> None:
    model = tiny()
    model(torch.randn(1, 3, 384, 128))
    assert [[b.shift for b in s.blocks] for s in model.stages] == [[0, 3]] * 4
    grids = [(96, 32), (48, 16), (24, 8), (12, 4)]
    for stage, (h, w) in zip(model.stages, grids):
        (layout,) = stage._layouts.values()
        assert layout.padded
        assert layout.plain.num_windows == math.ceil(h / 7) * math.ceil(w / 7)
        assert layout.shifted is not None and layout.shifted.num_windows == layout.plain.num_windows
    last = next(iter(model.stages[3]._layouts.values()))
    assert last.plain.num_windows == 2  # 12×4 → 14×7: two windows, still shifted
    assert last.shift_mask.shape == (2, 49, 49)
    assert torch.equal(last.shift_mask, shift_window_mask(14, 7, 7, 3))
    assert (last.shift_mask == -100).any() and (last.shift_mask == 0).any()


def test_layout_is_computed_once_per_grid_size() -> None:
    model = tiny()
    images = torch.randn(1, 3, 64, 64)
    model(images)
    first = next(iter(model.stages[0]._layouts.values())).shift_mask
    model(images)
    assert len(model.stages[0]._layouts) == 1
    assert next(iter(model.stages[0]._layouts.values())).shift_mask is first


def test_shift_mask_by_hand_8x8_window4() -> None:
    # Region labels of each 4×4 window after shifting an 8×8 grid by 2 (rows × cols of regions).
    a, b, c, d = 0, 1, 2, 3
    windows = [
        [[a] * 4] * 4,
        [[a, a, b, b]] * 4,
        [[a] * 4, [a] * 4, [b] * 4, [b] * 4],
        [[a, a, b, b], [a, a, b, b], [c, c, d, d], [c, c, d, d]],
    ]
    labels = torch.tensor(windows).view(4, 16)
    expected = torch.where(labels[:, :, None] == labels[:, None, :], 0.0, -100.0)
    mask = shift_window_mask(8, 8, 4, 2)
    assert torch.equal(mask, expected)
    assert (mask[0] == 0).all()
    assert (mask[3] == -100).sum() == 16 * 12  # each token shares a region with 4 of 16


def test_semantic_weight_changes_later_stages_only() -> None:
    model = tiny(semantic_weight=0.2)
    images = torch.randn(1, 3, 128, 64)
    with torch.no_grad():
        modulated = model(images)
        model.semantic_weight = None
        plain = model(images)
        model.semantic_weight = 0.7
        other = model(images)
    assert torch.equal(modulated[0], plain[0])
    for i in (1, 2, 3):
        assert not torch.allclose(modulated[i], plain[i])
        assert not torch.allclose(modulated[i], other[i])
    frozen = {n: not p.requires_grad for n, p in model.named_parameters()}
    assert all(v for n, v in frozen.items() if n.startswith("semantic_embed"))
    assert not any(v for n, v in frozen.items() if not n.startswith("semantic_embed"))


def test_semantic_modulation_formula() -> None:
    model = tiny(semantic_weight=0.2)
    tokens = torch.randn(1, 32, 16, 16)
    s = torch.tensor([[0.2, 0.8]])
    stage_out, merged = model.stages[0](tokens)
    scale = F.softplus(model.semantic_embed_w[0](s))[:, None, None]
    expected_next = merged * scale + model.semantic_embed_b[0](s)[:, None, None]
    out1, _ = model.stages[1](expected_next)
    features = model.forward_stages(tokens)
    torch.testing.assert_close(features[0], model.norms[0](stage_out).permute(0, 3, 1, 2))
    torch.testing.assert_close(features[1], model.norms[1](out1).permute(0, 3, 1, 2))


def test_without_semantic_weight_no_modules() -> None:
    model = tiny()
    assert model.semantic_weight is None
    assert not any("semantic" in k for k in model.state_dict())
    with pytest.raises(ConfigError, match="semantic"):
        model.semantic_weight = 0.2
    with pytest.raises(ConfigError, match="semantic_weight"):
        tiny(semantic_weight=-1.0)


def test_drop_path_only_in_training() -> None:
    model = tiny(drop_path_rate=0.5)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        first, second = model(images), model(images)
        model.train()
        trained = [model(images)[3] for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(first, second))
    assert not all(torch.equal(trained[0], t) for t in trained[1:])


def test_sdpa_attention_matches_explicit_softmax() -> None:
    torch.manual_seed(0)
    attn = WindowAttention(32, 2, 7)
    torch.nn.init.normal_(attn.relative_position_bias_table, std=1.0)
    windows = torch.randn(2, 2, 49, 32)
    mask = shift_window_mask(14, 7, 7, 3)
    expected = official_window_attention(attn, windows, mask)
    torch.testing.assert_close(attn(windows, mask), expected, atol=1e-5, rtol=1e-5)


def test_patch_merging_uses_unfold_channel_order() -> None:
    torch.manual_seed(0)
    merge = PatchMerging(3)
    x = torch.randn(2, 4, 6, 3)
    reference = F.unfold(x.permute(0, 3, 1, 2), kernel_size=2, stride=2)  # [N, 3·4, 2·3]
    reference = reference.transpose(1, 2).reshape(2, 2, 3, 12)
    torch.testing.assert_close(merge(x), merge.reduction(merge.norm(reference)))
    # Spelled out: merged channel 4·c + 2·dy + dx is channel c of the neighbour at (dy, dx).
    assert torch.equal(reference[0, 1, 2, 4 * 2 + 2 * 1 + 0], x[0, 3, 4, 2])


def concat_order(tensor: torch.Tensor, dim: int) -> torch.Tensor:
    """Hand-built inverse of the conversion: unfold order (4·c + k) → Microsoft block order."""
    channels = tensor.shape[dim] // 4
    index = torch.empty(4 * channels, dtype=torch.long)
    for (dy, dx), block in MICROSOFT_BLOCK_OF_OFFSET.items():
        for c in range(channels):
            index[block * channels + c] = 4 * c + 2 * dy + dx
    return tensor.index_select(dim, index)


def test_microsoft_merge_weights_are_permuted() -> None:
    channels = 3
    codes = torch.arange(4 * channels, dtype=torch.float32)  # value = concat-order position
    sd = {
        "layers.0.downsample.reduction.weight": codes.expand(2 * channels, -1).clone(),
        "layers.0.downsample.norm.weight": codes.clone(),
        "layers.0.downsample.norm.bias": codes.clone(),
    }
    out = convert_microsoft_swin_state_dict(sd)
    for c in range(channels):
        for (dy, dx), block in MICROSOFT_BLOCK_OF_OFFSET.items():
            unfold_pos, concat_pos = 4 * c + 2 * dy + dx, block * channels + c
            assert out["stages.0.downsample.norm.weight"][unfold_pos] == concat_pos
            assert (out["stages.0.downsample.reduction.weight"][:, unfold_pos] == concat_pos).all()
    assert torch.equal(concat_order(out["stages.0.downsample.norm.bias"], 0), codes)


def test_microsoft_merge_is_functionally_equivalent() -> None:
    torch.manual_seed(0)
    channels = 4
    norm_w, norm_b = torch.randn(4 * channels), torch.randn(4 * channels)
    reduction = torch.randn(2 * channels, 4 * channels)
    x = torch.randn(1, 6, 4, channels)
    neighbours = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
    concat = torch.cat(neighbours, dim=-1)
    expected = F.layer_norm(concat, (4 * channels,), norm_w, norm_b) @ reduction.T
    converted = convert_microsoft_swin_state_dict(
        {
            "layers.1.downsample.norm.weight": norm_w,
            "layers.1.downsample.norm.bias": norm_b,
            "layers.1.downsample.reduction.weight": reduction,
        }
    )
    merge = PatchMerging(channels)
    merge.load_state_dict({k.removeprefix("stages.1.downsample."): v for k, v in converted.items()})
    torch.testing.assert_close(merge(x), expected)


def microsoft_file_from(model: SoliderSwin) -> dict[str, torch.Tensor]:
    """A Microsoft-layout state_dict of ``model``'s weights, plus the extra keys such files hold."""
    sd: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if key.startswith(("norms.", "semantic_embed")):
            continue
        if ".downsample." in key:
            value = concat_order(value, value.ndim - 1)
        sd[key.replace("stages.", "layers.", 1)] = value
    sd["layers.0.blocks.1.attn_mask"] = torch.zeros(4, 49, 49)
    sd.update({"norm.weight": torch.ones(128), "norm.bias": torch.zeros(128)})
    sd.update({"head.weight": torch.zeros(10, 128), "head.bias": torch.zeros(10)})
    return sd


def test_load_pretrained_microsoft_file(tmp_path: Path) -> None:
    source = tiny(seed=1)
    path = tmp_path / "swin_22k.pth"
    torch.save({"model": microsoft_file_from(source)}, path)
    model = tiny(seed=2)
    report = load_pretrained_backbone(model, path)
    assert report.format == "microsoft"
    assert report.unexpected == () and report.resized == ()
    assert set(report.missing) == {f"norms.{i}.{p}" for i in range(4) for p in ("weight", "bias")}
    own = model.state_dict()
    for key, value in source.state_dict().items():
        if not key.startswith("norms."):
            assert torch.equal(own[key], value), key


def test_load_pretrained_resizes_bias_tables(tmp_path: Path) -> None:
    path = tmp_path / "swin_22k.pth"
    torch.save({"model": microsoft_file_from(tiny(seed=1))}, path)
    model = tiny(seed=2, window_size=5)
    report = load_pretrained_backbone(model, path)
    assert len(report.resized) == 8
    assert not any("relative_position_index" in k for k in report.missing)
    assert model.stages[0].blocks[0].attn.relative_position_bias_table.shape == (81, 1)
    attn = model.stages[0].blocks[0].attn
    assert torch.equal(attn.relative_position_index, relative_position_index(5))


def test_load_pretrained_solider_file(tmp_path: Path) -> None:
    source = tiny(seed=1, semantic_weight=0.2)
    values = source.state_dict().values()
    teacher = {f"backbone.{k}": v for k, v in zip(_official_keys(source), values)}
    teacher["head.mlp.0.weight"] = torch.zeros(3, 3)
    path = tmp_path / "swin_base_reid.pth"
    student = {"module.backbone.x": torch.zeros(1)}
    torch.save({"teacher": teacher, "student": student, "args": argparse.Namespace(lr=0.1)}, path)
    model = tiny(seed=2, semantic_weight=0.2)
    report = load_pretrained_backbone(model, path)
    assert (report.format, report.missing, report.unexpected) == ("solider", (), ())
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    wrapped = {"state_dict": {f"module.{k}": v for k, v in teacher.items()}}
    assert set(convert_solider_pretrained_state_dict(wrapped)) == set(source.state_dict())
    with pytest.raises(CheckpointError, match="backbone"):
        convert_solider_pretrained_state_dict({"model": {"head.weight": torch.zeros(1)}})


def _official_keys(model: SoliderSwin) -> list[str]:
    """This module's keys written in the official mmcv naming (inverse of the converter)."""
    keys = []
    for key in model.state_dict():
        key = key.replace("patch_embed.proj.", "patch_embed.projection.")
        key = key.replace(".attn.", ".attn.w_msa.").replace(".mlp.fc1.", ".ffn.layers.0.0.")
        key = key.replace(".mlp.fc2.", ".ffn.layers.1.")
        if key.startswith("norms."):
            key = "norm" + key.removeprefix("norms.")
        keys.append(key)
    return keys


def test_load_pretrained_native_safetensors_and_errors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = tiny(seed=1)
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    model = tiny(seed=2)
    report = load_pretrained_backbone(model, path)
    assert (report.format, report.missing, report.unexpected) == ("native", (), ())
    assert report.loaded == len(source.state_dict())

    with pytest.raises(CheckpointError, match="missing.pth"):
        load_pretrained_backbone(model, tmp_path / "missing.pth")
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, unrelated)
    with pytest.raises(CheckpointError, match="unrelated.pth"):
        load_pretrained_backbone(model, unrelated)
    wrong = tmp_path / "wrong_width.pth"
    torch.save({"model": microsoft_file_from(tiny(embed_dim=32, num_heads=(1, 2, 4, 8)))}, wrong)
    with pytest.raises(CheckpointError, match="wrong_width.pth.*patch_embed"):
        load_pretrained_backbone(model, wrong)


@pytest.mark.parametrize(("h", "w"), [(12, 4), (7, 14), (9, 10), (3, 3)])
@pytest.mark.parametrize("shift", [0, 3])
def test_block_on_real_tokens_equals_official_padded_block(h: int, w: int, shift: int) -> None:
    torch.manual_seed(0)
    stage = SwinStage(32, 2, 2, 7, 4.0, [0.0, 0.0], downsample=False)
    block = stage.blocks[1 if shift else 0]
    with torch.no_grad():
        block.attn.qkv.bias.normal_()  # a padded token's qkv is this bias: make it matter
        torch.nn.init.normal_(block.attn.relative_position_bias_table, std=1.0)
    x = torch.randn(2, h, w, 32, requires_grad=True)
    layout = stage._layout(h, w, x.device)
    expected = official_swin_block(block, x, layout)
    got = block(x, layout)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-5)
    # Gradients too: the qkv bias's (it reaches every padded slot) and the position bias table's
    # (with a gradient to compute, the attention is explicit; without, SDPA's fused kernel).
    params = (block.attn.qkv.bias, block.attn.relative_position_bias_table)
    grads_expected = torch.autograd.grad(expected.square().sum(), params)
    grads_got = torch.autograd.grad(got.square().sum(), params)
    for grad_got, grad_expected in zip(grads_got, grads_expected):
        torch.testing.assert_close(grad_got, grad_expected, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(block(x, layout), got, atol=2e-5, rtol=1e-5)


def test_window_route_by_hand() -> None:
    # 2×3 grid, window 2 → padded to 2×4: windows [[0, 1, 3, 4], [2, P, 5, P]], P = padding (6).
    route = window_route(2, 3, 2, 0)
    assert route.to_windows.tolist() == [0, 1, 3, 4, 2, 6, 5, 6]
    assert route.from_windows.tolist() == [0, 1, 4, 2, 3, 6]
    assert route.num_windows == 2
    # Shifted by 1: the padded grid [[0, 1, 2, P], [3, 4, 5, P]] rolled up and left by one.
    shifted = window_route(2, 3, 2, 1)
    assert shifted.to_windows.tolist() == [4, 5, 1, 2, 6, 3, 6, 0]
    tokens = torch.arange(6)
    padded = torch.cat((tokens, torch.tensor([6])))
    assert torch.equal(padded[shifted.to_windows][shifted.from_windows], tokens)


def test_compact_windows_by_hand() -> None:
    # The 2×3 grid above: window 0 holds 4 real tokens and no padding, window 1 two and two
    # padding slots. One group would cost 2·4·5 = 40 products, two groups 4·4 + 2·3 = 22.
    layout = compact_windows(2, 3, 2, 0)
    full_window, half_window = layout.groups
    assert full_window.windows.tolist() == [0]
    assert full_window.query_tokens.tolist() == [0, 1, 3, 4]
    assert full_window.key_tokens.tolist() == [0, 1, 3, 4]  # no padding, no padding slot
    assert half_window.windows.tolist() == [1]
    assert half_window.positions.tolist() == [[0, 2]]  # slots 1 and 3 are padding
    assert half_window.query_tokens.tolist() == [2, 5]
    assert half_window.key_tokens.tolist() == [2, 5, 6]  # and the padding token, 6
    # Real token t's output is at this slot of the groups' outputs laid end to end.
    assert layout.from_windows.tolist() == [0, 1, 4, 2, 3, 5]


def test_compact_bias_by_hand() -> None:
    layout = compact_windows(2, 3, 2, 0)
    full = torch.randn(3, 1, 4, 4)  # 3 heads, one bias for both windows
    first, second = (compact_bias(full, g) for g in layout.groups)
    torch.testing.assert_close(first, full, rtol=0, atol=0)
    # Window 1: real slots 0 and 2, padding slots 1 and 3.
    rows = full[:, 0, [0, 2]]
    expected_real = rows[:, :, [0, 2]]
    expected_padding = torch.log(torch.exp(rows[:, :, 1]) + torch.exp(rows[:, :, 3]))
    torch.testing.assert_close(second[:, 0, :, :2], expected_real, rtol=0, atol=0)
    torch.testing.assert_close(second[:, 0, :, 2], expected_padding)
    # Shifted: one window has fillers (fewer real tokens than the group's Lq): masked out.
    shifted = compact_windows(3, 3, 2, 1)
    for group in shifted.groups:
        bias = compact_bias(torch.randn(2, 4, 4, 4), group)  # 4 windows of 2×2
        fillers = ~group.valid[None, :, None, :].expand(2, -1, bias.shape[2], -1)
        assert (bias[..., : group.valid.shape[1]][fillers] == -1e9).all()


@settings(max_examples=30, deadline=None)
@given(
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    window=st.integers(2, 7),
    seed=st.integers(0, 2**16),
)
def test_compact_windows_compute_the_padded_windows_function(
    height: int, width: int, window: int, seed: int
) -> None:
    """Compact and padded windows: the same outputs and weight gradients (float64), shifted
    and plain blocks, every grid and window (the padded path is the official code's)."""
    torch.manual_seed(seed)
    model = SoliderSwin(8, (2,), (2,), window_size=window, drop_path_rate=0.0).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    reference = copy.deepcopy(model)
    reference.stages[0].compact = False
    images = torch.randn(2, 3, 4 * height, 4 * width, dtype=torch.float64)
    ours, theirs = model(images)[0], reference(images)[0]
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    weights = torch.randn_like(ours)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    for (name, a), b in zip(model.named_parameters(), reference.parameters()):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-10, msg=name)


def test_compact_windows_are_used_where_they_save_work() -> None:
    stage = tiny().stages[3]  # window 7 on a 4×2 grid: 8 real tokens of 49 slots
    layout = stage._layout(4, 2, torch.device("cpu"))
    (group,) = layout.compact_plain.groups
    assert (group.query_tokens.numel(), group.key_tokens.numel()) == (8, 9)
    full = tiny().stages[0]._layout(14, 14, torch.device("cpu"))  # no padding: nothing to save
    assert full.compact_plain is None


def test_official_window_blocks_switches_every_block_and_restores() -> None:
    model = tiny()
    images = torch.randn(1, 3, 384, 128)
    with torch.no_grad():
        ours = model(images)
        with official_window_blocks(model):
            assert all("forward" in vars(b) for s in model.stages for b in s.blocks)
            official = model(images)
        assert not any("forward" in vars(b) for s in model.stages for b in s.blocks)
    for a, b in zip(ours, official):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
