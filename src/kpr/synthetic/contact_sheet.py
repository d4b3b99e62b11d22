"""Contact sheets: a grid of dataset crops with their keypoint prompts drawn on top.

Target keypoints and limbs are coloured by body part (``kpr.viz.drawing.draw_prompt``); negative
keypoints (other people) are red. Each tile is captioned with its pid and, when the dataset has an
``occlusion`` column, its occlusion kind.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from kpr.imaging import read_rgb
from kpr.io_utils import write_bytes_atomic
from kpr.keypoints import read_keypoints_file
from kpr.viz.drawing import draw_prompt

_OCCLUSION_TAGS = {"none": "", "object": "obj", "multi_person": "multi"}
_CAPTION_H = 14


def _tile(root: Path, row: dict[str, str], tile_hw: tuple[int, int]) -> np.ndarray:
    """One captioned tile [tile_h + caption, tile_w, 3] uint8 RGB; the crop keeps its aspect."""
    kp_path = (root / "keypoints" / Path(row["image"]).relative_to("images")).with_suffix(".json")
    image = read_rgb(root / row["image"])
    scale = min(tile_hw[0] / image.shape[0], tile_hw[1] / image.shape[1])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    big = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if kp_path.is_file():
        skeletons = read_keypoints_file(kp_path)
        big = draw_prompt(big, skeletons.target, skeletons.negatives, scale=scale)
    tile = np.zeros((*tile_hw, 3), np.uint8)
    tile[: big.shape[0], : big.shape[1]] = big
    caption = np.full((_CAPTION_H, tile_hw[1], 3), 30, np.uint8)
    text = f"{row['pid']} {_OCCLUSION_TAGS.get(row.get('occlusion', ''), row.get('occlusion', ''))}"
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(caption, text.strip(), (2, 10), font, 0.33, (235, 235, 235), 1, cv2.LINE_AA)
    return np.concatenate([tile, caption], axis=0)


def select_rows(rows: Sequence[dict[str, str]], num: int, seed: int = 0) -> list[dict[str, str]]:
    """Pick ``num`` rows at random.

    With an ``occlusion`` column: half multi-person, a quarter object-occluded and the rest
    unoccluded, topped up from whatever is left when a kind runs short.
    """
    rng = np.random.default_rng(seed)
    order = [rows[i] for i in rng.permutation(len(rows))]
    if not order or "occlusion" not in order[0]:
        return order[:num]
    quota = {"multi_person": num // 2, "object": num // 4}
    quota["none"] = num - sum(quota.values())
    picked: list[dict[str, str]] = []
    for kind, count in quota.items():
        picked += [r for r in order if r["occlusion"] == kind][:count]
    chosen = {id(r) for r in picked}
    picked += [r for r in order if id(r) not in chosen][: num - len(picked)]
    return picked


def contact_sheet(
    root: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    num: int = 48,
    columns: int = 12,
    tile_hw: tuple[int, int] = (256, 128),
    seed: int = 0,
) -> np.ndarray:
    """Build a contact sheet of the ``kpr-folder`` dataset at ``root``; write it to ``out_path``.

    Returns the sheet, [rows * (tile_h + 14), columns * tile_w, 3] uint8 RGB.
    """
    base = Path(root)
    with open(base / "annotations.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    chosen = select_rows(rows, num, seed)
    tiles = [_tile(base, row, tile_hw) for row in chosen]
    blank = np.zeros((tile_hw[0] + _CAPTION_H, tile_hw[1], 3), np.uint8)
    tiles += [blank] * (-len(tiles) % columns)
    starts = range(0, len(tiles), columns)
    grid_rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in starts]
    sheet = np.concatenate(grid_rows, axis=0) if grid_rows else blank
    if out_path is not None:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError("PNG encoding failed")
        write_bytes_atomic(out_path, buf.tobytes())
    return sheet
