"""A contact sheet of annotated crops with their skeletons, coloured as in ``kpr compare``: the
target's keypoints by body part, the negatives red."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from kpr.imaging import read_rgb
from kpr.io_utils import write_bytes_atomic
from kpr.keypoints.io import read_keypoints_file
from kpr.pose.annotate import CropRecord
from kpr.viz.drawing import draw_prompt

_CAPTION_H = 14


def _tile(record: CropRecord, tile_hw: tuple[int, int]) -> NDArray[np.uint8]:
    image = read_rgb(record.image)
    scale = min(tile_hw[0] / image.shape[0], tile_hw[1] / image.shape[1])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    big = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    skeletons = read_keypoints_file(record.keypoint_file)
    big = draw_prompt(big, skeletons.target, skeletons.negatives, scale=scale)
    tile = np.zeros((*tile_hw, 3), np.uint8)
    tile[: big.shape[0], : big.shape[1]] = big
    caption = np.full((_CAPTION_H, tile_hw[1], 3), 30, np.uint8)
    people = "" if record.num_people is None else f" {record.num_people}p"
    text = f"{record.image.stem[:14]}{people}{' ?' if record.ambiguous else ''}"
    colour = (255, 120, 120) if record.ambiguous else (235, 235, 235)
    cv2.putText(caption, text, (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.33, colour, 1, cv2.LINE_AA)
    return np.concatenate([tile, caption], axis=0)


def select_for_preview(records: Sequence[CropRecord], num: int) -> list[CropRecord]:
    """Up to ``num`` records: ambiguous choices first, then crops with 2+ people, then the rest
    (each in input order), since those are the ones worth checking by eye."""

    def rank(r: CropRecord) -> int:
        return 0 if r.ambiguous else 1 if (r.num_people or 0) >= 2 else 2

    return sorted(records, key=rank)[:num]


def preview_sheet(
    records: Sequence[CropRecord],
    out_path: str | os.PathLike[str],
    num: int = 60,
    columns: int = 10,
    tile_hw: tuple[int, int] = (256, 128),
) -> Path:
    """Write a PNG contact sheet of up to ``num`` crops (``select_for_preview``); returns its path.

    Each tile is captioned with the crop's name, its people count (``2p``) and ``?`` in red when
    the target choice was ambiguous. The sheet is [rows · (tile_h + 14), columns · tile_w, 3].
    """
    chosen = select_for_preview(records, num)
    tiles = [_tile(r, tile_hw) for r in chosen]
    columns = max(1, min(columns, len(tiles)))
    blank = np.zeros((tile_hw[0] + _CAPTION_H, tile_hw[1], 3), np.uint8)
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    sheet = np.concatenate(rows, axis=0) if rows else blank
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("OpenCV could not encode the preview PNG")
    write_bytes_atomic(out_path, png.tobytes())
    return Path(out_path)
