"""Pretrained backbone weights from a local file, and models built with them.

kpr never downloads weights: ``BackboneConfig.pretrained`` names a local file, read here and
nowhere else. SOLIDER-Swin backbones take SOLIDER's ``swin_base_reid.pth``, a Microsoft Swin
release, the official KPR naming or their own state dict (layout detected from the key names);
timm backbones take anything timm's own ``checkpoint_filter_fn`` takes (timm or Microsoft names).
Relative position tables of another window size are resized, every other tensor must fit.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kpr.checkpoint.solider import CONVERTERS, detect_format
from kpr.checkpoint.weight_files import read_state_dict
from kpr.errors import CheckpointError
from kpr.modeling.backbones.solider_swin import SoliderSwin
from kpr.modeling.backbones.timm_swin import TimmSwin
from kpr.modeling.build import model_config
from kpr.modeling.config import KPRConfig
from kpr.modeling.kpr import KPR

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_pretrained_backbone` copied.

    Attributes
    ----------
    format:
        The file layout that was read: ``native``, ``official``, ``solider`` or ``microsoft`` for
        SOLIDER-Swin backbones, ``timm`` for timm ones.
    loaded:
        Number of tensors copied into the backbone.
    missing:
        Backbone keys the file did not provide (left at their initial values).
    unexpected:
        File keys the backbone has no use for (ignored), e.g. a classifier head.
    resized:
        Relative position bias tables (bicubically) resized to the backbone's window.
    """

    format: str
    loaded: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    resized: tuple[str, ...]


def resize_bias_table(table: torch.Tensor, length: int, key: str, path: Path) -> torch.Tensor:
    """Bicubically resize a relative position bias table [(2w−1)², heads] → [length, heads]."""
    side_in, side_out = math.isqrt(table.shape[0]), math.isqrt(length)
    if side_in**2 != table.shape[0] or side_out**2 != length:
        raise CheckpointError(f"{path}: {key} of length {table.shape[0]} is not a square table")
    heads = table.shape[1]
    grid = table.float().T.reshape(1, heads, side_in, side_in)
    grid = F.interpolate(grid, size=(side_out, side_out), mode="bicubic", align_corners=False)
    return grid.reshape(heads, length).T.to(table.dtype)


def _load_matching(
    module: nn.Module, state: Mapping[str, torch.Tensor], path: Path, kind: str
) -> LoadReport:
    """Copy the tensors of ``state`` that ``module`` has; a shape it cannot adapt is an error.

    ``relative_position_index`` buffers are derived from the window, so a stored one of another
    window is skipped and none is ever reported missing.
    """
    own = module.state_dict()
    accepted: dict[str, torch.Tensor] = {}
    resized: list[str] = []
    wrong: list[str] = []
    for key, target in own.items():
        value = state.get(key)
        if value is None:
            continue
        if value.shape != target.shape:
            if key.endswith("relative_position_index"):
                continue
            if key.endswith("relative_position_bias_table") and value.shape[1:] == target.shape[1:]:
                value = resize_bias_table(value, target.shape[0], key, path)
                resized.append(key)
            else:
                wrong.append(f"{key} has shape {list(value.shape)}, expected {list(target.shape)}")
                continue
        accepted[key] = value
    if wrong:
        more = f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""
        raise CheckpointError(
            f"{path}: {len(wrong)} tensor(s) do not fit the {type(module).__name__} backbone: "
            + "; ".join(wrong[:3])
            + more
        )
    if not accepted:
        raise CheckpointError(
            f"{path}: no tensor of this file fits the {type(module).__name__} backbone "
            f"(first keys: {list(state)[:3]})"
        )
    module.load_state_dict(accepted, strict=False)
    missing = tuple(
        k for k in own if k not in accepted and not k.endswith("relative_position_index")
    )
    unexpected = tuple(k for k in state if k not in own)
    return LoadReport(kind, len(accepted), missing, unexpected, tuple(resized))


def _load_solider(backbone: SoliderSwin, path: Path) -> LoadReport:
    state = read_state_dict(path)
    kind = detect_format(state, backbone.state_dict().keys(), path)
    try:
        converted = CONVERTERS[kind](state, strict=False)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return _load_matching(backbone, converted, path, kind)


def _load_timm(backbone: TimmSwin, path: Path) -> LoadReport:
    state = read_state_dict(path)
    # timm's own filter renames Microsoft keys and resamples patch embeddings and tables.
    filter_fn = getattr(sys.modules[type(backbone.model).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, backbone.model)
    return _load_matching(backbone.model, state, path, "timm")


def load_pretrained_backbone(model: KPR | SoliderSwin | TimmSwin, path: str | Path) -> LoadReport:
    """Load a local pretrained weight file into a backbone (or a KPR model's backbone).

    Parameters
    ----------
    model:
        A :class:`KPR` model or one of its backbones; only backbone tensors are touched.
    path:
        A ``.safetensors`` file or a torch file (read with ``weights_only=True``); see the module
        docstring for the layouts each backbone family takes.

    Raises
    ------
    CheckpointError
        If the file cannot be read safely, no tensor of it fits the backbone, or a tensor has a
        shape the backbone cannot take.
    """
    backbone = model.backbone if isinstance(model, KPR) else model
    path = Path(path)
    if isinstance(backbone, SoliderSwin):
        return _load_solider(backbone, path)
    if isinstance(backbone, TimmSwin):
        return _load_timm(backbone, path)
    raise TypeError(f"expected a KPR model or a kpr backbone, got {type(model).__name__}")


def build_model(config: KPRConfig) -> KPR:
    """``KPR(config)`` with the backbone's pretrained weights loaded if ``config`` names a file.

    This is how training starts a model; ``KPR(config)`` alone is the architecture, randomly
    initialised (a model restored from a checkpoint gets its weights from the checkpoint).
    """
    model = KPR(config)
    if config.backbone.pretrained:
        report = load_pretrained_backbone(model, config.backbone.pretrained)
        log.info(
            "%s: loaded %d backbone tensors (%s layout); %d missing, %d unused, %d resized",
            config.backbone.pretrained,
            report.loaded,
            report.format,
            len(report.missing),
            len(report.unexpected),
            len(report.resized),
        )
    return model


def create_model(name: str, **overrides: Any) -> KPR:
    """The registered model ``name`` (see :func:`kpr.modeling.model_config` for ``overrides``),
    built by :func:`build_model`: ``backbone={"pretrained": path}`` loads that file."""
    return build_model(model_config(name, **overrides))
