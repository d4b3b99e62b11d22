"""Synthetic crossing-people videos for tracking, written in the PoseTrack21 layout.

The people of the synthetic benchmark (same identities, kits and renderer, :mod:`kpr.synthetic.
people`) walk left and right and drift in depth in front of a static camera; nearer people stand
lower, look bigger and are drawn last, so crossings produce multi-person occlusions. Walkers turn
back beyond the frame edges, so they leave and come back. Teams share kits, so a crossing of two
teammates is what an appearance tracker without prompts confuses.

Layout (``video_name = synth_<seed>``)::

    <out>/images/<video_name>/000000.jpg ...     frames, RGB, JPEG
    <out>/posetrack_data/<video_name>.json       PoseTrack21 video JSON (ground truth)
    <out>/synth_video_<seed>.json                the VideoConfig that made it

Ground truth per person and frame: ``track_id`` (= ``person_id``), ``bbox`` [x, y, w, h] of the
whole silhouette inside the frame, ``bbox_head``, ``keypoints`` (17 x (x, y, v), v = 1 where the
point is in the frame and the pixel under it shows this person, else zeros) and ``visibility``
(the visible share of the person's in-frame silhouette). People less visible than
``min_visibility`` are not annotated in that frame. Everything is a function of the config.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from kpr.errors import ConfigError, KPRError
from kpr.io_utils import write_bytes_atomic, write_text_atomic
from kpr.synthetic.generator import _camera_look, _native, _rng, _visible_keypoints, make_camera
from kpr.synthetic.people import Identity, Pose, draw_person, sample_team
from kpr.tracking.posetrack import PoseTrackAnnotation, PoseTrackFrame, write_posetrack

_IDENTITY_STREAM, _MOTION_STREAM, _CAMERA_STREAM, _FRAME_STREAM = 11, 12, 13, 14
# Person height (stature 1) as a share of the frame height, from the far to the near feet line.
_FAR, _NEAR = 0.80, 0.97
_FAR_HEIGHT, _NEAR_HEIGHT = 0.55, 0.72
_HEAD_BOX = (0.104, 0.136)  # head ellipse of the renderer (2 x _HEAD_RX, 2 x _HEAD_RY)


@dataclasses.dataclass(frozen=True)
class VideoConfig:
    """Everything that determines a synthetic video. Sizes are native frame pixels.

    ``speed`` is the range of walking speeds (px/frame); ``p_pause`` the chance per frame that a
    walker stops and faces the camera (or away) for 15–40 frames.
    """

    seed: int = 0
    num_frames: int = 300
    num_people: int = 6
    team_size: int = 3
    width: int = 384
    height: int = 192
    supersample: int = 2
    speed_min: float = 0.8
    speed_max: float = 2.2
    p_pause: float = 0.004
    min_visibility: float = 0.15
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        for name in ("num_frames", "num_people", "team_size", "width", "height", "supersample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"VideoConfig.{name} must be an integer >= 1, got {value!r}")
        if self.width < 64 or self.height < 64:
            raise ConfigError("VideoConfig.width and height must be >= 64")
        if not 0.0 < self.speed_min <= self.speed_max:
            raise ConfigError("VideoConfig needs 0 < speed_min <= speed_max")
        for name in ("p_pause", "min_visibility"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"VideoConfig.{name} must be in [0, 1]")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError("VideoConfig.jpeg_quality must be in [1, 100]")

    @property
    def video_name(self) -> str:
        return f"synth_{self.seed:04d}"


@dataclasses.dataclass
class _Walker:
    """Mutable motion state of one person (native pixels)."""

    ident: Identity
    x: float
    feet_y: float
    direction: float
    speed: float
    drift: float
    phase: float
    pause: int
    facing: str


@dataclasses.dataclass(frozen=True)
class SyntheticVideo:
    """What :func:`generate_video` wrote."""

    config: VideoConfig
    annotations: Path
    frames_dir: Path
    num_frames: int
    num_annotations: int


def _stature(config: VideoConfig, feet_y: float) -> float:
    t = (feet_y / config.height - _FAR) / (_NEAR - _FAR)
    return config.height * (_FAR_HEIGHT + t * (_NEAR_HEIGHT - _FAR_HEIGHT))


def _walkers(config: VideoConfig) -> list[_Walker]:
    rng = _rng(config.seed, _IDENTITY_STREAM)
    people: list[Identity] = []
    team = 0
    while len(people) < config.num_people:
        size = min(config.team_size, config.num_people - len(people))
        people.extend(sample_team(rng, len(people), size, team))
        team += 1
    motion = _rng(config.seed, _MOTION_STREAM)
    walkers = []
    for ident in people:
        direction = 1.0 if motion.random() < 0.5 else -1.0
        walkers.append(
            _Walker(
                ident=ident,
                x=float(motion.uniform(0.05, 0.95) * config.width),
                feet_y=float(motion.uniform(_FAR, _NEAR) * config.height),
                direction=direction,
                speed=float(motion.uniform(config.speed_min, config.speed_max)),
                drift=float(motion.uniform(-0.12, 0.12)),
                phase=float(motion.uniform(0.0, 2.0 * math.pi)),
                pause=0,
                facing="right" if direction > 0 else "left",
            )
        )
    return walkers


def _pose(w: _Walker) -> Pose:
    """A walk-cycle pose at the walker's phase (the side-view branch of ``sample_pose``, made
    continuous in time), or a standing pose while paused."""
    if w.pause > 0:
        arm = (0.12, 0.2)
        return Pose(w.facing, (arm, arm), ((0.04, 0.02), (0.04, 0.02)), 0.0)
    swing = 0.45 * math.sin(w.phase)
    legs, arms = [], []
    for sign in (1.0, -1.0):
        thigh = sign * swing
        legs.append((thigh, 0.1 + max(0.0, -thigh) * 0.9))
        arms.append((-0.8 * thigh, 0.35))
    view = "right" if w.direction > 0 else "left"
    return Pose(view, (arms[0], arms[1]), (legs[0], legs[1]), 0.03)  # type: ignore[arg-type]


def _step(w: _Walker, config: VideoConfig, rng: np.random.Generator) -> None:
    if w.pause > 0:
        w.pause -= 1
        return
    if rng.random() < config.p_pause:
        w.pause = int(rng.integers(15, 41))
        w.facing = "front" if rng.random() < 0.5 else "back"
        return
    w.x += w.direction * w.speed
    # turn back well beyond the edges, so people leave the frame and come back
    if not -0.15 * config.width <= w.x <= 1.15 * config.width:
        w.direction = -w.direction
    w.feet_y += w.drift
    if not _FAR * config.height <= w.feet_y <= _NEAR * config.height:
        w.drift = -w.drift
    w.phase += 2.0 * math.pi * w.speed / (0.8 * _stature(config, w.feet_y))


def _head_box(keypoints: np.ndarray, stature: float) -> tuple[float, float, float, float]:
    """[x, y, w, h] around the renderer's head ellipse, centred on the face keypoints."""
    cx, cy = keypoints[:5, :2].mean(axis=0)
    w, h = _HEAD_BOX[0] * stature, _HEAD_BOX[1] * stature
    return (float(cx - w / 2), float(cy - h / 2), float(w), float(h))


def render_frame(
    config: VideoConfig, walkers: list[_Walker], background: np.ndarray, camera, index: int
) -> tuple[np.ndarray, list[PoseTrackAnnotation]]:
    """Draw the walkers far to near; returns the frame [H, W, 3] RGB and its annotations."""
    s = config.supersample
    hw = (config.height * s, config.width * s)
    canvas = background.copy()
    owner = np.zeros(hw, np.uint8)
    order = sorted(range(len(walkers)), key=lambda i: walkers[i].feet_y)
    layers = {}
    for i in order:
        w = walkers[i]
        stature = _stature(config, w.feet_y)
        layer = draw_person(w.ident, _pose(w), (w.x * s, w.feet_y * s), stature * s, hw)
        canvas[layer.mask] = layer.rgb[layer.mask]
        owner[layer.mask] = i + 1
        layers[i] = (layer, stature * w.ident.height)
    image = cv2.resize(canvas, (config.width, config.height), interpolation=cv2.INTER_AREA)
    image = _camera_look(_rng(config.seed, _FRAME_STREAM, index), camera, image)
    owner_native = np.ascontiguousarray(_native(owner, s))
    annotations = []
    for i in range(len(walkers)):
        layer, stature = layers[i]
        area = int(layer.mask.sum())
        if area == 0:
            continue
        visibility = float((owner == i + 1).sum()) / area
        ys, xs = np.nonzero(layer.mask)
        x0, y0 = xs.min() / s, ys.min() / s
        x1, y1 = (xs.max() + 1) / s, (ys.max() + 1) / s
        if visibility < config.min_visibility or x1 - x0 < 4 or y1 - y0 < 4:
            continue
        layout = layer.keypoints.copy()
        layout[:, :2] /= s
        annotations.append(
            PoseTrackAnnotation(
                track_id=walkers[i].ident.pid + 1,
                box=(float(x0), float(y0), float(x1), float(y1)),
                keypoints=_visible_keypoints(layer.keypoints, owner_native, i + 1, s),
                score=1.0,
                head_box=_head_box(layout, stature),
                visibility=round(visibility, 4),
            )
        )
    return image, annotations


def generate_video(
    out_dir: str | Path,
    config: VideoConfig | None = None,
    *,
    progress: bool = True,
    overwrite: bool = False,
) -> SyntheticVideo:
    """Render ``config.num_frames`` frames and their ground truth into ``out_dir``."""
    config = config or VideoConfig()
    out = Path(out_dir)
    name = config.video_name
    ann_path = out / "posetrack_data" / f"{name}.json"
    if ann_path.exists() and not overwrite:
        raise KPRError(
            f"--out {out}: holds {ann_path.name} already (pass --overwrite to replace it)"
        )
    frames_dir = out / "images" / name
    frames_dir.mkdir(parents=True, exist_ok=True)
    walkers = _walkers(config)
    s = config.supersample
    camera = make_camera(
        _rng(config.seed, _CAMERA_STREAM), 0, (config.height * s, config.width * s)
    )
    background = np.ascontiguousarray(camera.background[: config.height * s, : config.width * s])
    motion = _rng(config.seed, _MOTION_STREAM, 1)
    frames: list[PoseTrackFrame] = []
    count = 0
    for index in tqdm(
        range(config.num_frames), desc=f"rendering {name}", unit="frame", disable=not progress
    ):
        image, annotations = render_frame(config, walkers, background, camera, index)
        ok, jpg = cv2.imencode(
            ".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality]
        )
        if not ok:
            raise KPRError(f"{frames_dir}: could not encode frame {index}")
        file_name = f"images/{name}/{index:06d}.jpg"
        write_bytes_atomic(out / file_name, jpg.tobytes())
        frames.append(PoseTrackFrame(index + 1, file_name, tuple(annotations)))
        count += len(annotations)
        for w in walkers:
            _step(w, config, motion)
    write_posetrack(ann_path, frames, video_name=name)
    write_text_atomic(
        out / f"synth_video_{config.seed}.json", json.dumps(dataclasses.asdict(config), indent=2)
    )
    return SyntheticVideo(config, ann_path, frames_dir, len(frames), count)
