"""The graph that is exported: :meth:`KPR.forward` in ops every ONNX exporter can translate.

Two pieces of the eager model do not export as they are, so this module restates them:

* the camera check in ``KPR._camera_tokens`` reads tensor values (``cameras.min() < 0``), which a
  traced graph cannot branch on; the ONNX session checks camera labels on the host instead;
* binary visibility scatters into a bool tensor and reduces it with ``amax``, which ONNX's
  ReduceMax does not accept for bool; here it is a one-hot count of the per-pixel argmax, the same
  decision.

SOLIDER's window attention calls SDPA on 5-D tensors ([N, windows, heads, L, d]), which the stock
ONNX translation refuses (4-D only): :func:`sdpa_any_rank` translates it at any rank.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from onnxscript import opset18 as op
from torch import nn

from kpr.modeling.kpr import KPR


class ExportGraph(nn.Module):
    """``(images, prompts[, cameras]) → (embeddings, visibility, part_masks)`` of a KPR model.

    Inputs: images [N, 3, H, W] float32, prompts [N, Cp, H, W] float32, cameras [N] int64 (only
    for models with SIE cameras; label ``num_cameras`` = no camera embedding).

    Outputs: embeddings [N, 1+K, D] float32, raw like :attr:`KPROutput.embeddings` (not
    L2-normalised); visibility [N, 1+K] bool (binary models) or float32 scores; part_masks
    [N, K+1, H/4, W/4] float32.
    """

    def __init__(self, model: KPR):
        super().__init__()
        self.model = model

    def forward(
        self, images: torch.Tensor, prompts: torch.Tensor, cameras: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self.model
        tokens = m.backbone.embed(images) + m.prompt_encoder(prompts, tuple(images.shape[-2:]))
        if m.camera_embedding is not None:
            # Row ``num_cameras`` is zeros: "no camera", what the eager model does for None.
            table = F.pad(m.camera_embedding, (0, 0, 0, 1))
            tokens = tokens + m.config.camera_scale * table[cameras][:, None, None, :]
        stages = m.backbone.forward_stages(tokens)
        features = m.fusion(
            [stages[i] for i in m.config.fusion_stages], size=tuple(stages[0].shape[-2:])
        )
        out = m.head(features, full=False)
        probs = out["part_masks"]
        if m.config.binary_visibility:
            wins = F.one_hot(probs.argmax(dim=1), probs.shape[1]).amax(dim=(1, 2))
            present = wins > 0
            foreground = present.any(dim=1, keepdim=True)
        else:
            present = probs.flatten(2).amax(dim=2)
            foreground = present.amax(dim=1, keepdim=True)
        # Slot 0 is the max over all K+1 classes, background included, as in PartHead.
        visibility = torch.cat([foreground, present[:, 1:]], dim=1)
        return out["embeddings"], visibility, probs


def sdpa_any_rank(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
):
    """ONNX translation of ``aten::scaled_dot_product_attention`` for inputs of any rank ≥ 3.

    softmax(q·kᵀ·scale + mask)·v, with √scale applied to q and k as torch's math kernel does.
    Causal masks and grouped-query attention are not used by KPR and not translated.
    """
    if is_causal or enable_gqa:
        raise NotImplementedError("causal or grouped-query attention is not exported")
    rank = len(query.shape)
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    root = op.CastLike(math.sqrt(scale), query)
    perm = [*range(rank - 2), rank - 1, rank - 2]
    scores = op.MatMul(op.Mul(query, root), op.Transpose(op.Mul(key, root), perm=perm))
    if attn_mask is not None:
        scores = op.Add(scores, attn_mask)
    return op.MatMul(op.Softmax(scores, axis=-1), value)
