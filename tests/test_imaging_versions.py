"""Bad and unusual images read the same on every OpenCV kpr allows (issue 12, item 5).

OpenCV 4.9 decodes a truncated JPEG (the missing rows grey) where 4.10+ refuses it, and only
OpenCV 5 decodes GIF. kpr refuses truncated JPEGs itself and decodes GIFs with PIL, so the
answer does not depend on the OpenCV installed (``make check-ranges`` runs this file on 4.9 and 5).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kpr.errors import ImageReadError
from kpr.imaging import jpeg_is_truncated, read_rgb

RNG = np.random.default_rng(0)
_ROWS, _COLS = np.mgrid[0:64, 0:32]
IMAGE = np.stack([_ROWS * 4, _COLS * 8, (_ROWS + _COLS) * 2], axis=-1)
IMAGE = np.clip(IMAGE + RNG.integers(0, 16, IMAGE.shape), 0, 255).astype(np.uint8)


def encoded(fmt: str, image: np.ndarray = IMAGE, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **options)
    return buffer.getvalue()


def with_thumbnail(jpeg: bytes) -> bytes:
    """``jpeg`` with an APP1 segment holding a complete small JPEG (as EXIF thumbnails do): the
    file then holds a scan and an end-of-image marker before its own image starts."""
    thumbnail = encoded("JPEG", IMAGE[:8, :8])
    payload = b"Exif\x00\x00" + thumbnail
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


JPEGS = {
    "baseline": encoded("JPEG", quality=90),
    "progressive": encoded("JPEG", quality=90, progressive=True),
    "thumbnail": with_thumbnail(encoded("JPEG", quality=90)),
}


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", JPEGS)
def test_complete_jpegs_are_read_and_not_taken_for_truncated(tmp_path, kind):
    data = JPEGS[kind]
    assert not jpeg_is_truncated(data)
    rgb = read_rgb(write(tmp_path, "ok.jpg", data))
    assert rgb.shape == IMAGE.shape and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - IMAGE.astype(int)).mean() < 20  # the image, not grey
    # Bytes after the end-of-image marker (some cameras append data) do not make it truncated.
    assert not jpeg_is_truncated(data + b"\x00" * 16)


@pytest.mark.parametrize("kind", JPEGS)
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, -2])
def test_truncated_jpegs_are_refused_on_every_opencv(tmp_path, kind, keep):
    data = JPEGS[kind]
    cut = data[: int(len(data) * keep)] if keep > 0 else data[:keep]
    assert jpeg_is_truncated(cut)
    path = write(tmp_path, "cut.jpg", cut)
    with pytest.raises(ImageReadError, match=r"cut\.jpg: truncated JPEG"):
        read_rgb(path)


def test_a_jpeg_cut_inside_its_thumbnail_or_headers_is_truncated():
    data = JPEGS["thumbnail"]
    thumbnail_end = data.index(b"\xff\xd9") + 2  # the thumbnail's own end-of-image marker
    assert not jpeg_is_truncated(data)
    for cut in (40, thumbnail_end, thumbnail_end + 10, data.rfind(b"\xff\xda")):
        assert jpeg_is_truncated(data[:cut]), cut


@pytest.mark.parametrize("transparency", [False, True])
def test_gifs_decode_to_their_first_frame_in_rgb_on_every_opencv(tmp_path, transparency):
    palette_image = Image.fromarray(IMAGE).quantize(colors=64)
    second = Image.fromarray(255 - IMAGE).quantize(colors=64)
    options = {"transparency": 0} if transparency else {}
    buffer = io.BytesIO()
    palette_image.save(buffer, "GIF", save_all=True, append_images=[second], **options)
    path = write(tmp_path, "anim.gif", buffer.getvalue())
    rgb = read_rgb(path)
    with Image.open(path) as img:
        expected = np.asarray(img.convert("RGB"))
    assert rgb.shape == IMAGE.shape and rgb.dtype == np.uint8
    assert np.array_equal(rgb, expected)
    assert rgb.flags.c_contiguous


def test_a_truncated_gif_is_a_one_line_error(tmp_path):
    data = encoded("GIF")
    path = write(tmp_path, "cut.gif", data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.gif: not a decodable GIF") as error:
        read_rgb(path)
    assert "\n" not in str(error.value)


def test_an_oversized_gif_is_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setenv("KPR_MAX_IMAGE_PIXELS", "1000")
    path = write(tmp_path, "big.gif", encoded("GIF"))
    with pytest.raises(ImageReadError, match=r"big\.gif: image is 32×64 \(2,048 pixels\)"):
        read_rgb(path)
