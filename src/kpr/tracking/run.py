"""One tracking run: an input's frames through the tracker into the outputs, with a progress bar."""

from __future__ import annotations

import dataclasses
import time

from tqdm import tqdm

from kpr.pose import detect_people
from kpr.tracking.outputs import TrackOutputs
from kpr.tracking.sources import TrackInput
from kpr.tracking.tracker import KPRTracker


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """Frames and detections tracked, tracks started, wall time (s), and the detections ignored
    below ``TrackerConfig.min_confidence``."""

    frames: int
    detections: int
    tracks: int
    seconds: float
    ignored: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def run_tracking(
    source: TrackInput,
    tracker: KPRTracker,
    outputs: TrackOutputs | None = None,
    *,
    estimator: str | None = "mediapipe",
    detector: str | None = None,
    progress: bool = True,
) -> RunSummary:
    """Track every frame of ``source``. Frames without given people go through
    ``kpr.pose.detect_people(estimator, detector)``. ``outputs`` are closed at the end, also when
    interrupted, so what was tracked so far is kept."""
    start = time.perf_counter()
    frames = detections = ignored = 0
    bar = tqdm(
        source.frames,
        total=source.num_frames,
        desc=f"tracking {source.name}",
        unit="frame",
        disable=not progress,
    )
    try:
        for frame in bar:
            people = frame.people
            if people is None:
                people = detect_people(
                    frame.image, estimator, detector, name=f"{source.name} frame {frame.number}"
                )
            tracked = tracker.update(frame.image, people)
            if outputs is not None:
                outputs.add(frame, tracked)
            frames += 1
            detections += len(tracked)
            ignored += len(people) - len(tracked)
    finally:
        bar.close()
        if outputs is not None:
            outputs.close()
    seconds = time.perf_counter() - start
    return RunSummary(frames, detections, tracker.started, seconds, ignored)
