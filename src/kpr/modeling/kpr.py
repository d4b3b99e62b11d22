"""The KPR model: promptable Swin backbone + multi-stage fusion + part-based (or global) head."""

from __future__ import annotations

import torch
from torch import nn

from kpr.errors import ConfigError, KPRError, PromptError
from kpr.modeling.backbones import build_backbone
from kpr.modeling.config import KPRConfig
from kpr.modeling.fusion import MultiStageFusion
from kpr.modeling.global_head import GlobalHead
from kpr.modeling.linear import route_linear_layers
from kpr.modeling.outputs import KPROutput
from kpr.modeling.part_head import PartHead
from kpr.modeling.prompt_encoder import PromptEncoder


class KPR(nn.Module):
    """Keypoint-promptable ReID model.

    Prompt-optional: ``prompts=None`` (or any sample whose prompt is the empty prompt) runs the
    same weights without keypoint guidance.
    """

    def __init__(self, config: KPRConfig):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone, config.image_size)
        stage_dims = tuple(self.backbone.stage_dims)
        self.prompt_encoder = PromptEncoder(
            config.prompt_channels,
            stage_dims[0],
            zero_init=config.backbone.family == "solider",
            background_channel=config.prompt_background,
        )
        self.camera_embedding = (
            nn.Parameter(
                nn.init.trunc_normal_(torch.empty(config.num_cameras, stage_dims[0]), std=0.02)
            )
            if config.num_cameras > 0
            else None
        )
        if config.fusion_stages[-1] >= len(stage_dims):
            raise ConfigError(
                f"fusion_stages {list(config.fusion_stages)}: "
                f"the backbone has {len(stage_dims)} stages"
            )
        fusion_dim = config.fusion_dim or stage_dims[-1]
        self.fusion = MultiStageFusion(
            tuple(stage_dims[i] for i in config.fusion_stages), fusion_dim
        )
        self.head: PartHead | GlobalHead
        if config.head == "global":
            self.head = GlobalHead(
                fusion_dim, config.embedding_dim, config.num_classes, config.binary_visibility
            )
        else:
            self.head = PartHead(
                fusion_dim,
                config.num_parts,
                config.embedding_dim,
                config.num_classes,
                config.binary_visibility,
            )
        route_linear_layers(self)

    def _check_inputs(self, images: torch.Tensor, prompts: torch.Tensor | None) -> None:
        h, w = self.config.image_size
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (h, w):
            raise KPRError(f"images: expected [N, 3, {h}, {w}], got {list(images.shape)}")
        if prompts is None:
            return
        expected = self.prompt_encoder.in_channels
        if prompts.ndim != 4 or prompts.shape[0] != images.shape[0] or prompts.shape[1] != expected:
            raise PromptError(
                f"prompts: expected [{images.shape[0]}, {expected}, H, W] "
                f"(grouping {self.config.prompt_grouping!r}), got {list(prompts.shape)}"
            )

    def _camera_tokens(self, cameras: torch.Tensor | None) -> torch.Tensor | None:
        # A model trained without cameras ignores camera labels, like the official model with
        # cam_num 0.
        if cameras is None or self.camera_embedding is None:
            return None
        cameras = torch.as_tensor(cameras, device=self.camera_embedding.device).long()
        if cameras.numel() and (
            cameras.min() < 0 or cameras.max() >= self.camera_embedding.shape[0]
        ):
            raise KPRError(
                f"cameras: labels must be in [0, {self.camera_embedding.shape[0]}), "
                f"got {cameras.tolist()}"
            )
        return self.config.camera_scale * self.camera_embedding[cameras][:, None, None, :]

    def forward_stages(
        self,
        images: torch.Tensor,
        prompts: torch.Tensor | None = None,
        cameras: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Prompt + camera tokens added to the image tokens, then the Swin stages.

        Parameters
        ----------
        images:
            [N, 3, H, W] normalised RGB at ``config.image_size``.
        prompts:
            [N, Cp, Hp, Wp] prompt heatmaps ([background, negatives, groups…], see
            :func:`kpr.keypoints.build_prompt`), or ``None`` for the empty prompt.
        cameras:
            [N] camera indices for the SIE embedding (ignored by models without cameras).

        Returns
        -------
        list of torch.Tensor
            One [N, C_i, H/4/2^i, W/4/2^i] map per stage.
        """
        self._check_inputs(images, prompts)
        tokens = self.backbone.embed(images)
        if prompts is None:
            prompts = self.prompt_encoder.empty_prompt(
                images.shape[0], tuple(images.shape[-2:]), images
            )
        tokens = tokens + self.prompt_encoder(prompts, tuple(images.shape[-2:]))
        camera_tokens = self._camera_tokens(cameras)
        if camera_tokens is not None:
            tokens = tokens + camera_tokens
        return self.backbone.forward_stages(tokens)

    def forward_features(
        self,
        images: torch.Tensor,
        prompts: torch.Tensor | None = None,
        cameras: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`forward_stages` + multi-stage fusion → [N, Df, H/4, W/4], what the head reads."""
        stages = self.forward_stages(images, prompts, cameras)
        fused = [stages[i] for i in self.config.fusion_stages]
        return self.fusion(fused, size=tuple(stages[0].shape[-2:]))

    def forward_head(self, features: torch.Tensor, *, full: bool | None = None) -> KPROutput:
        """Part head on fused features [N, Df, Hf, Wf]: part maps, embeddings, visibility.

        ``full`` computes every branch, BNNeck and classifier (default: in training mode only).
        """
        return KPROutput(**self.head(features, full=self.training if full is None else full))

    def forward(
        self,
        images: torch.Tensor,
        prompts: torch.Tensor | None = None,
        cameras: torch.Tensor | None = None,
        *,
        full: bool | None = None,
    ) -> KPROutput:
        """Embed person crops: :meth:`forward_features` then :meth:`forward_head`."""
        return self.forward_head(self.forward_features(images, prompts, cameras), full=full)
