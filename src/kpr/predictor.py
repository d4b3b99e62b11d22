"""Where a person crop and its prompt become model inputs and embeddings — for every caller.

:class:`CropTransform` turns one RGB crop and its keypoints into the model's input image and prompt
heatmaps (the official test-time preprocessing); :class:`KPRPredictor` batches prepared crops
through the model into :class:`Embeddings`. The CLI, the evaluator and the library API all embed
through these two, so a crop is embedded the same way wherever it comes from.

Example
-------
>>> predictor = KPRPredictor.from_pretrained("kpr_occ_posetrack.pth.tar")   # doctest: +SKIP
>>> a = predictor.embed("q.jpg", keypoints="q.json")                         # doctest: +SKIP
>>> a = masks_predictor.embed("q.jpg", masks="q_mask.png")                   # doctest: +SKIP
>>> b = predictor.embed(["g1.jpg", "g2.jpg"])                                # doctest: +SKIP
>>> predictor.distance(a, b)                                                 # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from PIL import Image

from kpr.checkpoint import load_model
from kpr.devices import resolve_device
from kpr.errors import KeypointFormatError, KPRError, PromptError
from kpr.imaging import ImageLike, preprocess, to_rgb_array
from kpr.keypoints.io import Skeletons, read_keypoints_file, validate_keypoints
from kpr.keypoints.prompts import VISIBILITY_THRESHOLD, build_prompt
from kpr.masks import (
    CropMasks,
    PartLabelTable,
    layout_mask_prompt,
    person_mask,
    read_part_labels,
    read_person_mask,
)
from kpr.masks import part_labels as part_label_map
from kpr.modeling.config import KPRConfig
from kpr.modeling.kpr import KPR
from kpr.retrieval.distance import l2_normalize, part_distance

KeypointsLike = str | os.PathLike | Skeletons | ArrayLike | None
"""Target [17, 3] array, official keypoint JSON path, or :class:`Skeletons`; None = no prompt."""
MasksLike = str | os.PathLike | CropMasks | ArrayLike | None
"""A mask PNG path or [H, W] array (person mask for ``masks`` models, part labels for ``parsing``
models), or :class:`~kpr.masks.CropMasks`; None = no prompt."""
Precision = Literal["float32", "bfloat16", "int8", "auto"]
"""``auto`` picks the fastest path within a deviation bound at construction (:mod:`kpr.speed`)."""
Backend = Literal["torch", "onnxruntime"]
PRECISIONS = ("float32", "bfloat16", "int8", "auto")
log = logging.getLogger("kpr")
OnError = Literal["raise", "skip"]


class PromptWarning(UserWarning):
    """Keypoints were given for a crop but none of them can be drawn into its prompt."""


class MaskSizeWarning(UserWarning):
    """A mask does not have its crop's size and was resized (nearest neighbour) to it."""


class SlowPathWarning(UserWarning):
    """The requested precision has no hardware support here and runs slower than float32."""


@dataclass(frozen=True)
class Embeddings:
    """Embeddings of N person crops.

    Attributes
    ----------
    embeddings:
        [N, 1+K, D] float32, L2-normalised per slot: slot 0 = foreground, slots 1..K = parts.
    visibility:
        [N, 1+K] bool (binary models) or float visibility scores.
    prompted:
        [N] bool, whether each crop had a non-empty prompt.
    part_masks:
        [N, K+1, Hf, Wf] part attention maps (channel 0 = background), only when asked for
        (``part_masks=True``): ~70 KB per crop at 384×128, so they are not kept by default.
    """

    embeddings: torch.Tensor
    visibility: torch.Tensor
    prompted: torch.Tensor
    part_masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> Embeddings:
        """The embeddings of a subset of the crops (an int keeps the batch dimension)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        elif not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long)
        masks = None if self.part_masks is None else self.part_masks[index]
        return Embeddings(
            self.embeddings[index], self.visibility[index], self.prompted[index], masks
        )

    @staticmethod
    def cat(parts: Sequence[Embeddings]) -> Embeddings:
        """Concatenate along N; part masks are kept only if every part has them."""
        if not parts:
            raise KPRError("Embeddings.cat: nothing to concatenate")
        masks = None
        if all(p.part_masks is not None for p in parts):
            masks = torch.cat([p.part_masks for p in parts])  # type: ignore[misc]
        return Embeddings(
            torch.cat([p.embeddings for p in parts]),
            torch.cat([p.visibility for p in parts]),
            torch.cat([p.prompted for p in parts]),
            masks,
        )


@dataclass(frozen=True, eq=False)
class PreparedCrop:
    """One crop ready for the model: ``image`` [3, H, W] normalised float32, ``prompt``
    [Cp, H, W] float32 heatmaps, ``prompted`` whether any keypoint was drawn."""

    image: torch.Tensor
    prompt: torch.Tensor
    prompted: bool


@dataclass(frozen=True, eq=False)
class EmbeddedChunk:
    """What :meth:`KPRPredictor.embed_iter` yields per batch: the input positions embedded,
    their embeddings (same order), and the crops skipped under ``on_error="skip"``."""

    indices: tuple[int, ...]
    embeddings: Embeddings | None
    skipped: tuple[tuple[int, str], ...] = ()


class CropTransform:
    """An RGB crop of any size and its keypoints or masks → model inputs at ``config.image_size``.

    The official test-time preprocessing: OpenCV bilinear resize to (H, W) (aspect ratio not
    kept), (x / 255 − mean) / std, and prompt heatmaps of the keypoints scaled into the resized
    frame (points with confidence ≤ 0.3 or outside the crop are not drawn). Models with mask
    prompts (``config.prompt_type`` ``masks``/``parsing``) take :class:`~kpr.masks.CropMasks`
    instead (:func:`kpr.masks.mask_prompt`); a mask of another size than the crop is resized to
    it with a :class:`MaskSizeWarning`.
    """

    def __init__(self, config: KPRConfig):
        self.config = config

    def __call__(
        self,
        rgb: NDArray[np.uint8],
        target: NDArray[np.float64] | None = None,
        negatives: NDArray[np.float64] | None = None,
        name: str = "image",
        masks: CropMasks | None = None,
    ) -> PreparedCrop:
        """Prepare one crop.

        Parameters
        ----------
        rgb:
            [H0, W0, 3] uint8 RGB.
        target, negatives:
            [17, 3] and [M, 17, 3] (x, y, confidence) in the crop's pixels, or None.
        name:
            How to name the crop in error messages (its file, usually).
        masks:
            The crop's masks (mask-prompt models only), or None.
        """
        c = self.config
        check_prompt_kind(c, target is not None or negatives is not None, masks is not None, name)
        if c.prompt_type == "keypoints":
            _check_pixel_coordinates(target, negatives, rgb.shape[:2], name)
            prompt = build_prompt(
                target,
                negatives,
                c.prompt_grouping,
                c.image_size,
                rgb.shape[:2],
                with_negatives=c.prompt_negatives,
                with_background=c.prompt_background,
            )
        else:
            if masks is not None and masks.hw != rgb.shape[:2]:
                warnings.warn(
                    f"{masks.source}: mask is {masks.hw[0]}x{masks.hw[1]} but its crop {name} is "
                    f"{rgb.shape[0]}x{rgb.shape[1]} (HxW); resized to the crop",
                    MaskSizeWarning,
                    stacklevel=2,
                )
                masks = masks.resized(rgb.shape[:2])
            prompt = layout_mask_prompt(masks, c)
        drawn = prompt[1:] if c.prompt_background else prompt
        image = preprocess(rgb, c.image_size, c.pixel_mean, c.pixel_std)
        return PreparedCrop(image, torch.from_numpy(prompt.astype(np.float32)), bool(drawn.any()))


def check_prompt_kind(config: KPRConfig, keypoints: bool, masks: bool, name: str) -> None:
    """Refuse a prompt of the kind the model was not trained with (``keypoints``/``masks``: whether
    keypoints / masks were given)."""
    kind = config.prompt_type
    if masks and kind == "keypoints":
        raise PromptError(
            f"{name}: mask prompt given to a model with keypoint prompts (prompt_type "
            "'keypoints'); give keypoints, or use a model trained with mask prompts"
        )
    if keypoints and kind != "keypoints":
        raise PromptError(
            f"{name}: keypoint prompt given to a model with mask prompts (prompt_type "
            f"{kind!r}); give masks (kpr.masks), or use a model trained with keypoint prompts"
        )


def read_masks(
    masks: MasksLike,
    config: KPRConfig,
    name: str,
    table: PartLabelTable | str | None = None,
) -> CropMasks | None:
    """A mask path or array → :class:`~kpr.masks.CropMasks` for ``config``'s prompt type: a person
    mask (0 background, 1 target, 2 other people) for ``masks`` models, a part-label map of
    ``table`` for ``parsing`` models. CropMasks and None are returned as they are."""
    if masks is None or isinstance(masks, CropMasks):
        return masks
    check_prompt_kind(config, False, True, name)
    is_path = isinstance(masks, (str, os.PathLike))
    if config.prompt_type == "masks":
        return read_person_mask(masks) if is_path else person_mask(masks, f"{name}: masks")
    if table is None:
        raise PromptError(
            f"{name}: a parsing-prompt model reads part-label maps; name their label table "
            "(part_labels='lip', 'atr' or 'kpr', see kpr.masks.LABEL_TABLES)"
        )
    if is_path:
        return read_part_labels(masks, table)
    return part_label_map(masks, table, f"{name}: masks")


def _check_pixel_coordinates(
    target: NDArray[np.float64] | None,
    negatives: NDArray[np.float64] | None,
    hw: tuple[int, int],
    name: str,
) -> None:
    """Refuse keypoints given in normalised [0, 1] coordinates: they would all be drawn in the
    top-left pixel of any crop bigger than a few pixels."""
    if target is None or min(hw) < 8:
        return
    shown = target[target[:, 2] > VISIBILITY_THRESHOLD]
    if len(shown) >= 2 and float(np.abs(shown[:, :2]).max()) <= 1.0:
        raise KeypointFormatError(
            f"{name}: keypoints look normalised to [0, 1] (every visible point within 1 px of the "
            f"corner of a {hw[1]}×{hw[0]} crop); give (x, y) in the crop's pixels"
        )


def _as_list(value: object, n: int, name: str) -> list:
    """One entry per image: a sequence of n, or an array stacked along its first axis
    (keypoints [N, 17, 3], cameras [N])."""
    if value is None:
        return [None] * n
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        value = list(value)
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise KPRError(
            f"{name}: expected one entry per image (a list of {n}), got {type(value).__name__}"
        )
    if len(value) != n:
        raise KPRError(f"{name}: expected one entry per image ({n}), got {len(value)}")
    return list(value)


def _wrap_single(value: object) -> list | None:
    """A single image's keypoints / negatives / camera → a one-entry per-image list. A list of one
    non-number is taken as already per-image (for negatives both readings give the same M = 1)."""
    if value is None:
        return None
    if (
        isinstance(value, (list, tuple))
        and len(value) == 1
        and not isinstance(value[0], (int, float))
    ):
        return list(value)
    return [value]


def _check_camera_labels(cameras: Sequence[object]) -> None:
    """Camera labels are integers (a float such as 1.5 was truncated to camera 1)."""
    for i, camera in enumerate(cameras):
        if isinstance(camera, bool) or not isinstance(camera, (int, np.integer)):
            raise KPRError(f"cameras[{i}]: expected an integer camera label, got {camera!r}")


def _is_single_image(images: object) -> bool:
    """One image, not a batch: a path, a PIL image or an array of 2 or 3 dimensions (an RGBA
    [H, W, 4] array is one image; a batch of arrays is [N, H, W, C] or a list)."""
    return isinstance(images, (str, os.PathLike, Image.Image)) or (
        isinstance(images, np.ndarray) and images.ndim in (2, 3)
    )


class KPRPredictor:
    """Batched, prompt-optional inference on CPU, CUDA or MPS.

    Parameters
    ----------
    model:
        A :class:`~kpr.modeling.kpr.KPR` model. It is moved to ``device`` and put in eval mode (the
        same object, not a copy: call ``model.train()`` to go on training it).
    device:
        Where to run (default: best available).
    precision:
        ``"float32"`` (default, matches the official outputs), ``"bfloat16"`` autocast (faster
        only on hardware with native bf16), ``"int8"`` (dynamic quantization of the Linear
        layers, CPU), or ``"auto"``: the fastest of these paths (and ONNX Runtime, given
        ``onnx_file``) whose deviation from float32 is within :data:`kpr.speed.DEVIATION_BOUND`,
        chosen by a short timed probe (docs/performance.md). :attr:`precision_used` and
        :attr:`backend` say what runs.
    backend:
        ``"torch"`` or ``"onnxruntime"`` (CPU, float32; the model is exported in memory unless
        ``onnx_file`` is given). ``None``: torch, except that ``precision="auto"`` may pick ONNX
        Runtime when ``onnx_file`` is given.
    onnx_file:
        A ``.onnx`` file made from this model by ``kpr export`` (refused if it was not).
    """

    def __init__(
        self,
        model: KPR,
        device: str | torch.device | None = None,
        precision: Precision = "float32",
        backend: Backend | None = None,
        onnx_file: str | os.PathLike | None = None,
    ):
        if precision not in PRECISIONS:
            raise KPRError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
        if backend not in (None, "torch", "onnxruntime"):
            raise KPRError(f"backend: expected 'torch' or 'onnxruntime', got {backend!r}")
        if backend == "onnxruntime" and precision not in ("float32", "auto"):
            raise KPRError(f"precision {precision!r}: the onnxruntime backend runs float32 only")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.config: KPRConfig = model.config
        self.transform = CropTransform(model.config)
        self._module: torch.nn.Module = self.model  # what torch runs (a quantized copy for int8)
        self.session = None  # a kpr.export.OnnxSession on the onnxruntime backend
        self.backend: Backend = "torch"
        self.precision_used: Literal["float32", "bfloat16", "int8"] = "float32"
        if precision == "auto":
            self._adopt(self._choose_auto(backend, onnx_file))
        else:
            self._setup("onnxruntime" if backend == "onnxruntime" else precision, onnx_file)

    def _setup(self, path: str, onnx_file: str | os.PathLike | None) -> None:
        if path in ("int8", "onnxruntime") and self.device.type != "cpu":
            raise KPRError(f"{path}: runs on the CPU only, got device {str(self.device)!r}")
        if path == "onnxruntime":
            try:
                from kpr.export import OnnxSession, export_onnx_bytes
            except ImportError as exc:
                raise KPRError(
                    f"backend onnxruntime needs the onnx extra (pip install 'kpr[onnx]'): {exc}"
                ) from None
            if onnx_file is None:
                log.info("exporting the model to ONNX in memory (a `kpr export` file skips this)")
                self.session = OnnxSession(export_onnx_bytes(self.model))
            else:
                self.session = OnnxSession(onnx_file)
                self.session.check_matches(self.model)
            self.backend = "onnxruntime"
        elif path == "int8":
            from kpr.quantization import quantize_linear_int8

            self._module = quantize_linear_int8(self.model)
            self.precision_used = "int8"
        elif path == "bfloat16":
            from kpr import cpu

            features = cpu.cpu_features()
            if self.device.type == "cpu" and not features.bf16:
                # Measured ×0.28–0.56 of float32 on an AVX2-only AMD EPYC (docs/performance.md).
                warnings.warn(
                    f"precision 'bfloat16': this CPU ({features.model}) has no native bf16 "
                    "(AVX-512 BF16 or AMX), so bf16 autocast runs slower than float32 here; "
                    "precision='auto' picks the fastest path within the deviation bound",
                    SlowPathWarning,
                    stacklevel=3,
                )
            self.precision_used = "bfloat16"

    def _adopt(self, other: KPRPredictor) -> None:
        self._module, self.session = other._module, other.session
        self.backend, self.precision_used = other.backend, other.precision_used

    def _choose_auto(
        self, backend: Backend | None, onnx_file: str | os.PathLike | None
    ) -> KPRPredictor:
        """Time every candidate path on a probe batch; the chosen path's predictor."""
        from kpr import cpu, speed

        cuda_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        paths = speed.candidate_paths(
            self.device.type,
            cpu.cpu_features(),
            cuda_bf16=cuda_bf16,
            onnx_file=onnx_file is not None and backend != "torch",
        )
        if backend == "onnxruntime":  # one precision there: nothing to choose
            paths = ("onnxruntime",)
        candidates = {
            path: KPRPredictor(
                self.model,
                self.device,
                "float32" if path == "onnxruntime" else path,
                "onnxruntime" if path == "onnxruntime" else "torch",
                onnx_file,
            )
            for path in paths
        }
        if len(candidates) == 1:
            log.info("precision auto: %s (no other path on this hardware)", paths[0])
            return candidates[paths[0]]
        images, prompts = self._probe_inputs(speed.probe_samples(speed.PROBE.crops))
        outputs = {  # the deviation on every probe input; also the warm-up
            path: predictor.embed_batch(images, prompts) for path, predictor in candidates.items()
        }
        reference = outputs["float32"]
        deviations = {
            path: speed.deviation(
                (reference.embeddings, reference.visibility), (out.embeddings, out.visibility)
            )
            for path, out in outputs.items()
            if path != "float32"
        }
        timed_images, timed_prompts = images[: speed.PROBE.batch], prompts[: speed.PROBE.batch]
        runs = {
            path: lambda p=predictor: p.embed_batch(timed_images, timed_prompts)
            for path, predictor in candidates.items()
        }
        timings = speed.time_paths(runs, speed.PROBE.rounds)
        chosen = speed.choose_path(timings, deviations)
        log.info("%s", speed.summary(chosen, timings, deviations))
        return candidates[chosen]

    def _probe_inputs(self, samples: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [2S, 3, H, W] and prompts [2S, Cp, H, W] of the probe's S crops: each with
        its keypoint prompt (keypoint models; the others get none), then each with the empty one."""
        keypoints = self.config.prompt_type == "keypoints"
        crops = [
            self.transform(
                s.image,
                s.target_keypoints if keypoints else None,
                s.negative_keypoints if keypoints and len(s.negative_keypoints) else None,
                f"probe crop {i}",
            )
            for i, s in enumerate(samples)
        ]
        images = torch.stack([c.image for c in crops])
        prompted = torch.stack([c.prompt for c in crops])
        empty = self.model.prompt_encoder.empty_prompt(len(crops), self.config.image_size, images)
        return torch.cat([images, images]), torch.cat([prompted, empty])

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device | None = None,
        precision: Precision = "float32",
        semantic_weight: float | None = None,
        backend: Backend | None = None,
        onnx_file: str | os.PathLike | None = None,
    ) -> KPRPredictor:
        """Load an official ``.pth.tar`` or a kpr checkpoint directory."""
        resolved = resolve_device(device)  # refuse a bad device before reading a large file
        model = load_model(path, semantic_weight=semantic_weight)
        return cls(model, resolved, precision, backend, onnx_file)

    def prepare(
        self,
        image: ImageLike,
        keypoints: KeypointsLike = None,
        negative_keypoints: ArrayLike | None = None,
        name: str | None = None,
        masks: MasksLike = None,
        part_labels: PartLabelTable | str | None = None,
    ) -> PreparedCrop:
        """One crop and its optional prompt → :class:`PreparedCrop`.

        ``keypoints``: the target's [17, 3] (x, y, c) in the crop's pixels, :class:`Skeletons`, or
        an official keypoint JSON path (its target and negatives are used). ``negative_keypoints``:
        [M, 17, 3] other people; when given, they replace the negatives of a file or Skeletons.
        ``masks`` (mask-prompt models): see :func:`read_masks`; ``part_labels`` names the label
        table of part-label maps (``parsing`` models).
        """
        if name is None:
            name = str(image) if isinstance(image, (str, os.PathLike)) else "image"
        has_keypoints = keypoints is not None or negative_keypoints is not None
        check_prompt_kind(self.config, has_keypoints, masks is not None, name)
        crop_masks = read_masks(masks, self.config, name, part_labels)
        rgb = to_rgb_array(image, name)
        negatives = None
        if negative_keypoints is not None:
            negatives = validate_keypoints(
                negative_keypoints, f"{name}: negative_keypoints"
            ).reshape(-1, 17, 3)
        target = None
        if isinstance(keypoints, (str, os.PathLike)):
            keypoints = read_keypoints_file(keypoints)
        if isinstance(keypoints, Skeletons):
            target = keypoints.target
            negatives = keypoints.negatives if negatives is None else negatives
        elif keypoints is not None:
            target = validate_keypoints(keypoints, f"{name}: keypoints")
            if target.ndim != 2:
                raise KeypointFormatError(
                    f"{name}: keypoints: expected shape [17, 3], got {list(target.shape)}"
                )
        return self.transform(rgb, target, negatives, name, crop_masks)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision_used == "bfloat16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def embed_batch(
        self,
        images: torch.Tensor,
        prompts: torch.Tensor,
        cameras: torch.Tensor | None = None,
        *,
        prompted: torch.Tensor | None = None,
        part_masks: bool = False,
    ) -> Embeddings:
        """Run the model on prepared inputs.

        ``images`` [N, 3, H, W], ``prompts`` [N, Cp, H, W], ``cameras`` [N].

        ``prompted`` [N] bool defaults to "any prompt channel but the background is non-zero".
        """
        if prompted is None:
            drawn = prompts[:, 1:] if self.config.prompt_background else prompts
            prompted = drawn.flatten(1).any(dim=1)
        if self.session is not None:
            embeddings, visibility, masks = self.session(images, prompts, cameras)
        else:
            cams = None if cameras is None else cameras.to(self.device)
            with self._autocast():
                out = self._module(images.to(self.device), prompts.to(self.device), cams)
            embeddings, visibility, masks = out.embeddings, out.visibility, out.part_masks
        if part_masks and masks is None:
            raise KPRError(
                "part_masks=True: a global-embedding model (head 'global') has no part maps"
            )
        return Embeddings(
            l2_normalize(embeddings.float()).cpu(),
            visibility.cpu(),
            prompted.cpu().bool(),
            masks.float().cpu() if part_masks else None,
        )

    def embed_iter(
        self,
        images: Sequence[ImageLike],
        keypoints: Sequence[KeypointsLike] | None = None,
        negative_keypoints: Sequence[ArrayLike | None] | None = None,
        cameras: Sequence[int] | None = None,
        *,
        masks: Sequence[MasksLike] | None = None,
        part_labels: PartLabelTable | str | None = None,
        batch_size: int = 32,
        part_masks: bool = False,
        on_error: OnError = "raise",
        progress: bool = False,
    ) -> Iterator[EmbeddedChunk]:
        """Embed crops batch by batch (bounded memory for any number of crops).

        ``masks``: one per crop for mask-prompt models (see :func:`read_masks`), None = no prompt;
        ``part_labels``: the label table of part-label maps (``parsing`` models).

        ``on_error="skip"``: a crop whose image, keypoints or masks cannot be used is left out and
        reported in :attr:`EmbeddedChunk.skipped` as (position, message) instead of raising.
        """
        if _is_single_image(images):
            images = [images]  # type: ignore[list-item]
            keypoints, negative_keypoints, cameras = (
                _wrap_single(v) for v in (keypoints, negative_keypoints, cameras)
            )
            masks = None if masks is None else [masks]  # type: ignore[list-item]
        n = len(images)
        if n == 0:
            raise KPRError("images: nothing to embed")
        if batch_size < 1:
            raise KPRError(f"batch_size: must be >= 1, got {batch_size}")
        if on_error not in ("raise", "skip"):
            raise KPRError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
        kps = _as_list(keypoints, n, "keypoints")
        negs = _as_list(negative_keypoints, n, "negative_keypoints")
        cams = _as_list(cameras, n, "cameras")
        if cameras is not None:
            _check_camera_labels(cams)
        mask_list = _as_list(masks, n, "masks")
        names = [
            str(img) if isinstance(img, (str, os.PathLike)) else f"images[{i}]"
            for i, img in enumerate(images)
        ]
        starts = range(0, n, batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="embedding", unit="batch")
        unusable: list[str] = []
        empty_masks: list[str] = []
        for start in starts:
            kept, prepared, skipped = [], [], []
            for i in range(start, min(start + batch_size, n)):
                try:
                    crop = self.prepare(
                        images[i], kps[i], negs[i], names[i], mask_list[i], part_labels
                    )
                except KPRError as exc:
                    if on_error == "raise":
                        raise
                    skipped.append((i, str(exc)))
                    continue
                if kps[i] is not None and not crop.prompted:
                    unusable.append(
                        str(kps[i]) if isinstance(kps[i], (str, os.PathLike)) else names[i]
                    )
                if mask_list[i] is not None and not crop.prompted:
                    empty_masks.append(
                        str(mask_list[i])
                        if isinstance(mask_list[i], (str, os.PathLike))
                        else names[i]
                    )
                kept.append(i)
                prepared.append(crop)
            embedded = None
            if prepared:
                batch_cams = None
                if cameras is not None:
                    batch_cams = torch.as_tensor([cams[i] for i in kept], dtype=torch.long)
                embedded = self.embed_batch(
                    torch.stack([p.image for p in prepared]),
                    torch.stack([p.prompt for p in prepared]),
                    batch_cams,
                    prompted=torch.tensor([p.prompted for p in prepared]),
                    part_masks=part_masks,
                )
            yield EmbeddedChunk(tuple(kept), embedded, tuple(skipped))
        if unusable:
            shown = ", ".join(unusable[:5]) + (" …" if len(unusable) > 5 else "")
            warnings.warn(
                f"{len(unusable)} crop(s) have keypoints but none above confidence "
                f"{VISIBILITY_THRESHOLD} "
                f"inside the crop, so they were embedded without prompt: {shown}",
                PromptWarning,
                stacklevel=2,
            )
        if empty_masks:
            shown = ", ".join(empty_masks[:5]) + (" …" if len(empty_masks) > 5 else "")
            warnings.warn(
                f"{len(empty_masks)} crop(s) have a mask showing no one (no target, no other "
                f"people), so they were embedded without prompt: {shown}",
                PromptWarning,
                stacklevel=2,
            )

    def embed(
        self,
        images: ImageLike | Sequence[ImageLike],
        keypoints: KeypointsLike | Sequence[KeypointsLike] | None = None,
        negative_keypoints: ArrayLike | Sequence[ArrayLike | None] | None = None,
        cameras: int | Sequence[int] | None = None,
        *,
        masks: MasksLike | Sequence[MasksLike] = None,
        part_labels: PartLabelTable | str | None = None,
        batch_size: int = 32,
        part_masks: bool = False,
        progress: bool = False,
    ) -> Embeddings:
        """Embed crops (one image or a list); prompts are optional per image (``None`` → empty).

        A single image takes a single ``keypoints`` / ``negative_keypoints`` / ``cameras`` /
        ``masks`` value. Models with mask prompts take ``masks`` (a PNG path, an [H, W] array or
        :class:`~kpr.masks.CropMasks` per crop, see :func:`read_masks`) instead of keypoints.
        """
        chunks = [
            c.embeddings
            for c in self.embed_iter(
                images,
                keypoints,
                negative_keypoints,
                cameras,  # type: ignore[arg-type]
                masks=masks,  # type: ignore[arg-type]
                part_labels=part_labels,
                batch_size=batch_size,
                part_masks=part_masks,
                progress=progress,
            )
        ]
        return Embeddings.cat([c for c in chunks if c is not None])

    def distance(
        self, a: Embeddings, b: Embeddings, metric: Literal["euclidean", "cosine"] = "euclidean"
    ) -> torch.Tensor:
        """[Na, Nb] part-based distance: mean per-slot distance over slots visible in both crops.

        Euclidean distances of unit vectors lie in [0, 2] (the official demo divides by 2).
        """
        return part_distance(a.embeddings, b.embeddings, a.visibility, b.visibility, metric=metric)
