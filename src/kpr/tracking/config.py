"""The tracker's policy as one typed, frozen config (KPRTrack, KPR §4.5)."""

from __future__ import annotations

import dataclasses
import math

from kpr.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    """How detections become tracks.

    Attributes
    ----------
    gate : float
        A track and a detection may be matched only if their distance is strictly below ``gate``.
        The distance is the visibility-aware part distance (mean Euclidean distance of unit
        vectors over the parts visible in both, in [0, 2]) divided by 2, as the official KPR demo
        does, so it lies in [0, 1]. The paper's threshold is 0.2.
    memory : float
        Per-part exponential moving average of a track's appearance: a matched part becomes
        ``normalise(memory * old + (1 - memory) * new)``. 0 keeps only the last sighting. Parts
        the detection does not show are left unchanged; a part the track has never shown takes the
        detection's embedding as it is.
    max_age : int
        Frames a track survives without a match; after that it ends and its id is never reused.
    min_confidence : float
        Detections scoring below this are ignored (not matched, no track started).
    iou_gate : float or None
        Optional motion cue, off (None) by default as in the paper: when set, a pair whose box IoU
        (the track's last box against the detection) is below it cannot be matched.
    prompts : bool
        Embed each detection with its keypoints as positive prompt and the other people's
        keypoints inside its box as negatives. False = the empty prompt for every detection (the
        paper's "w/o prompt" row, same weights).
    """

    gate: float = 0.2
    memory: float = 0.9
    max_age: int = 30
    min_confidence: float = 0.0
    iou_gate: float | None = None
    prompts: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gate) and 0.0 < self.gate <= 1.0):
            raise ConfigError(f"TrackerConfig.gate must be in (0, 1], got {self.gate}")
        if not 0.0 <= self.memory < 1.0:
            raise ConfigError(f"TrackerConfig.memory must be in [0, 1), got {self.memory}")
        if isinstance(self.max_age, bool) or not isinstance(self.max_age, int) or self.max_age < 0:
            raise ConfigError(f"TrackerConfig.max_age must be an integer >= 0, got {self.max_age}")
        if not math.isfinite(self.min_confidence):
            raise ConfigError("TrackerConfig.min_confidence must be a finite number")
        if self.iou_gate is not None and not 0.0 <= self.iou_gate <= 1.0:
            raise ConfigError(
                f"TrackerConfig.iou_gate must be in [0, 1] or None, got {self.iou_gate}"
            )
