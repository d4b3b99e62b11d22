"""The built-in ``synthetic`` dataset: seeded renders of people under multi-person occlusion.

A scene is a person crop of size ``image_height`` x ``image_width`` showing the target identity,
with one of three occlusion kinds:

* ``none``: the target alone on its camera's background;
* ``object``: a pole, box, bush or board in front of the target;
* ``multi_person``: another identity of the same split, covering a set share of the target's
  silhouette, standing either in front of the target or behind it. The crop is the target's box.

Identities come in teams that share a kit (top colour and pattern, bottoms) and differ only in
personal details (hair, cap, sleeve length, shoes, bag) and build. Each camera has its own
background, colour cast, blur and noise. The occluder of a multi-person crop is an identity of the
same split, often a teammate, and is drawn as large and as central as the target, so a model that
ignores the keypoint prompt cannot tell which of the two people it is asked about.

The dataset is written in the generic ``kpr-folder/1`` layout (see ``docs/dataset_format.md``)::

    <root>/
      dataset.json                    format, name, image_size_hw, parsing_classes,
                                      keypoint_format, generator {name, version, seed, params}
      annotations.csv                 image,split,pid,camid,occlusion,occ_level,occluder_pid,
                                      occluder_position,view,team
      images/<split>/<name>.png       [H, W, 3] RGB crops
      keypoints/<split>/<name>.json   [{"keypoints": [[x, y, c] x 17], "is_target": true}, ...]
      parsing/<split>/<name>.png      [H, W] uint8 part labels of the target's visible pixels
      masks/<split>/<name>.png        [H, W] uint8 person mask: 0 background (objects included),
                                      1 target, 2 other people (the prompts of mask-prompt models)

``split`` is ``train``, ``query`` or ``gallery``; train and test (query + gallery) identities are
disjoint. Per test identity, ``query_fraction`` of its images are queries, of two kinds so that
both uses of a prompt-optional model are measured: a ``single_person_query_share`` of them are
single-person (non-ambiguous: occlusion ``none`` or ``object``, the first ones in plan order), the
rest are the images with the highest ``occ_level`` (the Occluded-PoseTrack-ReID rule, all
multi-person crops at the default proportions): occ_level = (visible negative keypoints) /
(visible target keypoints), or twice the numerator when no target keypoint is visible. Keypoint
visibility follows the rendered depth order: a target keypoint has c = 1 only if it lies in the
frame and the pixel under it shows the target.

Everything is a function of ``SyntheticConfig.seed``: each image draws from its own random stream
seeded by (seed, image index), so the files do not depend on the number of worker processes.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import multiprocessing
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from kpr.data.datasets.folder import FOLDER_FORMAT, SYNTHETIC_NAME
from kpr.errors import ConfigError
from kpr.io_utils import write_bytes_atomic, write_text_atomic
from kpr.keypoints import NUM_KEYPOINTS, write_keypoints_file
from kpr.synthetic.people import (
    PARSING_CLASSES,
    VIEWS,
    Identity,
    PersonLayer,
    draw_person,
    sample_pose,
    sample_team,
)

GENERATOR_NAME = "kpr.synthetic"
# Datasets written before the generator left ``kpr.data`` carry its old module name.
_OUR_GENERATORS = (GENERATOR_NAME, "kpr.data.synthetic")
GENERATOR_VERSION = 3
OCCLUSION_KINDS: tuple[str, ...] = ("none", "object", "multi_person")
SPLITS: tuple[str, ...] = ("train", "query", "gallery")
ANNOTATION_COLUMNS: tuple[str, ...] = (
    "image",
    "split",
    "pid",
    "camid",
    "occlusion",
    "occ_level",
    "occluder_pid",
    "occluder_position",
    "view",
    "team",
)

OWNER_BACKGROUND, OWNER_TARGET, OWNER_OCCLUDER, OWNER_OBJECT = 0, 1, 2, 3

# Independent random streams, each keyed by (seed, stream[, index]).
_IDENTITY_STREAM, _CAMERA_STREAM, _PLAN_STREAM, _IMAGE_STREAM = 1, 2, 3, 4
_VIEW_PROBS = (0.35, 0.35, 0.15, 0.15)
_OBJECT_KINDS = ("pole", "box", "bush", "board")
_PLACEMENT_TRIES = 12


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Everything that determines a synthetic dataset. Same config, same files.

    Images are spread evenly over identities; per identity the occlusion kinds come in the
    proportions ``p_object`` / ``p_multi_person`` / rest (rounded), so every test identity has
    cluttered queries.
    """

    seed: int = 0
    num_images: int = 6000
    num_train_ids: int = 150
    num_test_ids: int = 150
    team_size: int = 4
    num_cameras: int = 6
    image_height: int = 128
    image_width: int = 64
    supersample: int = 2
    p_object: float = 0.2
    p_multi_person: float = 0.45
    p_occluder_in_front: float = 0.55
    p_occluder_teammate: float = 0.35
    overlap_min: float = 0.3
    overlap_max: float = 0.6
    object_overlap_min: float = 0.15
    object_overlap_max: float = 0.5
    min_target_keypoints: int = 5
    min_occluder_keypoints: int = 4
    query_fraction: float = 0.2
    single_person_query_share: float = 0.5
    write_parsing: bool = True
    write_masks: bool = True

    def __post_init__(self) -> None:
        positive = ("num_images", "num_train_ids", "num_test_ids", "team_size", "num_cameras")
        for name in positive + ("image_height", "image_width", "supersample"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SyntheticConfig.{name} must be >= 1, got {getattr(self, name)}")
        probabilities = (
            "p_object",
            "p_multi_person",
            "p_occluder_in_front",
            "p_occluder_teammate",
            "overlap_min",
            "overlap_max",
            "object_overlap_min",
            "object_overlap_max",
            "query_fraction",
            "single_person_query_share",
        )
        for name in probabilities:
            if not 0.0 <= getattr(self, name) <= 1.0:
                value = getattr(self, name)
                raise ConfigError(f"SyntheticConfig.{name} must be in [0, 1], got {value}")
        if self.p_object + self.p_multi_person > 1.0:
            raise ConfigError("SyntheticConfig.p_object + p_multi_person must be <= 1")
        if self.overlap_min > self.overlap_max or self.object_overlap_min > self.object_overlap_max:
            raise ConfigError("SyntheticConfig overlap ranges need min <= max")
        if self.num_images < 2 * (self.num_train_ids + self.num_test_ids):
            raise ConfigError(
                "SyntheticConfig.num_images must give every identity at least 2 images "
                f"(>= {2 * (self.num_train_ids + self.num_test_ids)}), got {self.num_images}"
            )
        if self.team_size > 32:
            raise ConfigError(f"SyntheticConfig.team_size must be <= 32, got {self.team_size}")
        for name in ("min_target_keypoints", "min_occluder_keypoints"):
            if not 0 <= getattr(self, name) <= 17:
                raise ConfigError(f"SyntheticConfig.{name} must be in [0, 17]")
        if self.p_multi_person > 0 and min(self.num_train_ids, self.num_test_ids) < 2:
            raise ConfigError("multi-person occlusion needs at least 2 identities in each split")

    @property
    def image_size_hw(self) -> tuple[int, int]:
        return self.image_height, self.image_width


@dataclasses.dataclass(frozen=True)
class Camera:
    """A camera: a background panorama [Hp, Wp, 3] uint8 RGB (wider and taller than a crop, at
    supersampled resolution) plus its colour cast, blur and sensor noise."""

    camid: int
    background: np.ndarray
    gain: tuple[float, float, float]
    offset: float
    blur_sigma: float
    noise_sigma: float


@dataclasses.dataclass(frozen=True)
class SyntheticWorld:
    """The identities and cameras of a config; images are rendered from it."""

    config: SyntheticConfig
    identities: tuple[Identity, ...]  # indexed by pid
    cameras: tuple[Camera, ...]  # indexed by camid
    train_pids: tuple[int, ...]
    test_pids: tuple[int, ...]

    def is_train(self, pid: int) -> bool:
        return pid < len(self.train_pids)

    def split_pids(self, pid: int) -> tuple[int, ...]:
        """The identities of ``pid``'s side (train or test)."""
        return self.train_pids if self.is_train(pid) else self.test_pids


@dataclasses.dataclass(frozen=True)
class ImagePlan:
    """What one image shows, fixed before rendering."""

    index: int
    pid: int
    camid: int
    occlusion: str
    occluder_pid: int  # -1 unless multi_person

    @property
    def name(self) -> str:
        return f"{self.pid:04d}_c{self.camid}_{self.index:06d}"


@dataclasses.dataclass(frozen=True)
class RenderedSample:
    """One rendered crop with its annotations (H x W = the config's image size).

    image: [H, W, 3] uint8 RGB. parsing: [H, W] uint8 target part labels, 0 where the target is
    not visible. owner: [H, W] uint8, which entity each pixel shows (OWNER_* codes).
    target_keypoints: [17, 3] float64 (x, y, c), invisible points zeroed. negative_keypoints:
    [N, 17, 3], N = 1 for multi_person else 0. target_layout: [17, 3] the target's keypoints before
    occlusion (c = annotatable in its view), unclipped.
    """

    plan: ImagePlan
    image: np.ndarray
    parsing: np.ndarray
    owner: np.ndarray
    target_keypoints: np.ndarray
    negative_keypoints: np.ndarray
    target_layout: np.ndarray
    occlusion: str
    occluder_pid: int
    occluder_position: str  # "front" | "behind" | "none"
    view: str
    occ_level: float


@dataclasses.dataclass(frozen=True)
class SplitStats:
    ids: int
    images: int
    cameras: int
    occlusion: dict[str, int]


@dataclasses.dataclass(frozen=True)
class SyntheticSummary:
    """What ``generate_synthetic_dataset`` wrote."""

    out_dir: Path
    num_images: int
    splits: dict[str, SplitStats]
    seconds: float

    def format_table(self) -> str:
        """A plain-text table: ids, images, cameras and occlusion kinds per split."""
        header = ["split", "ids", "images", "cameras", *OCCLUSION_KINDS]
        rows = [header]
        for split in SPLITS:
            s = self.splits[split]
            counts = [str(s.occlusion.get(kind, 0)) for kind in OCCLUSION_KINDS]
            rows.append([split, str(s.ids), str(s.images), str(s.cameras), *counts])
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = []
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
            lines.append("  ".join(cells))
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ world


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def _make_background(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    """[H, W, 3] uint8 RGB street-like backdrop: a wall with structures above a tiled floor."""
    h, w = hw
    wall = rng.uniform(60, 200, 3)
    floor = rng.uniform(50, 170, 3)
    horizon = int(h * rng.uniform(0.45, 0.75))
    img = np.empty((h, w, 3), np.float32)
    ramp = np.linspace(1.1, 0.9, horizon, dtype=np.float32)[:, None, None]
    img[:horizon] = wall * ramp
    img[horizon:] = floor
    for _ in range(int(rng.integers(4, 10))):
        x0 = int(rng.uniform(0, w))
        bw = int(rng.uniform(0.03, 0.15) * w)
        top = int(rng.uniform(0.0, 0.6) * horizon)
        shade = np.clip(wall + rng.normal(0, 45, 3), 0, 255)
        img[top:horizon, x0 : x0 + bw] = shade
        if rng.random() < 0.5:
            step = max(4, bw // 2)
            for y in range(top + step // 2, horizon - step, step * 2):
                img[y : y + step, x0 + bw // 4 : x0 + bw - bw // 4] = shade * 0.55
    for _ in range(int(rng.integers(0, 4))):
        cx, cy = rng.uniform(0, w), horizon - rng.uniform(0.05, 0.3) * h
        axes = (int(rng.uniform(0.04, 0.1) * w), int(rng.uniform(0.05, 0.15) * h))
        green = (rng.uniform(20, 70), rng.uniform(80, 150), rng.uniform(20, 70))
        cv2.ellipse(img, (int(cx), int(cy)), axes, 0.0, 0.0, 360.0, green, -1)
    tile = max(4, int(rng.uniform(0.04, 0.1) * h))
    rows = np.arange(h - horizon)[:, None]
    img[horizon:] *= np.where((rows // tile) % 2 == 0, 1.0, 0.88)[..., None].astype(np.float32)
    coarse = rng.normal(0.0, 8.0, (max(2, h // 16), max(2, w // 16), 3)).astype(np.float32)
    img += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_camera(rng: np.random.Generator, camid: int, crop_hw: tuple[int, int]) -> Camera:
    """A camera whose background panorama is 1/8 taller and 3x wider than a (supersampled) crop."""
    h, w = crop_hw
    return Camera(
        camid=camid,
        background=_make_background(rng, (h + h // 8, 3 * w)),
        gain=tuple(float(g) for g in rng.uniform(0.85, 1.15, 3)),  # type: ignore[arg-type]
        offset=float(rng.uniform(-20.0, 20.0)),
        blur_sigma=float(rng.uniform(0.0, 0.9)),
        noise_sigma=float(rng.uniform(1.5, 6.0)),
    )


def _sample_identities(
    rng: np.random.Generator, first_pid: int, count: int, first_team: int, team_size: int
) -> list[Identity]:
    people: list[Identity] = []
    team = first_team
    while len(people) < count:
        size = min(team_size, count - len(people))
        people.extend(sample_team(rng, first_pid + len(people), size, team))
        team += 1
    return people


def build_world(config: SyntheticConfig) -> SyntheticWorld:
    """Draw the identities (train pids first, then test pids) and cameras of ``config``."""
    rng = _rng(config.seed, _IDENTITY_STREAM)
    n_train, n_test = config.num_train_ids, config.num_test_ids
    train = _sample_identities(rng, 0, n_train, 0, config.team_size)
    test = _sample_identities(rng, n_train, n_test, train[-1].team + 1, config.team_size)
    cam_rng = _rng(config.seed, _CAMERA_STREAM)
    hw = (config.image_height * config.supersample, config.image_width * config.supersample)
    cameras = tuple(make_camera(cam_rng, c, hw) for c in range(config.num_cameras))
    return SyntheticWorld(
        config=config,
        identities=tuple(train + test),
        cameras=cameras,
        train_pids=tuple(range(n_train)),
        test_pids=tuple(range(n_train, n_train + n_test)),
    )


def _occlusion_kinds(rng: np.random.Generator, n: int, config: SyntheticConfig) -> list[str]:
    n_multi = min(n, int(round(config.p_multi_person * n)))
    n_object = min(n - n_multi, int(round(config.p_object * n)))
    kinds = ["multi_person"] * n_multi + ["object"] * n_object + ["none"] * (n - n_multi - n_object)
    return [kinds[i] for i in rng.permutation(n)]


def plan_images(world: SyntheticWorld) -> list[ImagePlan]:
    """Fix pid, camera, occlusion kind and occluder of every image; pid-major, train pids first."""
    config = world.config
    rng = _rng(config.seed, _PLAN_STREAM)
    pids = world.train_pids + world.test_pids
    base, extra = divmod(config.num_images, len(pids))
    plans: list[ImagePlan] = []
    for rank, pid in enumerate(pids):
        n = base + (1 if rank < extra else 0)
        kinds = _occlusion_kinds(rng, n, config)
        cams = rng.permutation(config.num_cameras)
        side = world.split_pids(pid)
        team = world.identities[pid].team
        mates = [p for p in side if p != pid and world.identities[p].team == team]
        others = [p for p in side if p != pid]
        for k in range(n):
            occluder = -1
            if kinds[k] == "multi_person":
                pool = mates if mates and rng.random() < config.p_occluder_teammate else others
                occluder = int(pool[int(rng.integers(len(pool)))])
            plans.append(ImagePlan(len(plans), pid, int(cams[k % len(cams)]), kinds[k], occluder))
    return plans


# ----------------------------------------------------------------------------------------- render


def _object_layer(
    rng: np.random.Generator, kind: str, hw: tuple[int, int], cx: float, feet_y: float, box_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Draw an occluding object. Returns rgb [H, W, 3] uint8 and mask [H, W] bool."""
    h, w = hw
    rgb = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    colour = tuple(float(c) for c in rng.uniform(40, 220, 3))

    def rect(x0: float, y0: float, x1: float, y1: float, col: tuple[float, ...]) -> None:
        p0, p1 = (int(x0), int(y0)), (int(x1), int(y1))
        cv2.rectangle(rgb, p0, p1, col, -1)
        cv2.rectangle(mask, p0, p1, 1, -1)

    if kind == "pole":
        x = cx + rng.uniform(-0.3, 0.3) * w
        half = rng.uniform(0.06, 0.15) * w
        grey = tuple(float(v) for v in np.full(3, rng.uniform(70, 190)))
        rect(x - half, 0, x + half, h, grey)
        rect(x - half * 0.6, 0, x - half * 0.2, h, tuple(min(255.0, v + 40) for v in grey))
    elif kind == "box":
        top = feet_y - rng.uniform(0.25, 0.55) * box_h
        x0 = rng.uniform(-0.3, 0.3) * w
        x1 = x0 + rng.uniform(0.7, 1.2) * w
        rect(x0, top, x1, h, colour)
        rect(x0, top + 0.15 * (h - top), x1, top + 0.25 * (h - top), tuple(0.6 * c for c in colour))
    elif kind == "bush":
        top = feet_y - rng.uniform(0.2, 0.5) * box_h
        for _ in range(int(rng.integers(4, 8))):
            centre = (int(rng.uniform(0, w)), int(rng.uniform(top, feet_y)))
            axes = (int(rng.uniform(0.15, 0.35) * w), int(rng.uniform(0.08, 0.18) * h))
            green = (rng.uniform(20, 80), rng.uniform(90, 170), rng.uniform(20, 80))
            cv2.ellipse(rgb, centre, axes, 0.0, 0.0, 360.0, green, -1)
            cv2.ellipse(mask, centre, axes, 0.0, 0.0, 360.0, 1, -1)
        rect(0, feet_y, w, h, (40.0, 110.0, 40.0))
    else:
        y0 = rng.uniform(0.15, 0.55) * h
        y1 = y0 + rng.uniform(0.2, 0.4) * h
        left = rng.random() < 0.5
        reach = cx + (1.0 if left else -1.0) * rng.uniform(-0.15, 0.15) * w
        x0, x1 = (-1.0, reach) if left else (reach, w + 1.0)
        rect(x0, y0, x1, y1, (230.0, 230.0, 225.0))
        border = 0.06 * w
        rect(x0 + border, y0 + border, x1 - border, y1 - border, colour)
    return rgb, mask > 0


def _native(a: np.ndarray, s: int) -> np.ndarray:
    """Point-sample a supersampled map [s*H, s*W, ...] down to [H, W, ...]."""
    return a[s // 2 :: s, s // 2 :: s]


def _visible_keypoints(layout: np.ndarray, owner: np.ndarray, code: int, scale: int) -> np.ndarray:
    """[17, 3] (x, y, c) in native pixels: c = 1 where annotatable, in frame and showing ``code``.

    layout: [17, 3] supersampled (x, y, annotatable). owner: [H, W] native owner map. Coordinates
    are rounded to 2 decimals before testing so the written numbers are exactly the tested ones.
    """
    h, w = owner.shape
    out = np.zeros((layout.shape[0], 3))
    for k, (x, y, c) in enumerate(layout):
        x, y = round(float(x) / scale, 2), round(float(y) / scale, 2)
        if c > 0 and 0.0 <= x < w and 0.0 <= y < h and owner[int(y), int(x)] == code:
            out[k] = (x, y, 1.0)
    return out


def _occ_level(target: np.ndarray, negatives: np.ndarray) -> float:
    n_target = float(target[:, 2].sum())
    n_negative = float(negatives[..., 2].sum())
    return n_negative / n_target if n_target > 0 else 2.0 * n_negative


def _composite_owner(layers: Sequence[tuple[int, np.ndarray]], hw: tuple[int, int]) -> np.ndarray:
    """Owner codes [H, W] uint8 of masks painted back to front."""
    owner = np.zeros(hw, np.uint8)
    for code, mask in layers:
        owner[mask] = code
    return owner


def _shift_window(layer: PersonLayer, dx: int, width: int) -> PersonLayer:
    """Crop a person drawn on a canvas 3x ``width`` wide, as if moved ``dx`` pixels right."""
    cols = slice(width - dx, 2 * width - dx)
    kps = layer.keypoints.copy()
    kps[:, 0] += dx - width
    return PersonLayer(rgb=layer.rgb[:, cols], labels=layer.labels[:, cols], keypoints=kps)


@dataclasses.dataclass(frozen=True)
class _Placement:
    occluder: PersonLayer | None
    object_rgb: np.ndarray | None
    object_mask: np.ndarray | None
    in_front: bool
    ok: bool
    badness: float


def _place_person(
    rng: np.random.Generator,
    world: SyntheticWorld,
    plan: ImagePlan,
    target: PersonLayer,
    target_height: float,
    feet: tuple[float, float],
) -> _Placement:
    """Put the occluder beside the target so it covers [overlap_min, overlap_max] of the target."""
    config = world.config
    s = config.supersample
    h, w = target.labels.shape
    ident = world.identities[plan.occluder_pid]
    in_front = bool(rng.random() < config.p_occluder_in_front)
    # nearer people stand lower in the frame and look bigger
    depth = rng.uniform(0.0, 0.05)
    scale = 1.0 + rng.uniform(0.0, 0.18) if in_front else 1.0 - rng.uniform(0.02, 0.15)
    feet_y = feet[1] + (depth if in_front else -depth) * h
    pose = sample_pose(rng, str(rng.choice(VIEWS, p=_VIEW_PROBS)))
    height = target_height * scale / world.identities[plan.pid].height
    wide = draw_person(ident, pose, (w + feet[0], feet_y), height, (h, 3 * w))
    # usually on the crop-centre side, so being central does not single out the target
    towards_centre = -1.0 if feet[0] > w / 2 else 1.0
    direction = towards_centre if rng.random() < 0.7 else -towards_centre
    offsets = direction * rng.uniform(0.12, 0.55, _PLACEMENT_TRIES) * w
    t_mask = target.mask
    t_area = max(1, int(t_mask.sum()))
    best = _Placement(None, None, None, in_front, False, math.inf)
    for dx in offsets:
        occ = _shift_window(wide, int(round(dx)), w)
        o_mask = occ.mask
        overlap = float((t_mask & o_mask).sum()) / t_area
        order = [(OWNER_TARGET, t_mask), (OWNER_OCCLUDER, o_mask)]
        owner = _native(_composite_owner(order if in_front else order[::-1], (h, w)), s)
        n_target = _visible_keypoints(target.keypoints, owner, OWNER_TARGET, s)[:, 2].sum()
        n_occ = _visible_keypoints(occ.keypoints, owner, OWNER_OCCLUDER, s)[:, 2].sum()
        badness = max(0.0, config.overlap_min - overlap) + max(0.0, overlap - config.overlap_max)
        badness += max(0, config.min_target_keypoints - n_target)
        badness += max(0, config.min_occluder_keypoints - n_occ)
        badness += 100.0 * (n_occ == 0)
        if badness < best.badness:
            best = _Placement(occ, None, None, in_front, n_occ > 0, badness)
        if badness == 0.0:
            break
    return best


def _place_object(
    rng: np.random.Generator,
    config: SyntheticConfig,
    target: PersonLayer,
    target_height: float,
    feet: tuple[float, float],
) -> _Placement:
    """Put an object in front of the target, covering [object_overlap_min, object_overlap_max]."""
    s = config.supersample
    h, w = target.labels.shape
    t_mask = target.mask
    t_area = max(1, int(t_mask.sum()))
    best = _Placement(None, None, None, True, False, math.inf)
    for _ in range(_PLACEMENT_TRIES):
        kind = str(rng.choice(_OBJECT_KINDS))
        rgb, mask = _object_layer(rng, kind, (h, w), feet[0], feet[1], target_height)
        overlap = float((t_mask & mask).sum()) / t_area
        owner = _native(_composite_owner([(OWNER_TARGET, t_mask), (OWNER_OBJECT, mask)], (h, w)), s)
        n_target = _visible_keypoints(target.keypoints, owner, OWNER_TARGET, s)[:, 2].sum()
        badness = max(0.0, config.object_overlap_min - overlap)
        badness += max(0.0, overlap - config.object_overlap_max)
        badness += max(0, config.min_target_keypoints - n_target)
        if badness < best.badness:
            best = _Placement(None, rgb, mask, True, True, badness)
        if badness == 0.0:
            break
    return best


def _camera_look(rng: np.random.Generator, camera: Camera, image: np.ndarray) -> np.ndarray:
    """Apply the camera's colour cast, blur and noise to an [H, W, 3] uint8 image."""
    img = image.astype(np.float32) * np.array(camera.gain, np.float32) + camera.offset
    if camera.blur_sigma > 0.25:
        img = cv2.GaussianBlur(img, (0, 0), camera.blur_sigma)
    img += camera.noise_sigma * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _background_crop(rng: np.random.Generator, camera: Camera, hw: tuple[int, int]) -> np.ndarray:
    h, w = hw
    pano = camera.background
    y0 = int(rng.integers(0, pano.shape[0] - h + 1))
    x0 = int(rng.integers(0, pano.shape[1] - w + 1))
    crop = pano[y0 : y0 + h, x0 : x0 + w]
    return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


def render_sample(world: SyntheticWorld, plan: ImagePlan) -> RenderedSample:
    """Render one planned image. Deterministic in (config.seed, plan.index)."""
    config = world.config
    s = config.supersample
    H, W = config.image_size_hw
    hw = (H * s, W * s)
    rng = _rng(config.seed, _IMAGE_STREAM, plan.index)
    canvas = _background_crop(rng, world.cameras[plan.camid], hw)

    target_ident = world.identities[plan.pid]
    view = str(rng.choice(VIEWS, p=_VIEW_PROBS))
    box_h = rng.uniform(0.86, 0.94) * hw[0]
    feet = (hw[1] / 2 + rng.uniform(-0.1, 0.1) * hw[1], rng.uniform(0.955, 0.985) * hw[0])
    pose = sample_pose(rng, view)
    target = draw_person(target_ident, pose, feet, box_h / target_ident.height, hw)

    occlusion, occluder_pid, position = plan.occlusion, plan.occluder_pid, "none"
    layers: list[tuple[int, np.ndarray, np.ndarray]] = [(OWNER_TARGET, target.rgb, target.mask)]
    occluder: PersonLayer | None = None
    if occlusion == "multi_person":
        placed = _place_person(rng, world, plan, target, box_h, feet)
        if placed.ok and placed.occluder is not None:
            occluder = placed.occluder
            entry = (OWNER_OCCLUDER, occluder.rgb, occluder.mask)
            layers = layers + [entry] if placed.in_front else [entry] + layers
            position = "front" if placed.in_front else "behind"
        else:
            # no placement left a single occluder keypoint visible: keep the image honest
            occlusion, occluder_pid = "none", -1
    elif occlusion == "object":
        placed = _place_object(rng, config, target, box_h, feet)
        assert placed.object_rgb is not None and placed.object_mask is not None
        layers.append((OWNER_OBJECT, placed.object_rgb, placed.object_mask))

    owner_full = np.zeros(hw, np.uint8)
    for code, rgb, mask in layers:
        canvas[mask] = rgb[mask]
        owner_full[mask] = code
    image = cv2.resize(canvas, (W, H), interpolation=cv2.INTER_AREA)
    image = _camera_look(rng, world.cameras[plan.camid], image)
    owner = np.ascontiguousarray(_native(owner_full, s))
    parsing = np.where(owner == OWNER_TARGET, _native(target.labels, s), 0).astype(np.uint8)

    target_kps = _visible_keypoints(target.keypoints, owner, OWNER_TARGET, s)
    negatives = np.zeros((0, NUM_KEYPOINTS, 3))
    if occluder is not None:
        negatives = _visible_keypoints(occluder.keypoints, owner, OWNER_OCCLUDER, s)[None]
    layout = target.keypoints.copy()
    layout[:, :2] /= s
    return RenderedSample(
        plan=plan,
        image=image,
        parsing=parsing,
        owner=owner,
        target_keypoints=target_kps,
        negative_keypoints=negatives,
        target_layout=layout,
        occlusion=occlusion,
        occluder_pid=occluder_pid,
        occluder_position=position,
        view=view,
        occ_level=_occ_level(target_kps, negatives),
    )


# ------------------------------------------------------------------------------------------ write


@dataclasses.dataclass(frozen=True)
class _Written:
    """The table fields of a sample whose files are on disk."""

    plan: ImagePlan
    split: str
    occlusion: str
    occluder_pid: int
    occluder_position: str
    view: str
    occ_level: float


def _png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _relative_paths(
    split: str, name: str, write_parsing: bool, write_masks: bool = False
) -> list[str]:
    """Image, keypoints and (optionally) parsing and mask paths of one sample, relative to the
    root, in that order."""
    paths = [f"images/{split}/{name}.png", f"keypoints/{split}/{name}.json"]
    paths += [f"parsing/{split}/{name}.png"] if write_parsing else []
    return paths + [f"masks/{split}/{name}.png"] if write_masks else paths


def person_mask(owner: np.ndarray) -> np.ndarray:
    """Owner codes [H, W] → the person mask [H, W] uint8: 0 background (objects included),
    1 target, 2 other people (the OWNER_* codes of people are the mask values)."""
    return np.where(owner == OWNER_OBJECT, OWNER_BACKGROUND, owner).astype(np.uint8)


def _render_and_write(world: SyntheticWorld, out: Path, plan: ImagePlan) -> _Written:
    """Render ``plan`` and write its files (test images to ``gallery`` until queries are known)."""
    sample = render_sample(world, plan)
    split = "train" if world.is_train(plan.pid) else "gallery"
    config = world.config
    rels = _relative_paths(split, plan.name, config.write_parsing, config.write_masks)
    paths = [out / rel for rel in rels]
    write_bytes_atomic(paths[0], _png(cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR)))
    write_keypoints_file(paths[1], sample.target_keypoints, sample.negative_keypoints)
    if config.write_parsing:
        write_bytes_atomic(paths[2], _png(sample.parsing))
    if config.write_masks:
        write_bytes_atomic(paths[-1], _png(person_mask(sample.owner)))
    return _Written(
        plan=plan,
        split=split,
        occlusion=sample.occlusion,
        occluder_pid=sample.occluder_pid,
        occluder_position=sample.occluder_position,
        view=sample.view,
        occ_level=sample.occ_level,
    )


_WORKER_STATE: tuple[SyntheticWorld, Path] | None = None


def _init_worker(world: SyntheticWorld, out: Path) -> None:
    global _WORKER_STATE
    cv2.setNumThreads(1)
    _WORKER_STATE = (world, out)


def _render_in_worker(plan: ImagePlan) -> _Written:
    assert _WORKER_STATE is not None
    return _render_and_write(*_WORKER_STATE, plan)


def _render_all(
    world: SyntheticWorld, out: Path, plans: Sequence[ImagePlan], workers: int
) -> Iterator[_Written]:
    """Render and write every plan with ``workers`` processes; yield the records in plan order."""
    if workers <= 1:
        for plan in plans:
            yield _render_and_write(world, out, plan)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(world, out)) as pool:
        yield from pool.imap(_render_in_worker, plans, chunksize=16)


def _assign_test_split(
    records: Sequence[_Written], query_fraction: float, single_share: float
) -> list[str]:
    """Queries of one test identity: ``single_share`` of them single-person crops (first in plan
    order), the rest the most cluttered images (highest occ_level; ties by index)."""
    n = len(records)
    num_query = min(n - 1, max(1, int(query_fraction * n)))
    singles = [i for i in range(n) if records[i].occlusion != "multi_person"]
    query = set(singles[: min(len(singles), int(single_share * num_query))])
    order = sorted(range(n), key=lambda i: (-records[i].occ_level, records[i].plan.index))
    query.update([i for i in order if i not in query][: num_query - len(query)])
    return ["query" if i in query else "gallery" for i in range(n)]


def _group_by_pid(records: Iterable[_Written]) -> Iterator[list[_Written]]:
    group: list[_Written] = []
    for rec in records:
        if group and rec.plan.pid != group[0].plan.pid:
            yield group
            group = []
        group.append(rec)
    if group:
        yield group


_OWNED_ENTRIES = (
    "images",
    "keypoints",
    "parsing",
    "masks",
    "annotations.csv",
    "dataset.json",
    "contact_sheet.png",
)


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty directory unless it holds a synthetic dataset and ``overwrite`` is set."""
    if not out_dir.exists() or not any(out_dir.iterdir()):
        out_dir.mkdir(parents=True, exist_ok=True)
        return
    meta = out_dir / "dataset.json"
    ours = False
    if meta.is_file():
        try:
            ours = json.loads(meta.read_text()).get("generator", {}).get("name") in _OUR_GENERATORS
        except (json.JSONDecodeError, AttributeError):
            ours = False
    if not (overwrite and ours):
        why = "pass overwrite=True (--overwrite) to replace it" if ours else "not synthetic data"
        raise ConfigError(f"{out_dir}: output directory is not empty ({why})")
    for entry in _OWNED_ENTRIES:
        path = out_dir / entry
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def dataset_metadata(config: SyntheticConfig) -> dict[str, object]:
    """The ``dataset.json`` content for ``config``."""
    return {
        "format": FOLDER_FORMAT,
        "name": SYNTHETIC_NAME,
        "image_size_hw": list(config.image_size_hw),
        "parsing_classes": list(PARSING_CLASSES),
        "keypoint_format": "coco17",
        "generator": {
            "name": GENERATOR_NAME,
            "version": GENERATOR_VERSION,
            "seed": config.seed,
            "params": dataclasses.asdict(config),
        },
    }


def generate_synthetic_dataset(
    out_dir: str | Path,
    config: SyntheticConfig = SyntheticConfig(),
    *,
    workers: int = 2,
    progress: bool = False,
    overwrite: bool = False,
) -> SyntheticSummary:
    """Render and write the dataset of ``config`` to ``out_dir`` (layout in the module docstring).

    ``workers`` processes render and write in parallel; the output is byte-identical for any
    worker count. Test images are written to ``gallery`` and an identity's queries are moved
    (renamed) to ``query`` once all its images are rendered. Every file is written atomically, and
    ``dataset.json`` last, so its presence marks a complete dataset.
    """
    start = time.perf_counter()
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)
    world = build_world(config)
    plans = plan_images(world)
    rows: list[dict[str, object]] = []
    bar = tqdm(total=len(plans), desc="synth", unit="img", disable=not progress)
    try:
        for group in _group_by_pid(_render_all(world, out, plans, workers)):
            bar.update(len(group))
            splits = [rec.split for rec in group]
            if group[0].split != "train":
                splits = _assign_test_split(
                    group, config.query_fraction, config.single_person_query_share
                )
            for rec, split in zip(group, splits, strict=True):
                if split != rec.split:
                    _move_sample(out, rec.plan.name, rec.split, split, config)
                rows.append(_table_row(rec, split, world))
    finally:
        bar.close()
    _write_annotations(out / "annotations.csv", rows)
    write_text_atomic(out / "dataset.json", json.dumps(dataset_metadata(config), indent=2) + "\n")
    return SyntheticSummary(
        out_dir=out,
        num_images=len(rows),
        splits=_split_stats(rows),
        seconds=time.perf_counter() - start,
    )


def _move_sample(out: Path, name: str, old: str, new: str, config: SyntheticConfig) -> None:
    flags = (config.write_parsing, config.write_masks)
    olds = _relative_paths(old, name, *flags)
    for src, dst in zip(olds, _relative_paths(new, name, *flags), strict=True):
        (out / dst).parent.mkdir(parents=True, exist_ok=True)
        os.replace(out / src, out / dst)


def _table_row(rec: _Written, split: str, world: SyntheticWorld) -> dict[str, object]:
    return {
        "image": _relative_paths(split, rec.plan.name, False)[0],
        "split": split,
        "pid": rec.plan.pid,
        "camid": rec.plan.camid,
        "occlusion": rec.occlusion,
        "occ_level": f"{rec.occ_level:.6f}",
        "occluder_pid": rec.occluder_pid,
        "occluder_position": rec.occluder_position,
        "view": rec.view,
        "team": world.identities[rec.plan.pid].team,
    }


def _write_annotations(path: Path, rows: Sequence[dict[str, object]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(ANNOTATION_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def _split_stats(rows: Sequence[dict[str, object]]) -> dict[str, SplitStats]:
    stats: dict[str, SplitStats] = {}
    for split in SPLITS:
        mine = [r for r in rows if r["split"] == split]
        stats[split] = SplitStats(
            ids=len({r["pid"] for r in mine}),
            images=len(mine),
            cameras=len({r["camid"] for r in mine}),
            occlusion=dict(Counter(str(r["occlusion"]) for r in mine)),
        )
    return stats
