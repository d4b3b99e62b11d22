import json

import pytest
import torch

import kpr
from kpr.cli import main
from kpr.synthetic.video import VideoConfig, generate_video
from kpr.tracking.posetrack import read_posetrack


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("track")
    torch.manual_seed(0)
    checkpoint = kpr.save_model(kpr.create_model("kpr_tiny_128x64"), root / "model")
    config = VideoConfig(seed=1, num_frames=12, num_people=3, width=192, height=96)
    video = generate_video(root / "data", config, progress=False)
    return root, checkpoint, video


@pytest.mark.parametrize("flags", [[], ["--no-prompts"]])
def test_track_end_to_end_then_eval(setup, flags, capsys):
    root, checkpoint, video = setup
    out = root / ("run" + "".join(flags))
    args = [
        "track",
        str(video.annotations),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        "--device",
        "cpu",
        *flags,
    ]
    assert main(args) == 0
    assert "12 frames" in capsys.readouterr().out
    tracks = read_posetrack(out / "tracks.json")
    gt = read_posetrack(video.annotations)
    assert [len(f.annotations) for f in tracks] == [len(f.annotations) for f in gt]
    assert len(list((out / "frames").glob("*.jpg"))) == 12
    mot_frames = {int(line.split(",")[0]) for line in (out / "tracks.txt").read_text().splitlines()}
    assert mot_frames == set(range(1, 13))
    scores = root / "scores.json"
    assert (
        main(
            [
                "track-eval",
                "--gt",
                str(video.annotations),
                "--pred",
                str(out / "tracks.json"),
                "--json",
                str(scores),
            ]
        )
        == 0
    )
    result = json.loads(scores.read_text())
    assert set(result) >= {"HOTA", "DetA", "AssA", "IDs", "MOTA", "IDF1"}
    assert result["DetA"] == pytest.approx(1.0)  # given detections, exact keypoints
    assert 0.0 < result["AssA"] <= 1.0 and isinstance(result["IDs"], int)


def test_track_bad_input_is_one_line(setup, tmp_path, capsys):
    _, checkpoint, _ = setup
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video")
    assert (
        main(["track", str(bad), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "clip.mp4: cannot decode this video" in err[0]


def test_track_says_how_many_detections_min_confidence_ignored(setup, capsys):
    # --min-confidence 5 tracked nobody without saying why.
    root, checkpoint, video = setup
    out = root / "strict"
    args = ["track", str(video.annotations), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*args, "--min-confidence", "5", "--no-frames"]) == 0
    total = sum(len(f.annotations) for f in read_posetrack(video.annotations))
    printed = capsys.readouterr().out
    assert "12 frames, 0 detections, 0 tracks" in printed
    assert f"{total} detections below --min-confidence 5 ignored" in printed
    assert not (out / "frames").exists()
