"""KPRTrack: online, appearance-only multi-person tracking with keypoint prompts (KPR §4.5).

Per frame: every detection's crop and prompt comes from :func:`kpr.pose.person_crops` (its own
keypoints positive, the other people's keypoints inside its box negative), the frame's crops are
embedded in one batch, and detections are matched to live tracks by :func:`match` on the
visibility-aware part distance, gated at ``TrackerConfig.gate``. Matched tracks fold the
detection's visible parts into their memory; unmatched detections start tracks; tracks unmatched
for more than ``max_age`` frames end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from kpr.imaging import ImageLike, to_rgb_array
from kpr.keypoints.prompts import VISIBILITY_THRESHOLD
from kpr.pose import Person, person_crops
from kpr.predictor import Embeddings, KPRPredictor
from kpr.retrieval.distance import part_distance
from kpr.tracking.config import TrackerConfig
from kpr.tracking.matching import box_iou, match
from kpr.tracking.memory import Appearance, start_appearance, update_appearance, visible_slots


@dataclasses.dataclass(frozen=True, eq=False)
class Track:
    """A live track: its id (from 1), appearance memory, last box and frame, and match count."""

    track_id: int
    appearance: Appearance
    box: tuple[float, float, float, float]
    last_frame: int
    hits: int


@dataclasses.dataclass(frozen=True, eq=False)
class TrackedPerson:
    """One detection of a frame with the track it was given.

    ``detection`` is its index in the frame's ``people``; ``distance`` is the gated distance to
    its track's memory, or None when the detection started the track.
    """

    track_id: int
    person: Person
    detection: int
    distance: float | None


class KPRTracker:
    """Online tracker; feed frames in order with :meth:`update`.

    Parameters
    ----------
    predictor : KPRPredictor
    config : TrackerConfig
    batch_size : int
        Crops per forward pass (a frame's crops are one ``embed`` call).
    """

    def __init__(
        self, predictor: KPRPredictor, config: TrackerConfig | None = None, batch_size: int = 32
    ) -> None:
        self.predictor = predictor
        self.config = config or TrackerConfig()
        self.batch_size = batch_size
        self.tracks: list[Track] = []
        self.frame_index = -1
        self._next_id = 1

    @property
    def started(self) -> int:
        """How many tracks have been started (the highest id given)."""
        return self._next_id - 1

    def embed_people(self, frame: ImageLike, people: Sequence[Person]) -> Embeddings:
        """Embed every person of a frame in one batch: [N, 1+K, D] embeddings. A person with no
        keypoint above the prompt threshold inside its box is embedded with the empty prompt."""
        crops = person_crops(frame, people)
        if not self.config.prompts:
            return self.predictor.embed([c.image for c in crops], batch_size=self.batch_size)
        has_prompt = [bool((c.target[:, 2] > VISIBILITY_THRESHOLD).any()) for c in crops]
        return self.predictor.embed(
            [c.image for c in crops],
            keypoints=[c.target if p else None for c, p in zip(crops, has_prompt, strict=True)],
            negative_keypoints=[
                c.negatives if p else None for c, p in zip(crops, has_prompt, strict=True)
            ],
            batch_size=self.batch_size,
        )

    def distances(self, detections: Embeddings) -> np.ndarray:
        """[T, N] distance of live tracks to detections: part distance / 2, in [0, 1]."""
        if not self.tracks or not len(detections):
            return np.zeros((len(self.tracks), len(detections)))
        memory = torch.stack([t.appearance.embeddings for t in self.tracks])
        seen = torch.stack([t.appearance.seen for t in self.tracks])
        dist = part_distance(
            memory, detections.embeddings, seen, visible_slots(detections.visibility)
        )
        return dist.double().numpy() / 2.0

    def update(self, frame: ImageLike, people: Sequence[Person]) -> list[TrackedPerson]:
        """Track one frame's people (in the frame's pixels); returns the kept ones, in order."""
        self.frame_index += 1
        cfg = self.config
        kept = [i for i, p in enumerate(people) if p.score >= cfg.min_confidence]
        if not kept:
            self._expire()
            return []
        rgb = to_rgb_array(frame, "frame")
        dets = [people[i] for i in kept]
        emb = self.embed_people(rgb, dets)
        emb = Embeddings(emb.embeddings.float().cpu(), emb.visibility.cpu(), emb.prompted.cpu())
        dist = self.distances(emb)
        allowed = None
        if cfg.iou_gate is not None and self.tracks:
            iou = box_iou([t.box for t in self.tracks], [p.box for p in dets])
            allowed = iou >= cfg.iou_gate
        assignment = match(dist, cfg.gate, allowed)
        out: dict[int, TrackedPerson] = {}
        for t, d in assignment.pairs:
            track = self.tracks[t]
            self.tracks[t] = Track(
                track.track_id,
                update_appearance(
                    track.appearance, emb.embeddings[d], emb.visibility[d], cfg.memory
                ),
                dets[d].box,
                self.frame_index,
                track.hits + 1,
            )
            out[d] = TrackedPerson(track.track_id, dets[d], kept[d], float(dist[t, d]))
        for d in assignment.unmatched_detections:
            track = Track(
                self._next_id,
                start_appearance(emb.embeddings[d], emb.visibility[d]),
                dets[d].box,
                self.frame_index,
                1,
            )
            self._next_id += 1
            self.tracks.append(track)
            out[d] = TrackedPerson(track.track_id, dets[d], kept[d], None)
        self._expire()
        return [out[d] for d in range(len(dets))]

    def _expire(self) -> None:
        # A track matched at frame f can still be matched at frame f + max_age + 1.
        self.tracks = [
            t for t in self.tracks if self.frame_index - t.last_frame <= self.config.max_age
        ]
