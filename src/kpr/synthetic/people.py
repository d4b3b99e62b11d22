"""Synthetic people for the ``synthetic`` dataset: identities, outfits, poses and layered drawing.

Every function is pure given its ``numpy.random.Generator``. Coordinates are pixels of the
(supersampled) canvas a scene is drawn on: x to the right, y down. Colours are RGB. "Left" and
"right" are the person's own sides, as in COCO: seen from the front, a person's left side is on the
image's right.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from kpr.keypoints import COCO17_NAMES
from kpr.keypoints.groupings import BODY_REGIONS

RGB = tuple[int, int, int]

PARSING_CLASSES: tuple[str, ...] = BODY_REGIONS
LABEL: dict[str, int] = {name: i for i, name in enumerate(PARSING_CLASSES)}

VIEWS: tuple[str, ...] = ("front", "back", "left", "right")
"""``left``/``right``: side views, named by the image direction the person faces."""

TOP_COLOURS: tuple[RGB, ...] = (
    (200, 30, 35),  # red
    (30, 60, 190),  # blue
    (20, 25, 80),  # navy
    (30, 140, 60),  # green
    (235, 200, 30),  # yellow
    (240, 120, 20),  # orange
    (110, 40, 150),  # purple
    (235, 235, 235),  # white
    (25, 25, 25),  # black
    (125, 125, 130),  # grey
    (110, 170, 230),  # sky blue
    (110, 20, 40),  # maroon
    (20, 130, 130),  # teal
    (235, 120, 170),  # pink
)
BOTTOM_COLOURS: tuple[RGB, ...] = TOP_COLOURS + ((50, 70, 120), (180, 160, 110), (70, 50, 35))
HAIR_COLOURS: tuple[RGB, ...] = (
    (20, 18, 18),
    (65, 40, 22),
    (125, 80, 40),
    (220, 185, 100),
    (170, 65, 25),
    (175, 175, 175),
)
SKIN_TONES: tuple[RGB, ...] = (
    (250, 215, 185),
    (230, 185, 145),
    (195, 145, 105),
    (145, 100, 70),
    (95, 62, 42),
)
ACCESSORY_COLOURS: tuple[RGB, ...] = (
    (245, 245, 245),
    (20, 20, 20),
    (215, 30, 30),
    (30, 80, 220),
    (245, 215, 20),
    (30, 170, 60),
    (245, 130, 20),
    (130, 80, 40),
)
PATTERNS: tuple[str, ...] = ("solid", "hstripes", "vstripes", "band", "halves", "sash")
HAIR_STYLES: tuple[str, ...] = ("short", "long", "bald", "cap")
BAGS: tuple[str, ...] = ("none", "backpack", "shoulder")

# Body proportions as fractions of the person's height (heights measured up from the soles).
_HEAD_UP = 0.925
_SHOULDER_UP = 0.81
_HIP_UP = 0.50
_UPPER_ARM = 0.175
_LOWER_ARM = 0.165
_UPPER_LEG = 0.235
_LOWER_LEG = 0.235
_SHOULDER_HALF = 0.105
_HIP_HALF = 0.058
_HEAD_RX = 0.052
_HEAD_RY = 0.068

_SUBPIXEL_BITS = 3
_SUBPIXEL = float(1 << _SUBPIXEL_BITS)


@dataclasses.dataclass(frozen=True)
class Kit:
    """What every member of a team wears: top colour and pattern, bottoms colour and kind."""

    top: RGB
    pattern: str
    pattern_colour: RGB
    bottoms: RGB
    bottoms_kind: str  # "shorts" | "trousers"


@dataclasses.dataclass(frozen=True)
class Identity:
    """One synthetic person: the team kit plus personal details and build."""

    pid: int
    team: int
    kit: Kit
    skin: RGB
    hair: RGB
    hair_style: str
    cap_colour: RGB
    sleeves: str  # "short" | "long"
    shoes: RGB
    bag: str
    bag_colour: RGB
    height: float  # relative stature, ~1
    width: float  # relative breadth, ~1

    def details(self) -> tuple[object, ...]:
        """The personal (non-kit) attributes that tell teammates apart."""
        cap = self.cap_colour if self.hair_style == "cap" else None
        bag_colour = self.bag_colour if self.bag != "none" else None
        return (self.hair, self.hair_style, cap, self.sleeves, self.shoes, self.bag, bag_colour)


@dataclasses.dataclass(frozen=True)
class Pose:
    """An articulated pose.

    Front/back views: arm angle = abduction away from the body, elbow bend = forearm turned inwards;
    leg angle = abduction. Side views: angles are swings, positive forwards; the elbow bends
    forwards and the knee backwards. All angles in radians. ``lean`` tilts the upper body about the
    hips. ``arms`` and ``legs`` hold (left, right) pairs of (upper angle, bend).
    """

    view: str
    arms: tuple[tuple[float, float], tuple[float, float]]
    legs: tuple[tuple[float, float], tuple[float, float]]
    lean: float


@dataclasses.dataclass(frozen=True)
class PersonLayer:
    """A person drawn alone on a transparent canvas.

    rgb: [H, W, 3] uint8; labels: [H, W] uint8 part labels (0 = not this person), indices into
    ``PARSING_CLASSES``; keypoints: [17, 3] float64 COCO-17 (x, y, c) in canvas pixels, with c = 1
    for points an annotator would mark in this view (self-hidden face points have c = 0).
    """

    rgb: np.ndarray
    labels: np.ndarray
    keypoints: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """[H, W] bool: pixels covered by the person."""
        return self.labels > 0


def sample_kit(rng: np.random.Generator) -> Kit:
    top = int(rng.integers(len(TOP_COLOURS)))
    second = int(rng.choice([i for i in range(len(TOP_COLOURS)) if i != top]))
    return Kit(
        top=TOP_COLOURS[top],
        pattern=str(rng.choice(PATTERNS)),
        pattern_colour=TOP_COLOURS[second],
        bottoms=BOTTOM_COLOURS[int(rng.integers(len(BOTTOM_COLOURS)))],
        bottoms_kind="shorts" if rng.random() < 0.5 else "trousers",
    )


def _sample_member(rng: np.random.Generator, pid: int, team: int, kit: Kit) -> Identity:
    return Identity(
        pid=pid,
        team=team,
        kit=kit,
        skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        hair=HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))],
        hair_style=str(rng.choice(HAIR_STYLES, p=[0.45, 0.3, 0.1, 0.15])),
        cap_colour=ACCESSORY_COLOURS[int(rng.integers(len(ACCESSORY_COLOURS)))],
        sleeves="short" if rng.random() < 0.5 else "long",
        shoes=ACCESSORY_COLOURS[int(rng.integers(len(ACCESSORY_COLOURS)))],
        bag=str(rng.choice(BAGS, p=[0.5, 0.25, 0.25])),
        bag_colour=ACCESSORY_COLOURS[int(rng.integers(len(ACCESSORY_COLOURS)))],
        height=float(rng.uniform(0.92, 1.06)),
        width=float(rng.uniform(0.88, 1.15)),
    )


def _num_differences(a: tuple[object, ...], b: tuple[object, ...]) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def sample_team(
    rng: np.random.Generator, first_pid: int, size: int, team: int, min_differences: int = 2
) -> list[Identity]:
    """Draw ``size`` identities sharing one kit; any two differ in ``min_differences``+ details.

    The fine details (hair, cap, sleeves, shoes, bag) are then what tells teammates apart, as in
    sports footage where everyone in a video wears the same kit.
    """
    kit = sample_kit(rng)
    members: list[Identity] = []
    while len(members) < size:
        candidate = _sample_member(rng, first_pid + len(members), team, kit)
        if all(
            _num_differences(candidate.details(), m.details()) >= min_differences for m in members
        ):
            members.append(candidate)
    return members


def sample_pose(rng: np.random.Generator, view: str) -> Pose:
    """Draw a standing, walking or running pose for ``view`` (one of ``VIEWS``)."""
    if view in ("front", "back"):
        arms = [(rng.uniform(0.05, 0.35), rng.uniform(0.0, 0.5)) for _ in range(2)]
        if rng.random() < 0.15:
            arms[int(rng.integers(2))] = (rng.uniform(0.9, 2.4), rng.uniform(-0.3, 0.9))
        legs = [(rng.uniform(0.0, 0.14), rng.uniform(0.0, 0.1)) for _ in range(2)]
        lean = rng.normal(0.0, 0.03)
    else:
        running = rng.random() < 0.15
        amplitude = rng.uniform(0.5, 0.8) if running else rng.uniform(0.0, 0.55)
        swing = amplitude * math.sin(rng.uniform(0.0, 2.0 * math.pi))
        elbow = (1.2, 1.7) if running else (0.1, 0.6)
        legs = []
        arms = []
        for sign in (1.0, -1.0):
            thigh = sign * swing
            legs.append((thigh, rng.uniform(0.0, 0.25) + max(0.0, -thigh) * rng.uniform(0.5, 1.2)))
            arms.append((-0.8 * thigh + rng.normal(0.0, 0.05), rng.uniform(*elbow)))
        lean = rng.uniform(0.0, 0.08) if running else rng.normal(0.0, 0.02)
    return Pose(
        view=view,
        arms=(tuple(map(float, arms[0])), tuple(map(float, arms[1]))),  # type: ignore[arg-type]
        legs=(tuple(map(float, legs[0])), tuple(map(float, legs[1]))),  # type: ignore[arg-type]
        lean=float(lean),
    )


def _direction(angle: float, sign: float) -> np.ndarray:
    """Unit vector at ``angle`` from straight down, turned towards image x-direction ``sign``."""
    return np.array([sign * math.sin(angle), math.cos(angle)])


def skeleton(
    pose: Pose, width: float, feet: tuple[float, float], height: float
) -> dict[str, np.ndarray]:
    """Joint positions (canvas pixels, each a [2] float array) of a person standing on ``feet``.

    Holds the 17 COCO names plus ``neck``, ``head``, ``hip_centre``, ``left_toe`` and ``right_toe``.
    """
    fx, fy = feet
    h = height
    frontal = pose.view in ("front", "back")
    # sign: image x-direction of the person's left side (frontal) or of where they face (side)
    sign = {"front": 1.0, "back": -1.0, "left": -1.0, "right": 1.0}[pose.view]
    c, s = math.cos(pose.lean), math.sin(pose.lean)
    lean_sign = 1.0 if frontal else sign
    hip_centre = np.array([fx, fy - _HIP_UP * h])

    def upper(dx: float, dy_up: float) -> np.ndarray:
        # a point of the upper body, given relative to the hip centre, rotated by the lean
        x, y = dx * h, -dy_up * h
        return hip_centre + np.array([c * x - s * lean_sign * y, s * lean_sign * x + c * y])

    j: dict[str, np.ndarray] = {"hip_centre": hip_centre}
    j["neck"] = upper(0.0, _SHOULDER_UP - _HIP_UP + 0.02)
    if frontal:
        j["head"] = upper(0.0, _HEAD_UP - _HIP_UP)
        shoulder_dx = {
            "left": sign * _SHOULDER_HALF * width,
            "right": -sign * _SHOULDER_HALF * width,
        }
        hip_dx = {"left": sign * _HIP_HALF * width, "right": -sign * _HIP_HALF * width}
        outward = {"left": sign, "right": -sign}
    else:
        j["head"] = upper(0.012 * sign, _HEAD_UP - _HIP_UP)
        near = "right" if sign > 0 else "left"
        far = "left" if near == "right" else "right"
        shoulder_dx = {near: -0.005 * sign, far: 0.02 * sign}
        hip_dx = {near: -0.005 * sign, far: 0.015 * sign}
        outward = {"left": sign, "right": sign}
    for i, side in enumerate(("left", "right")):
        shoulder = upper(shoulder_dx[side], _SHOULDER_UP - _HIP_UP)
        arm_angle, elbow_bend = pose.arms[i]
        forearm_angle = arm_angle - elbow_bend if frontal else arm_angle + elbow_bend
        elbow = shoulder + _UPPER_ARM * h * _direction(arm_angle, outward[side])
        hip = hip_centre + np.array([hip_dx[side] * h, 0.0])
        leg_angle, knee_bend = pose.legs[i]
        shank_angle = leg_angle - (0.5 * knee_bend if frontal else knee_bend)
        knee = hip + _UPPER_LEG * h * _direction(leg_angle, outward[side])
        ankle = knee + _LOWER_LEG * h * _direction(shank_angle, outward[side])
        toe_offset = (0.02 * outward[side], 0.03) if frontal else (0.06 * sign, 0.012)
        j[f"{side}_shoulder"] = shoulder
        j[f"{side}_elbow"] = elbow
        j[f"{side}_wrist"] = elbow + _LOWER_ARM * h * _direction(forearm_angle, outward[side])
        j[f"{side}_hip"] = hip
        j[f"{side}_knee"] = knee
        j[f"{side}_ankle"] = ankle
        j[f"{side}_toe"] = ankle + np.array(toe_offset) * h
    head = j["head"]
    if frontal:
        j["nose"] = head + np.array([0.0, 0.014]) * h
        for side, out in (("left", sign), ("right", -sign)):
            j[f"{side}_eye"] = head + np.array([0.02 * out, -0.006]) * h
            j[f"{side}_ear"] = head + np.array([0.042 * out, 0.004]) * h
    else:
        j["nose"] = head + np.array([0.042 * sign, 0.012]) * h
        for side in ("left", "right"):
            depth = -1.0 if side == near else 1.0  # the far eye and ear sit behind the head
            j[f"{side}_eye"] = head + np.array([0.026 * sign + 0.004 * depth, -0.006]) * h
            j[f"{side}_ear"] = head + np.array([-0.006 * sign + 0.004 * depth, 0.004]) * h
    return j


def annotatable(view: str) -> np.ndarray:
    """[17] float64 flags: 1 for keypoints annotated in ``view``, 0 for face points it hides."""
    flags = np.ones(len(COCO17_NAMES))
    hidden = {
        "front": (),
        "back": ("nose", "left_eye", "right_eye"),
        "left": ("right_eye", "right_ear"),  # facing image-left shows the person's left side
        "right": ("left_eye", "left_ear"),
    }[view]
    for name in hidden:
        flags[COCO17_NAMES.index(name)] = 0.0
    return flags


class _Canvas:
    """Draws each shape twice, in colour and as a part label, so both cover the same pixels."""

    def __init__(self, hw: tuple[int, int]) -> None:
        self.rgb = np.zeros((*hw, 3), np.uint8)
        self.labels = np.zeros(hw, np.uint8)

    @staticmethod
    def _fixed(p: np.ndarray) -> tuple[int, int]:
        return int(round(float(p[0]) * _SUBPIXEL)), int(round(float(p[1]) * _SUBPIXEL))

    def capsule(
        self, p: np.ndarray, q: np.ndarray, thickness: float, colour: RGB, part: str
    ) -> None:
        t = max(1, int(round(thickness)))
        a, b = self._fixed(p), self._fixed(q)
        cv2.line(self.rgb, a, b, colour, t, cv2.LINE_8, _SUBPIXEL_BITS)
        cv2.line(self.labels, a, b, LABEL[part], t, cv2.LINE_8, _SUBPIXEL_BITS)

    def ellipse(
        self,
        centre: np.ndarray,
        axes: tuple[float, float],
        colour: RGB,
        part: str,
        arc: tuple[float, float] = (0.0, 360.0),
    ) -> None:
        ax = (max(1, int(round(axes[0] * _SUBPIXEL))), max(1, int(round(axes[1] * _SUBPIXEL))))
        args = (self._fixed(centre), ax, 0.0, arc[0], arc[1])
        cv2.ellipse(self.rgb, *args, colour, -1, cv2.LINE_8, _SUBPIXEL_BITS)
        cv2.ellipse(self.labels, *args, LABEL[part], -1, cv2.LINE_8, _SUBPIXEL_BITS)

    def polygon(self, points: list[np.ndarray], colour: RGB, part: str) -> np.ndarray:
        """Fill a convex polygon; return its [N, 2] int32 fixed-point vertices."""
        pts = np.array([self._fixed(p) for p in points], np.int32)
        cv2.fillConvexPoly(self.rgb, pts, colour, cv2.LINE_8, _SUBPIXEL_BITS)
        cv2.fillConvexPoly(self.labels, pts, LABEL[part], cv2.LINE_8, _SUBPIXEL_BITS)
        return pts


def _lerp(p: np.ndarray, q: np.ndarray, t: float) -> np.ndarray:
    return p + t * (q - p)


def _draw_leg(cv: _Canvas, j: dict[str, np.ndarray], side: str, ident: Identity, h: float) -> None:
    w = ident.width
    hip, knee, ankle = j[f"{side}_hip"], j[f"{side}_knee"], j[f"{side}_ankle"]
    shorts = ident.kit.bottoms_kind == "shorts"
    thigh_colour = ident.skin if shorts else ident.kit.bottoms
    cv.capsule(hip, knee, 0.085 * h * w, thigh_colour, f"{side}_upper_leg")
    if shorts:
        cv.capsule(hip, _lerp(hip, knee, 0.6), 0.09 * h * w, ident.kit.bottoms, f"{side}_upper_leg")
    lower_colour = ident.skin if shorts else ident.kit.bottoms
    cv.capsule(knee, ankle, 0.065 * h * w, lower_colour, f"{side}_lower_leg")
    cv.capsule(ankle, j[f"{side}_toe"], 0.045 * h, ident.shoes, f"{side}_foot")


def _draw_arm(cv: _Canvas, j: dict[str, np.ndarray], side: str, ident: Identity, h: float) -> None:
    w = ident.width
    shoulder, elbow, wrist = j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"]
    long_sleeves = ident.sleeves == "long"
    arm_colour = ident.kit.top if long_sleeves else ident.skin
    upper, lower = f"{side}_upper_arm", f"{side}_lower_arm"
    cv.capsule(shoulder, elbow, 0.058 * h * w, arm_colour, upper)
    if not long_sleeves:
        cv.capsule(shoulder, _lerp(shoulder, elbow, 0.55), 0.064 * h * w, ident.kit.top, upper)
    cv.capsule(elbow, wrist, 0.048 * h * w, arm_colour, lower)
    cv.capsule(wrist, wrist + 0.2 * (wrist - elbow), 0.045 * h, ident.skin, f"{side}_lower_arm")


def _pattern_colours(
    kit: Kit, hw: tuple[int, int], neck: np.ndarray, h: float, sign: float
) -> np.ndarray:
    """[H, W] bool: where the kit's second colour shows, in a frame attached to the neck."""
    ys = np.arange(hw[0], dtype=np.float32)[:, None] - float(neck[1])
    xs = (np.arange(hw[1], dtype=np.float32)[None, :] - float(neck[0])) * sign
    period = max(2.0, 0.045 * h)
    if kit.pattern == "hstripes":
        second = np.floor(ys / period) % 2 == 1
    elif kit.pattern == "vstripes":
        second = np.floor(xs / period + 0.5) % 2 == 1
    elif kit.pattern == "band":
        second = np.abs(ys - 0.1 * h) < 0.035 * h
    elif kit.pattern == "halves":
        second = xs > 0
    elif kit.pattern == "sash":
        second = np.abs(xs + ys - 0.12 * h) < 0.04 * h
    else:
        second = np.zeros((1, 1), bool)
    return np.broadcast_to(second, hw)


def _draw_torso(
    cv: _Canvas, j: dict[str, np.ndarray], ident: Identity, view: str, h: float
) -> None:
    w = ident.width
    neck, hip_centre = j["neck"], j["hip_centre"]
    up = neck - hip_centre
    up = up / np.linalg.norm(up)
    across = np.array([-up[1], up[0]])
    if view in ("front", "back"):
        shoulder_half, waist_half, hip_half = 0.118 * w, 0.085 * w, 0.09 * w
    else:
        shoulder_half, waist_half, hip_half = 0.062 * w, 0.058 * w, 0.064 * w
    waist = hip_centre + 0.05 * h * up
    top = neck - 0.005 * h * up
    shirt = [top + shoulder_half * h * across, top - shoulder_half * h * across]
    shirt += [waist - waist_half * h * across, waist + waist_half * h * across]
    pts = cv.polygon(shirt, ident.kit.top, "torso")
    if ident.kit.pattern != "solid":
        region = np.zeros(cv.labels.shape, np.uint8)
        cv2.fillConvexPoly(region, pts, 1, cv2.LINE_8, _SUBPIXEL_BITS)
        sign = -1.0 if view in ("back", "left") else 1.0
        stripes = (region > 0) & _pattern_colours(ident.kit, cv.labels.shape, neck, h, sign)
        cv.rgb[stripes] = ident.kit.pattern_colour
    bottom = hip_centre - 0.06 * h * up
    pelvis = [waist + waist_half * h * across, waist - waist_half * h * across]
    pelvis += [bottom - hip_half * h * across, bottom + hip_half * h * across]
    cv.polygon(pelvis, ident.kit.bottoms, "torso")


def _draw_bag(cv: _Canvas, j: dict[str, np.ndarray], ident: Identity, view: str, h: float) -> None:
    if ident.bag == "none":
        return
    colour = ident.bag_colour
    neck, hip_centre = j["neck"], j["hip_centre"]
    frontal = view in ("front", "back")
    sign = {"front": 1.0, "back": -1.0, "left": -1.0, "right": 1.0}[view]
    if ident.bag == "backpack":
        if view == "front":
            for side in ("left", "right"):
                shoulder = j[f"{side}_shoulder"]
                strap_end = _lerp(shoulder, j[f"{side}_hip"], 0.45)
                cv.capsule(shoulder, strap_end, 0.022 * h, colour, "torso")
            return
        centre = _lerp(neck, hip_centre, 0.4)
        if not frontal:
            centre = centre + np.array([-sign * 0.08 * h, 0.0])
        half = np.array([0.075 if frontal else 0.05, 0.11]) * h * np.array([ident.width, 1.0])
        corners = [centre + half * np.array(c) for c in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        cv.polygon(corners, colour, "torso")
        return
    # shoulder bag: a strap from one shoulder across to a pouch at the other hip
    strap_from = j["left_shoulder"] if frontal else neck
    pouch = j["right_hip"] if frontal else hip_centre + np.array([0.02 * sign * h, 0.0])
    pouch = pouch + np.array([0.0, 0.02 * h])
    cv.capsule(strap_from, pouch, 0.018 * h, colour, "torso")
    half = np.array([0.045, 0.04]) * h
    corners = [pouch + half * np.array(c) for c in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    cv.polygon(corners, colour, "torso")


def _draw_long_hair(
    cv: _Canvas, j: dict[str, np.ndarray], ident: Identity, view: str, h: float
) -> None:
    if ident.hair_style != "long":
        return
    shift = 0.0 if view in ("front", "back") else {"left": 0.025, "right": -0.025}[view]
    centre = j["head"] + np.array([shift, 0.06]) * h
    cv.ellipse(centre, (0.058 * h, 0.09 * h), ident.hair, "head")


def _draw_head(cv: _Canvas, j: dict[str, np.ndarray], ident: Identity, view: str, h: float) -> None:
    head = j["head"]
    cv.capsule(_lerp(j["neck"], head, 0.1), head, 0.05 * h, ident.skin, "head")
    sign = {"front": 0.0, "back": 0.0, "left": -1.0, "right": 1.0}[view]
    if ident.hair_style == "bald":
        cv.ellipse(head, (_HEAD_RX * h, _HEAD_RY * h), ident.skin, "head")
        return
    cv.ellipse(head + np.array([0.0, -0.006 * h]), (_HEAD_RX * h, _HEAD_RY * h), ident.hair, "head")
    if view != "back":
        face_centre = head + np.array([0.012 * sign, 0.012]) * h
        face_axes = (0.043 * h, 0.055 * h) if view == "front" else (0.04 * h, 0.054 * h)
        cv.ellipse(face_centre, face_axes, ident.skin, "head")
    if ident.hair_style == "cap":
        crown = head + np.array([0.0, -0.016 * h])
        cv.ellipse(crown, (0.056 * h, 0.05 * h), ident.cap_colour, "head", arc=(180.0, 360.0))
        if sign:
            peak = crown + np.array([0.075 * sign * h, 0.0])
            cv.capsule(crown, peak, 0.016 * h, ident.cap_colour, "head")
        elif view == "front":
            brim = np.array([0.05 * h, 0.0])
            cv.capsule(crown - brim, crown + brim, 0.018 * h, ident.cap_colour, "head")


def draw_person(
    ident: Identity,
    pose: Pose,
    feet: tuple[float, float],
    height: float,
    canvas_hw: tuple[int, int],
) -> PersonLayer:
    """Draw ``ident`` in ``pose``, soles at ``feet``, on an empty [H, W] canvas.

    ``height`` is the pixel height of a person of stature 1; ``ident.height`` scales it.

    Body parts are drawn far to near, so the layer already resolves the person's own self-occlusion.
    """
    h = height * ident.height
    j = skeleton(pose, ident.width, feet, h)
    cv = _Canvas(canvas_hw)
    view = pose.view
    if view in ("front", "back"):
        if view == "front":
            _draw_long_hair(cv, j, ident, view, h)
        for side in ("left", "right"):
            _draw_leg(cv, j, side, ident, h)
        _draw_torso(cv, j, ident, view, h)
        if view == "back" and ident.bag == "backpack":
            _draw_bag(cv, j, ident, view, h)
        for side in ("left", "right"):
            _draw_arm(cv, j, side, ident, h)
        if view == "front" or ident.bag != "backpack":
            _draw_bag(cv, j, ident, view, h)
        _draw_head(cv, j, ident, view, h)
        if view == "back":
            _draw_long_hair(cv, j, ident, view, h)
    else:
        near = "right" if view == "right" else "left"
        far = "left" if near == "right" else "right"
        _draw_arm(cv, j, far, ident, h)
        _draw_leg(cv, j, far, ident, h)
        _draw_long_hair(cv, j, ident, view, h)
        _draw_torso(cv, j, ident, view, h)
        _draw_bag(cv, j, ident, view, h)
        _draw_leg(cv, j, near, ident, h)
        _draw_arm(cv, j, near, ident, h)
        _draw_head(cv, j, ident, view, h)
    xy = np.stack([j[name] for name in COCO17_NAMES])
    keypoints = np.concatenate([xy, annotatable(view)[:, None]], axis=1)
    return PersonLayer(rgb=cv.rgb, labels=cv.labels, keypoints=keypoints)
