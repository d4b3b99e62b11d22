"""Pretrained backbone weights are read by kpr.checkpoint only; kpr.modeling is the architecture."""

import ast
import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import kpr.modeling
from kpr.checkpoint import LoadReport, build_model, create_model, load_pretrained_backbone
from kpr.checkpoint.weight_files import strip_module
from kpr.errors import CheckpointError
from kpr.modeling.build import model_config
from kpr.modeling.config import KPRConfig
from kpr.modeling.kpr import KPR

# A timm SwinV2 small enough for CPU tests (the official architecture with fewer, narrower blocks).
TIMM_SMALL = {"embed_dim": 16, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 2, 2)}


def with_pretrained(config: KPRConfig, path: Path) -> KPRConfig:
    return dataclasses.replace(
        config, backbone=dataclasses.replace(config.backbone, pretrained=str(path))
    )


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sb = b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in a.state_dict().items())


def test_modeling_imports_nothing_from_checkpoint():
    root = Path(kpr.modeling.__file__).parent
    offending = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            offending += [f"{path.name}: {n}" for n in names if n.startswith("kpr.checkpoint")]
    assert offending == []


def test_build_model_loads_the_pretrained_backbone_and_kpr_alone_does_not(tmp_path):
    torch.manual_seed(0)
    source = KPR(model_config("kpr_tiny_128x64")).backbone
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    config = with_pretrained(model_config("kpr_tiny_128x64"), path)
    torch.manual_seed(1)
    assert not same_weights(KPR(config).backbone, source)  # the architecture only
    model = build_model(config)
    assert same_weights(model.backbone, source)
    assert model.config.backbone.pretrained == str(path)
    named = create_model("kpr_tiny_128x64", backbone={"pretrained": str(path)})
    assert same_weights(named.backbone, source)


def test_timm_backbone_loads_a_wrapped_data_parallel_file(tmp_path):
    config = model_config("kpr_swinv2_base_256x128", backbone=TIMM_SMALL)
    torch.manual_seed(0)
    source = KPR(config).backbone
    path = tmp_path / "swinv2.pth"
    wrapped = {f"module.{k}": v for k, v in source.model.state_dict().items()}
    torch.save({"state_dict": wrapped, "epoch": 300}, path)
    torch.manual_seed(1)
    model = KPR(config)
    report = load_pretrained_backbone(model, path)
    assert isinstance(report, LoadReport)
    assert (report.format, report.missing, report.unexpected) == ("timm", (), ())
    assert report.loaded == len(source.model.state_dict())
    assert same_weights(model.backbone, source)


def test_a_timm_file_of_another_width_names_the_tensor(tmp_path):
    wide = KPR(model_config("kpr_swinv2_base_256x128", backbone={**TIMM_SMALL, "embed_dim": 32}))
    path = tmp_path / "wide.safetensors"
    save_file({k: v.contiguous() for k, v in wide.backbone.model.state_dict().items()}, str(path))
    model = KPR(model_config("kpr_swinv2_base_256x128", backbone=TIMM_SMALL))
    wrong = (
        r"wide\.safetensors: \d+ tensor\(s\) do not fit the SwinTransformerV2 backbone: "
        r"patch_embed\.proj\.weight has shape \[32, 3, 4, 4\], expected \[16, 3, 4, 4\]"
    )
    with pytest.raises(CheckpointError, match=wrong):
        load_pretrained_backbone(model, path)


def test_a_missing_pretrained_file_is_named():
    config = with_pretrained(model_config("kpr_tiny_128x64"), Path("nowhere/swin_base_reid.pth"))
    with pytest.raises(CheckpointError, match=r"nowhere/swin_base_reid\.pth: weight file not"):
        build_model(config)


def test_module_prefix_is_stripped_one_way_everywhere():
    t = torch.zeros(1)
    stripped = strip_module({"module.a.b": t, "c.module.d": t, "e": t})
    assert list(stripped) == ["a.b", "c.module.d", "e"]
