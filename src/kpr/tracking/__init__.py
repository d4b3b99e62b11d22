"""KPRTrack: online multi-person tracking with keypoint prompts, and its evaluation (HOTA).

``config`` is the policy, ``matching`` and ``memory`` the pure steps, ``tracker`` the online loop,
``sources`` / ``outputs`` / ``run`` a run on files, ``posetrack`` and ``mot`` the file formats,
``evaluate`` / ``sequences`` the trackeval metrics, ``demo`` and ``cli`` the ``kpr`` verbs.

>>> tracker = KPRTracker(KPRPredictor.from_pretrained("ckpt"))    # doctest: +SKIP
>>> for frame, people in video:                                    # doctest: +SKIP
...     for t in tracker.update(frame, people):
...         print(t.track_id, t.person.box)
"""

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
