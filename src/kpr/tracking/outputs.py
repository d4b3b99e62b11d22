"""Tracker outputs, written so that an interrupted run keeps everything already written.

- ``tracks.txt`` (MOT): appended and flushed frame by frame, whole lines only;
- ``tracks.json`` (PoseTrack21 with track ids): rewritten atomically every ``json_every`` frames
  and on close (also after Ctrl-C), so it is always a complete JSON of the frames so far;
- ``frames/<name>.jpg``: annotated frames, each written atomically;
- ``annotated.mp4``: assembled from the annotated frames on close, atomically. Without ``frames``
  those go to a hidden scratch folder in ``out_dir`` that is removed once the video is written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2

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
        Also assemble ``annotated.mp4`` (from scratch frames when ``frames`` is off).
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
        self.video = video
        self.fps = fps
        self.json_every = json_every
        self.records: list[PoseTrackFrame] = []
        self.frame_files: list[Path] = []
        self.out.mkdir(parents=True, exist_ok=True)
        self.frames_dir: Path | None = None
        self._scratch: Path | None = None
        if frames:
            self.frames_dir = self.out / "frames"
            self.frames_dir.mkdir(exist_ok=True)
        elif video:  # the video's frames only: ours, so removed on close
            self._scratch = self.frames_dir = Path(
                tempfile.mkdtemp(prefix=".frames-", dir=self.out)
            )
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
        if self.frames_dir is not None:
            image = draw_tracks(
                frame.image,
                [t.person.box for t in tracked],
                [t.track_id for t in tracked],
                [t.person.keypoints for t in tracked],
                label=f"{self.video_name} {frame.number}",
            )
            ok, jpg = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                raise KPRError(f"{self.frames_dir}: could not encode frame {frame.number}")
            path = self.frames_dir / f"{frame.name}.jpg"
            write_bytes_atomic(path, jpg.tobytes())
            self.frame_files.append(path)

    def _write_json(self) -> None:
        write_posetrack(self.out / "tracks.json", self.records, self.video_name)

    def close(self) -> None:
        """Finish every output (idempotent)."""
        if self._mot.closed:
            return
        self._mot.close()
        self._write_json()
        try:
            if self.video and self.frame_files:
                write_video(self.out / "annotated.mp4", self.frame_files, self.fps)
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> TrackOutputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(path: Path, frame_files: Sequence[Path], fps: float) -> Path:
    """Encode JPEG frames (all the size of the first) into an MP4 (mp4v), atomically."""
    first = cv2.imread(str(frame_files[0]))
    h, w = first.shape[:2]
    with atomic_path(path) as tmp:
        mp4 = tmp.with_suffix(".mp4")
        writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            raise KPRError(f"{path}: OpenCV cannot write MP4 video here")
        try:
            for f in frame_files:
                writer.write(cv2.imread(str(f)))
            writer.release()
            os.replace(mp4, tmp)
        finally:
            writer.release()
            mp4.unlink(missing_ok=True)
    return path
