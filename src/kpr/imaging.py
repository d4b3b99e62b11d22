"""Image loading and the test-time preprocessing (OpenCV bilinear resize, RGB, mean/std)."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from kpr.errors import ImageReadError

if TYPE_CHECKING:
    import torch

ImageLike = str | os.PathLike | Image.Image | np.ndarray

DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
"""Largest image kpr decodes (≈ 8K video frames fit); ``KPR_MAX_IMAGE_PIXELS`` overrides it. A
small compressed file can expand to gigabytes: the size is read from the header first."""


def max_image_pixels() -> int:
    raw = os.environ.get("KPR_MAX_IMAGE_PIXELS")
    if raw is None:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(raw)
    except ValueError:
        raise ImageReadError(f"KPR_MAX_IMAGE_PIXELS: expected an integer, got {raw!r}") from None
    if value < 1:
        raise ImageReadError(f"KPR_MAX_IMAGE_PIXELS: expected a positive integer, got {value}")
    return value


def check_image_size(width: int, height: int, name: str) -> None:
    """Refuse images above :func:`max_image_pixels` before anything is decoded or allocated."""
    limit = max_image_pixels()
    if width * height > limit:
        raise ImageReadError(
            f"{name}: image is {width}×{height} ({width * height:,} pixels), above kpr's limit of "
            f"{limit:,} (set KPR_MAX_IMAGE_PIXELS to raise it)"
        )


def _header_size(path: Path) -> tuple[int, int] | None:
    """(W, H) from the file header without decoding, or None if PIL does not know the format."""
    try:
        with Image.open(path) as img:
            return img.size
    except Image.DecompressionBombError:
        pil_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        if max_image_pixels() > pil_limit:
            return None  # the user allows more than PIL does: OpenCV decodes, then we check
        raise ImageReadError(
            f"{path}: image too large: more than {pil_limit:,} pixels, above kpr's limit of "
            f"{max_image_pixels():,} (set KPR_MAX_IMAGE_PIXELS to raise it)"
        ) from None
    except (OSError, ValueError, SyntaxError):
        return None


# The same file must read the same on every OpenCV kpr allows (>= 4.9): OpenCV < 4.10 decodes a
# truncated JPEG (the missing part grey) where 4.10+ refuses it, and only OpenCV >= 5 decodes GIF.
# So truncated JPEGs are refused and GIFs decoded by PIL (first frame), whatever the OpenCV.
_JPEG_SOI = b"\xff\xd8\xff"
_GIF_MAGIC = (b"GIF87a", b"GIF89a")


# A marker inside entropy-coded data: 0xFF then neither a stuffed 0x00, a restart marker nor fill.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def jpeg_is_truncated(data: bytes) -> bool:
    """Whether JPEG bytes end before their end-of-image marker: the file was cut short.

    The marker segments are walked by their lengths from the start (so a thumbnail inside an
    APP1 segment, with an end-of-image marker of its own, is skipped), and each scan's
    entropy-coded data up to the next marker. Bytes after the end-of-image marker are ignored. A
    file whose structure is not JPEG's is left for the decoder to judge (``False``).
    """
    pos, size = 2, len(data)
    while True:
        if pos + 2 > size:
            return True
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xD9:  # end of image
            return False
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:  # restart / TEM: no length
            pos += 2
        else:
            if pos + 4 > size:
                return True
            end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
            if end > size:
                return True
            if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
                found = _NEXT_MARKER.search(data, end)
                if found is None:
                    return True
                end = found.start()
            pos = end


def _read_gif(path: Path) -> NDArray[np.uint8]:
    try:
        with Image.open(path) as img:
            img.seek(0)
            rgb = rgb_from_pil(img, str(path))
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageReadError(f"{path}: not a decodable GIF ({exc})") from None
    check_image_size(rgb.shape[1], rgb.shape[0], str(path))
    return np.ascontiguousarray(rgb)


def read_rgb(path: str | os.PathLike) -> NDArray[np.uint8]:
    """Decode an image file to RGB uint8 [H, W, 3].

    Raises
    ------
    ImageReadError
        If the file is missing, corrupt, of an unsupported format, or larger than
        :func:`max_image_pixels`.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: image file not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        size = _header_size(path)
    if size is not None:
        check_image_size(*size, str(path))
    data = np.fromfile(path, dtype=np.uint8)
    head = data[:6].tobytes()
    if head.startswith(_JPEG_SOI) and jpeg_is_truncated(data.tobytes()):
        raise ImageReadError(f"{path}: truncated JPEG (no end-of-image marker after its last scan)")
    if head in _GIF_MAGIC:
        return _read_gif(path)
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except cv2.error as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise ImageReadError(f"{path}: OpenCV cannot decode this image ({reason})") from None
    if bgr is None:
        raise ImageReadError(f"{path}: not a decodable image (corrupt or unsupported format)")
    check_image_size(bgr.shape[1], bgr.shape[0], str(path))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


_WIDE_GREY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def rgb_from_pil(image: Image.Image, name: str = "image") -> NDArray[np.uint8]:
    """A PIL image → RGB uint8 [H, W, 3]. 16-bit grey keeps its top 8 bits, as OpenCV reads such
    files (:func:`read_rgb`); PIL's own ``convert("RGB")`` turns every value above 255 white."""
    if image.mode in _WIDE_GREY_MODES:
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 0xFFFF):
            raise ImageReadError(
                f"{name}: {image.mode} pixel values outside 0..65535; give an 8- or 16-bit image"
            )
        grey = (values.astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "F":
        raise ImageReadError(f"{name}: floating-point image (mode F); give an 8- or 16-bit image")
    return np.asarray(image.convert("RGB"))


def to_rgb_array(image: ImageLike, name: str = "image") -> NDArray[np.uint8]:
    """Paths, PIL images and uint8 arrays → RGB uint8 [H, W, 3].

    Arrays: RGB [H, W, 3], RGBA [H, W, 4] (alpha dropped, as :func:`read_rgb` does for RGBA
    files) or grey [H, W] / [H, W, 1].
    """
    if isinstance(image, (str, os.PathLike)):
        return read_rgb(image)
    if isinstance(image, Image.Image):
        check_image_size(image.width, image.height, name)
        return rgb_from_pil(image, name)
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] in (1, 4):
            image = image[..., 0] if image.shape[2] == 1 else image[..., :3]
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise ImageReadError(
                f"{name}: expected an image array [H, W, 3] (RGB), [H, W, 4] (RGBA) or [H, W] "
                f"(grey), got shape {list(image.shape)}"
            )
        if image.dtype != np.uint8:
            raise ImageReadError(f"{name}: expected dtype uint8, got {image.dtype}")
        check_image_size(image.shape[1], image.shape[0], name)
        return np.ascontiguousarray(image)
    raise ImageReadError(f"{name}: unsupported image type {type(image).__name__}")


def resize_rgb(rgb: NDArray[np.uint8], image_size: tuple[int, int]) -> NDArray[np.uint8]:
    """Resize to exactly (H, W) with OpenCV bilinear (aspect ratio not kept, as officially)."""
    h, w = image_size
    if rgb.shape[:2] == (h, w):
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)


def normalize_rgb(
    rgb: NDArray[np.uint8], mean: tuple[float, float, float], std: tuple[float, float, float]
) -> NDArray[np.float32]:
    """RGB uint8 [H, W, 3] → float32 [3, H, W] of (x / 255 − mean) / std."""
    scaled = rgb.astype(np.float32) / 255.0
    normalised = (scaled - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))


def preprocess(
    rgb: NDArray[np.uint8],
    image_size: tuple[int, int],
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> torch.Tensor:
    """RGB uint8 [H0, W0, 3] → normalised float32 [3, H, W]: official test-time preprocessing."""
    import torch  # here: reading images (the pose front end, ``kpr --help``) needs no torch

    return torch.from_numpy(normalize_rgb(resize_rgb(rgb, image_size), mean, std))
