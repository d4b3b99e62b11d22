"""``kpr annotate``: official keypoint files per crop, user backends, resuming, bad input."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from pose_helpers import GRACE_HOPPER, FixedEstimator, hide_mediapipe, paste, standing

from kpr.cli import keypoint_file_for, main
from kpr.io_utils import current_umask
from kpr.keypoints.io import read_keypoints_file
from kpr.pose import Person, registry
from kpr.viz.drawing import NEGATIVE_COLOUR

pytestmark = pytest.mark.usefixtures("clean_registry")


@pytest.fixture
def crops(tmp_path, grace):
    """Three 128×256 crops of the real photo."""
    folder = tmp_path / "crops"
    folder.mkdir()
    for i in range(3):
        crop = cv2.resize(grace[:, 40 * i : 40 * i + 400], (128, 256))
        cv2.imwrite(str(folder / f"c{i}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    return folder


TARGET = standing(cx=64, top=8, height=240)  # head at the top centre of a 128×256 crop
OCCLUDER = standing(cx=20, top=90, height=200)  # lower and to the left


class FakeYoloPose:
    """How a user wraps their own model: one class returning kpr.pose.Person objects."""

    calls = 0

    def estimate(self, image):
        FakeYoloPose.calls += 1
        # The occluder comes first, as a real model's order is arbitrary.
        return [
            Person.from_keypoints(OCCLUDER, score=0.8),
            Person.from_keypoints(TARGET, score=0.9),
        ]


def annotate(*args: str) -> int:
    return main(["annotate", *map(str, args)])


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


def test_user_backend_writes_official_files_with_the_target_first(crops, tmp_path, capsys):
    registry.register_estimator("fake-yolo-pose", FakeYoloPose)
    out = tmp_path / "kp"
    assert annotate(crops, "--out", out, "--estimator", "fake-yolo-pose") == 0
    assert sorted(p.name for p in out.iterdir()) == ["c0.json", "c1.json", "c2.json"]
    raw = json.loads((out / "c0.json").read_text())
    assert [e["is_target"] for e in raw] == [True, False]
    assert np.array(raw[0]["keypoints"]).shape == (17, 3)
    skeletons = read_keypoints_file(out / "c0.json")
    np.testing.assert_allclose(skeletons.target, TARGET)
    np.testing.assert_allclose(skeletons.negatives, OCCLUDER[None])
    assert (out / "c0.json").stat().st_mode & 0o777 == 0o666 & ~current_umask()
    printed = capsys.readouterr().out
    assert "annotated 3 crops; people per crop: 0: 0, 1: 0, 2+: 3" in printed
    assert "ambiguous target choice: 0" in printed


def test_nobody_gives_an_empty_list_and_official_naming(crops, tmp_path, capsys):
    registry.register_estimator("nobody", FixedEstimator)
    out = tmp_path / "kp"
    assert (
        annotate(crops / "c1.png", "--out", out, "--estimator", "nobody", "--naming", "official")
        == 0
    )
    assert (out / "c1.png_keypoints.json").read_text() == "[]\n"
    assert read_keypoints_file(out / "c1.png_keypoints.json").num_negatives == 0
    # kpr embed --keypoints KP_DIR finds it.
    assert keypoint_file_for(crops / "c1.png", out) == out / "c1.png_keypoints.json"
    assert "0: 1, 1: 0, 2+: 0" in capsys.readouterr().out


def test_resuming_skips_written_files_and_overwrite_redoes_them(crops, tmp_path, capsys):
    registry.register_estimator("fake-yolo-pose", FakeYoloPose)
    out = tmp_path / "kp"
    FakeYoloPose.calls = 0
    assert annotate(crops, "--out", out, "--estimator", "fake-yolo-pose") == 0
    assert FakeYoloPose.calls == 3
    (out / "c1.json").unlink()
    before = (out / "c0.json").stat().st_mtime_ns
    capsys.readouterr()
    assert annotate(crops, "--out", out, "--estimator", "fake-yolo-pose") == 0
    assert FakeYoloPose.calls == 4  # only c1 redone
    assert (out / "c0.json").stat().st_mtime_ns == before
    printed = capsys.readouterr().out
    assert "annotated 1 crops" in printed and "already written): 2" in printed
    assert annotate(crops, "--out", out, "--estimator", "fake-yolo-pose", "--overwrite") == 0
    assert FakeYoloPose.calls == 7


def test_preview_colours_target_and_negatives_like_compare(crops, tmp_path):
    registry.register_estimator("fake-yolo-pose", FakeYoloPose)
    out = tmp_path / "kp"
    assert annotate(crops, "--out", out, "--estimator", "fake-yolo-pose", "--preview") == 0
    sheet = cv2.cvtColor(cv2.imread(str(out / "preview.png")), cv2.COLOR_BGR2RGB)
    assert sheet.shape == (256 + 14, 3 * 128, 3)
    tile = sheet[:256, :128]
    red = (tile == NEGATIVE_COLOUR).all(axis=2)
    ys, xs = np.nonzero(red)
    # Red is drawn only on the occluder, which stands in the lower left of the crop.
    assert red.sum() > 20 and xs.mean() < 50 and ys.min() >= 80
    head_colour = tile[int(TARGET[0, 1]), int(TARGET[0, 0])]
    assert tuple(head_colour) == (255, 215, 0)  # the head group's colour, as in kpr compare


def test_unreadable_image_stops_with_its_name_and_leaves_nothing_half_written(
    crops, tmp_path, capsys
):
    registry.register_estimator("fake-yolo-pose", FakeYoloPose)
    (crops / "c1.png").write_bytes(b"not a png")
    out = tmp_path / "kp"
    assert annotate(crops, "--out", out, "--estimator", "fake-yolo-pose") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "c1.png" in err and err.startswith("kpr annotate: error:")
    assert sorted(p.name for p in out.iterdir()) == ["c0.json"]
    assert leftovers(out) == []


def test_on_error_skip_goes_on_and_exits_1(crops, tmp_path, capsys):
    registry.register_estimator("fake-yolo-pose", FakeYoloPose)
    (crops / "c1.png").write_bytes(b"")
    out = tmp_path / "kp"
    assert annotate(crops, "--out", out, "--estimator", "fake-yolo-pose", "--on-error", "skip") == 1
    assert sorted(p.name for p in out.iterdir()) == ["c0.json", "c2.json"]
    printed = capsys.readouterr().out
    assert "failed (skipped): 1" in printed and "c1.png" in printed


class Picky(FixedEstimator):
    min_side = 64


class SixteenPoints:
    def estimate(self, image):
        return [Person(np.zeros((16, 3)), (0, 0, 10, 10), 1.0)]


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        (Picky, r"tiny\.png: image is 20×30 px, Picky needs at least 64 px"),
        (
            SixteenPoints,
            r"tiny\.png: SixteenPoints: Person\.keypoints: expected shape .*got \[16, 3\]",
        ),
    ],
)
def test_too_small_crops_and_wrong_shapes_name_the_file(tmp_path, capsys, backend, expected):
    registry.register_estimator("user", backend)
    image = tmp_path / "tiny.png"
    cv2.imwrite(str(image), np.zeros((30, 20, 3), np.uint8))
    out = tmp_path / "kp"
    assert annotate(image, "--out", out, "--estimator", "user") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(expected, err)
    assert list(out.iterdir()) == []


def test_missing_extra_and_unknown_estimator_write_nothing(crops, tmp_path, capsys, monkeypatch):
    hide_mediapipe(monkeypatch)
    out = tmp_path / "kp"
    assert annotate(crops, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install --no-deps mediapipe==0.10.21" in err
    assert annotate(crops, "--out", out, "--estimator", "openpose") == 2
    assert "unknown pose estimator 'openpose'" in capsys.readouterr().err
    assert not out.exists()


def test_two_crops_writing_the_same_file_are_refused(tmp_path, capsys):
    registry.register_estimator("nobody", FixedEstimator)
    for name in ("a.png", "a.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((64, 32, 3), np.uint8))
    out = tmp_path / "kp"
    assert (
        annotate(tmp_path / "a.png", tmp_path / "a.jpg", "--out", out, "--estimator", "nobody") == 2
    )
    assert "would both write" in capsys.readouterr().err
    assert (
        annotate(
            tmp_path / "a.png",
            tmp_path / "a.jpg",
            "--out",
            out,
            "--estimator",
            "nobody",
            "--naming",
            "official",
        )
        == 0
    )


def test_mediapipe_end_to_end_on_real_crops(tmp_path, grace, capsys, monkeypatch):
    monkeypatch.setenv("KPR_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "crops"
    folder.mkdir()
    cv2.imwrite(str(folder / "one.jpg"), cv2.imread(str(GRACE_HOPPER)))
    pair = np.full((400, 300, 3), 120, np.uint8)
    paste(pair, grace, 150, 0, 0)
    paste(pair, grace, 150, 150, 0)  # two people side by side: heads equally near the top centre
    cv2.imwrite(str(folder / "pair.png"), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "wall.png"), np.full((256, 128, 3), 200, np.uint8))
    out = tmp_path / "kp"
    assert annotate(folder, "--out", out, "--preview") == 0
    printed = capsys.readouterr().out
    assert "people per crop: 0: 1, 1: 1, 2+: 1" in printed
    assert "ambiguous target choice: 1 (pair.png)" in printed
    assert read_keypoints_file(out / "pair.json").num_negatives == 1
    assert read_keypoints_file(out / "one.json").target[0, 2] > 0.9
    assert (out / "wall.json").read_text() == "[]\n"
    assert (out / "preview.png").is_file()
