"""What the server computes: a prompted query against the index, with and without its prompt.

:class:`ReidService` is plain Python (no HTTP): the app runs its methods on the model queue's
worker thread, so the predictor and the pose estimator are only ever used by one thread.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from kpr.imaging import resize_rgb
from kpr.keypoints.coco import COCO17_NAMES, NUM_KEYPOINTS, SKELETON_EDGES
from kpr.keypoints.groupings import prompt_grouping, target_grouping
from kpr.predictor import Embeddings, KPRPredictor
from kpr.retrieval.distance import body_part_distance
from kpr.retrieval.index import GalleryIndex, ModelSignature
from kpr.serve.schemas import (
    MAX_NEGATIVES,
    Match,
    PromptGroup,
    Proposal,
    QueryResponse,
    Retrieval,
    ServerInfo,
)
from kpr.viz.drawing import (
    GROUP_COLOURS,
    NEGATIVE_COLOUR,
    group_colour_per_keypoint,
    overlay_heatmap,
)

MAP_MAX_HEIGHT = 256  # part maps are thumbnails: larger models' maps are scaled down to this


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _png_data_url(rgb: NDArray[np.uint8]) -> str:
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def part_map_images(
    rgb: NDArray[np.uint8], part_masks: torch.Tensor, image_size: tuple[int, int]
) -> list[str]:
    """Part-attention maps [K+1, Hf, Wf] (channel 0 = background) → 1+K PNG data URLs: the
    foreground (max over parts) then each part, overlaid on the crop as ``kpr compare`` does."""
    h, w = image_size
    scale = min(1.0, MAP_MAX_HEIGHT / h)
    base = resize_rgb(rgb, (round(h * scale), round(w * scale)))
    maps = part_masks.float().numpy()
    return [_png_data_url(overlay_heatmap(base, m)) for m in (maps[1:].max(axis=0), *maps[1:])]


class ReidService:
    """A predictor, the gallery index it made and an optional pose estimator.

    Raises
    ------
    CheckpointError
        The index was built with other weights than the predictor's.
    """

    def __init__(
        self,
        predictor: KPRPredictor,
        index: GalleryIndex,
        signature: ModelSignature,
        estimator: object | None = None,
        top_k: int = 10,
    ):
        index.signature.check_matches(signature, index.path)
        self.predictor = predictor
        self.index = index
        self.signature = signature
        self.estimator = estimator
        self.top_k = top_k

    def info(self, max_upload_bytes: int) -> ServerInfo:
        config = self.predictor.config
        groups = prompt_grouping(config.prompt_grouping)
        parts = target_grouping(config.target_grouping).part_names
        colours = group_colour_per_keypoint(groups)
        first_group = [
            next((g for g, members in enumerate(groups.members) if k in members), -1)
            for k in range(NUM_KEYPOINTS)
        ]
        # A body part takes the colour of the prompt group of the same name (cck8 ↔ eight).
        slot_colours = ["#e8e8e8"] + [
            _hex(GROUP_COLOURS[(groups.part_names.index(p) if p in groups.part_names else k) % 8])
            for k, p in enumerate(parts)
        ]
        return ServerInfo(
            checkpoint=self.signature.checkpoint,
            fingerprint=self.signature.fingerprint[:12],
            image_size=tuple(config.image_size),
            slots=["foreground", *parts],
            slot_colours=slot_colours,
            keypoint_names=list(COCO17_NAMES),
            keypoint_colours=[_hex(c) for c in colours],
            keypoint_groups=first_group,
            skeleton_edges=list(SKELETON_EDGES),
            prompt_groups=[
                PromptGroup(name=n, colour=_hex(GROUP_COLOURS[g % 8]), keypoints=list(m))
                for g, (n, m) in enumerate(zip(groups.part_names, groups.members))
            ],
            negative_colour=_hex(NEGATIVE_COLOUR),
            gallery_size=len(self.index),
            top_k=self.top_k,
            pose=self.estimator is not None,
            max_upload_bytes=max_upload_bytes,
            max_negatives=MAX_NEGATIVES,
        )

    def _retrieval(self, rgb: NDArray[np.uint8], embedded: Embeddings, k: int) -> Retrieval:
        found = self.index.search(embedded, k)
        rows = found.indices[0].tolist()
        gallery = self.index.rows(rows)
        per_slot = body_part_distance(
            embedded.embeddings, gallery.embeddings, embedded.visibility, gallery.visibility
        )[:, 0, :]  # [S, k]
        shared = (embedded.visibility[0][:, None] > 0) & (gallery.visibility.t() > 0)  # [S, k]
        matches = []
        for rank, (row, distance) in enumerate(zip(rows, found.distances[0].tolist())):
            matches.append(
                Match(
                    rank=rank + 1,
                    name=self.index.names[row],
                    distance=distance if np.isfinite(distance) else None,
                    part_distances=[
                        float(per_slot[s, rank]) if shared[s, rank] else None
                        for s in range(per_slot.shape[0])
                    ],
                    visibility=gallery.visibility[rank].float().tolist(),
                )
            )
        assert embedded.part_masks is not None
        return Retrieval(
            matches=matches,
            visibility=embedded.visibility[0].float().tolist(),
            part_maps=part_map_images(
                rgb, embedded.part_masks[0], self.predictor.config.image_size
            ),
        )

    def query(
        self,
        rgb: NDArray[np.uint8],
        keypoints: NDArray[np.float64] | None,
        negatives: NDArray[np.float64] | None,
        k: int | None = None,
    ) -> QueryResponse:
        """Embed the crop with its prompt and without, and search the index with both.

        ``keypoints`` [17, 3] and ``negatives`` [M, 17, 3] are in the crop's pixels.
        """
        start = time.perf_counter()
        k = k or self.top_k
        p = self.predictor
        prompted = p.prepare(rgb, keypoints, negatives, name="image")
        empty = p.prepare(rgb, None, None, name="image")
        crops = [prompted, empty] if prompted.prompted else [empty]
        embedded = p.embed_batch(
            torch.stack([c.image for c in crops]),
            torch.stack([c.prompt for c in crops]),
            prompted=torch.tensor([c.prompted for c in crops]),
            part_masks=True,
        )
        with_prompt = self._retrieval(rgb, embedded[0], k)
        without = self._retrieval(rgb, embedded[-1], k) if prompted.prompted else with_prompt
        return QueryResponse(
            **with_prompt.model_dump(),
            prompted=prompted.prompted,
            without_prompt=without,
            elapsed_ms=round(1000 * (time.perf_counter() - start), 1),
        )

    def propose(self, rgb: NDArray[np.uint8]) -> Proposal:
        """The pose front end's people, target and negatives for a crop."""
        from kpr.pose import annotate_crop

        assert self.estimator is not None
        found = annotate_crop(rgb, self.estimator, "image")  # type: ignore[arg-type]
        people = [s.tolist() for s in found.skeletons]
        return Proposal(
            people=people,
            target=people[0] if people else None,
            negatives=people[1:],
            ambiguous=bool(found.choice.ambiguous),
            source="pose",
        )

    def stored_prompt(self, row: int) -> Proposal:
        """The prompt a gallery crop was indexed with (empty if it had none)."""
        prompt = self.index.prompt(row)
        if prompt is None:
            return Proposal(people=[], target=None, negatives=[], ambiguous=False, source="index")
        people = [prompt.target.tolist(), *(n.tolist() for n in prompt.negatives)]
        return Proposal(
            people=people, target=people[0], negatives=people[1:], ambiguous=False, source="index"
        )

    def gallery_file(self, name: str) -> Path | None:
        """The file of the gallery item ``name``; None if the index has no such item."""
        row = self.index.position(name)
        return None if row is None else self.index.files[row]
