"""Gallery index: build, bounded-memory search, resume after a kill, atomicity, the CLI verbs."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import kpr
import kpr.retrieval.index as index_module
from kpr.checkpoint.fingerprint import weights_fingerprint
from kpr.cli import collect_images, keypoint_file_for
from kpr.cli import main as kpr_main
from kpr.errors import CheckpointError, ImageReadError, KPRError
from kpr.io_utils import current_umask
from kpr.predictor import Embeddings, KPRPredictor
from kpr.retrieval.distance import topk_gallery
from kpr.retrieval.index import GalleryIndex, ModelSignature, build_index
from kpr.synthetic import SyntheticConfig, generate_synthetic_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("index_data")
    generate_synthetic_dataset(
        root,
        SyntheticConfig(seed=7, num_images=32, num_train_ids=2, num_test_ids=3, team_size=2),
        workers=1,
    )
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return kpr.save_model(
        kpr.create_model("kpr_tiny_128x64"), tmp_path_factory.mktemp("index_model") / "m"
    )


@pytest.fixture(scope="module")
def predictor(checkpoint) -> KPRPredictor:
    return KPRPredictor.from_pretrained(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def gallery(data) -> tuple[list[Path], list[Path | None]]:
    images = collect_images([str(data / "images" / "gallery")])
    return images, [keypoint_file_for(p, data / "keypoints" / "gallery") for p in images]


def _build(predictor, checkpoint, gallery, out, **kw):
    images, keypoints = gallery
    return build_index(
        predictor,
        images,
        out,
        signature=ModelSignature.of(predictor, checkpoint),
        keypoints=keypoints,
        **kw,
    )


def test_search_equals_topk_over_the_whole_gallery(tmp_path, predictor, checkpoint, gallery, data):
    built = _build(predictor, checkpoint, gallery, tmp_path / "G", shard_size=5)
    index = built.index
    images, keypoints = gallery
    assert len(index) == len(images) and built.embedded_now == len(images) and built.resumed == 0
    assert index.names == tuple(p.name for p in images)
    everything = predictor.embed(images, keypoints=keypoints)
    queries = collect_images([str(data / "images" / "query")])[:4]
    q = predictor.embed(
        queries, keypoints=[keypoint_file_for(p, data / "keypoints" / "query") for p in queries]
    )
    want_d, want_i = topk_gallery(
        q.embeddings, everything.embeddings, q.visibility, everything.visibility, 7
    )
    for resident in (1 << 30, 0):  # all shards in memory, and one shard at a time from disk
        got = GalleryIndex.open(index.path, max_resident_bytes=resident).search(q, 7)
        assert torch.equal(got.indices, want_i)
        torch.testing.assert_close(got.distances, want_d, atol=1e-5, rtol=0)
    assert index.search(q, 1000).indices.shape == (len(queries), len(images))  # k capped at Ng


def test_manifest_records_the_model_and_uses_no_pickle(tmp_path, predictor, checkpoint, gallery):
    index = _build(predictor, checkpoint, gallery, tmp_path / "G", shard_size=8).index
    manifest = json.loads((index.path / "manifest.json").read_text())
    assert manifest["format"] == "kpr-gallery-index" and manifest["version"] == 1
    assert manifest["model"]["fingerprint"] == weights_fingerprint(predictor.model)
    assert manifest["model"]["checkpoint"] == str(checkpoint.resolve())
    assert manifest["model"]["num_slots"] == 9 and manifest["model"]["embedding_dim"] == 128
    assert sorted(p.name for p in index.path.iterdir()) == ["manifest.json"] + [
        f"shard-{i:05d}.safetensors" for i in range(len(manifest["shards"]))
    ]
    # Every file as the umask says (the test session's is 022); shards were 0600.
    wanted = 0o666 & ~current_umask()
    assert {stat.S_IMODE(p.stat().st_mode) for p in index.path.iterdir()} == {wanted}
    shard = load_file(index.path / "shard-00000.safetensors")
    assert shard["embeddings"].shape == (8, 9, 128) and shard["visibility"].dtype == torch.bool
    stored = kpr.read_keypoints_file(gallery[1][0])
    np.testing.assert_allclose(index.prompt(0).target, stored.target, atol=1e-4)
    assert index.prompt(0).num_negatives == stored.num_negatives


def test_killed_build_resumes_and_matches_an_uninterrupted_one(
    tmp_path, predictor, checkpoint, gallery, monkeypatch
):
    reference = _build(predictor, checkpoint, gallery, tmp_path / "ref", shard_size=4).index
    real = index_module._embed_shard
    calls = []

    def dies_on_the_third_shard(*args, **kwargs):
        calls.append(args[3])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(index_module, "_embed_shard", dies_on_the_third_shard)
    out = tmp_path / "G"
    with pytest.raises(KeyboardInterrupt):
        _build(predictor, checkpoint, gallery, out, shard_size=4)
    assert not out.exists()  # atomic: no half index at --out
    assert sorted(p.name for p in (tmp_path / "G.partial").iterdir()) == [
        "plan.json",
        "shard-00000.safetensors",
        "shard-00001.safetensors",
    ]
    calls.clear()
    resumed = _build(predictor, checkpoint, gallery, out, shard_size=4)
    assert resumed.resumed == 8 and resumed.embedded_now == len(gallery[0]) - 8
    assert calls[0] == range(8, 12)  # the finished shards were not embedded again
    assert not (tmp_path / "G.partial").exists()
    for i in range(len(reference)):
        assert resumed.index.rows([i]).embeddings.equal(reference.rows([i]).embeddings)
    assert resumed.index.names == reference.names


def test_an_unfinished_build_of_other_inputs_is_not_mixed_in(
    tmp_path, predictor, checkpoint, gallery, monkeypatch
):
    real = index_module._embed_shard
    monkeypatch.setattr(
        index_module, "_embed_shard", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        _build(predictor, checkpoint, gallery, tmp_path / "G", shard_size=4)
    monkeypatch.setattr(index_module, "_embed_shard", real)
    images, keypoints = gallery
    with pytest.raises(
        KPRError, match=r"G.partial: an unfinished index of other images, keypoints or checkpoint"
    ):
        _build(predictor, checkpoint, (images[:-1], keypoints[:-1]), tmp_path / "G", shard_size=4)


def test_existing_output_needs_overwrite(tmp_path, predictor, checkpoint, gallery):
    out = tmp_path / "G"
    _build(predictor, checkpoint, gallery, out, shard_size=16)
    with pytest.raises(KPRError, match="already exists .pass --overwrite"):
        _build(predictor, checkpoint, gallery, out, shard_size=16)
    images, keypoints = gallery
    smaller = build_index(
        predictor,
        images[:3],
        out,
        signature=ModelSignature.of(predictor, checkpoint),
        keypoints=keypoints[:3],
        overwrite=True,
    )
    assert len(GalleryIndex.open(out)) == 3 == len(smaller.index)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(KPRError, match="exists and is not a kpr gallery index"):
        _build(predictor, checkpoint, gallery, tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_unreadable_crops_are_skipped_or_stop_the_build(tmp_path, predictor, checkpoint, gallery):
    images, keypoints = gallery
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    mixed = ([*images[:3], broken], [*keypoints[:3], None])
    with pytest.raises(ImageReadError, match="broken.png"):
        _build(predictor, checkpoint, mixed, tmp_path / "stop")
    built = _build(predictor, checkpoint, mixed, tmp_path / "skip", on_error="skip")
    assert len(built.index) == 3 and "broken.png" not in " ".join(built.index.names)
    assert built.skipped[0][0] == str(broken) and "not a decodable image" in built.skipped[0][1]


def test_pairs_without_a_shared_part_rank_last(tmp_path, predictor, checkpoint, gallery):
    index = _build(predictor, checkpoint, gallery, tmp_path / "G", shard_size=5).index
    query = predictor.embed(gallery[0][0])
    blind = Embeddings(query.embeddings, torch.zeros_like(query.visibility), query.prompted)
    found = index.search(blind, 4)
    assert torch.isinf(found.distances).all()
    assert len(set(found.indices[0].tolist())) == 4  # which tied rows are kept is unspecified


def test_signature_mismatch_names_both_checkpoints(tmp_path, predictor, checkpoint, gallery):
    index = _build(predictor, checkpoint, gallery, tmp_path / "G", shard_size=16).index
    torch.manual_seed(1)
    other = kpr.save_model(kpr.create_model("kpr_tiny_128x64"), tmp_path / "other")
    other_predictor = KPRPredictor.from_pretrained(other, device="cpu")
    with pytest.raises(
        CheckpointError,
        match=r"built with checkpoint .*/m \(weights [0-9a-f]{12}\), not with .*other",
    ):
        index.signature.check_matches(ModelSignature.of(other_predictor, other), index.path)
    converted = kpr.save_model(predictor.model, tmp_path / "copy")
    assert weights_fingerprint(kpr.load_model(converted)) == index.signature.fingerprint


def test_index_and_search_verbs(tmp_path, checkpoint, data, capsys):
    out = tmp_path / "G"
    code = kpr_main(
        [
            "index",
            "--checkpoint",
            str(checkpoint),
            "--images",
            str(data / "images" / "gallery"),
            "--keypoints",
            str(data / "keypoints" / "gallery"),
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    n = len(collect_images([str(data / "images" / "gallery")]))
    assert capsys.readouterr().out.strip() == f"indexed {n} crops -> {out}"
    query = collect_images([str(data / "images" / "query")])[0]
    code = kpr_main(
        [
            "search",
            "--index",
            str(out),
            "--images",
            str(query),
            "--keypoints",
            str(data / "keypoints" / "query"),
            "--top",
            "3",
            "--out",
            str(tmp_path / "m.json"),
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == str(query) and len(lines) == 5 and lines[1].split()[0] == "1"
    written = json.loads((tmp_path / "m.json").read_text())
    assert [m["rank"] for m in written["results"][0]["matches"]] == [1, 2, 3]
    assert written["results"][0]["prompted"] is True


def test_search_refuses_another_checkpoint(tmp_path, predictor, checkpoint, gallery, data, capsys):
    index = _build(predictor, checkpoint, gallery, tmp_path / "G", shard_size=16).index
    torch.manual_seed(2)
    other = kpr.save_model(kpr.create_model("kpr_tiny_128x64"), tmp_path / "other")
    code = kpr_main(
        [
            "search",
            "--index",
            str(index.path),
            "--checkpoint",
            str(other),
            "--images",
            str(gallery[0][0]),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("kpr search: error: ") and "rebuild it with kpr index" in err[0]


def test_sigkill_mid_build_then_resume(tmp_path, checkpoint, data):
    """A real kill: the process dies between shards; the next run carries on from there."""
    out = tmp_path / "G"
    command = [
        sys.executable,
        "-m",
        "kpr",
        "index",
        "--checkpoint",
        str(checkpoint),
        "--images",
        str(data / "images" / "gallery"),
        "--out",
        str(out),
        "--shard-size",
        "2",
        "--batch-size",
        "1",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    partial = tmp_path / "G.partial"
    deadline = time.monotonic() + 120
    while not (partial / "shard-00001.safetensors").exists():
        assert process.poll() is None and time.monotonic() < deadline, (
            "the build ended before the kill"
        )
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()
    finished = sorted(p.name for p in partial.glob("shard-*.safetensors"))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"({2 * len(finished)} from an interrupted run)" in done.stdout
    assert len(GalleryIndex.open(out)) == len(collect_images([str(data / "images" / "gallery")]))
