import numpy as np
import pytest

from kpr.cli import main
from kpr.errors import ConfigError
from kpr.synthetic.video import VideoConfig, generate_video
from kpr.tracking.matching import box_iou
from kpr.tracking.posetrack import read_posetrack

SMALL = dict(
    num_frames=40, num_people=4, team_size=2, width=192, height=96, speed_min=2.0, speed_max=4.0
)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return generate_video(
        tmp_path_factory.mktemp("v"), VideoConfig(seed=3, **SMALL), progress=False
    )


def test_ground_truth_is_consistent(video):
    frames = read_posetrack(video.annotations)
    assert len(frames) == 40 and video.num_annotations == sum(len(f.annotations) for f in frames)
    crossing = 0.0
    for f in frames:
        ids = [a.track_id for a in f.annotations]
        assert len(ids) == len(set(ids)) and set(ids) <= {1, 2, 3, 4}
        for a in f.annotations:
            x0, y0, x1, y1 = a.box
            assert 0 <= x0 < x1 <= 192 and 0 <= y0 < y1 <= 96
            assert 0.15 <= a.visibility <= 1.0
            shown = a.keypoints[a.keypoints[:, 2] > 0]
            assert ((shown[:, 0] >= x0 - 1) & (shown[:, 0] <= x1 + 1)).all()
            assert ((shown[:, 1] >= y0 - 1) & (shown[:, 1] <= y1 + 1)).all()
        if len(f.annotations) > 1:
            iou = box_iou([a.box for a in f.annotations], [a.box for a in f.annotations])
            np.fill_diagonal(iou, 0)
            crossing = max(crossing, float(iou.max()))
    assert crossing > 0.3  # people do cross


def test_same_seed_same_files(video, tmp_path):
    again = generate_video(tmp_path, VideoConfig(seed=3, **SMALL), progress=False)
    assert again.annotations.read_bytes() == video.annotations.read_bytes()
    for name in ("000000.jpg", "000039.jpg"):
        assert (again.frames_dir / name).read_bytes() == (video.frames_dir / name).read_bytes()
    other = generate_video(tmp_path / "o", VideoConfig(seed=4, **SMALL), progress=False)
    assert other.annotations.read_bytes() != video.annotations.read_bytes()


def test_synth_video_cli(tmp_path, capsys):
    args = [
        "synth-video",
        "--out",
        str(tmp_path),
        "--seed",
        "5",
        "num_frames=3",
        "width=96",
        "height=64",
    ]
    assert main(args) == 0
    assert (tmp_path / "posetrack_data" / "synth_0005.json").is_file()
    assert "3 frames" in capsys.readouterr().out
    assert main(args) == 2  # exists: needs --overwrite
    assert "pass --overwrite" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="num_people"):
        VideoConfig(num_people=0)
