"""trackeval metrics on a tiny hand-made sequence whose values are worked out by hand.

Two people, four frames, far apart, predicted with their exact boxes (similarity 1):
- perfect ids: every score is 1, no switch;
- person A changes id after frame 2 (1 -> 3), B keeps id 2:
  IDs = 1; MOTA = 1 - IDSW / GT dets = 1 - 1/8 = 0.875;
  IDF1 = 2 IDTP / (2 IDTP + IDFN + IDFP) = 12 / (12 + 2 + 2) = 0.75 (A pairs with one of its ids);
  DetA = 1 (every detection matched at every alpha); AssA = mean over the 8 matches of
  TPA / (TPA + FNA + FPA) = (4 * 2/4 + 4 * 4/4) / 8 = 0.75; HOTA = sqrt(DetA * AssA) = sqrt(0.75).
"""

import json
import math

import numpy as np
import pytest

from kpr.cli import main
from kpr.errors import DatasetError
from kpr.tracking.evaluate import (
    FramePeople,
    evaluate_sequences,
    keypoint_similarity,
)
from kpr.tracking.posetrack import PoseTrackAnnotation, PoseTrackFrame, write_posetrack
from kpr.tracking.sequences import load_sequences

BOX_A, BOX_B = (0.0, 0.0, 10.0, 20.0), (50.0, 0.0, 60.0, 20.0)
GT_LINES = [f"{f},{i},{x},0,10,20,1,1,1" for f in range(1, 5) for i, x in ((1, 0), (2, 50))]
SWITCH_LINES = [
    f"{f},{i},{x},0,10,20,1,-1,-1,-1"
    for f in range(1, 5)
    for i, x in ((1 if f <= 2 else 3, 0), (2, 50))
]


def _seq(ids_per_frame):
    return {
        f: FramePeople(np.array(ids, np.int64), np.array([BOX_A, BOX_B]), sources=("x", "y"))
        for f, ids in enumerate(ids_per_frame, start=1)
    }


def test_perfect_tracker_scores_one():
    gt = {"s": _seq([[1, 2]] * 4)}
    m = evaluate_sequences(gt, gt, "boxes")
    assert (m.HOTA, m.DetA, m.AssA, m.MOTA, m.IDF1, m.IDs) == (1.0, 1.0, 1.0, 1.0, 1.0, 0)


def test_one_identity_switch_matches_the_hand_computed_values():
    gt = {"s": _seq([[1, 2]] * 4)}
    pred = {"s": _seq([[1, 2], [1, 2], [3, 2], [3, 2]])}
    m = evaluate_sequences(gt, pred, "boxes")
    assert m.IDs == 1
    assert m.MOTA == pytest.approx(0.875)
    assert m.IDF1 == pytest.approx(0.75)
    assert m.DetA == pytest.approx(1.0)
    assert m.AssA == pytest.approx(0.75)
    assert m.HOTA == pytest.approx(math.sqrt(0.75))


def test_missed_and_false_detections_in_mota():
    gt = {"s": _seq([[1, 2]] * 4)}
    pred = {
        "s": {
            **_seq([[1, 2]] * 3),
            4: FramePeople(np.array([1, 9]), np.array([BOX_A, (100, 100, 110, 120)])),
        }
    }
    m = evaluate_sequences(gt, pred, "boxes")
    assert m.IDs == 0
    assert m.MOTA == pytest.approx(1 - 2 / 8)  # one miss (B, frame 4) and one false positive


def test_keypoint_similarity_is_a_keypoint_set_iou():
    gt = np.zeros((1, 17, 3))
    gt[0, :4] = [[10, 10, 1], [20, 10, 1], [30, 10, 1], [40, 10, 1]]
    pred = np.zeros((1, 17, 3))
    pred[0, :3] = [[11, 10, 0.9], [20, 14, 0.9], [30, 30, 0.9]]  # 2 within 0.5 * 10 px, 1 far
    pred[0, 5] = [60, 60, 0.9]  # a joint the ground truth lacks
    # matched 2; union = 4 + 4 - 2 = 6
    np.testing.assert_allclose(keypoint_similarity(gt, pred, np.array([10.0])), [[2 / 6]])


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_track_eval_cli_on_mot_files(tmp_path, capsys):
    gt = _write(tmp_path / "gt.txt", GT_LINES)
    pred = _write(tmp_path / "pred.txt", SWITCH_LINES)
    assert (
        main(
            ["track-eval", "--gt", str(gt), "--pred", str(pred), "--json", str(tmp_path / "s.json")]
        )
        == 0
    )
    scores = json.loads((tmp_path / "s.json").read_text())
    assert {k: scores[k] for k in ("IDs", "MOTA", "IDF1", "AssA", "DetA")} == pytest.approx(
        {"IDs": 1, "MOTA": 0.875, "IDF1": 0.75, "AssA": 0.75, "DetA": 1.0}
    )
    assert scores["HOTA"] == pytest.approx(math.sqrt(0.75))
    assert "HOTA" in capsys.readouterr().out


def test_duplicate_ground_truth_id_names_file_and_line(tmp_path, capsys):
    gt = _write(tmp_path / "gt.txt", GT_LINES + ["2,1,30,0,10,20,1,1,1"])
    pred = _write(tmp_path / "pred.txt", SWITCH_LINES)
    with pytest.raises(DatasetError, match=r"gt.txt:9: id 1 appears twice in frame 2 .*gt.txt:3"):
        load_sequences(gt, pred)
    assert main(["track-eval", "--gt", str(gt), "--pred", str(pred)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gt.txt:9" in err[0]


def test_prediction_frame_missing_from_ground_truth(tmp_path):
    gt = _write(tmp_path / "gt.txt", GT_LINES)
    pred = _write(tmp_path / "pred.txt", SWITCH_LINES + ["7,2,50,0,10,20,1,-1,-1,-1"])
    g, p, kind = load_sequences(gt, pred)
    with pytest.raises(DatasetError, match=r"pred.txt:9: frame 7 is not in the ground truth"):
        evaluate_sequences(g, p, kind)


def _video(path, track_ids, image_ids=(1, 2)):
    kps = np.zeros((17, 3))
    kps[:5] = [[5, 2, 1], [4, 1, 1], [6, 1, 1], [3, 2, 1], [7, 2, 1]]
    frames = [
        PoseTrackFrame(
            image_id,
            f"images/v/{image_id:06d}.jpg",
            tuple(
                PoseTrackAnnotation(
                    t,
                    BOX_A if t % 2 else BOX_B,
                    kps + [50 * (t % 2 == 0), 0, 0],
                    head_box=(2, 0, 6, 4),
                )
                for t in ids
            ),
        )
        for image_id, ids in zip(image_ids, track_ids)
    ]
    return write_posetrack(path, frames, "v")


def test_posetrack_json_perfect_keypoints_and_boxes(tmp_path, capsys):
    gt = _video(tmp_path / "gt.json", [[1, 2], [1, 2]])
    assert (
        main(["track-eval", "--gt", str(gt), "--pred", str(gt), "--json", str(tmp_path / "s.json")])
        == 0
    )
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["similarity"] == "keypoints"
    assert (scores["HOTA"], scores["IDs"], scores["boxes"]["HOTA"]) == (1.0, 0, 1.0)


def test_posetrack_json_errors_name_the_field(tmp_path):
    gt = _video(tmp_path / "gt.json", [[1, 1], [1, 2]])
    with pytest.raises(
        DatasetError, match=r"annotations\[1\]: id 1 appears twice in frame 1 .*annotations\[0\]"
    ):
        load_sequences(gt, gt)
    good = _video(tmp_path / "good.json", [[1, 2], [1, 2]])
    extra = _video(tmp_path / "pred.json", [[1, 2], [1, 2]], image_ids=(1, 5))
    g, p, kind = load_sequences(good, extra)
    with pytest.raises(
        DatasetError, match=r"pred.json: annotations\[2\]: frame 5 is not in the ground truth"
    ):
        evaluate_sequences(g, p, kind)
