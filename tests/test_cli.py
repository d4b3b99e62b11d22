import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kpr.cli import main
from kpr.predictor import KPRPredictor

FIXTURES = Path(__file__).parent / "fixtures"
CKPT = FIXTURES / "model_A" / "checkpoint_official_format.pth.tar"


def run_cli(*args: object) -> int:
    """``kpr ARGS…`` in-process; paths and numbers are passed as their text."""
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    root = tmp_path_factory.mktemp("crops")
    inputs = np.load(FIXTURES / "model_A" / "inputs.npz")
    for group in ("g1", "g2", "kps"):
        (root / group).mkdir()
    for i in range(4):
        Image.fromarray(inputs[f"sample{i}_image_rgb_uint8"]).save(
            root / ("g1" if i < 2 else "g2") / f"s{i}.png"
        )
        if i != 3:  # sample 3 has no keypoint file: embedded without prompt
            (root / "kps" / f"s{i}.json").write_text(str(inputs[f"sample{i}_keypoints_json"]))
    return root


def test_embed_writes_npz_with_one_row_per_image(crops, tmp_path, capsys):
    out = tmp_path / "emb.npz"
    code = run_cli(
        "embed",
        "--checkpoint",
        CKPT,
        "--images",
        crops / "g1",
        crops / "g2",
        "--keypoints",
        crops / "kps",
        "--out",
        out,
        "--batch-size",
        "3",
    )
    assert code == 0
    data = np.load(out)
    assert data["embeddings"].shape == (4, 9, 512)
    assert data["visibility"].shape == (4, 9) and data["visibility"].dtype == bool
    assert [Path(n).name for n in data["names"]] == ["s0.png", "s1.png", "s2.png", "s3.png"]
    assert data["prompted"].tolist() == [True, True, True, False]
    np.testing.assert_allclose(np.linalg.norm(data["embeddings"], axis=-1), 1.0, atol=1e-5)
    assert "3 with prompts" in capsys.readouterr().out
    # The file reads back as the library's Embeddings and equals embedding the files directly.
    import kpr

    names, embedded = kpr.read_embeddings(out)
    predictor = kpr.KPRPredictor.from_pretrained(CKPT, device="cpu")
    files = [crops / "kps" / f"{Path(n).stem}.json" for n in names]
    direct = predictor.embed(
        [Path(n) for n in names], keypoints=[f if f.exists() else None for f in files]
    )
    np.testing.assert_allclose(embedded.embeddings.numpy(), direct.embeddings.numpy(), atol=1e-6)
    assert embedded.prompted.tolist() == direct.prompted.tolist()


def test_compare_prints_matrix_and_writes_figure(crops, tmp_path, capsys):
    figure = tmp_path / "cmp.png"
    code = run_cli(
        "compare",
        "--checkpoint",
        CKPT,
        "--group1",
        crops / "g1",
        "--group2",
        crops / "g2",
        "--keypoints",
        crops / "kps",
        "--out",
        figure,
    )
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    rows = [
        line.split() for line in printed if line.startswith("s0.png") or line.startswith("s1.png")
    ]
    assert len(rows) == 2 and all(len(r) == 3 and 0.0 <= float(r[1]) <= 2.0 for r in rows)
    with Image.open(figure) as img:
        assert img.size[0] > 800 and img.size[1] > 400


def test_compare_refuses_more_crops_than_a_figure_can_show(crops, tmp_path, capsys):
    from kpr.viz.compare import MAX_CROPS_PER_GROUP

    many = [crops / "g1" / "s0.png"] * (MAX_CROPS_PER_GROUP + 1)
    out = tmp_path / "cmp.png"
    # Refused before the model loads: the checkpoint does not even exist.
    args = ["compare", "--checkpoint", str(tmp_path / "none"), "--out", str(out)]
    assert main([*args, "--group1", str(crops / "g1"), "--group2", *map(str, many)]) == 2
    _one_line_error(capsys, f"--group2: {MAX_CROPS_PER_GROUP + 1} crops", "kpr search")
    assert not out.exists()


def test_convert_then_info(tmp_path, capsys):
    out = tmp_path / "converted"
    assert main(["convert", "--checkpoint", str(CKPT), "--out", str(out)]) == 0
    assert main(["info", "--checkpoint", str(out)]) == 0
    text = capsys.readouterr().out
    assert "parts (K)            8 (eight)" in text and "cck8, keypoints (10 channels" in text


def test_errors_exit_2_with_the_path(tmp_path, capsys):
    assert main(["info", "--checkpoint", str(tmp_path / "missing.pth.tar")]) == 2
    assert "missing.pth.tar" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        run_cli("embed", "--checkpoint", CKPT, "--images", empty, "--out", tmp_path / "x.npz") == 2
    )
    assert "no images" in capsys.readouterr().err


def _error_line(stderr: str, *needles):
    """The one line of ``stderr`` besides progress bars, checked to hold every needle."""
    err = [line for line in stderr.splitlines() if line.strip() and "batch/s" not in line]
    assert len(err) == 1 and err[0].startswith("kpr "), err
    for needle in needles:
        assert needle in err[0], err
    return err[0]


def _one_line_error(capsys, *needles):
    return _error_line(capsys.readouterr().err, *needles)


def test_embed_refuses_a_directory_or_an_existing_file_as_out(crops, tmp_path, capsys):
    args = ["embed", "--checkpoint", str(CKPT), "--images", str(crops / "g1")]
    assert main([*args, "--out", str(tmp_path)]) == 2
    _one_line_error(capsys, "is a directory")
    existing = tmp_path / "mine.npz"
    existing.write_bytes(b"user data")
    assert main([*args, "--out", str(existing)]) == 2
    _one_line_error(capsys, "already exists", "--overwrite")
    assert existing.read_bytes() == b"user data"
    assert main([*args, "--out", str(existing), "--overwrite"]) == 0
    assert np.load(existing)["embeddings"].shape[0] == 2


def test_a_corrupt_image_is_one_line_on_the_terminal_too(crops, tmp_path, capfd):
    # A PNG whose header claims 60000×60000 and then ends: OpenCV's decoder prints a warning of
    # its own straight to the file descriptor unless kpr silences it.
    import cv2

    broken = tmp_path / "broken.png"
    header = b"\x00\x00\x00\rIHDR" + (60000).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + header + b"\x00" * 4)
    level = cv2.getLogLevel()
    try:
        code = main(["embed", "--checkpoint", str(CKPT), "--images", str(broken), "--out",
                     str(tmp_path / "e.npz")])  # fmt: skip
    finally:
        cv2.setLogLevel(level)
    assert code == 2
    raw = capfd.readouterr().err
    assert "WARN" not in raw and "libpng" not in raw, raw  # not even inside a progress line
    _error_line(raw, "broken.png: not a decodable image")


def test_an_unwritable_out_names_the_file_asked_for(crops, capsys):
    # The error named the random temporary directory ('/proc/.e.npz.jq7kaytz').
    args = ["embed", "--checkpoint", str(CKPT), "--images", str(crops / "g1")]
    assert main([*args, "--out", "/proc/e.npz"]) == 1
    line = _one_line_error(capsys, "No such file or directory: '/proc/e.npz'")
    assert ".e.npz." not in line


def test_embed_on_error_skip_reports_the_skipped_images(crops, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for image in (crops / "g1").iterdir():
        (folder / image.name).write_bytes(image.read_bytes())
    (folder / "zz_broken.png").write_bytes(b"not an image")
    out = tmp_path / "emb.npz"
    args = ["embed", "--checkpoint", str(CKPT), "--images", str(folder), "--out", str(out)]
    assert main(args) == 2
    _one_line_error(capsys, "zz_broken.png")
    assert not out.exists() and not list(tmp_path.glob(".emb.npz*"))  # nothing half-written
    assert main([*args, "--on-error", "skip"]) == 0
    captured = capsys.readouterr()
    broken = folder / "zz_broken.png"
    # Named once: the reason already starts with the file.
    assert f"kpr embed: skipped {broken}: not a decodable image" in captured.err
    assert captured.err.count("zz_broken.png") == 1 and "1 skipped" in captured.out
    assert [Path(n).name for n in np.load(out)["names"]] == ["s0.png", "s1.png"]


@pytest.mark.parametrize(
    "device, needle",
    [("cuda", "no usable CUDA"), ("tpu", "not a device"), ("cuda:7", "no usable CUDA")],
)
def test_bad_devices_are_one_line_errors(crops, tmp_path, capsys, device, needle):
    assert (
        run_cli(
            "embed",
            "--checkpoint",
            CKPT,
            "--images",
            crops / "g1",
            "--out",
            tmp_path / "e.npz",
            "--device",
            device,
        )
        == 2
    )
    _one_line_error(capsys, needle)


def test_a_bad_cpu_linear_setting_is_a_one_line_error(crops, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KPR_CPU_LINEAR", "blas")
    args = ["--checkpoint", CKPT, "--images", crops / "g1", "--out", tmp_path / "e.npz"]
    assert run_cli("embed", *args) == 2
    _one_line_error(capsys, "KPR_CPU_LINEAR: expected 'aten' or 'onednn', got 'blas'")
    assert not (tmp_path / "e.npz").exists()


def test_sigterm_leaves_no_temporary_file_and_exits_143(tmp_path):
    """A scheduler's SIGTERM mid-write: Python's default handler ended the process at once and
    left the half-written ``.emb.npz.*.tmp`` behind."""
    from kpr.checkpoint import create_model, save_model

    model = save_model(create_model("kpr_tiny_128x64"), tmp_path / "model")
    images = tmp_path / "crops"
    images.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (128, 64, 3), dtype=np.uint8)
    for i in range(400):
        Image.fromarray(np.roll(pixels, i, axis=0)).save(images / f"{i:03d}.png")
    out = tmp_path / "out" / "emb.npz"
    command = [sys.executable, "-m", "kpr", "embed", "--checkpoint", str(model)]
    command += ["--images", str(images), "--out", str(out), "--batch-size", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(".emb.npz.*")):
        assert process.poll() is None and time.monotonic() < deadline, "ended before the signal"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert stderr.splitlines()[-1] == "kpr embed: terminated"
    assert list(out.parent.iterdir()) == []  # neither the output nor its temporary file


def test_interrupt_and_os_errors_are_one_line(monkeypatch, tmp_path, capsys):
    import kpr.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_info", interrupted)
    assert main(["info", "--checkpoint", "x"]) == 130
    _one_line_error(capsys, "interrupted")

    def permission(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "locked"))

    monkeypatch.setattr(cli, "cmd_info", permission)
    assert main(["info", "--checkpoint", "x"]) == 1
    _one_line_error(capsys, "Permission denied", "locked")


def test_a_crash_is_still_one_line_unless_debugging(monkeypatch, capsys):
    import kpr.cli as cli

    monkeypatch.setattr(cli, "cmd_info", lambda args: [][1])
    assert main(["info", "--checkpoint", "x"]) == 1
    _one_line_error(capsys, "internal error: IndexError", "KPR_DEBUG=1")
    monkeypatch.setenv("KPR_DEBUG", "1")
    with pytest.raises(IndexError):
        main(["info", "--checkpoint", "x"])


def test_huge_and_corrupt_images_are_one_line_errors(tmp_path, capsys):
    huge = tmp_path / "huge.png"
    Image.new("L", (20000, 20000)).save(huge)  # 400 Mpx in a ~400 KB file
    assert (
        run_cli("embed", "--checkpoint", CKPT, "--images", huge, "--out", tmp_path / "e.npz") == 2
    )
    _one_line_error(capsys, "huge.png", "too large")
    big = tmp_path / "big.png"
    Image.new("L", (8000, 8000)).save(big)
    assert run_cli("embed", "--checkpoint", CKPT, "--images", big, "--out", tmp_path / "e.npz") == 2
    _one_line_error(capsys, "big.png", "above kpr's limit", "KPR_MAX_IMAGE_PIXELS")


def test_convert_never_touches_what_it_did_not_write(tmp_path, capsys, monkeypatch):
    mine = tmp_path / "my_files"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert main(["convert", "--checkpoint", str(CKPT), "--out", str(mine)]) == 2
    _one_line_error(capsys, "my_files")
    assert main(["convert", "--checkpoint", str(CKPT), "--out", str(mine), "--overwrite"]) == 2
    _one_line_error(capsys, "my_files")
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    assert (mine / "thesis.tex").read_text() == "years of work"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    assert main(["convert", "--checkpoint", str(CKPT), "--out", str(a_file)]) == 2
    _one_line_error(capsys, "notes.txt", "overwrite")
    assert a_file.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_files", "notes.txt"]
    monkeypatch.chdir(mine)
    assert main(["convert", "--checkpoint", str(CKPT), "--out", "."]) == 2
    _one_line_error(capsys)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    out = tmp_path / "model"
    assert main(["convert", "--checkpoint", str(CKPT), "--out", str(out)]) == 0
    # its own checkpoint: replaced
    assert main(["convert", "--checkpoint", str(CKPT), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]


def test_converted_files_respect_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        assert main(["convert", "--checkpoint", str(CKPT), "--out", str(tmp_path / "m")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "m").iterdir()} == {0o644}


def test_info_fails_for_a_checkpoint_that_does_not_load(tmp_path, capsys):
    import json

    from safetensors.torch import load_file, save_file

    out = tmp_path / "model"
    assert main(["convert", "--checkpoint", str(CKPT), "--out", str(out)]) == 0
    weights = load_file(out / "model.safetensors")
    weights.pop(sorted(weights)[0])
    save_file(weights, out / "model.safetensors")
    capsys.readouterr()
    assert main(["info", "--checkpoint", str(out)]) == 2
    _one_line_error(capsys, "model", "missing")
    config = json.loads((out / "config.json").read_text())
    config["model"]["image_size"] = [0, 128]
    (out / "config.json").write_text(json.dumps(config))
    assert main(["info", "--checkpoint", str(out)]) == 2
    _one_line_error(capsys, "config.json", "image_size")


def test_embed_keypoints_auto_prompts_crops_from_the_pose_estimator(crops, tmp_path):
    """--keypoints auto runs the estimator (a user backend here) for every crop; its people become
    the prompt, so the result equals embedding with those keypoints given by hand."""
    from kpr.pose import Person, register_estimator

    inputs = np.load(FIXTURES / "model_A" / "inputs.npz")
    target, other = inputs["sample0_target_kps"], inputs["sample0_negative_kps"][0]

    class TwoPeople:
        def estimate(self, image):
            return [Person.from_keypoints(other), Person.from_keypoints(target)]

    register_estimator("two_people_for_test", TwoPeople)
    out = tmp_path / "auto.npz"
    args = ["embed", "--checkpoint", CKPT, "--images", crops / "g1" / "s0.png", "--out", out]
    assert run_cli(*args, "--keypoints", "auto", "--estimator", "two_people_for_test") == 0
    data = np.load(out)
    assert data["prompted"].tolist() == [True]
    from kpr.pose import auto_skeletons

    skeletons = auto_skeletons(crops / "g1" / "s0.png", TwoPeople())
    predictor = KPRPredictor.from_pretrained(CKPT, device="cpu")
    direct = predictor.embed(crops / "g1" / "s0.png", keypoints=skeletons)
    np.testing.assert_allclose(data["embeddings"], direct.embeddings.numpy(), atol=1e-6)
    plain = predictor.embed(crops / "g1" / "s0.png")
    assert not np.allclose(data["embeddings"], plain.embeddings.numpy(), atol=1e-4)


@pytest.fixture(scope="module")
def masks_checkpoint(tmp_path_factory):
    from kpr.checkpoint import create_model
    from kpr.checkpoint.kpr_format import save_kpr_checkpoint

    model = create_model("kpr_tiny_128x64", prompt_type="masks")
    path = tmp_path_factory.mktemp("masks_model") / "ckpt"
    return save_kpr_checkpoint(path, model.config, model.state_dict())


def test_embed_and_compare_with_mask_prompts(crops, masks_checkpoint, tmp_path, capsys):
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in (0, 2):
        hw = np.asarray(Image.open(crops / ("g1" if i < 2 else "g2") / f"s{i}.png")).shape[:2]
        labels = np.zeros(hw, np.uint8)
        labels[hw[0] // 4 :, : hw[1] // 2] = 1
        Image.fromarray(labels).save(masks / f"s{i}.png")
    out = tmp_path / "emb.npz"
    images = (crops / "g1", crops / "g2")
    args = ("--checkpoint", masks_checkpoint, "--masks", masks)
    assert run_cli("embed", *args, "--images", *images, "--out", out) == 0
    assert np.load(out)["prompted"].tolist() == [True, False, True, False]
    assert "2 with prompts" in capsys.readouterr().out
    figure = tmp_path / "cmp.png"
    code = run_cli(
        "compare", *args, "--group1", crops / "g1", "--group2", crops / "g2", "--out", figure
    )
    assert code == 0 and figure.is_file()


def test_mask_prompts_for_a_keypoint_model_are_a_one_line_error(crops, tmp_path, capsys):
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks / "s0.png")
    code = run_cli(
        "embed",
        "--checkpoint",
        CKPT,
        "--images",
        crops / "g1",
        "--masks",
        masks,
        "--out",
        tmp_path / "e.npz",
    )
    assert code == 2
    assert "mask prompt given to a model with keypoint prompts" in capsys.readouterr().err
    code = run_cli(
        "embed",
        "--checkpoint",
        CKPT,
        "--images",
        crops / "g1",
        "--masks",
        tmp_path / "none",
        "--out",
        tmp_path / "e.npz",
    )
    assert code == 2 and "masks directory not found" in capsys.readouterr().err
