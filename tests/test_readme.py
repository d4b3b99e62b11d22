"""The README is true line by line: its Python blocks run, its CLI synopsis parses, its runnable
CLI example runs, and its import lines resolve."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from kpr.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _commands(block: str) -> list[str]:
    """The ``kpr …`` commands of a bash block, continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [
        line.split("  #")[0].strip()
        for line in joined.splitlines()
        if line.strip().startswith("kpr ")
    ]


@pytest.fixture()
def user_dir(tmp_path, monkeypatch):
    """A working directory holding the files the README's first example names (from the test
    fixtures), and the repository's tests/ for the others."""
    import numpy as np
    from PIL import Image

    fixtures = ROOT / "tests" / "fixtures" / "model_A"
    inputs = np.load(fixtures / "inputs.npz")
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    (tmp_path / "kpr_occ_posetrack_IN.pth.tar").symlink_to(
        fixtures / "checkpoint_official_format.pth.tar"
    )
    for i, name in enumerate(("query.jpg", "g1.jpg", "g2.jpg")):
        Image.fromarray(inputs[f"sample{i}_image_rgb_uint8"]).save(tmp_path / name)
    (tmp_path / "query.json").write_text(str(inputs["sample0_keypoints_json"]))
    (tmp_path / "0001_c1s1_000151_01.jpg_keypoints.json").write_text(
        str(inputs["sample1_keypoints_json"])
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_python_examples_run(user_dir):
    blocks = _blocks("python")
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code


def test_cli_synopsis_parses():
    synopsis = next(b for b in _blocks("bash") if "kpr info" in b and "--checkpoint C" in b)
    commands = _commands(synopsis)
    assert {c.split()[1] for c in commands} >= {
        "info",
        "convert",
        "embed",
        "compare",
        "train",
        "eval",
        "demo",
        "synth",
    }
    parser = build_parser()
    for command in commands:
        # Placeholders become values; [optional …] parts are taken as written, without brackets.
        words = shlex.split(re.sub(r"[\[\]]", "", command).replace("…", ""))[1:]
        words = [w for w in words if w not in ("|",)]
        try:
            parser.parse_args(words)
        except SystemExit as exc:
            pytest.fail(f"README command does not parse: {command!r} ({exc})")


def test_runnable_cli_example(user_dir, tmp_path, capsys):
    block = next(b for b in _blocks("bash") if b.startswith("# runnable"))
    commands = _commands(block.replace("$OUT", str(tmp_path)))
    assert len(commands) >= 4
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
