from __future__ import annotations

import numpy as np
import pytest

from kpr.errors import MaskFormatError
from kpr.masks import LIP, CropMasks, instance_mask, part_labels, person_mask


def test_person_mask_keeps_the_three_labels():
    labels = np.array([[0, 1], [2, 1]])
    masks = person_mask(labels, "a.png")
    assert masks.person.dtype == np.uint8 and masks.hw == (2, 2)
    assert masks.target.tolist() == [[False, True], [False, True]]
    assert masks.others.tolist() == [[False, False], [True, False]]


def test_person_mask_with_unknown_values_names_the_source_and_values():
    with pytest.raises(MaskFormatError, match=r"a\.png: unknown label value\(s\) \[3, 255\]"):
        person_mask(np.array([[0, 3], [255, 1]]), "a.png")


@pytest.mark.parametrize(
    "array", [np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.float32), np.array([[-1, 0]])]
)
def test_person_mask_refuses_non_label_arrays(array):
    with pytest.raises(MaskFormatError, match="a.png"):
        person_mask(array, "a.png")


def test_instance_mask_target_id_and_other_ids():
    ids = np.array([[0, 7, 7], [3, 0, 12]], np.uint16)
    masks = instance_mask(ids, 7, "i.png")
    assert masks.person.tolist() == [[0, 1, 1], [2, 0, 2]]


def test_instance_mask_without_the_target_lists_the_ids_present():
    with pytest.raises(MaskFormatError, match=r"i\.png: target id 5 .*\[3, 7\]"):
        instance_mask(np.array([[0, 7, 3]]), 5, "i.png")


def test_part_labels_alone_make_every_labelled_pixel_the_target():
    masks = part_labels(np.array([[0, 13], [5, 0]]), "lip", "p.png")
    assert masks.person.tolist() == [[0, 1], [1, 0]]
    assert masks.table is LIP and masks.parts.tolist() == [[0, 13], [5, 0]]


def test_part_labels_with_a_person_mask_keep_its_people():
    person = person_mask(np.array([[2, 1], [1, 0]]), "m.png")
    masks = part_labels(np.array([[5, 13], [5, 0]]), LIP, "p.png", person)
    assert masks.person.tolist() == [[2, 1], [1, 0]]
    assert masks.source == "m.png + p.png"


def test_part_labels_outside_the_table_name_the_values():
    with pytest.raises(MaskFormatError, match=r"p\.png: unknown label value\(s\) \[20, 21\].*lip"):
        part_labels(np.array([[0, 20, 21]]), "lip", "p.png")


def test_part_labels_of_another_size_than_the_person_mask():
    person = person_mask(np.zeros((2, 2), np.uint8), "m.png")
    with pytest.raises(MaskFormatError, match="p.png: part labels are 1x3"):
        part_labels(np.zeros((1, 3), np.uint8), LIP, "p.png", person)


def test_parts_need_their_table():
    with pytest.raises(MaskFormatError, match="without their label table"):
        CropMasks(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))


def test_resized_is_nearest_neighbour_and_keeps_the_labels():
    masks = part_labels(np.array([[0, 13], [5, 0]]), "lip", "p.png")
    big = masks.resized((4, 4))
    assert big.person.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]]
    assert set(np.unique(big.parts)) == {0, 5, 13}
    assert masks.resized((2, 2)) is masks
