"""An ONNX Runtime session of a file made by :func:`~kpr.export.export_onnx`, checked on load."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from kpr.checkpoint.fingerprint import weights_fingerprint
from kpr.configuration import from_dict
from kpr.denormals import flush_mode_kept
from kpr.errors import ConfigError, KPRError, PromptError
from kpr.export.format import CONFIG_KEY, FINGERPRINT_KEY, INPUTS, OUTPUTS
from kpr.modeling.config import KPRConfig
from kpr.modeling.kpr import KPR


def _comparable(config: KPRConfig) -> KPRConfig:
    # Where the backbone's initial weights came from does not change the model.
    backbone = dataclasses.replace(config.backbone, pretrained=None)
    return dataclasses.replace(config, backbone=backbone)


class OnnxSession:
    """Runs an exported KPR model on the CPU with ONNX Runtime.

    Parameters
    ----------
    source:
        Path of a ``.onnx`` file, or its bytes (an in-memory export).
    name:
        How to name the model in error messages (default: the path, or ``"<in-memory export>"``).
    threads:
        Intra-op threads (default: ``torch.get_num_threads()``, so both backends use the same).

    Raises
    ------
    KPRError
        If the file is missing, is not an ONNX model, or was not exported by kpr.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes,
        name: str | None = None,
        threads: int | None = None,
    ):
        if isinstance(source, bytes):
            self.name = name or "<in-memory export>"
        else:
            path = Path(source)
            self.name = name or str(path)
            if not path.is_file():
                raise KPRError(f"{self.name}: no such ONNX file")
            source = str(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # ORT's worker threads otherwise spin for a while after every run, taking the cores from
        # whatever the process does next (decoding the next batch, torch): the torch forward run
        # right after an ONNX Runtime call in one process was ×4 slower (docs/performance.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: ORT warns about unused initialisers
        try:
            with flush_mode_kept() as flushed:  # ORT would reset this thread's mode
                options.add_session_config_entry(
                    "session.set_denormal_as_zero", "1" if flushed else "0"
                )
                self.session = ort.InferenceSession(
                    source, options, providers=["CPUExecutionProvider"]
                )
        except Exception as exc:  # ORT raises its own exception types, not OSError/ValueError
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise KPRError(
                f"{self.name}: not an ONNX model ONNX Runtime can load ({reason})"
            ) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if CONFIG_KEY not in meta or FINGERPRINT_KEY not in meta:
            raise KPRError(
                f"{self.name}: an ONNX model, but not one exported by kpr (no {CONFIG_KEY} "
                "metadata); make one with `kpr export`"
            )
        try:
            self.config: KPRConfig = from_dict(KPRConfig, json.loads(meta[CONFIG_KEY]))
        except (json.JSONDecodeError, ConfigError) as exc:
            raise KPRError(f"{self.name}: unreadable {CONFIG_KEY} metadata ({exc})") from None
        self.fingerprint: str = meta[FINGERPRINT_KEY]
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        outputs = tuple(o.name for o in self.session.get_outputs())
        if self.input_names not in (INPUTS, INPUTS[:2]) or outputs != OUTPUTS:
            raise KPRError(
                f"{self.name}: inputs {list(self.input_names)} / outputs {list(outputs)} are not "
                f"those of a kpr export ({list(INPUTS)} / {list(OUTPUTS)})"
            )

    def check_matches(self, model: KPR) -> None:
        """Refuse a session exported from another model (configuration or weights differ)."""
        if _comparable(self.config) != _comparable(model.config):
            raise KPRError(
                f"{self.name}: exported from a model with another configuration than this one "
                f"(image size {list(self.config.image_size)} vs {list(model.config.image_size)}, "
                f"{self.config.prompt_channels} vs {model.config.prompt_channels} prompt "
                "channels…); export this model again with `kpr export`"
            )
        if self.fingerprint != weights_fingerprint(model):
            raise KPRError(
                f"{self.name}: exported from the same architecture with other weights; "
                "export this checkpoint again with `kpr export`"
            )

    def __call__(
        self, images: torch.Tensor, prompts: torch.Tensor, cameras: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images [N, 3, H, W], prompts [N, Cp, H, W], cameras [N] → (embeddings [N, 1+K, D] raw,
        visibility [N, 1+K], part_masks [N, K+1, H/4, W/4]), as :meth:`KPR.forward`."""
        c = self.config
        h, w = c.image_size
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (h, w):
            raise KPRError(f"images: expected [N, 3, {h}, {w}], got {list(images.shape)}")
        expected = [images.shape[0], c.prompt_channels, h, w]
        if list(prompts.shape) != expected:
            raise PromptError(
                f"prompts: expected {expected} (grouping {c.prompt_grouping!r}, the size of the "
                f"exported images), got {list(prompts.shape)}"
            )
        feeds = {
            "images": images.detach().float().cpu().numpy(),
            "prompts": prompts.detach().float().cpu().numpy(),
        }
        if "cameras" in self.input_names:
            if cameras is None:  # the graph's "no camera" label, as the eager model's None
                cams = np.full(images.shape[0], c.num_cameras, dtype=np.int64)
            else:
                cams = np.asarray(cameras.cpu(), dtype=np.int64).reshape(-1)
                n = images.shape[0]
                if cams.shape != (n,) or cams.min() < 0 or cams.max() >= c.num_cameras:
                    raise KPRError(
                        f"cameras: labels must be in [0, {c.num_cameras}), one per image, "
                        f"got {cams.tolist()}"
                    )
            feeds["cameras"] = cams
        embeddings, visibility, part_masks = self.session.run(list(OUTPUTS), feeds)
        return (
            torch.from_numpy(embeddings),
            torch.from_numpy(visibility),
            torch.from_numpy(part_masks),
        )
