from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import importlib.util
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpr.errors import ConfigError
from kpr.keypoints import read_keypoints_file
from kpr.synthetic.cli import add_synth_parser, config_from_args
from kpr.synthetic.contact_sheet import contact_sheet
from kpr.synthetic.generator import (
    ANNOTATION_COLUMNS,
    OWNER_OBJECT,
    OWNER_OCCLUDER,
    OWNER_TARGET,
    SyntheticConfig,
    build_world,
    generate_synthetic_dataset,
    plan_images,
    render_sample,
)
from kpr.synthetic.people import PARSING_CLASSES

SMALL = SyntheticConfig(
    num_images=120, num_train_ids=6, num_test_ids=6, team_size=3, num_cameras=3, seed=7
)
H, W = SMALL.image_size_hw


def _rows(root: Path) -> list[dict[str, str]]:
    with open(root / "annotations.csv", newline="") as f:
        return list(csv.DictReader(f))


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _keypoint_entries(root: Path, image: str) -> list[dict[str, object]]:
    path = (root / "keypoints" / Path(image).relative_to("images")).with_suffix(".json")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "ds"
    generate_synthetic_dataset(root, SMALL, workers=1)
    return root


@pytest.fixture(scope="module")
def samples():
    world = build_world(SMALL)
    return [render_sample(world, plan) for plan in plan_images(world)]


def test_same_seed_gives_identical_files_for_any_worker_count(
    dataset: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    generate_synthetic_dataset(again, SMALL, workers=2)
    assert _hashes(again) == _hashes(dataset)


def test_different_seed_gives_different_images(dataset: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate_synthetic_dataset(other, dataclasses.replace(SMALL, seed=8), workers=1)
    ours = {h for k, h in _hashes(dataset).items() if k.startswith("images/")}
    theirs = {h for k, h in _hashes(other).items() if k.startswith("images/")}
    assert not ours & theirs


def test_metadata_and_table_layout(dataset: Path) -> None:
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["format"] == "kpr-folder/1"
    assert meta["name"] == "synthetic"
    assert meta["image_size_hw"] == [H, W]
    assert meta["parsing_classes"] == list(PARSING_CLASSES)
    assert meta["keypoint_format"] == "coco17"
    assert meta["generator"]["seed"] == SMALL.seed
    assert meta["generator"]["params"] == dataclasses.asdict(SMALL)
    rows = _rows(dataset)
    assert list(rows[0]) == list(ANNOTATION_COLUMNS)
    assert len(rows) == SMALL.num_images
    for row in rows:
        assert row["image"] == f"images/{row['split']}/{Path(row['image']).name}"
        image = cv2.imread(str(dataset / row["image"]), cv2.IMREAD_UNCHANGED)
        assert image.shape == (H, W, 3) and image.dtype == np.uint8


def test_train_and_test_ids_are_disjoint_and_every_query_id_is_in_gallery(dataset: Path) -> None:
    ids: dict[str, set[str]] = defaultdict(set)
    for row in _rows(dataset):
        ids[row["split"]].add(row["pid"])
    assert set(ids) == {"train", "query", "gallery"}
    assert not ids["train"] & (ids["query"] | ids["gallery"])
    assert ids["query"] <= ids["gallery"]
    assert len(ids["train"]) == SMALL.num_train_ids and len(ids["gallery"]) == SMALL.num_test_ids


def test_queries_are_single_person_crops_and_the_most_cluttered_multi_person_ones(
    dataset: Path,
) -> None:
    rows: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in _rows(dataset):
        rows[(row["pid"], row["split"])].append(row)
    queries = [key for key in rows if key[1] == "query"]
    assert len(queries) == SMALL.num_test_ids
    for pid, _ in queries:
        query, gallery = rows[(pid, "query")], rows[(pid, "gallery")]
        num_query = int(SMALL.query_fraction * (len(query) + len(gallery)))
        assert len(query) == num_query
        single = [r for r in query if r["occlusion"] != "multi_person"]
        assert len(single) == int(SMALL.single_person_query_share * num_query)
        cluttered = [float(r["occ_level"]) for r in query if r["occlusion"] == "multi_person"]
        rest = [float(r["occ_level"]) for r in gallery]
        assert cluttered and min(cluttered) >= max(rest)


def test_single_person_query_share_zero_keeps_the_most_cluttered_rule(tmp_path: Path) -> None:
    config = dataclasses.replace(SMALL, single_person_query_share=0.0, num_images=60)
    generate_synthetic_dataset(tmp_path, config, workers=1)
    levels: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in _rows(tmp_path):
        levels[(row["pid"], row["split"])].append(float(row["occ_level"]))
    for (pid, split), query in levels.items():
        if split == "query":
            assert min(query) >= max(levels[(pid, "gallery")])


def test_keypoint_files_follow_the_official_layout_and_stay_in_frame(dataset: Path) -> None:
    for row in _rows(dataset):
        entries = _keypoint_entries(dataset, row["image"])
        assert [e["is_target"] for e in entries] == [True] + [False] * (len(entries) - 1)
        for entry in entries:
            kps = np.array(entry["keypoints"], dtype=float)
            assert kps.shape == (17, 3)
            assert set(np.unique(kps[:, 2])) <= {0.0, 1.0}
            assert np.all(kps[kps[:, 2] == 0] == 0.0)
            assert np.all((kps[:, 0] >= 0) & (kps[:, 0] < W) & (kps[:, 1] >= 0) & (kps[:, 1] < H))
        rel = Path(row["image"]).relative_to("images")
        path = (dataset / "keypoints" / rel).with_suffix(".json")
        assert read_keypoints_file(path).target.shape == (17, 3)


def test_negative_keypoints_present_iff_multi_person(dataset: Path) -> None:
    kinds = set()
    for row in _rows(dataset):
        entries = _keypoint_entries(dataset, row["image"])
        kinds.add(row["occlusion"])
        if row["occlusion"] == "multi_person":
            assert len(entries) == 2
            assert np.array(entries[1]["keypoints"])[:, 2].sum() > 0
        else:
            assert len(entries) == 1
    assert kinds == {"none", "object", "multi_person"}


def test_occluder_is_another_identity_of_the_same_split(dataset: Path) -> None:
    rows = _rows(dataset)
    train = {int(r["pid"]) for r in rows if r["split"] == "train"}
    test = {int(r["pid"]) for r in rows if r["split"] != "train"}
    for row in rows:
        occluder, pid = int(row["occluder_pid"]), int(row["pid"])
        if row["occlusion"] != "multi_person":
            assert occluder == -1 and row["occluder_position"] == "none"
            continue
        assert occluder != pid
        assert occluder in (train if row["split"] == "train" else test)
        assert row["occluder_position"] in ("front", "behind")


def test_parsing_files_hold_target_labels_only(dataset: Path, samples) -> None:
    for row in _rows(dataset):
        path = dataset / "parsing" / Path(row["image"]).relative_to("images")
        parsing = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert parsing.shape == (H, W) and parsing.dtype == np.uint8
        assert parsing.max() < len(PARSING_CLASSES) and parsing.max() > 0
    for s in samples:
        assert np.array_equal(s.parsing > 0, s.owner == OWNER_TARGET)


def test_person_masks_show_the_target_and_the_other_people(dataset: Path, samples) -> None:
    by_name = {s.plan.name: s for s in samples}
    rows = _rows(dataset)
    for row in rows:
        rel = Path(row["image"]).relative_to("images")
        mask = cv2.imread(str(dataset / "masks" / rel), cv2.IMREAD_UNCHANGED)
        owner = by_name[rel.stem].owner
        assert mask.shape == (H, W) and mask.dtype == np.uint8
        assert np.array_equal(mask == 1, owner == OWNER_TARGET)
        assert np.array_equal(mask == 2, owner == OWNER_OCCLUDER)
        assert not (mask[owner == OWNER_OBJECT]).any()
        assert (mask == 2).any() == (row["occlusion"] == "multi_person")
    # masks follow their image into the query split
    assert any(r["split"] == "query" for r in rows)
    assert len(list((dataset / "masks").rglob("*.png"))) == len(rows)


def test_masks_are_optional(tmp_path: Path) -> None:
    config = dataclasses.replace(SMALL, write_masks=False, num_images=60)
    generate_synthetic_dataset(tmp_path, config, workers=1)
    assert not (tmp_path / "masks").exists()
    assert len(list((tmp_path / "images").rglob("*.png"))) == 60


def test_visibility_follows_depth_order(samples) -> None:
    hidden = 0
    for s in samples:
        front = {OWNER_OBJECT} | ({OWNER_OCCLUDER} if s.occluder_position == "front" else set())
        for (x, y, annotatable), (vx, vy, c) in zip(s.target_layout, s.target_keypoints):
            if not (annotatable and 0 <= x < W and 0 <= y < H):
                assert c == 0
                continue
            owner = s.owner[int(y), int(x)]
            if owner in front:
                hidden += 1
                assert c == 0 and s.parsing[int(y), int(x)] == 0
            if c == 1:
                assert s.owner[int(vy), int(vx)] == OWNER_TARGET and s.parsing[int(vy), int(vx)] > 0
        for neg in s.negative_keypoints:
            for x, y, c in neg:
                if c == 1:
                    assert s.owner[int(y), int(x)] == OWNER_OCCLUDER
    assert hidden > 0


def test_multi_person_occluder_overlaps_the_target(samples) -> None:
    fronts = [s for s in samples if s.occluder_position == "front"]
    behinds = [s for s in samples if s.occluder_position == "behind"]
    assert fronts and behinds
    for s in fronts:
        # the target loses a real share of its pixels, yet keeps a prompt
        assert s.target_keypoints[:, 2].sum() >= 1
        assert (s.owner == OWNER_OCCLUDER).sum() > (s.owner == OWNER_TARGET).sum() * 0.5


def test_teammates_share_a_kit_and_differ_in_details() -> None:
    world = build_world(SMALL)
    teams: dict[int, list] = defaultdict(list)
    for ident in world.identities:
        teams[ident.team].append(ident)
    for members in teams.values():
        assert len({m.kit for m in members}) == 1
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                assert sum(x != y for x, y in zip(a.details(), b.details())) >= 2


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), pick=st.integers(0, 10**6))
def test_any_seed_renders_consistent_samples(seed: int, pick: int) -> None:
    config = dataclasses.replace(SMALL, seed=seed, num_images=24, num_train_ids=2, num_test_ids=2)
    world = build_world(config)
    plans = plan_images(world)
    s = render_sample(world, plans[pick % len(plans)])
    assert s.image.shape == (H, W, 3)
    assert np.array_equal(s.parsing > 0, s.owner == OWNER_TARGET)
    visible = s.target_keypoints[s.target_keypoints[:, 2] > 0]
    assert np.all((visible[:, 0] < W) & (visible[:, 1] < H) & (visible[:, :2] >= 0).all(axis=1))
    assert (len(s.negative_keypoints) == 1) == (s.occlusion == "multi_person")


def test_refuses_a_non_empty_directory_unless_overwriting_its_own(
    dataset: Path, tmp_path: Path
) -> None:
    (tmp_path / "stranger.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        generate_synthetic_dataset(tmp_path, SMALL, workers=1)
    with pytest.raises(ConfigError, match="overwrite"):
        generate_synthetic_dataset(dataset, SMALL, workers=1)


def test_overwrite_replaces_a_synthetic_dataset(tmp_path: Path) -> None:
    config = dataclasses.replace(SMALL, num_images=48, num_train_ids=3, num_test_ids=3)
    generate_synthetic_dataset(tmp_path, config, workers=1)
    smaller = dataclasses.replace(config, num_images=24)
    summary = generate_synthetic_dataset(tmp_path, smaller, workers=1, overwrite=True)
    assert summary.num_images == 24
    assert len(list((tmp_path / "images").rglob("*.png"))) == 24


@pytest.mark.parametrize(
    "bad",
    [
        {"p_object": 0.7, "p_multi_person": 0.5},
        {"num_images": 10},
        {"overlap_min": 0.7, "overlap_max": 0.6},
        {"num_test_ids": 1},
        {"team_size": 0},
    ],
)
def test_inconsistent_configs_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        dataclasses.replace(SMALL, **bad)


def test_overrides_are_typed_and_checked(tmp_path: Path) -> None:
    def config(*overrides: str) -> SyntheticConfig:
        return config_from_args(_synth_args(["--out", str(tmp_path), *overrides]))

    assert config("team_size=5", "p_object=0.1", "write_parsing=false") == SyntheticConfig(
        team_size=5, p_object=0.1, write_parsing=False
    )
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['colour'\]"):
        config("colour=red")
    with pytest.raises(ConfigError, match="team_size: expected an integer"):
        config("team_size=big")
    with pytest.raises(ConfigError, match="expected key=value"):
        config("team_size")


def _synth_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kpr")
    add_synth_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["synth", *argv])


def test_flags_and_overrides_build_the_config(tmp_path: Path) -> None:
    argv = ["--out", str(tmp_path), "--seed", "3", "--num-images", "900", "team_size=5"]
    args = _synth_args(argv)
    assert config_from_args(args) == SyntheticConfig(seed=3, num_images=900, team_size=5)
    with pytest.raises(ConfigError, match="given both"):
        config_from_args(_synth_args(["--out", str(tmp_path), "--seed", "3", "seed=4"]))


def test_synth_command_writes_dataset_and_contact_sheet(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    argv = ["--out", str(out), "--num-images", "48", "--workers", "1", "num_train_ids=3"]
    args = _synth_args(argv + ["num_test_ids=3", "num_cameras=2"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "multi_person" in printed and "gallery" in printed
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] == 12 * 128
    assert (out / "dataset.json").is_file()


def test_contact_sheet_shape(dataset: Path) -> None:
    sheet = contact_sheet(dataset, num=10, columns=5, tile_hw=(64, 32))
    assert sheet.shape == (2 * (64 + 14), 5 * 32, 3) and sheet.dtype == np.uint8


def test_overwrite_recognises_data_written_under_the_old_module_name(tmp_path: Path) -> None:
    config = dataclasses.replace(SMALL, num_images=24, num_train_ids=3, num_test_ids=3)
    generate_synthetic_dataset(tmp_path, config, workers=1)
    meta_path = tmp_path / "dataset.json"
    meta = json.loads(meta_path.read_text())
    assert meta["generator"]["name"] == "kpr.synthetic"
    meta["generator"]["name"] = "kpr.data.synthetic"
    meta_path.write_text(json.dumps(meta))
    assert generate_synthetic_dataset(tmp_path, config, workers=1, overwrite=True).num_images == 24


def test_the_generator_lives_outside_the_dataset_layer() -> None:
    for old in (
        "kpr.data.synthetic",
        "kpr.data.synthetic_people",
        "kpr.cli_synth",
        "kpr.viz.contact_sheet",
    ):
        assert importlib.util.find_spec(old) is None, old
    # Reading datasets (every adapter, the synthetic one included) never loads the generator.
    code = (
        "import sys; from kpr.data.datasets import list_datasets; "
        "assert 'synthetic' in list_datasets(); "
        "sys.exit(any(m.startswith('kpr.synthetic') for m in sys.modules))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
