from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kpr.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
CKPT = FIXTURES / "model_A" / "checkpoint_official_format.pth.tar"


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    root = tmp_path_factory.mktemp("crops")
    inputs = np.load(FIXTURES / "model_A" / "inputs.npz")
    for group in ("g1", "g2", "kps"):
        (root / group).mkdir()
    for i in range(4):
        Image.fromarray(inputs[f"sample{i}_image_rgb_uint8"]).save(root / ("g1" if i < 2 else "g2") / f"s{i}.png")
        if i != 3:  # sample 3 has no keypoint file: embedded without prompt
            (root / "kps" / f"s{i}.json").write_text(str(inputs[f"sample{i}_keypoints_json"]))
    return root


def test_embed_writes_npz_with_one_row_per_image(crops, tmp_path, capsys):
    out = tmp_path / "emb.npz"
    code = main(["embed", "--checkpoint", str(CKPT), "--images", str(crops / "g1"), str(crops / "g2"),
                 "--keypoints", str(crops / "kps"), "--out", str(out), "--batch-size", "3"])
    assert code == 0
    data = np.load(out)
    assert data["embeddings"].shape == (4, 9, 512)
    assert data["visibility"].shape == (4, 9) and data["visibility"].dtype == bool
    assert [Path(n).name for n in data["names"]] == ["s0.png", "s1.png", "s2.png", "s3.png"]
    assert data["prompted"].tolist() == [True, True, True, False]
    np.testing.assert_allclose(np.linalg.norm(data["embeddings"], axis=-1), 1.0, atol=1e-5)
    assert "3 with prompts" in capsys.readouterr().out


def test_compare_prints_matrix_and_writes_figure(crops, tmp_path, capsys):
    figure = tmp_path / "cmp.png"
    code = main(["compare", "--checkpoint", str(CKPT), "--group1", str(crops / "g1"), "--group2", str(crops / "g2"),
                 "--keypoints", str(crops / "kps"), "--out", str(figure)])
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in printed if line.startswith("s0.png") or line.startswith("s1.png")]
    assert len(rows) == 2 and all(len(r) == 3 and 0.0 <= float(r[1]) <= 2.0 for r in rows)
    with Image.open(figure) as img:
        assert img.size[0] > 800 and img.size[1] > 400


def test_convert_then_info(tmp_path, capsys):
    out = tmp_path / "converted"
    assert main(["convert", str(CKPT), str(out)]) == 0
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "parts (K)            8 (eight)" in text and "cck8 (10 channels)" in text


def test_errors_exit_2_with_the_path(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.pth.tar")]) == 2
    assert "missing.pth.tar" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["embed", "--checkpoint", str(CKPT), "--images", str(empty), "--out", str(tmp_path / "x.npz")]) == 2
    assert "no images" in capsys.readouterr().err
