"""``KPRPredictor``: the model wrapped for users — images of any size in, embeddings out.

Example
-------
>>> predictor = KPRPredictor.from_pretrained("kpr_occ_posetrack.pth.tar")   # doctest: +SKIP
>>> a = predictor.embed(["q.jpg"], keypoints=["q.json"])                       # doctest: +SKIP
>>> b = predictor.embed(["g1.jpg", "g2.jpg"])                                  # doctest: +SKIP
>>> predictor.distance(a, b)                                                   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

import numpy as np
import torch
from numpy.typing import ArrayLike
from PIL import Image

from kpr.checkpoint import load_model
from kpr.errors import KPRError
from kpr.imaging import ImageLike, preprocess, to_rgb_array
from kpr.keypoints.io import read_keypoints_file, validate_keypoints
from kpr.keypoints.prompts import build_prompt
from kpr.modeling.kpr import KPR
from kpr.retrieval.distance import l2_normalize, part_distance

KeypointsLike = Union[None, str, os.PathLike, ArrayLike]
Precision = Literal["float32", "bfloat16"]


@dataclass(frozen=True)
class Embeddings:
    """Embeddings of N person crops.

    Attributes
    ----------
    embeddings:
        [N, 1+K, D] L2-normalised per slot: slot 0 = foreground, slots 1..K = body parts.
    visibility:
        [N, 1+K] bool (binary models) or float visibility scores.
    part_masks:
        [N, K+1, Hf, Wf] part attention maps (channel 0 = background).
    prompted:
        [N] bool, whether each crop had a non-empty prompt.
    """

    embeddings: torch.Tensor
    visibility: torch.Tensor
    part_masks: torch.Tensor
    prompted: torch.Tensor

    def __len__(self) -> int:
        return self.embeddings.shape[0]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` → CUDA if available, else MPS, else CPU."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def _per_image(value: Sequence | None, n: int, name: str) -> list:
    if value is None:
        return [None] * n
    if len(value) != n:
        raise KPRError(f"{name}: expected one entry per image ({n}), got {len(value)}")
    return list(value)


class KPRPredictor:
    """Batched, prompt-optional inference on CPU, CUDA or MPS.

    Parameters
    ----------
    model:
        A :class:`~kpr.modeling.kpr.KPR` model.
    device:
        Where to run (default: best available).
    precision:
        ``"float32"`` (default, matches the official outputs) or ``"bfloat16"`` autocast
        (faster on recent CPUs/GPUs; see docs/performance.md for its measured deviation).
    """

    def __init__(self, model: KPR, device: str | torch.device | None = None, precision: Precision = "float32"):
        if precision not in ("float32", "bfloat16"):
            raise KPRError(f"precision: expected 'float32' or 'bfloat16', got {precision!r}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.config = model.config

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device | None = None,
        precision: Precision = "float32",
        semantic_weight: float | None = None,
    ) -> KPRPredictor:
        """Load an official ``.pth.tar`` or a kpr checkpoint directory."""
        return cls(load_model(path, semantic_weight=semantic_weight), device, precision)

    def prepare(
        self, image: ImageLike, keypoints: KeypointsLike = None, negative_keypoints: ArrayLike | None = None, name: str = "image"
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """One crop → (image [3, H, W], prompt [Cp, H, W], has_prompt).

        ``keypoints`` is the target's [17, 3] (x, y, c) in the crop's pixels, or a path to an official
        keypoint JSON (its target and negatives are used). ``negative_keypoints`` is [M, 17, 3].
        """
        rgb = to_rgb_array(image, name)
        negatives = None if negative_keypoints is None else validate_keypoints(negative_keypoints, f"{name}: negative_keypoints")
        if isinstance(keypoints, (str, os.PathLike)):
            skeletons = read_keypoints_file(keypoints)
            target = skeletons.target
            if negatives is None:
                negatives = skeletons.negatives
        else:
            target = None if keypoints is None else validate_keypoints(keypoints, f"{name}: keypoints")
        size = self.config.image_size
        prompt = build_prompt(target, negatives, self.config.prompt_grouping, size, rgb.shape[:2],
                              with_negatives=self.config.prompt_negatives)
        has_prompt = bool(prompt[1:].any())
        image_t = preprocess(rgb, size, self.config.pixel_mean, self.config.pixel_std)
        return image_t, torch.from_numpy(prompt).float(), has_prompt

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bfloat16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def embed(
        self,
        images: Sequence[ImageLike],
        keypoints: Sequence[KeypointsLike] | None = None,
        negative_keypoints: Sequence[ArrayLike | None] | None = None,
        cameras: Sequence[int] | None = None,
        batch_size: int = 32,
        progress: bool = False,
    ) -> Embeddings:
        """Embed crops; prompts are optional per image (``None`` → the empty prompt)."""
        if isinstance(images, (str, os.PathLike, Image.Image)) or (isinstance(images, np.ndarray) and images.ndim == 3):
            images = [images]
        n = len(images)
        if n == 0:
            raise KPRError("images: nothing to embed")
        if batch_size < 1:
            raise KPRError(f"batch_size: must be >= 1, got {batch_size}")
        kps = _per_image(keypoints, n, "keypoints")
        negs = _per_image(negative_keypoints, n, "negative_keypoints")
        cams = None if cameras is None else torch.as_tensor(_per_image(cameras, n, "cameras"), dtype=torch.long)
        names = [str(img) if isinstance(img, (str, os.PathLike)) else f"images[{i}]" for i, img in enumerate(images)]

        chunks = range(0, n, batch_size)
        if progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="embedding", unit="batch")
        parts: list[tuple[torch.Tensor, ...]] = []
        for start in chunks:
            stop = min(start + batch_size, n)
            prepared = [self.prepare(images[i], kps[i], negs[i], names[i]) for i in range(start, stop)]
            batch = torch.stack([p[0] for p in prepared]).to(self.device)
            prompts = torch.stack([p[1] for p in prepared]).to(self.device)
            batch_cams = None if cams is None else cams[start:stop].to(self.device)
            with torch.inference_mode(), self._autocast():
                out = self.model(batch, prompts, batch_cams)
            parts.append(
                (
                    l2_normalize(out.embeddings.float()).cpu(),
                    out.visibility.cpu(),
                    out.part_masks.float().cpu(),
                    torch.tensor([p[2] for p in prepared]),
                )
            )
        return Embeddings(*(torch.cat(t) for t in zip(*parts)))

    def distance(self, a: Embeddings, b: Embeddings, metric: Literal["euclidean", "cosine"] = "euclidean") -> torch.Tensor:
        """[Na, Nb] part-based distance: mean per-slot distance over slots visible in both crops.

        Euclidean distances of unit vectors lie in [0, 2] (the official demo divides by 2).
        """
        return part_distance(a.embeddings, b.embeddings, a.visibility, b.visibility, metric=metric)
