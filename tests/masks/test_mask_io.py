from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kpr.errors import MaskFormatError
from kpr.masks import (
    ATR,
    read_instance_mask,
    read_label_png,
    read_part_labels,
    read_person_mask,
)


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode=mode).save(path)
    return path


def test_person_mask_png(tmp_path: Path):
    labels = np.array([[0, 1, 2], [1, 1, 0]], np.uint8)
    masks = read_person_mask(save(tmp_path / "m.png", labels))
    assert np.array_equal(masks.person, labels)
    assert masks.source == str(tmp_path / "m.png")


def test_person_mask_png_with_unknown_values_names_the_file_and_values(tmp_path: Path):
    path = save(tmp_path / "bad.png", np.array([[0, 1, 4], [9, 9, 2]], np.uint8))
    with pytest.raises(MaskFormatError, match=rf"{path}: unknown label value\(s\) \[4, 9\]"):
        read_person_mask(path)


def test_palette_png_is_read_as_indices_not_colours(tmp_path: Path):
    # SCHP saves its label maps as palette PNGs.
    img = Image.fromarray(np.array([[0, 9], [13, 18]], np.uint8), mode="P")
    img.putpalette([v for i in range(256) for v in (i * 7 % 256, i * 3 % 256, 255 - i)])
    img.save(tmp_path / "schp.png")
    masks = read_part_labels(tmp_path / "schp.png", "lip")
    assert masks.parts.tolist() == [[0, 9], [13, 18]]
    assert masks.person.tolist() == [[0, 1], [1, 1]]


def test_part_labels_png_with_a_person_mask(tmp_path: Path):
    person = read_person_mask(save(tmp_path / "m.png", np.array([[1, 2]], np.uint8)))
    masks = read_part_labels(save(tmp_path / "p.png", np.array([[11, 4]], np.uint8)), ATR, person)
    assert masks.person.tolist() == [[1, 2]] and masks.parts.tolist() == [[11, 4]]


def test_sixteen_bit_instance_ids(tmp_path: Path):
    ids = np.array([[0, 300, 300], [1000, 0, 0]], np.uint16)
    path = tmp_path / "ids.png"
    Image.fromarray(ids).save(path)
    assert read_instance_mask(path, 300).person.tolist() == [[0, 1, 1], [2, 0, 0]]


def test_colour_png_is_refused_naming_the_file(tmp_path: Path):
    path = save(tmp_path / "rgb.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(MaskFormatError, match=rf"{path}: mask has image mode 'RGB'"):
        read_label_png(path)


@pytest.mark.parametrize("content", [None, b"not a png"])
def test_missing_or_corrupt_file_names_the_file(tmp_path: Path, content):
    path = tmp_path / "m.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MaskFormatError, match=rf"{path}: cannot read mask file"):
        read_person_mask(path)
