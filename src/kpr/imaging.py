"""Image loading and the test-time preprocessing (OpenCV bilinear resize, RGB, mean/std)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from kpr.errors import ImageReadError

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]


def read_rgb(path: str | os.PathLike) -> NDArray[np.uint8]:
    """Decode an image file to RGB uint8 [H, W, 3]; a missing or corrupt file raises ImageReadError."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: image file not found")
    data = np.fromfile(path, dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ImageReadError(f"{path}: not a decodable image (corrupt or unsupported format)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def to_rgb_array(image: ImageLike, name: str = "image") -> NDArray[np.uint8]:
    """Paths, PIL images and RGB arrays ([H, W, 3] uint8, or [H, W] grey) → RGB uint8 [H, W, 3]."""
    if isinstance(image, (str, os.PathLike)):
        return read_rgb(image)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise ImageReadError(f"{name}: expected an RGB array [H, W, 3], got shape {list(image.shape)}")
        if image.dtype != np.uint8:
            raise ImageReadError(f"{name}: expected dtype uint8, got {image.dtype}")
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
    """RGB uint8 [H0, W0, 3] → normalised float32 [3, H, W]: the official test-time preprocessing."""
    return torch.from_numpy(normalize_rgb(resize_rgb(rgb, image_size), mean, std))
