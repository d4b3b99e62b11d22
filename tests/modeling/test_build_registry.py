"""The model registry warns before replacing a name; overrides merge into nested configs."""

from __future__ import annotations

import warnings

import pytest

from kpr.modeling import build
from kpr.modeling.build import model_config, register_model
from kpr.modeling.config import KPRConfig


def test_registering_a_name_twice_warns_before_replacing_it(monkeypatch):
    monkeypatch.setattr(build, "_REGISTRY", dict(build._REGISTRY))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_model("test_only_model")(lambda: KPRConfig(embedding_dim=64))
    with pytest.warns(UserWarning, match="'test_only_model' is already registered"):
        register_model("test_only_model")(lambda: KPRConfig(embedding_dim=32))
    assert model_config("test_only_model").embedding_dim == 32


def test_a_backbone_override_keeps_the_other_backbone_fields():
    config = model_config("kpr_solider_swin_base_384x128", backbone={"pretrained": "w.pth"})
    assert (config.backbone.name, config.backbone.semantic_weight) == ("solider_swin", 0.2)
    assert config.backbone.pretrained == "w.pth"
