"""Ranking grids: a query and its top-k gallery matches, with prompts and per-part attention.

One row per crop: the crop with its prompt, the foreground map, then one map per body part, its
border from red (invisible) to green (visible), annotated with visibility and the part's distance to
the query's corresponding part. Row backgrounds: blue = query, green = correct match, red = wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from kpr.io_utils import write_bytes_atomic
from kpr.viz.drawing import draw_prompt, overlay_heatmap

TILE_HW = (192, 96)
_LABEL_W = 150
_BLUE, _GREEN, _RED = (60, 110, 230), (40, 170, 60), (210, 50, 50)


@dataclass(frozen=True)
class RankedItem:
    """A crop as shown in a ranking row.

    ``part_masks`` [K+1, Hf, Wf] (background first); ``visibility`` [1+K] in [0, 1];
    ``part_distances`` [1+K] to the query's slots (NaN where not comparable), None for the query.
    """

    name: str
    image: NDArray[np.uint8]
    part_masks: NDArray
    visibility: NDArray
    target: NDArray | None = None
    negatives: NDArray | None = None
    pid: int | None = None
    correct: bool | None = None
    distance: float | None = None
    part_distances: NDArray | None = None
    rank: int | None = None


def _tile(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return cv2.resize(image, (TILE_HW[1], TILE_HW[0]), interpolation=cv2.INTER_AREA)


def _caption(tile: NDArray[np.uint8], top: str, bottom: str) -> None:
    for y0, y_text, text in ((0, 11, top), (tile.shape[0] - 14, tile.shape[0] - 3, bottom)):
        cv2.rectangle(tile, (0, y0), (tile.shape[1], y0 + 14), (0, 0, 0), -1)
        cv2.putText(
            tile, text, (4, y_text), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (255, 255, 255), 1, cv2.LINE_AA
        )


def _border(tile: NDArray[np.uint8], visibility: float) -> None:
    colour = (int(255 * (1 - visibility)), int(200 * visibility), 0)
    cv2.rectangle(tile, (0, 0), (tile.shape[1] - 1, tile.shape[0] - 1), colour, 3)


def _row(item: RankedItem, part_names: Sequence[str], grouping: str) -> NDArray[np.uint8]:
    h, w = item.image.shape[:2]
    scale = TILE_HW[0] / h
    crop = draw_prompt(
        cv2.resize(item.image, (int(round(w * scale)), TILE_HW[0])),
        item.target,
        item.negatives,
        grouping,
        scale,
    )
    tiles = [_tile(crop)]
    maps = [item.part_masks[1:].max(axis=0), *item.part_masks[1:]]
    for slot, heatmap in enumerate(maps):
        tile = overlay_heatmap(_tile(item.image), heatmap)
        vis = float(item.visibility[slot])
        name = "foreground" if slot == 0 else part_names[slot - 1]
        dist = (
            ""
            if item.part_distances is None or np.isnan(item.part_distances[slot])
            else f" | {item.part_distances[slot]:.2f}"
        )
        _caption(tile, name[:14], f"{vis:.0%}{dist}")
        _border(tile, vis)
        tiles.append(tile)
    background = _BLUE if item.correct is None else (_GREEN if item.correct else _RED)
    label = np.full((TILE_HW[0], _LABEL_W, 3), background, dtype=np.uint8)
    lines = [
        "query" if item.rank is None else f"rank {item.rank}",
        item.name[:20],
        f"pid {item.pid}",
    ]
    if item.distance is not None:
        lines.append(f"dist {item.distance:.3f}")
    common = np.minimum(item.visibility, 1.0)
    lines.append(f"mean vis {common.mean():.2f}")
    for i, line in enumerate(lines):
        cv2.putText(
            label,
            line,
            (6, 22 + 22 * i),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    gap = np.full((TILE_HW[0], 4, 3), 255, dtype=np.uint8)
    return np.concatenate([label, *[np.concatenate([t, gap], axis=1) for t in tiles]], axis=1)


def ranking_grid(
    query: RankedItem, gallery: Sequence[RankedItem], part_names: Sequence[str], grouping: str
) -> NDArray[np.uint8]:
    """RGB image: the query row then one row per gallery item (in the given order)."""
    rows = [_row(item, part_names, grouping) for item in (query, *gallery)]
    spacer = np.full((6, rows[0].shape[1], 3), 255, dtype=np.uint8)
    return np.concatenate([part for row in rows for part in (row, spacer)][:-1], axis=0)


def write_png(path: str | Path, rgb: NDArray[np.uint8]) -> Path:
    """Encode and write a PNG atomically."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed")
    write_bytes_atomic(path, data.tobytes())
    return Path(path)


def select_queries(average_precision: NDArray, num: int, seed: int = 0) -> list[int]:
    """Half the worst queries by AP, half random others (the official tool favours hard ones)."""
    order = np.argsort(average_precision, kind="stable")
    worst = order[: (num + 1) // 2].tolist()
    rest = np.setdiff1d(np.arange(len(average_precision)), worst)
    rng = np.random.default_rng(seed)
    extra = (
        rng.choice(rest, size=min(num - len(worst), len(rest)), replace=False).tolist()
        if len(rest)
        else []
    )
    return [int(i) for i in worst + extra]
