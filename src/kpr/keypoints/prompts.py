"""Keypoints -> prompt heatmaps, following the official Gaussian recipe (numpy only, no torch).

Output channel order: [background, negative keypoints, part 1 .. part Kp].
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kpr.configuration import as_hw
from kpr.errors import ConfigError, KeypointFormatError, PromptError
from kpr.keypoints.coco import NUM_KEYPOINTS
from kpr.keypoints.groupings import Grouping, prompt_grouping
from kpr.keypoints.io import validate_keypoints

VISIBILITY_THRESHOLD = 0.3
"""A keypoint is drawn iff its confidence is strictly above this."""

GAUSSIAN_SCALE = 11
"""Kernel radius = int(output width / GAUSSIAN_SCALE)."""


@functools.cache
def gaussian_kernel(radius: int) -> NDArray[np.float64]:
    """The square Gaussian stamp: peak 1 at the centre, std = side / 4, no normalisation.

    Parameters
    ----------
    radius : int
        Half-size r; the kernel side is 2r + 1.

    Returns
    -------
    ndarray, shape [2r + 1, 2r + 1], float64, read-only (cached per radius)
    """
    side = 2 * radius + 1
    # scipy.signal.windows.gaussian's formula, in its order of operations (bit-identical, tested):
    # importing scipy.signal takes 1.5 s, a third of the start-up of a process that draws prompts.
    std = side / 4
    offsets = np.arange(side, dtype=np.float64) - (side - 1.0) / 2.0
    window = np.exp(-(offsets**2) / (2 * std * std))
    kernel = np.outer(window, window)
    kernel.setflags(write=False)
    return kernel


def kernel_radius(width: int) -> int:
    """Gaussian radius used for prompts of the given output width."""
    return int(width / GAUSSIAN_SCALE)


def rescale_keypoints(
    kps: ArrayLike, orig_hw: tuple[int, int], out_hw: tuple[int, int]
) -> NDArray[np.float64]:
    """Scale (x, y) from an H0×W0 image to an H×W image; confidences are kept.

    Parameters
    ----------
    kps : array_like, shape [..., 3]
    orig_hw, out_hw : (int, int)

    Returns
    -------
    ndarray, shape [..., 3], float64
    """
    out = np.array(kps, dtype=np.float64)
    # Multiply by the precomputed ratio (not x*W/W0) to round exactly like the official resize.
    out[..., 0] *= out_hw[1] / orig_hw[1]
    out[..., 1] *= out_hw[0] / orig_hw[0]
    return out


def keypoints_in_frame(kps: ArrayLike, hw: tuple[int, int]) -> NDArray[np.bool_]:
    """Whether each (x, y) lies in [0, W)×[0, H).

    Parameters
    ----------
    kps : array_like, shape [..., 3] (or [..., 2])
    hw : (int, int)

    Returns
    -------
    ndarray, shape [...], bool
    """
    arr = np.asarray(kps, dtype=np.float64)
    x, y = arr[..., 0], arr[..., 1]
    return (x >= 0) & (x < hw[1]) & (y >= 0) & (y < hw[0])


def _resolve(grouping: Grouping | str) -> Grouping:
    g = prompt_grouping(grouping) if isinstance(grouping, str) else grouping
    if g.num_sources != NUM_KEYPOINTS:
        raise ConfigError(
            f"grouping {g.name!r} groups {g.num_sources} channels; a prompt grouping must group "
            f"the {NUM_KEYPOINTS} COCO keypoints"
        )
    return g


@functools.cache
def _channels_of_keypoint(grouping: Grouping) -> tuple[tuple[int, ...], ...]:
    """Prompt channel indices fed by each keypoint (after background and negatives)."""
    return tuple(
        tuple(2 + p for p, idx in enumerate(grouping.members) if k in idx)
        for k in range(NUM_KEYPOINTS)
    )


def _drawn_points(
    kps: NDArray[np.float64], orig_hw: tuple[int, int], out_hw: tuple[int, int]
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """Keypoint index and integer centre (cx, cy) of every drawn point of [S, 17, 3] skeletons."""
    scaled = rescale_keypoints(kps, orig_hw, out_hw)
    drawn = (
        (kps[..., 2] > VISIBILITY_THRESHOLD)
        & keypoints_in_frame(kps, orig_hw)
        & keypoints_in_frame(scaled, out_hw)
    )
    # Coordinates are >= 0 here, so the cast truncates like int(x).
    centres = scaled[drawn][:, :2].astype(np.intp)
    return np.nonzero(drawn)[1], centres[:, 0], centres[:, 1]


def _stamp_max(canvas: NDArray[np.float64], kernel: NDArray[np.float64], cx: int, cy: int) -> None:
    """canvas = max(canvas, kernel centred at (cx, cy)), the kernel cropped at the borders."""
    r = kernel.shape[0] // 2
    h, w = canvas.shape
    y0, y1 = max(cy - r, 0), min(cy + r + 1, h)
    x0, x1 = max(cx - r, 0), min(cx + r + 1, w)
    view = canvas[y0:y1, x0:x1]
    np.maximum(view, kernel[y0 - cy + r : y1 - cy + r, x0 - cx + r : x1 - cx + r], out=view)


def empty_prompt(
    grouping: Grouping | str,
    out_hw: tuple[int, int],
    with_negatives: bool = True,
    with_background: bool = True,
) -> NDArray[np.float64]:
    """The prompt of an image without keypoints: background 1, every other channel 0 (all zeros
    for a layout without the background channel).

    Returns
    -------
    ndarray, shape [Kp + 2, H, W] (one channel fewer per channel left out), float64
    """
    g = _resolve(grouping)
    h, w = as_hw(out_hw, "out_hw", PromptError)
    prompt = np.zeros((g.num_parts + int(with_background) + int(with_negatives), h, w))
    if with_background:
        prompt[0] = 1.0
    return prompt


def build_prompt(
    target: ArrayLike | None,
    negatives: ArrayLike | None,
    grouping: Grouping | str,
    out_hw: tuple[int, int],
    orig_hw: tuple[int, int] | None = None,
    with_negatives: bool = True,
    with_background: bool = True,
) -> NDArray[np.float64]:
    """Build the prompt heatmaps of one image, exactly as the official pipeline does.

    Every keypoint with c > 0.3 that lies inside both the original and the output frame gets a
    Gaussian of radius int(W / 11) centred at (int(x'), int(y')) in output pixels. Each part
    channel is the pixel-wise max over its member keypoints of ``target``; the negative channel is
    the pixel-wise max over all keypoints of all ``negatives``; background = clip(1 - sum of the
    other channels, 0, 1). Points out of frame or below the threshold are ignored.

    Parameters
    ----------
    target : array_like, shape [17, 3], or None
        Target (x, y, c) in original-image pixels; None means no target keypoints.
    negatives : array_like, shape [M, 17, 3], or None
        Other people's keypoints in the same frame; None or M = 0 means none. A single
        [17, 3] skeleton is taken as M = 1.
    grouping : Grouping or str
        A prompt grouping (e.g. ``"cck8"``, ``"cck6"``).
    out_hw : (int, int)
        Output (H, W), the model's input image size.
    orig_hw : (int, int), optional
        (H0, W0) of the image the coordinates refer to; None means they are already in output
        pixels.
    with_negatives : bool
        False for models without the negative channel: ``negatives`` are ignored and the output
        is [background, part 1 .. part Kp].
    with_background : bool
        False for models without the background channel (official ``no_background_token``).

    Returns
    -------
    ndarray, shape [Kp + 2, H, W], float64
        Channels [background, negative keypoints, part 1 .. part Kp], values in [0, 1]; the
        channels left out by ``with_negatives``/``with_background`` are removed.
    """
    g = _resolve(grouping)
    out_size = as_hw(out_hw, "out_hw", PromptError)
    orig_size = out_size if orig_hw is None else as_hw(orig_hw, "orig_hw", PromptError)
    empty = np.zeros((0, NUM_KEYPOINTS, 3))
    tgt = empty if target is None else validate_keypoints(target, "target")
    if target is not None and tgt.ndim != 2:
        raise KeypointFormatError(f"target: expected shape [17, 3], got {list(tgt.shape)}")
    negs = (
        empty
        if negatives is None or not with_negatives
        else validate_keypoints(negatives, "negatives")
    )

    kernel = gaussian_kernel(kernel_radius(out_size[1]))
    prompt = np.zeros((g.num_parts + 2, *out_size))
    channels = _channels_of_keypoint(g)
    for k, cx, cy in zip(*_drawn_points(tgt.reshape(-1, NUM_KEYPOINTS, 3), orig_size, out_size)):
        for ch in channels[k]:
            _stamp_max(prompt[ch], kernel, int(cx), int(cy))
    for _, cx, cy in zip(*_drawn_points(negs.reshape(-1, NUM_KEYPOINTS, 3), orig_size, out_size)):
        _stamp_max(prompt[1], kernel, int(cx), int(cy))
    prompt[0] = np.clip(1.0 - prompt[1:].sum(axis=0), 0.0, 1.0)
    dropped = [c for c, keep in ((0, with_background), (1, with_negatives)) if not keep]
    return np.delete(prompt, dropped, axis=0) if dropped else prompt
