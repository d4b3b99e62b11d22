import json

import cv2
import numpy as np
import pytest

from kpr.errors import DatasetError, KPRError
from kpr.tracking.mot import read_mot
from kpr.tracking.outputs import TrackOutputs, write_video
from kpr.tracking.posetrack import read_posetrack
from kpr.tracking.run import run_tracking
from kpr.tracking.sources import Frame, TrackingInputWarning, TrackInput, open_input
from kpr.tracking.tracker import KPRTracker


def test_read_mot_with_keypoints_and_errors(tmp_path):
    kps = ",".join(["12,20,0.9"] * 17)
    path = tmp_path / "det.txt"
    path.write_text(f"1,-1,10,10,20,40,0.8,{kps}\n\n2,-1,5,5,10,10,0.5,-1,-1,-1\n")
    rows = read_mot(path)
    assert sorted(rows) == [1, 2]
    assert rows[1][0].box == (10, 10, 30, 50) and rows[1][0].keypoints[0].tolist() == [12, 20, 0.9]
    assert rows[2][0].keypoints is None and rows[2][0].line == 3
    path.write_text("1,-1,10,10,20,40,0.8\n1,-1,a,10,20,40\n")
    with pytest.raises(DatasetError, match=r"det.txt:2: expected comma-separated numbers"):
        read_mot(path)
    path.write_text("1,2,3\n")
    with pytest.raises(DatasetError, match=r"det.txt:1: expected at least 6 values"):
        read_mot(path)
    path.write_text("0,1,1,1,2,2\n")
    with pytest.raises(DatasetError, match=r"det.txt:1: frame must be an integer >= 1"):
        read_mot(path)
    path.write_text("1,1,1,1,2,2,0,1,1\n1,2,1,1,2,2,1,1,1\n")
    assert [r.track_id for r in read_mot(path, ground_truth=True)[1]] == [2]  # consider=0 left out


def test_read_posetrack_errors_name_the_field(tmp_path):
    path = tmp_path / "v.json"
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "annotations": [{"image_id": 1, "bbox": [0, 0, 5]}],
    }
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"v.json: annotations\[0\].bbox: expected a list of 4"):
        read_posetrack(path)
    doc["annotations"] = [{"image_id": 7, "bbox": [0, 0, 5, 5]}]
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"annotations\[0\]: image_id 7 is not in 'images'"):
        read_posetrack(path)
    doc["annotations"] = [{"image_id": 1, "keypoints": [1.0] * 50}]
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"annotations\[0\].keypoints: expected a list of 51"):
        read_posetrack(path)
    path.write_text("{not json")
    with pytest.raises(DatasetError, match="v.json: not valid JSON"):
        read_posetrack(path)


def test_undecodable_video_is_refused(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(DatasetError, match=r"clip.mp4: cannot decode this video"):
        open_input(bad)


def test_frame_folder_with_detections_and_outside_keypoints(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:04d}.png"), np.full((60, 80, 3), 40 * i, np.uint8))
    far = ",".join(["200,200,1"] * 17)
    det = tmp_path / "det.txt"
    det.write_text(f"1,-1,10,10,20,40,0.9\n2,-1,10,10,20,40,0.9,{far}\n")
    with pytest.warns(
        TrackingInputWarning,
        match=r"det.txt: 1 detections have keypoints outside their box \(first: line 2\)",
    ):
        source = open_input(frames, det)
    got = list(source.frames)
    assert source.num_frames == 3 and [len(f.people) for f in got] == [1, 1, 0]
    assert got[0].people[0].keypoints.sum() == 0  # no keypoints: the empty prompt


def _frames(n, interrupt_after=None):
    from kpr.pose import Person

    for i in range(1, n + 1):
        if interrupt_after is not None and i > interrupt_after:
            raise KeyboardInterrupt
        image = np.zeros((60, 80, 3), np.uint8)
        image[10:50, 10:30] = (200, 30, 30)
        yield Frame(
            i,
            f"{i:06d}",
            image,
            [Person(np.zeros((17, 3)), (10, 10, 30, 50), 1.0)],
            i,
            f"f/{i:06d}.jpg",
        )


def test_interrupted_run_keeps_valid_outputs(tmp_path, colour_predictor):
    outputs = TrackOutputs(tmp_path / "run", "v", frames=True)
    with pytest.raises(KeyboardInterrupt):
        run_tracking(
            TrackInput(_frames(5, interrupt_after=3), 5, "v"),
            KPRTracker(colour_predictor),
            outputs,
            progress=False,
        )
    lines = (tmp_path / "run" / "tracks.txt").read_text().splitlines()
    assert [line.split(",")[:2] for line in lines] == [["1", "1"], ["2", "1"], ["3", "1"]]
    written = read_posetrack(tmp_path / "run" / "tracks.json")
    assert [len(f.annotations) for f in written] == [1, 1, 1]
    assert sorted(p.name for p in (tmp_path / "run" / "frames").iterdir()) == [
        "000001.jpg",
        "000002.jpg",
        "000003.jpg",
    ]
    with pytest.raises(KPRError, match="holds tracks.txt already"):
        TrackOutputs(tmp_path / "run", "v")


def test_video_output(tmp_path, colour_predictor):
    outputs = TrackOutputs(tmp_path / "run", "v", video=True, fps=5)
    summary = run_tracking(
        TrackInput(_frames(4), 4, "v"), KPRTracker(colour_predictor), outputs, progress=False
    )
    assert (summary.frames, summary.detections, summary.tracks) == (4, 4, 1)
    capture = cv2.VideoCapture(str(tmp_path / "run" / "annotated.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    capture.release()


def test_video_without_frames_leaves_no_frames_behind(tmp_path, colour_predictor):
    # --video --no-frames used to write frames/ anyway, to assemble the video from them.
    outputs = TrackOutputs(tmp_path / "run", "v", frames=False, video=True, fps=5)
    run_tracking(
        TrackInput(_frames(3), 3, "v"), KPRTracker(colour_predictor), outputs, progress=False
    )
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "annotated.mp4",
        "tracks.json",
        "tracks.txt",
    ]
    capture = cv2.VideoCapture(str(tmp_path / "run" / "annotated.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    capture.release()


def test_write_video_from_jpeg_files_keeps_them(tmp_path):
    files = []
    for i in range(2):
        _, jpg = cv2.imencode(".jpg", np.full((64, 48, 3), 100 * i, np.uint8))
        files.append(tmp_path / f"{i}.jpg")
        files[-1].write_bytes(jpg.tobytes())
    write_video(tmp_path / "clip.mp4", files, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.jpg", "1.jpg", "clip.mp4"]
    capture = cv2.VideoCapture(str(tmp_path / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    capture.release()


@pytest.mark.parametrize("fps", [0.0, -5.0, float("nan")])
def test_a_video_frame_rate_that_cannot_be_encoded_is_refused_before_tracking(tmp_path, fps):
    # It failed only after the whole video, as "OpenCV cannot write MP4 video here".
    with pytest.raises(KPRError, match=r"fps: the frame rate of annotated.mp4 must be > 0"):
        TrackOutputs(tmp_path / "run", "v", video=True, fps=fps)
    assert not (tmp_path / "run").exists()
    TrackOutputs(tmp_path / "frames-only", "v", fps=0.0).close()  # no video: fps unused
