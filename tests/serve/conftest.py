from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_helpers import make_checkpoint

from kpr.cli import collect_images, keypoint_file_for
from kpr.predictor import KPRPredictor
from kpr.retrieval.index import GalleryIndex, ModelSignature, build_index
from kpr.serve import ReidService, ServeOptions, UploadLimits, create_app
from kpr.synthetic import SyntheticConfig, generate_synthetic_dataset


@pytest.fixture(scope="session")
def crops_root(tmp_path_factory) -> Path:
    """A small synthetic kpr-folder dataset: images/{query,gallery}, keypoints/{query,gallery}."""
    root = tmp_path_factory.mktemp("serve_crops")
    generate_synthetic_dataset(
        root,
        SyntheticConfig(seed=5, num_images=40, num_train_ids=2, num_test_ids=4, team_size=2),
        workers=1,
    )
    return root


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("serve_model") / "tiny", seed=0)


@pytest.fixture(scope="session")
def predictor(checkpoint) -> KPRPredictor:
    return KPRPredictor.from_pretrained(checkpoint, device="cpu")


@pytest.fixture(scope="session")
def signature(predictor, checkpoint) -> ModelSignature:
    return ModelSignature.of(predictor, checkpoint)


@pytest.fixture(scope="session")
def gallery_index(tmp_path_factory, predictor, signature, crops_root) -> GalleryIndex:
    images = collect_images([str(crops_root / "images" / "gallery")])
    keypoints = [keypoint_file_for(p, crops_root / "keypoints" / "gallery") for p in images]
    out = tmp_path_factory.mktemp("serve_index") / "G"
    return build_index(
        predictor, images, out, signature=signature, keypoints=keypoints, shard_size=8
    ).index


@pytest.fixture(scope="session")
def service(predictor, gallery_index, signature) -> ReidService:
    return ReidService(predictor, gallery_index, signature, top_k=5)


@pytest.fixture()
def client(service) -> TestClient:
    options = ServeOptions(UploadLimits(max_bytes=200_000, max_pixels=1_000_000), queue_capacity=3)
    with TestClient(create_app(service, options)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def demo_service(trained_demo, tmp_path_factory) -> ReidService:
    """The session-trained model (tests/conftest.py) and an index of its gallery."""
    predictor = KPRPredictor.from_pretrained(trained_demo.model, device="cpu")
    signature = ModelSignature.of(predictor, trained_demo.model)
    images = [c.image for c in trained_demo.gallery]
    keypoints = [c.keypoints for c in trained_demo.gallery]
    out = tmp_path_factory.mktemp("demo_index") / "G"
    index = build_index(predictor, images, out, signature=signature, keypoints=keypoints).index
    return ReidService(predictor, index, signature, top_k=10)
