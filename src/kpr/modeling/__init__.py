"""The KPR model: prompt encoder + promptable Swin backbone + multi-stage fusion + part head.

Architecture only: ``kpr.create_model(name)`` builds a registered config with its pretrained
backbone weights, if any (``kpr.checkpoint.build_model``).
"""

from kpr.modeling.build import list_models, model_config, register_model
from kpr.modeling.config import BackboneConfig, KPRConfig
from kpr.modeling.kpr import KPR
from kpr.modeling.outputs import Branches, KPROutput

__all__ = [
    "KPR",
    "BackboneConfig",
    "Branches",
    "KPRConfig",
    "KPROutput",
    "list_models",
    "model_config",
    "register_model",
]
