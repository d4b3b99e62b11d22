"""The predictor reproduces the official outputs from raw crops + keypoint files (kpr's own preprocessing)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kpr.errors import ImageReadError, KeypointFormatError, KPRError
from kpr.predictor import KPRPredictor

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module", params=["model_A", "model_B"])
def family(request):
    predictor = KPRPredictor.from_pretrained(FIXTURES / request.param / "checkpoint_official_format.pth.tar", device="cpu")
    return request.param, predictor, np.load(FIXTURES / request.param / "inputs.npz")


def _keypoint_files(inputs, tmp_path):
    paths = []
    for i in range(4):
        path = tmp_path / f"sample{i}.json"
        path.write_text(str(inputs[f"sample{i}_keypoints_json"]))
        paths.append(path)
    return paths


def test_raw_crops_and_keypoint_files_reproduce_official_outputs(family, tmp_path):
    name, predictor, inputs = family
    reference = np.load(FIXTURES / name / "outputs.npz")
    images = [inputs[f"sample{i}_image_rgb_uint8"] for i in range(4)]
    result = predictor.embed(
        images, keypoints=_keypoint_files(inputs, tmp_path), cameras=inputs["cam_labels"].tolist(), batch_size=3
    )
    np.testing.assert_allclose(result.embeddings.numpy(), reference["test.embeddings"], atol=1e-4)
    np.testing.assert_array_equal(result.visibility.numpy(), reference["test.visibility"])
    off = ~np.eye(4, dtype=bool)
    distances = predictor.distance(result, result).numpy()
    np.testing.assert_allclose(distances[off], reference["test.distmat"][off], atol=1e-4)
    assert result.prompted.all()


def test_arrays_paths_and_pil_give_the_same_embeddings(family, tmp_path):
    _, predictor, inputs = family
    rgb = inputs["sample1_image_rgb_uint8"]
    path = tmp_path / "crop.png"
    Image.fromarray(rgb).save(path)
    target, negatives = inputs["sample1_target_kps"], inputs["sample1_negative_kps"]
    from_array = predictor.embed([rgb], keypoints=[target], negative_keypoints=[negatives])
    from_path = predictor.embed([path], keypoints=[target], negative_keypoints=[negatives])
    from_pil = predictor.embed(Image.fromarray(rgb), keypoints=[target], negative_keypoints=[negatives])
    torch.testing.assert_close(from_array.embeddings, from_path.embeddings)
    torch.testing.assert_close(from_array.embeddings, from_pil.embeddings)


def test_prompts_are_optional_per_image(family):
    _, predictor, inputs = family
    images = [inputs["sample0_image_rgb_uint8"], inputs["sample2_image_rgb_uint8"]]
    mixed = predictor.embed(images, keypoints=[inputs["sample0_target_kps"], None])
    alone = predictor.embed(images[1:])
    assert mixed.prompted.tolist() == [True, False]
    torch.testing.assert_close(mixed.embeddings[1:], alone.embeddings, atol=1e-5, rtol=1e-5)
    batched = predictor.embed(images, keypoints=[inputs["sample0_target_kps"], None], batch_size=1)
    torch.testing.assert_close(mixed.embeddings, batched.embeddings, atol=1e-5, rtol=1e-5)


def test_bfloat16_path_stays_close_to_float32(family):
    name, predictor, inputs = family
    fast = KPRPredictor(predictor.model, device="cpu", precision="bfloat16")
    images = [inputs[f"sample{i}_image_rgb_uint8"] for i in range(4)]
    a, b = predictor.embed(images), fast.embed(images)
    assert (a.embeddings - b.embeddings).abs().max() < 0.1
    assert torch.nn.functional.cosine_similarity(a.embeddings, b.embeddings, dim=-1).min() > 0.98


def test_bad_inputs_get_clear_errors(family, tmp_path):
    _, predictor, inputs = family
    rgb = inputs["sample0_image_rgb_uint8"]
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"not a jpeg at all")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        predictor.embed([corrupt])
    with pytest.raises(ImageReadError, match="missing.jpg"):
        predictor.embed([tmp_path / "missing.jpg"])
    nan_kps = inputs["sample0_target_kps"].copy()
    nan_kps[3, 0] = np.nan
    with pytest.raises(KeypointFormatError, match="keypoints"):
        predictor.embed([rgb], keypoints=[nan_kps])
    with pytest.raises(KeypointFormatError):
        predictor.embed([rgb], keypoints=[np.zeros((16, 3))])
    with pytest.raises(KPRError, match="one entry per image"):
        predictor.embed([rgb, rgb], keypoints=[None])
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("[{\"keypoints\": [1, 2, 3]}]")
    with pytest.raises(KeypointFormatError, match="bad.json"):
        predictor.embed([rgb], keypoints=[bad_json])


def test_out_of_frame_keypoints_are_ignored_not_errors(family):
    _, predictor, inputs = family
    rgb = inputs["sample2_image_rgb_uint8"]
    far = np.tile([[5000.0, -300.0, 1.0]], (17, 1))
    result = predictor.embed([rgb], keypoints=[far])
    assert not result.prompted[0]
    torch.testing.assert_close(result.embeddings, predictor.embed([rgb]).embeddings)


def test_models_without_the_negative_channel_get_matching_prompts():
    from kpr.modeling.build import create_model

    model = create_model("kpr_tiny_128x64", prompt_negatives=False).eval()
    predictor = KPRPredictor(model, device="cpu")
    inputs = np.load(FIXTURES / "model_A" / "inputs.npz")
    image = inputs["sample0_image_rgb_uint8"]
    _, prompt, _ = predictor.prepare(image, inputs["sample0_target_kps"], inputs["sample0_negative_kps"])
    assert prompt.shape == (model.config.prompt_channels, 128, 64) == (9, 128, 64)
    result = predictor.embed([image], keypoints=[inputs["sample0_target_kps"]],
                             negative_keypoints=[inputs["sample0_negative_kps"]])
    assert result.embeddings.shape == (1, 9, 128) and bool(result.prompted[0])
