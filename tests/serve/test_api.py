"""The JSON API through FastAPI's test client: contract, equivalence with the library, refusals."""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serve_helpers import make_checkpoint, png_bytes, prompt_field

from kpr.cli import main as kpr_main
from kpr.errors import CheckpointError
from kpr.keypoints.io import read_keypoints_file
from kpr.pose.types import Person
from kpr.predictor import KPRPredictor
from kpr.retrieval.index import ModelSignature
from kpr.serve import ReidService, create_app
from kpr.viz.drawing import GROUP_COLOURS, group_colour_per_keypoint


def _query_crop(crops_root: Path) -> tuple[Path, Path]:
    """A query crop whose keypoint file has a target and at least one other person."""
    for image in sorted((crops_root / "images" / "query").iterdir()):
        kp = crops_root / "keypoints" / "query" / f"{image.stem}.json"
        if kp.is_file() and read_keypoints_file(kp).num_negatives:
            return image, kp
    raise AssertionError("no multi-person query crop in the synthetic data")


def _post(
    client, image_bytes: bytes, prompt: str | None = None, content_type="image/png", **params
):
    data = {} if prompt is None else {"prompt": prompt}
    return client.post(
        "/api/query",
        files={"image": ("crop.png", image_bytes, content_type)},
        data=data,
        params=params,
    )


def test_query_answers_with_the_contract(client, crops_root, service):
    image, kp = _query_crop(crops_root)
    r = _post(client, image.read_bytes(), prompt_field(kp))
    assert r.status_code == 200, r.text
    body = r.json()
    slots = 1 + service.predictor.config.num_parts
    assert body["prompted"] is True
    assert [m["rank"] for m in body["matches"]] == [1, 2, 3, 4, 5]
    assert len(body["visibility"]) == slots and len(body["part_maps"]) == slots
    for match in body["matches"]:
        assert set(match) == {"rank", "name", "distance", "part_distances", "visibility"}
        assert len(match["part_distances"]) == slots and len(match["visibility"]) == slots
        assert match["name"] in service.index.names
    distances = [m["distance"] for m in body["matches"]]
    assert distances == sorted(distances)
    png = base64.b64decode(body["part_maps"][0].removeprefix("data:image/png;base64,"))
    assert Image.open(io.BytesIO(png)).size == (64, 128)  # the model's W×H
    assert len(body["without_prompt"]["matches"]) == 5
    assert (
        _post(client, image.read_bytes(), prompt_field(kp), k=2).json()["matches"][1]["rank"] == 2
    )


def test_query_equals_the_library(client, crops_root, service):
    """The server answers what predictor.embed + GalleryIndex.search + body_part_distance give."""
    image, kp = _query_crop(crops_root)
    body = _post(client, image.read_bytes(), prompt_field(kp)).json()
    query = service.predictor.embed(image, keypoints=kp)
    found = service.index.search(query, 5)
    assert [m["name"] for m in body["matches"]] == [
        service.index.names[i] for i in found.indices[0]
    ]
    np.testing.assert_allclose(
        [m["distance"] for m in body["matches"]], found.distances[0], atol=1e-5
    )
    gallery = service.index.rows(found.indices[0].tolist())
    first = body["matches"][0]
    shared = (query.visibility[0] & gallery.visibility[0]).tolist()
    assert [d is not None for d in first["part_distances"]] == shared
    assert first["visibility"] == gallery.visibility[0].float().tolist()
    # The mean of the per-part distances over the shared parts is the part-based distance.
    assert np.mean([d for d in first["part_distances"] if d is not None]) == pytest.approx(
        first["distance"], abs=1e-5
    )


def test_without_prompt_is_the_empty_prompt(client, crops_root):
    image, kp = _query_crop(crops_root)
    prompted = _post(client, image.read_bytes(), prompt_field(kp)).json()
    empty = _post(client, image.read_bytes()).json()
    assert empty["prompted"] is False
    without = prompted["without_prompt"]
    # Batched with the prompted crop or alone: the same up to float rounding.
    assert [m["name"] for m in without["matches"]] == [m["name"] for m in empty["matches"]]
    np.testing.assert_allclose(
        [m["distance"] for m in without["matches"]],
        [m["distance"] for m in empty["matches"]],
        atol=1e-5,
    )
    assert without["visibility"] == empty["visibility"]
    assert prompted["matches"] != empty["matches"]


def test_prompts_move_the_answer_towards_the_prompted_person(demo_service, trained_demo):
    """On the trained model, the multi-person queries retrieve their identity first with their
    prompt far more often than when the prompt points at the other person."""
    from fastapi.testclient import TestClient

    client = TestClient(create_app(demo_service))
    right = wrong = 0
    for query in trained_demo.queries:
        for swap in (False, True):
            field = prompt_field(query.keypoints, swap)
            body = _post(client, query.image.read_bytes(), field, k=1).json()
            found = int(body["matches"][0]["name"].split("_")[0]) == query.pid
            right, wrong = right + (found and not swap), wrong + (found and swap)
    n = len(trained_demo.queries)
    assert right >= 0.7 * n, (right, wrong, n)
    assert wrong <= right - 0.4 * n, (right, wrong, n)


@pytest.mark.parametrize(
    ("payload", "content_type", "status", "message"),
    [
        (b"hello", "text/plain", 415, "content type 'text/plain' is not accepted"),
        (b"", "image/png", 400, "the uploaded file is empty"),
        (b"\x00\x01 definitely not an image", "image/png", 415, "not an image PIL can read"),
        ("truncated", "image/png", 400, "truncated or corrupt PNG file"),
        ("gif", "image/gif", 415, "content type 'image/gif' is not accepted"),
        ("gif", "application/octet-stream", 415, "GIF images are not accepted"),
        (
            "bomb",
            "image/png",
            413,
            "image is 12000×12000 (144,000,000 pixels), above the server's limit",
        ),
        (
            "huge bomb",
            "image/png",
            413,
            "image too large: more than 178,956,970 pixels, above the server's",
        ),
    ],
)
def test_bad_uploads_get_4xx_that_say_why(
    client, crops_root, payload, content_type, status, message
):
    crop = np.full((128, 64, 3), 90, np.uint8)
    if payload == "truncated":
        payload = png_bytes(crop)[:120]
    elif payload == "gif":
        buffer = io.BytesIO()
        Image.fromarray(crop).save(buffer, format="GIF")
        payload = buffer.getvalue()
    elif payload == "bomb":
        payload = _png_header_only(12000, 12000)
    elif payload == "huge bomb":
        payload = _png_header_only(20000, 20000)
    r = _post(client, payload, content_type=content_type)
    assert r.status_code == status
    assert message in r.json()["detail"]


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_upload_above_the_size_limit_is_refused_before_parsing(client):
    r = _post(client, b"\x89PNG" + b"\x00" * 300_000)
    assert r.status_code == 413
    assert r.json()["detail"] == "request body above the server's limit of 265,536 bytes"


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ('{"keypoints": [[1, 2, 1]]}', "prompt.keypoints: List should have at least 17 items"),
        (json.dumps({"keypoints": [[10, 10, 2.0]] * 17}), "confidence 2.0 is not in [0, 1]"),
        ("{not json", "prompt: Invalid JSON"),
        ('{"keypoints": null, "others": []}', "prompt.others: Extra inputs are not permitted"),
        (json.dumps({"keypoints": [[0.5, 0.5, 1.0]] * 17}), "keypoints look normalised to [0, 1]"),
    ],
)
def test_bad_prompts_get_422_naming_the_field(client, crops_root, prompt, message):
    image, _ = _query_crop(crops_root)
    r = _post(client, image.read_bytes(), prompt)
    assert r.status_code == 422
    assert message in r.json()["detail"]


def test_missing_image_field_is_named(client):
    r = client.post("/api/query", data={"prompt": "{}"})
    assert r.status_code == 422
    assert r.json()["detail"] == "image: Field required"


@pytest.mark.parametrize(
    "path",
    [
        "/api/gallery/..%2f..%2f..%2fetc%2fpasswd",
        "/api/gallery/..%2F..%2Fetc%2Fpasswd",
        "/api/gallery/%2fetc%2fpasswd",
        "/api/gallery/%2e%2e/%2e%2e/etc/passwd",
        "/api/gallery/..\\..\\etc\\passwd",
        "/api/keypoints/..%2f..%2fetc%2fpasswd",
    ],
)
def test_traversal_attempts_never_reach_the_file_system(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert "root:" not in r.text


def test_only_indexed_names_are_served(client, service, crops_root):
    name = service.index.names[0]
    r = client.get(f"/api/gallery/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.content == service.index.files[0].read_bytes()
    # A file beside the gallery crops that is not in the index is not served.
    query_name = sorted((crops_root / "images" / "query").iterdir())[0].name
    assert query_name not in service.index.names
    r = client.get(f"/api/gallery/{query_name}")
    assert r.status_code == 404
    assert r.json()["detail"] == f"gallery: no item named {query_name!r} in the index"


def test_stored_prompt_of_a_gallery_crop(client, service, crops_root):
    name = next(n for i, n in enumerate(service.index.names) if service.index.prompt(i) is not None)
    stored = read_keypoints_file(crops_root / "keypoints" / "gallery" / f"{Path(name).stem}.json")
    body = client.get(f"/api/keypoints/{name}").json()
    np.testing.assert_allclose(body["target"], stored.target, atol=1e-4)
    assert len(body["negatives"]) == stored.num_negatives
    assert body["source"] == "index"


def test_queue_full_answers_503_then_recovers(client, crops_root):
    image, kp = _query_crop(crops_root)
    queue = client.app.state.queue
    release = threading.Event()
    blockers = [queue.submit(release.wait) for _ in range(queue.capacity)]
    try:
        r = _post(client, image.read_bytes(), prompt_field(kp))
        assert r.status_code == 503
        assert (
            r.json()["detail"]
            == "the model queue is full (3 requests in progress); retry in a moment"
        )
        assert client.get("/healthz").json()["queue_pending"] == 3
    finally:
        release.set()
    for blocker in blockers:
        assert blocker.result(timeout=10) is True
    assert _post(client, image.read_bytes(), prompt_field(kp)).status_code == 200


def test_concurrent_requests_never_mix(client, crops_root):
    images = sorted((crops_root / "images" / "query").iterdir())[:4]
    kps = [crops_root / "keypoints" / "query" / f"{p.stem}.json" for p in images]
    jobs = [
        (p, kp, swap)
        for p, kp in zip(images, kps)
        for swap in (False, True)
        if kp.is_file() and (not swap or read_keypoints_file(kp).num_negatives)
    ]
    expected = [
        _post(client, p.read_bytes(), prompt_field(kp, swap)).json()["matches"]
        for p, kp, swap in jobs
    ]
    answers: dict[int, object] = {}

    def ask(i: int) -> None:
        p, kp, swap = jobs[i]
        for _ in range(200):  # the queue holds 3: a 503 is a legitimate answer, retried
            r = _post(client, p.read_bytes(), prompt_field(kp, swap))
            if r.status_code != 503:
                answers[i] = r.json()["matches"]
                return
            time.sleep(0.05)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(jobs) >= 5
    for i, want in enumerate(expected):
        assert answers[i] == want, f"request {i} got another request's answer"


def test_info_carries_the_compare_palette(client, service):
    info = client.get("/api/info").json()
    colours = group_colour_per_keypoint(service.predictor.config.prompt_grouping)
    assert info["keypoint_colours"] == ["#{:02x}{:02x}{:02x}".format(*c) for c in colours]
    assert info["prompt_groups"][0]["colour"] == "#{:02x}{:02x}{:02x}".format(*GROUP_COLOURS[0])
    assert info["slots"] == [
        "foreground",
        "head",
        "left_arm",
        "right_arm",
        "torso",
        "left_leg",
        "right_leg",
        "left_feet",
        "right_feet",
    ]
    assert info["gallery_size"] == len(service.index)
    assert client.get("/healthz").json() == {
        "status": "ok",
        "gallery_size": len(service.index),
        "queue_pending": 0,
        "queue_capacity": 3,
    }


class _OnePerson:
    def estimate(self, image):  # noqa: ANN001, ANN201
        points = np.zeros((17, 3))
        points[:, 0], points[:, 1], points[:, 2] = 30.0, np.linspace(10, 120, 17), 0.9
        return [Person.from_keypoints(points)]


def test_keypoint_proposals(client, service, predictor, gallery_index, signature, crops_root):
    image, _ = _query_crop(crops_root)
    r = client.post("/api/keypoints", files={"image": ("q.png", image.read_bytes(), "image/png")})
    assert r.status_code == 501
    assert "no pose estimator on this server" in r.json()["detail"]
    from fastapi.testclient import TestClient

    posed = TestClient(
        create_app(ReidService(predictor, gallery_index, signature, estimator=_OnePerson()))
    )
    body = posed.post(
        "/api/keypoints", files={"image": ("q.png", image.read_bytes(), "image/png")}
    ).json()
    assert len(body["people"]) == 1 and body["negatives"] == [] and body["source"] == "pose"
    assert body["target"][16] == pytest.approx([30.0, 120.0, 0.9])


def test_checkpoint_index_mismatch_is_refused(tmp_path, gallery_index, capsys):
    other = make_checkpoint(tmp_path / "other", seed=1)
    predictor = KPRPredictor.from_pretrained(other, device="cpu")
    with pytest.raises(CheckpointError, match="this index was built with checkpoint .*tiny"):
        ReidService(predictor, gallery_index, ModelSignature.of(predictor, other))
    code = kpr_main(
        ["serve", "--checkpoint", str(other), "--index", str(gallery_index.path), "--port", "0"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("kpr serve: error: ") and "rebuild it with kpr index" in err[-1]


def test_page_and_static_files_are_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/app.css"):
        r = client.get(asset)
        assert r.status_code == 200
        assert "http://" not in r.text and "https://" not in r.text
    assert "https://" not in page.text and "/static/app.js" in page.text


def test_a_port_that_cannot_be_listened_on_is_one_line_before_the_model_loads(tmp_path, capsys):
    """uvicorn logged a taken port as several lines after the model had loaded, and a port out of
    range was an internal error. Neither the checkpoint nor the index exists here."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    args = ["serve", "--checkpoint", str(tmp_path / "none"), "--index", str(tmp_path / "none")]
    with taken:
        port = taken.getsockname()[1]
        assert kpr_main([*args, "--port", str(port)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"kpr serve: error: --host 127.0.0.1 --port {port}: cannot listen there "
            "(Address already in use)"
        ]
    assert kpr_main([*args, "--port", "70000"]) == 2
    assert (
        capsys.readouterr().err.strip() == "kpr serve: error: --port: expected 0..65535, got 70000"
    )
