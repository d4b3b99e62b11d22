"""Tracker inputs → frames with their people.

Three kinds of input:

- a PoseTrack21 video JSON: frames from its ``file_name``s, people from its annotations (given
  boxes and keypoints, the paper's setting);
- a video file or a frame folder plus a MOT detection file (``--detections``, keypoints optional);
- a video file or a frame folder alone: people found by :func:`kpr.pose.detect_people`.

People without keypoints are tracked with the empty prompt; keypoints outside a person's box are
left out of its prompt (``person_crops``) and reported once per input with the first offender.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from kpr.errors import DatasetError
from kpr.imaging import read_rgb
from kpr.pose import Person
from kpr.tracking.mot import read_mot
from kpr.tracking.posetrack import find_frames_root, read_posetrack

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


class TrackingInputWarning(UserWarning):
    """A tracker input was usable but not as given (e.g. keypoints outside their box)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Frame:
    """One input frame: ``number`` (from 1), ``name`` (output file stem), ``image`` [H, W, 3] RGB,
    ``people`` (None: run the pose front end), ``image_id`` and ``file_name`` for PoseTrack21
    output."""

    number: int
    name: str
    image: NDArray[np.uint8]
    people: list[Person] | None
    image_id: int
    file_name: str


@dataclasses.dataclass(frozen=True, eq=False)
class TrackInput:
    """An opened input: its frames (lazily read), their count and the video's name."""

    frames: Iterator[Frame]
    num_frames: int
    name: str


def _outside_box(people: Sequence[tuple[Person, str]], source: str) -> None:
    bad = []
    for person, where in people:
        kps = person.keypoints[person.keypoints[:, 2] > 0]
        x0, y0, x1, y1 = person.box
        out = (
            (kps[:, 0] < x0 - 1)
            | (kps[:, 0] > x1 + 1)
            | (kps[:, 1] < y0 - 1)
            | (kps[:, 1] > y1 + 1)
        )
        if out.any():
            bad.append(where)
    if bad:
        warnings.warn(
            f"{source}: {len(bad)} detections have keypoints outside their box (first: {bad[0]}); "
            "those points are left out of the prompts",
            TrackingInputWarning,
            stacklevel=3,
        )


def _video_frames(path: Path) -> Iterator[tuple[str, NDArray[np.uint8]]]:
    capture = cv2.VideoCapture(str(path))
    try:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield f"{index:06d}", np.ascontiguousarray(bgr[:, :, ::-1])
            index += 1
    finally:
        capture.release()


def _video_length(path: Path) -> int:
    """The frame count of a decodable video; refuses one OpenCV cannot read a frame of."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such video file or frame folder")
    capture = cv2.VideoCapture(str(path))
    try:
        ok = capture.isOpened() and capture.read()[0]
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if not ok:
        raise DatasetError(f"{path}: cannot decode this video (OpenCV read no frame from it)")
    return max(count, 1)


def _folder_images(path: Path) -> list[Path]:
    images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DatasetError(f"{path}: no frames ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return images


def _detections(path: Path) -> dict[int, list[Person]]:
    rows = read_mot(path)
    people: dict[int, list[Person]] = {}
    checked = []
    for frame, items in rows.items():
        for r in items:
            kps = r.keypoints if r.keypoints is not None else np.zeros((17, 3))
            person = Person(kps, r.box, r.score)
            people.setdefault(frame, []).append(person)
            checked.append((person, f"line {r.line}"))
    _outside_box(checked, str(path))
    return people


def open_input(
    source: str | Path, detections: str | Path | None = None, frames_root: str | Path | None = None
) -> TrackInput:
    """Open a PoseTrack21 JSON, a video file or a frame folder (see the module docstring)."""
    source = Path(source)
    if source.suffix.lower() == ".json":
        if detections is not None:
            raise DatasetError(
                f"{source}: a PoseTrack21 JSON brings its detections; drop --detections"
            )
        frames = read_posetrack(source)
        root = Path(frames_root) if frames_root else find_frames_root(source, frames)
        _outside_box(
            [(Person(a.keypoints, a.box, a.score), a.field) for f in frames for a in f.annotations],
            str(source),
        )

        def posetrack_frames() -> Iterator[Frame]:
            for n, f in enumerate(frames, start=1):
                people = [Person(a.keypoints, a.box, a.score) for a in f.annotations]
                yield Frame(
                    n,
                    Path(f.file_name).stem,
                    read_rgb(root / f.file_name),
                    people,
                    f.image_id,
                    f.file_name,
                )

        return TrackInput(posetrack_frames(), len(frames), source.stem)
    given = _detections(Path(detections)) if detections is not None else None
    if source.is_dir():
        images = _folder_images(source)
        items: Iterator[tuple[str, NDArray[np.uint8]]] = ((p.stem, read_rgb(p)) for p in images)
        count, names = len(images), [p.name for p in images]
    else:
        count = _video_length(source)
        items, names = _video_frames(source), None

    def frames_of() -> Iterator[Frame]:
        for n, (name, rgb) in enumerate(items, start=1):
            people = None if given is None else given.get(n, [])
            file_name = names[n - 1] if names else f"{name}.jpg"
            yield Frame(n, name, rgb, people, n, file_name)

    return TrackInput(frames_of(), count, source.stem)
