"""Uploaded bytes → an RGB crop, or an :class:`UploadError` whose status and message say why not.

Checked before any pixel is decoded: the declared content type, the format PIL reads from the
header, and the pixel count from the header (a small file can expand to gigabytes). Truncated and
corrupt files fail at decode time.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from kpr.errors import ImageReadError, KPRError
from kpr.imaging import check_image_size, rgb_from_pil

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "BMP": "image/bmp"}
# Browsers send the real type; curl and scripts often send octet-stream: the bytes decide then.
ACCEPTED_TYPES = {*FORMATS.values(), "image/jpg", "application/octet-stream", ""}
_KINDS = "a JPEG, PNG, WebP or BMP crop"


class UploadError(KPRError):
    """A request the server refuses: ``status`` is the HTTP code (4xx), the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadLimits:
    """``max_bytes`` per uploaded file, ``max_pixels`` per decoded image."""

    max_bytes: int = 8 << 20
    max_pixels: int = 16_000_000


def decode_image(
    data: bytes, content_type: str | None, limits: UploadLimits, field: str = "image"
) -> NDArray[np.uint8]:
    """Decode one uploaded crop to RGB uint8 [H, W, 3]."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in ACCEPTED_TYPES:
        raise UploadError(415, f"{field}: content type {declared!r} is not accepted; send {_KINDS}")
    if not data:
        raise UploadError(400, f"{field}: the uploaded file is empty")
    if len(data) > limits.max_bytes:
        raise UploadError(
            413, f"{field}: {len(data):,} bytes, above the upload limit of {limits.max_bytes:,}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise UploadError(415, f"{field}: not an image PIL can read; send {_KINDS}") from None
        except Image.DecompressionBombError:
            raise UploadError(
                413,
                f"{field}: image too large: more than {2 * (Image.MAX_IMAGE_PIXELS or 0):,} "
                f"pixels, above the server's limit of {limits.max_pixels:,}",
            ) from None
        if img.format not in FORMATS:
            raise UploadError(415, f"{field}: {img.format} images are not accepted; send {_KINDS}")
        w, h = img.size
        if w * h > limits.max_pixels:
            raise UploadError(
                413,
                f"{field}: image is {w}×{h} ({w * h:,} pixels), above the server's limit "
                f"of {limits.max_pixels:,}",
            )
        try:
            check_image_size(w, h, field)
        except ImageReadError as exc:
            raise UploadError(413, str(exc)) from None
        try:
            img.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise UploadError(
                400, f"{field}: truncated or corrupt {img.format} file ({exc})"
            ) from None
        return rgb_from_pil(img, field)
