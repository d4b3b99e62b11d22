"""Every way an image reaches kpr gives the same pixels: files (OpenCV), PIL images and uploads
(PIL) agree on 16-bit grey, and unusable pixel types are refused by name."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from kpr.errors import ImageReadError
from kpr.imaging import read_rgb, to_rgb_array
from kpr.serve.uploads import UploadLimits, decode_image

WIDE = np.random.default_rng(0).integers(0, 1 << 16, (40, 24)).astype(np.uint16)


def test_16_bit_grey_keeps_its_top_8_bits_from_a_file_a_pil_image_and_an_upload(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(WIDE).save(path)
    expected = np.repeat((WIDE >> 8).astype(np.uint8)[..., None], 3, axis=2)
    np.testing.assert_array_equal(read_rgb(path), expected)  # OpenCV's reading
    with Image.open(path) as image:
        assert image.mode == "I;16"
        np.testing.assert_array_equal(to_rgb_array(image), expected)  # PIL clipped it to white
    np.testing.assert_array_equal(
        decode_image(path.read_bytes(), "image/png", UploadLimits()), expected
    )
    as_int32 = Image.fromarray(WIDE.astype(np.int32))
    assert as_int32.mode == "I"
    np.testing.assert_array_equal(to_rgb_array(as_int32), expected)


def test_pixel_types_kpr_cannot_read_are_refused_by_name():
    with pytest.raises(ImageReadError, match=r"crop\.tif: I pixel values outside 0\.\.65535"):
        to_rgb_array(Image.fromarray(np.full((8, 8), 70_000, np.int32)), "crop.tif")
    with pytest.raises(ImageReadError, match=r"crop\.tif: floating-point image \(mode F\)"):
        to_rgb_array(Image.fromarray(np.zeros((8, 8), np.float32)), "crop.tif")


def test_8_bit_modes_are_unchanged(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (16, 8, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    np.testing.assert_array_equal(decode_image(buffer.getvalue(), "image/png", UploadLimits()), rgb)
    grey = Image.fromarray(rgb[..., 0])
    np.testing.assert_array_equal(to_rgb_array(grey), np.repeat(rgb[..., :1], 3, axis=2))
