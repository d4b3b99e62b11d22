"""The JSON the server reads and writes, as Pydantic models (also its OpenAPI schema at /docs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kpr.keypoints.coco import NUM_KEYPOINTS

Point = tuple[float, float, float]
"""(x, y, confidence) in the crop's pixels; confidence in [0, 1], ≤ 0.3 means "not placed"."""


def _check_confidence(points: list[Point]) -> list[Point]:
    for j, (_, _, c) in enumerate(points):
        if not 0.0 <= c <= 1.0:
            raise ValueError(f"point {j}: confidence {c} is not in [0, 1]")
    return points


Skeleton = Annotated[
    list[Point],
    Field(min_length=NUM_KEYPOINTS, max_length=NUM_KEYPOINTS),
    AfterValidator(_check_confidence),
]
"""17 COCO points, in COCO order."""

MAX_NEGATIVES = 16


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Prompt(_Model):
    """The ``prompt`` form field of ``POST /api/query``: the target and the other people."""

    keypoints: Skeleton | None = None
    negatives: Annotated[list[Skeleton], Field(max_length=MAX_NEGATIVES)] = []


class Match(_Model):
    """One gallery crop: part-based distance, per-slot distances and the crop's visibility.

    ``part_distances`` and ``visibility`` have one entry per slot (foreground, then the K parts);
    a slot not visible in both crops has distance null. ``distance`` is null when no slot is.
    """

    rank: int
    name: str
    distance: float | None
    part_distances: list[float | None]
    visibility: list[float]


class Retrieval(_Model):
    """The query's top-k matches, its visibility per slot and its part-attention maps (PNG data
    URLs, foreground first, each overlaid on the crop as the model saw it)."""

    matches: list[Match]
    visibility: list[float]
    part_maps: list[str]


class QueryResponse(Retrieval):
    """``POST /api/query``: the prompted answer, and the same crop without prompt beside it."""

    prompted: bool
    without_prompt: Retrieval
    elapsed_ms: float


class Proposal(_Model):
    """People in a crop (target first), the target and the others, as the page edits them."""

    people: list[Skeleton]
    target: Skeleton | None
    negatives: list[Skeleton]
    ambiguous: bool
    source: str


class GalleryPage(_Model):
    total: int
    offset: int
    names: list[str]


class PromptGroup(_Model):
    name: str
    colour: str
    keypoints: list[int]


class ServerInfo(_Model):
    """What the page needs to draw prompts and results for this model and index."""

    checkpoint: str
    fingerprint: str
    image_size: tuple[int, int]
    slots: list[str]
    slot_colours: list[str]
    keypoint_names: list[str]
    keypoint_colours: list[str]
    keypoint_groups: list[int]
    skeleton_edges: list[tuple[int, int]]
    prompt_groups: list[PromptGroup]
    negative_colour: str
    gallery_size: int
    top_k: int
    pose: bool
    max_upload_bytes: int
    max_negatives: int


class Health(_Model):
    status: str
    gallery_size: int
    queue_pending: int
    queue_capacity: int


class ErrorBody(_Model):
    detail: str
