"""Tracker outputs, written so that an interrupted run keeps everything already written.

- ``tracks.txt`` (MOT): appended and flushed frame by frame, whole lines only;
- ``tracks.json`` (PoseTrack21 with track ids): rewritten atomically every ``json_every`` frames
  and on close (also after Ctrl-C), so it is always a complete JSON of the frames so far;
- ``frames/<name>.jpg``: annotated frames, each written atomically;
- ``annotated.mp4``: the annotated frames encoded as they come into a temporary file, renamed into
  place on close (also after Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from kpr.errors import KPRError
from kpr.io_utils import atomic_path, write_bytes_atomic
from kpr.tracking.drawing import draw_tracks
from kpr.tracking.mot import format_mot_line
from kpr.tracking.posetrack import PoseTrackAnnotation, PoseTrackFrame, write_posetrack
from kpr.tracking.sources import Frame
from kpr.tracking.tracker import TrackedPerson

OWNED = ("tracks.txt", "tracks.json", "frames", "annotated.mp4")


class TrackOutputs:
    """Writes a run's outputs into ``out_dir``; use as a context manager.

    Parameters
    ----------
    out_dir : path
    video_name : str
        ``vid_id`` of the PoseTrack21 output.
    frames : bool
        Write annotated frames.
    video : bool
        Also write ``annotated.mp4`` (with or without ``frames``).
    fps : float
    overwrite : bool
        Replace the outputs of a previous run; otherwise an existing ``tracks.txt`` is refused.
    """

    def __init__(
        self,
        out_dir: str | Path,
        video_name: str,
        *,
        frames: bool = True,
        video: bool = False,
        fps: float = 25.0,
        json_every: int = 25,
        overwrite: bool = False,
    ) -> None:
        self.out = Path(out_dir)
        if video and not fps > 0:  # checked before tracking, not when the video is assembled
            raise KPRError(f"fps: the frame rate of annotated.mp4 must be > 0, got {fps}")
        if self.out.exists() and not self.out.is_dir():
            raise KPRError(f"--out {self.out}: is a file; expected a directory")
        if (self.out / "tracks.txt").exists() and not overwrite:
            raise KPRError(
                f"--out {self.out}: holds tracks.txt already (pass --overwrite to replace it)"
            )
        self.video_name = video_name
        self.json_every = json_every
        self.records: list[PoseTrackFrame] = []
        self.out.mkdir(parents=True, exist_ok=True)
        self.frames_dir = self.out / "frames" if frames else None
        if self.frames_dir is not None:
            self.frames_dir.mkdir(exist_ok=True)
        self._video = VideoStream(self.out / "annotated.mp4", fps) if video else None
        self._mot = open(self.out / "tracks.txt", "w", encoding="utf-8")  # noqa: SIM115

    def add(self, frame: Frame, tracked: Sequence[TrackedPerson]) -> None:
        """Record one frame's tracks in every output."""
        lines = [
            format_mot_line(frame.number, t.track_id, t.person.box, t.person.score) for t in tracked
        ]
        self._mot.write("".join(lines))
        self._mot.flush()
        anns = tuple(
            PoseTrackAnnotation(t.track_id, t.person.box, t.person.keypoints, t.person.score)
            for t in tracked
        )
        self.records.append(PoseTrackFrame(frame.image_id, frame.file_name, anns))
        if len(self.records) % self.json_every == 0:
            self._write_json()
        if self.frames_dir is None and self._video is None:
            return
        bgr = draw_tracks(
            frame.image,
            [t.person.box for t in tracked],
            [t.track_id for t in tracked],
            [t.person.keypoints for t in tracked],
            label=f"{self.video_name} {frame.number}",
        )[:, :, ::-1]
        if self.frames_dir is not None:
            ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                raise KPRError(f"{self.frames_dir}: could not encode frame {frame.number}")
            write_bytes_atomic(self.frames_dir / f"{frame.name}.jpg", jpg.tobytes())
        if self._video is not None:
            self._video.write(bgr)

    def _write_json(self) -> None:
        write_posetrack(self.out / "tracks.json", self.records, self.video_name)

    def close(self) -> None:
        """Finish every output (idempotent)."""
        if self._mot.closed:
            return
        self._mot.close()
        self._write_json()
        if self._video is not None:
            self._video.close()

    def __enter__(self) -> TrackOutputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoStream:
    """An MP4 (mp4v) written frame by frame (BGR uint8 arrays [H, W, 3], all the size of the first)
    into a temporary file next to ``path``, renamed onto it by :meth:`close`; no frame, no file."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._files = contextlib.ExitStack()
        self._writer: cv2.VideoWriter | None = None

    def write(self, bgr: np.ndarray) -> None:
        if self._writer is None:
            self._tmp = self._files.enter_context(atomic_path(self.path))
            # OpenCV picks the container by the extension; the .mp4 replaces ``_tmp`` on close.
            self._mp4 = self._tmp.with_suffix(".mp4")
            self._files.callback(self._mp4.unlink, missing_ok=True)
            h, w = bgr.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self._mp4), fourcc, self.fps, (w, h))
            self._files.callback(self._writer.release)
            if not self._writer.isOpened():
                error = KPRError(f"{self.path}: OpenCV cannot write MP4 video here")
                self._files.__exit__(KPRError, error, None)  # removes the temporary files
                raise error
        self._writer.write(np.ascontiguousarray(bgr))

    def close(self) -> None:
        """Finish the file and rename it into place (idempotent)."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.release()
            os.replace(self._mp4, self._tmp)
        except BaseException as error:
            self._files.__exit__(type(error), error, error.__traceback__)
            raise
        self._files.close()

    def __enter__(self) -> VideoStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(path: Path, frame_files: Iterable[Path], fps: float) -> Path:
    """Encode JPEG frames (all the size of the first) into an MP4 (mp4v), atomically."""
    with VideoStream(path, fps) as video:
        for f in frame_files:
            video.write(cv2.imread(str(f)))
    return path
