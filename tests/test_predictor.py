"""The predictor reproduces the official outputs from raw crops + keypoint files.

The inputs go through kpr's own preprocessing.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kpr.errors import ImageReadError, KeypointFormatError, KPRError
from kpr.predictor import Embeddings, KPRPredictor, PromptWarning

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module", params=["model_A", "model_B"])
def family(request):
    predictor = KPRPredictor.from_pretrained(
        FIXTURES / request.param / "checkpoint_official_format.pth.tar", device="cpu"
    )
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
        images,
        keypoints=_keypoint_files(inputs, tmp_path),
        cameras=inputs["cam_labels"].tolist(),
        batch_size=3,
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
    from_pil = predictor.embed(
        Image.fromarray(rgb), keypoints=[target], negative_keypoints=[negatives]
    )
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


def test_an_rgba_or_single_channel_array_is_one_image(family, tmp_path):
    """np.asarray(Image.open(rgba_png)) is [H, W, 4]: one crop, its alpha dropped as when the PNG
    file is read (it was taken for a batch of H grey images)."""
    _, predictor, inputs = family
    rgb = inputs["sample1_image_rgb_uint8"]
    alpha = np.linspace(0, 255, rgb.shape[0] * rgb.shape[1]).astype(np.uint8).reshape(rgb.shape[:2])
    rgba = np.dstack([rgb, alpha])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "crop.png")
    target = inputs["sample1_target_kps"]
    from_array = predictor.embed(rgba, keypoints=target)
    assert from_array.embeddings.shape[0] == 1
    from_file = predictor.embed(tmp_path / "crop.png", keypoints=target)
    torch.testing.assert_close(from_array.embeddings, from_file.embeddings)
    torch.testing.assert_close(
        from_array.embeddings, predictor.embed(rgb, keypoints=target).embeddings
    )
    grey = rgb[..., 1]
    one_channel = predictor.embed(grey[..., None])
    assert one_channel.embeddings.shape[0] == 1
    torch.testing.assert_close(one_channel.embeddings, predictor.embed(grey).embeddings)
    # A 4-D array is a batch; a 3-D array with another channel count is refused, not split.
    assert predictor.embed(np.stack([rgb, rgb])).embeddings.shape[0] == 2
    with pytest.raises(ImageReadError, match=r"images\[0\]: expected an image array .* got shape"):
        predictor.embed(rgb[..., :2])


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
    for camera in (1.5, None, True):  # 1.5 was taken as camera 1
        with pytest.raises(KPRError, match=r"cameras\[1\]: expected an integer camera label"):
            predictor.embed([rgb, rgb], cameras=[0, camera])
    assert predictor.embed([rgb], cameras=[np.int64(0)]).embeddings.shape[0] == 1
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('[{"keypoints": [1, 2, 3]}]')
    with pytest.raises(KeypointFormatError, match="bad.json"):
        predictor.embed([rgb], keypoints=[bad_json])


def test_stacked_arrays_give_one_entry_per_image(family):
    """keypoints [N, 17, 3], negatives [N, M, 17, 3] and cameras [N] as arrays, as lists do."""
    _, predictor, inputs = family
    images = [inputs[f"sample{i}_image_rgb_uint8"] for i in range(2)]
    targets = np.stack([inputs[f"sample{i}_target_kps"] for i in range(2)])
    negatives = np.stack([inputs[f"sample{i}_target_kps"][None] for i in (1, 0)])
    cameras = inputs["cam_labels"][:2].astype(np.int64)
    from_arrays = predictor.embed(images, targets, negatives, cameras)
    from_lists = predictor.embed(images, list(targets), list(negatives), cameras.tolist())
    torch.testing.assert_close(from_arrays.embeddings, from_lists.embeddings)
    assert from_arrays.prompted.all()
    with pytest.raises(KPRError, match=r"keypoints: expected one entry per image \(2\), got 3"):
        predictor.embed(images, np.concatenate([targets, targets[:1]]))


def test_out_of_frame_keypoints_are_ignored_not_errors(family):
    _, predictor, inputs = family
    rgb = inputs["sample2_image_rgb_uint8"]
    far = np.tile([[5000.0, -300.0, 1.0]], (17, 1))
    with pytest.warns(PromptWarning, match=r"1 crop\(s\) have keypoints but none .* images\[0\]"):
        result = predictor.embed([rgb], keypoints=[far])
    assert not result.prompted[0]
    torch.testing.assert_close(result.embeddings, predictor.embed([rgb]).embeddings)


def test_models_without_the_negative_channel_get_matching_prompts():
    from kpr.checkpoint import create_model

    model = create_model("kpr_tiny_128x64", prompt_negatives=False).eval()
    predictor = KPRPredictor(model, device="cpu")
    inputs = np.load(FIXTURES / "model_A" / "inputs.npz")
    image = inputs["sample0_image_rgb_uint8"]
    prompt = predictor.prepare(
        image, inputs["sample0_target_kps"], inputs["sample0_negative_kps"]
    ).prompt
    assert prompt.shape == (model.config.prompt_channels, 128, 64) == (9, 128, 64)
    result = predictor.embed(
        [image],
        keypoints=[inputs["sample0_target_kps"]],
        negative_keypoints=[inputs["sample0_negative_kps"]],
    )
    assert result.embeddings.shape == (1, 9, 128) and bool(result.prompted[0])


def test_a_single_image_takes_a_single_keypoint_file(family, tmp_path):
    _, predictor, inputs = family
    path = tmp_path / "crop.png"
    Image.fromarray(inputs["sample0_image_rgb_uint8"]).save(path)
    kp_file = _keypoint_files(inputs, tmp_path)[0]
    single = predictor.embed(path, keypoints=kp_file)
    listed = predictor.embed([path], keypoints=[kp_file])
    assert len(single) == 1 and bool(single.prompted[0])
    torch.testing.assert_close(single.embeddings, listed.embeddings)
    array = predictor.embed(
        path,
        keypoints=inputs["sample0_target_kps"],
        negative_keypoints=inputs["sample0_negative_kps"],
    )
    torch.testing.assert_close(array.embeddings, listed.embeddings)


def test_part_masks_are_opt_in(family):
    _, predictor, inputs = family
    images = [inputs[f"sample{i}_image_rgb_uint8"] for i in range(2)]
    plain = predictor.embed(images)
    with_masks = predictor.embed(images, part_masks=True)
    k, (hf, wf) = predictor.config.num_parts, predictor.config.feature_size
    assert plain.part_masks is None
    assert with_masks.part_masks.shape == (2, k + 1, hf, wf)
    torch.testing.assert_close(with_masks.part_masks.sum(dim=1), torch.ones(2, hf, wf))
    torch.testing.assert_close(plain.embeddings, with_masks.embeddings)
    joined = Embeddings.cat([with_masks[1], with_masks[0]])
    torch.testing.assert_close(joined.embeddings, with_masks.embeddings.flip(0))
    assert Embeddings.cat([plain, with_masks]).part_masks is None


def test_normalised_keypoints_are_refused_naming_the_image(family):
    _, predictor, inputs = family
    rgb = inputs["sample0_image_rgb_uint8"]
    normalised = inputs["sample0_target_kps"].copy()
    normalised[:, 0] /= rgb.shape[1]
    normalised[:, 1] /= rgb.shape[0]
    with pytest.raises(KeypointFormatError, match=r"images\[0\]: keypoints look normalised"):
        predictor.embed([rgb], keypoints=[normalised])


def test_a_keypoint_file_with_no_usable_point_is_named(family, tmp_path):
    _, predictor, inputs = family
    low = tmp_path / "low.json"
    low.write_text('[{"keypoints": ' + str([[10.0, 20.0, 0.1]] * 17) + ', "is_target": true}]')
    with pytest.warns(PromptWarning, match="low.json"):
        result = predictor.embed([inputs["sample0_image_rgb_uint8"]], keypoints=[low])
    assert not result.prompted[0]


def test_embed_iter_skips_bad_crops_and_reports_them(family, tmp_path):
    _, predictor, inputs = family
    good = [inputs[f"sample{i}_image_rgb_uint8"] for i in range(3)]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"garbage")
    chunks = list(
        predictor.embed_iter([good[0], broken, good[1], good[2]], batch_size=2, on_error="skip")
    )
    assert [c.indices for c in chunks] == [(0,), (2, 3)]
    assert chunks[0].skipped[0][0] == 1 and "broken.jpg" in chunks[0].skipped[0][1]
    got = Embeddings.cat([c.embeddings for c in chunks])
    torch.testing.assert_close(
        got.embeddings, predictor.embed(good).embeddings, atol=1e-5, rtol=1e-5
    )
    with pytest.raises(ImageReadError, match="broken.jpg"):
        list(predictor.embed_iter([good[0], broken], on_error="raise"))


def test_models_without_the_background_channel_work_end_to_end():
    """Official ``no_background_token`` models: no background channel anywhere, and the empty
    prompt is all zeros (not a 1 in the negatives channel)."""
    from kpr.checkpoint import create_model
    from kpr.keypoints import build_prompt

    model = create_model("kpr_tiny_128x64", prompt_background=False).eval()
    predictor = KPRPredictor(model, device="cpu")
    inputs = np.load(FIXTURES / "model_A" / "inputs.npz")
    image = inputs["sample0_image_rgb_uint8"]
    target, negatives = inputs["sample0_target_kps"], inputs["sample0_negative_kps"]
    prepared = predictor.prepare(image, target, negatives)
    full = build_prompt(target, negatives, "cck8", (128, 64), image.shape[:2])
    assert prepared.prompt.shape == (9, 128, 64) == (model.config.prompt_channels, 128, 64)
    np.testing.assert_allclose(
        prepared.prompt.numpy(), full[1:].astype(np.float32)
    )  # negatives first
    empty = predictor.prepare(image)
    assert not empty.prompted and not empty.prompt.any()
    assert not model.prompt_encoder.empty_prompt(1, (128, 64), torch.zeros(1)).any()
    batch = empty.image[None]
    with torch.no_grad():
        torch.testing.assert_close(
            model(batch, None).embeddings, model(batch, empty.prompt[None]).embeddings
        )
    result = predictor.embed(
        [image, image], keypoints=[target, None], negative_keypoints=[negatives, None]
    )
    assert result.prompted.tolist() == [True, False]


@pytest.mark.parametrize("name", ["model_A", "model_B"])
def test_crop_transform_reproduces_the_official_inputs(name):
    """Raw crops + keypoints → exactly the images and prompt masks the official pipeline fed its
    model (fixtures from the official code), for the transform the predictor and evaluator share."""
    from kpr.checkpoint import load_model
    from kpr.predictor import CropTransform

    inputs = np.load(FIXTURES / name / "inputs.npz")
    transform = CropTransform(
        load_model(FIXTURES / name / "checkpoint_official_format.pth.tar").config
    )
    for i in range(4):
        crop = transform(
            inputs[f"sample{i}_image_rgb_uint8"],
            inputs[f"sample{i}_target_kps"],
            inputs[f"sample{i}_negative_kps"],
        )
        np.testing.assert_allclose(crop.image.numpy(), inputs["images"][i], atol=1e-5)
        np.testing.assert_allclose(crop.prompt.numpy(), inputs["prompt_masks"][i], atol=1e-6)


def test_a_trained_model_follows_its_prompts(trained_demo):
    """On the multi-person queries of the session-trained model, prompts find the target's
    identity first far more often than the empty prompt (which often finds the other person's)."""
    predictor = KPRPredictor.from_pretrained(trained_demo.model, device="cpu")
    query, gallery = trained_demo.queries, trained_demo.gallery
    g = predictor.embed([c.image for c in gallery], keypoints=[c.keypoints for c in gallery])
    rank1 = {}
    for mode, kps in (("prompt", [c.keypoints for c in query]), ("empty", None)):
        q = predictor.embed([c.image for c in query], keypoints=kps)
        best = predictor.distance(q, g).argmin(dim=1).tolist()
        rank1[mode] = sum(gallery[b].pid == c.pid for b, c in zip(best, query)) / len(query)
    assert len(query) >= 30
    assert rank1["prompt"] >= 0.7, rank1
    assert rank1["empty"] <= 0.5 and rank1["prompt"] - rank1["empty"] >= 0.3, rank1


@pytest.fixture(scope="module")
def masks_predictor():
    from kpr.checkpoint import create_model

    return KPRPredictor(create_model("kpr_tiny_128x64", prompt_type="masks").eval(), "cpu")


def _person_mask_png(path: Path, hw: tuple[int, int]) -> np.ndarray:
    labels = np.zeros(hw, np.uint8)
    labels[hw[0] // 4 :, : hw[1] // 2] = 1
    labels[hw[0] // 2 :, hw[1] // 2 :] = 2
    Image.fromarray(labels).save(path)
    return labels


def test_mask_prompts_from_files_arrays_and_none(masks_predictor, tmp_path):
    from kpr.masks import mask_prompt, person_mask

    image = np.full((96, 48, 3), 127, np.uint8)
    labels = _person_mask_png(tmp_path / "m.png", (96, 48))
    prepared = masks_predictor.prepare(image, masks=tmp_path / "m.png")
    expected = mask_prompt(person_mask(labels), "masks", "cck8", (128, 64))
    np.testing.assert_allclose(prepared.prompt.numpy(), expected.astype(np.float32))
    assert prepared.prompt.shape == (3, 128, 64) and prepared.prompted
    result = masks_predictor.embed([image, image, image], masks=[tmp_path / "m.png", labels, None])
    assert result.prompted.tolist() == [True, True, False]
    torch.testing.assert_close(result.embeddings[0], result.embeddings[1])
    single = masks_predictor.embed(image, masks=str(tmp_path / "m.png"))
    torch.testing.assert_close(single.embeddings[0], result.embeddings[0])


def test_an_empty_mask_is_the_empty_prompt(masks_predictor):
    image = np.full((96, 48, 3), 127, np.uint8)
    with pytest.warns(PromptWarning, match="mask showing no one"):
        result = masks_predictor.embed([image, image], masks=[np.zeros((96, 48), np.uint8), None])
    assert result.prompted.tolist() == [False, False]
    torch.testing.assert_close(result.embeddings[0], result.embeddings[1])


def test_a_mask_of_another_size_is_resized_with_a_warning(masks_predictor, tmp_path):
    from kpr.predictor import MaskSizeWarning

    image = np.full((96, 48, 3), 127, np.uint8)
    _person_mask_png(tmp_path / "small.png", (48, 24))
    with pytest.warns(MaskSizeWarning, match=r"small\.png: mask is 48x24 but its crop .* 96x48"):
        resized = masks_predictor.prepare(image, masks=tmp_path / "small.png")
    _person_mask_png(tmp_path / "full.png", (96, 48))
    full = masks_predictor.prepare(image, masks=tmp_path / "full.png")
    torch.testing.assert_close(resized.prompt, full.prompt)


def test_unknown_mask_values_name_the_file_and_values(masks_predictor, tmp_path):
    from kpr.errors import MaskFormatError

    Image.fromarray(np.array([[0, 1], [5, 7]], np.uint8)).save(tmp_path / "bad.png")
    with pytest.raises(MaskFormatError, match=r"bad\.png: unknown label value\(s\) \[5, 7\]"):
        masks_predictor.embed(np.zeros((2, 2, 3), np.uint8), masks=tmp_path / "bad.png")


def test_prompt_kinds_must_match_the_model(family, masks_predictor):
    from kpr.errors import PromptError

    _, predictor, inputs = family
    image = inputs["sample0_image_rgb_uint8"]
    with pytest.raises(PromptError, match="mask prompt given to a model with keypoint prompts"):
        predictor.embed(image, masks=np.zeros(image.shape[:2], np.uint8))
    with pytest.raises(PromptError, match="keypoint prompt given to a model with mask prompts"):
        masks_predictor.embed(image, keypoints=inputs["sample0_target_kps"])


def test_parsing_models_read_part_labels_of_a_named_table(tmp_path):
    from kpr.checkpoint import create_model
    from kpr.errors import PromptError

    model = create_model("kpr_tiny_128x64", prompt_type="parsing").eval()
    predictor = KPRPredictor(model, "cpu")
    image = np.full((128, 64, 3), 127, np.uint8)
    parts = np.zeros((128, 64), np.uint8)
    parts[10:30, 20:40] = 13  # LIP face
    Image.fromarray(parts).save(tmp_path / "p.png")
    with pytest.raises(PromptError, match="part_labels='lip'"):
        predictor.prepare(image, masks=tmp_path / "p.png")
    prompt = predictor.prepare(image, masks=tmp_path / "p.png", part_labels="lip").prompt
    assert prompt.shape == (model.config.prompt_channels, 128, 64) == (10, 128, 64)
    assert prompt[2, 10:30, 20:40].eq(1).all() and prompt[3:].eq(0).all()  # head only
