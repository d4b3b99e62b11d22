"""KPRTrack: online multi-person tracking with keypoint prompts, and its evaluation (HOTA).

``config`` is the policy, ``matching`` and ``memory`` the pure steps, ``tracker`` the online loop,
``sources`` / ``outputs`` / ``run`` a run on files, ``posetrack`` and ``mot`` the file formats,
``evaluate`` / ``sequences`` the trackeval metrics, ``demo`` and ``cli`` the ``kpr`` verbs.

>>> tracker = KPRTracker(KPRPredictor.from_pretrained("ckpt"))    # doctest: +SKIP
>>> for frame, people in video:                                    # doctest: +SKIP
...     for t in tracker.update(frame, people):
...         print(t.track_id, t.person.box)
"""

from typing import TYPE_CHECKING

from kpr.lazy import lazy_exports

_EXPORTS = {
    "Appearance": "kpr.tracking.memory",
    "Assignment": "kpr.tracking.matching",
    "KPRTracker": "kpr.tracking.tracker",
    "Track": "kpr.tracking.tracker",
    "TrackedPerson": "kpr.tracking.tracker",
    "TrackerConfig": "kpr.tracking.config",
    "TrackingMetrics": "kpr.tracking.evaluate",
    "box_iou": "kpr.tracking.matching",
    "evaluate_sequences": "kpr.tracking.evaluate",
    "keypoint_similarity": "kpr.tracking.evaluate",
    "match": "kpr.tracking.matching",
    "read_mot": "kpr.tracking.mot",
    "read_posetrack": "kpr.tracking.posetrack",
    "start_appearance": "kpr.tracking.memory",
    "update_appearance": "kpr.tracking.memory",
    "write_posetrack": "kpr.tracking.posetrack",
}

if TYPE_CHECKING:
    from kpr.tracking.config import TrackerConfig
    from kpr.tracking.evaluate import TrackingMetrics, evaluate_sequences, keypoint_similarity
    from kpr.tracking.matching import Assignment, box_iou, match
    from kpr.tracking.memory import Appearance, start_appearance, update_appearance
    from kpr.tracking.mot import read_mot
    from kpr.tracking.posetrack import read_posetrack, write_posetrack
    from kpr.tracking.tracker import KPRTracker, Track, TrackedPerson

__all__ = [
    "Appearance",
    "Assignment",
    "KPRTracker",
    "Track",
    "TrackedPerson",
    "TrackerConfig",
    "TrackingMetrics",
    "box_iou",
    "evaluate_sequences",
    "keypoint_similarity",
    "match",
    "read_mot",
    "read_posetrack",
    "start_appearance",
    "update_appearance",
    "write_posetrack",
]

__getattr__, __dir__ = lazy_exports("kpr.tracking", globals(), _EXPORTS)
