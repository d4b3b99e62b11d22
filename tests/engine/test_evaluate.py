"""The evaluator embeds through the predictor's path; evaluation datasets are built one way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kpr.checkpoint import create_model
from kpr.data.datasets import build_dataset
from kpr.data.samples import ReIDSample
from kpr.engine.config import DatasetConfig
from kpr.engine.evaluate import (
    EvalDataset,
    drop_keypoints,
    embed_samples,
    eval_dataset_for,
    evaluate,
    query_groups,
)
from kpr.errors import ConfigError, DatasetError
from kpr.imaging import read_rgb
from kpr.keypoints import build_prompt, read_keypoints_file
from kpr.predictor import KPRPredictor

HW = (128, 64)


@pytest.fixture(scope="module")
def dataset(tiny_synthetic):
    return build_dataset("synthetic", root=tiny_synthetic, verbose=False)


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    overrides = {
        "backbone": {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2]},
        "embedding_dim": 32,
    }
    return KPRPredictor(create_model("kpr_tiny_128x64", **overrides), device="cpu")


def test_eval_dataset_prompts_match_the_prompt_builder(dataset, predictor):
    samples = dataset.query
    ds = EvalDataset(samples, predictor.transform)
    sample = samples[0]
    skeletons = read_keypoints_file(sample.keypoints)
    expected = build_prompt(
        skeletons.target, skeletons.negatives, "cck8", HW, read_rgb(sample.image).shape[:2]
    )
    np.testing.assert_allclose(ds[0].prompt.numpy(), expected, atol=1e-6)
    assert ds[0].image.shape == (3, *HW) and ds[0].prompted
    empty = EvalDataset(samples, predictor.transform, prompt_mode="empty")[0]
    assert (empty.prompt[0] == 1).all() and (empty.prompt[1:] == 0).all() and not empty.prompted
    with pytest.raises(ConfigError, match="prompt_mode"):
        EvalDataset(samples, predictor.transform, prompt_mode="none")  # type: ignore[arg-type]


def test_evaluator_embeddings_equal_the_predictors(dataset, predictor):
    """One inference path: embedding dataset samples == embedding their files with the predictor."""
    samples = dataset.gallery[:7]
    via_eval = embed_samples(predictor, samples, batch_size=3, use_cameras=False)
    via_predictor = predictor.embed(
        [s.image for s in samples], keypoints=[s.keypoints for s in samples]
    )
    torch.testing.assert_close(via_eval.embeddings, via_predictor.embeddings)
    assert torch.equal(via_eval.visibility, via_predictor.visibility)
    assert torch.equal(via_eval.prompted, via_predictor.prompted)


def test_rankings_reuse_the_masks_computed_during_evaluation(
    dataset, predictor, tmp_path, monkeypatch
):
    calls = []
    forward = predictor.model.forward
    monkeypatch.setattr(
        predictor.model, "forward", lambda *a, **k: calls.append(len(a[0])) or forward(*a, **k)
    )
    result = evaluate(
        predictor.model,
        dataset,
        batch_size=1000,
        use_cameras=False,
        visualize=2,
        vis_dir=tmp_path / "rankings",
    )
    assert calls == [len(dataset.query), len(dataset.gallery)]  # no extra forward for the grids
    grids = sorted((tmp_path / "rankings").glob("query*.png"))
    assert len(grids) == 2 and all(read_rgb(g).shape[0] > 400 for g in grids)
    assert 0.0 < result.overall.mAP <= 1.0


def test_drop_keypoints_removes_the_requested_share_of_drawn_keypoints():
    kps = np.zeros((17, 3))
    kps[:10, 2] = 0.9  # 10 drawn keypoints, 7 below the threshold
    for fraction, removed in ((0.0, 0), (0.24, 2), (0.25, 3), (0.6, 6), (1.0, 10)):
        out = drop_keypoints(kps, fraction, np.random.default_rng(0))
        assert (out[:10, 2] == 0).sum() == removed and (out[10:] == 0).all()
        np.testing.assert_array_equal(out[:, :2], kps[:, :2])
    assert kps[:10, 2].min() == 0.9  # the input is not modified
    draws = {
        tuple(drop_keypoints(kps, 0.5, np.random.default_rng(seed))[:, 2]) for seed in range(5)
    }
    assert len(draws) > 1


def test_eval_dataset_drops_target_keypoints_reproducibly(dataset, predictor):
    samples = dataset.query[:4]
    t = predictor.transform
    full, dropped = EvalDataset(samples, t), EvalDataset(samples, t, drop_keypoints=1.0)
    for i, sample in enumerate(samples):
        skeletons = read_keypoints_file(sample.keypoints)
        expected = build_prompt(
            None, skeletons.negatives, "cck8", HW, read_rgb(sample.image).shape[:2]
        )
        np.testing.assert_allclose(dropped[i].prompt.numpy(), expected, atol=1e-6)
        assert (dropped[i].prompt[2:] == 0).all() and full[i].prompt[2:].sum() > 0
    first = EvalDataset(samples, t, drop_keypoints=0.5, drop_seed=3)[1].prompt
    second = EvalDataset(samples[::-1], t, drop_keypoints=0.5, drop_seed=3)[2].prompt
    assert torch.equal(first, second)  # the draw depends on the seed and the image, not the order
    assert any(
        not torch.equal(
            EvalDataset(samples, t, drop_keypoints=0.5, drop_seed=3)[i].prompt,
            EvalDataset(samples, t, drop_keypoints=0.5, drop_seed=4)[i].prompt,
        )
        for i in range(len(samples))
    )
    with pytest.raises(ConfigError, match="drop_keypoints"):
        EvalDataset(samples, t, drop_keypoints=1.5)


def test_eval_dataset_never_takes_the_training_options(tiny_synthetic, tmp_path):
    """eval_* settings are used as given: the training dataset's options are not handed over."""
    same = DatasetConfig(name="synthetic", root=str(tiny_synthetic), options={"verbose": False})
    assert (
        eval_dataset_for(same).name
        == build_dataset("synthetic", root=tiny_synthetic, verbose=False).name
    )
    train = build_dataset("synthetic", root=tiny_synthetic, verbose=False)
    assert eval_dataset_for(same, train) is train
    bad_train_option = DatasetConfig(
        name="synthetic",
        root=str(tiny_synthetic),
        options={"no_such_option": 1},
        eval_root=str(tiny_synthetic),
        eval_options={"verbose": False},
    )
    assert len(eval_dataset_for(bad_train_option).query) == len(train.query)
    with pytest.raises(DatasetError, match="missing"):
        eval_dataset_for(
            DatasetConfig(
                name="synthetic", root=str(tiny_synthetic), eval_root=str(tmp_path / "missing")
            )
        )


def test_unknown_dataset_options_are_named(tiny_synthetic):
    with pytest.raises(
        ConfigError, match=r"dataset 'synthetic': unknown option\(s\) \['no_such_option'\]"
    ):
        build_dataset("synthetic", root=tiny_synthetic, no_such_option=1)


def test_query_groups_split_multi_person_from_single_person_queries(dataset, predictor):
    def sample(occlusion: str | None) -> ReIDSample:
        attributes = {} if occlusion is None else {"occlusion": occlusion}
        return ReIDSample(Path("q.png"), 1, 0, "query", attributes=attributes)

    groups = query_groups([sample(k) for k in ("multi_person", "none", "object", "multi_person")])
    assert set(groups) == {"multi_person", "single_person"}
    assert groups["multi_person"].tolist() == [True, False, False, True]
    assert groups["single_person"].tolist() == [False, True, True, False]
    assert query_groups([sample(None), sample(None)]) == {}
    # The synthetic benchmark reports both kinds, and their query counts add up.
    summary = evaluate(predictor.model, dataset).summary()
    multi, single = summary["multi_person"], summary["single_person"]
    count = "num_valid_queries"
    assert multi[count] + single[count] == summary["all"][count]
    assert min(multi[count], single[count]) > 0


@pytest.fixture(scope="module")
def masks_predictor():
    torch.manual_seed(0)
    overrides = {
        "backbone": {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2]},
        "embedding_dim": 32,
        "prompt_type": "masks",
    }
    return KPRPredictor(create_model("kpr_tiny_128x64", **overrides), device="cpu")


def test_mask_mode_prompts_come_from_the_person_masks(dataset, masks_predictor):
    from kpr.masks import MaskDegradation, mask_prompt, read_person_mask

    sample = next(s for s in dataset.query if s.attributes["occlusion"] == "multi_person")
    clean = EvalDataset([sample], masks_predictor.transform, "masks")[0]
    expected = mask_prompt(read_person_mask(sample.masks), "masks", "cck8", HW)
    np.testing.assert_allclose(clean.prompt.numpy(), expected.astype(np.float32))
    assert clean.prompted and clean.prompt[1].sum() > 0
    strong = (0.05, 0.05)
    eroded = EvalDataset(
        [sample], masks_predictor.transform, "masks", degrade_masks=MaskDegradation("erode", strong)
    )[0]
    leaked = EvalDataset(
        [sample], masks_predictor.transform, "masks", degrade_masks=MaskDegradation("leak", strong)
    )[0]
    assert eroded.prompt[2].sum() < clean.prompt[2].sum() < leaked.prompt[2].sum()
    assert leaked.prompt[1].sum() < clean.prompt[1].sum()
    bare = ReIDSample(image=sample.image, pid=sample.pid, camid=sample.camid, split="query")
    assert not EvalDataset([bare], masks_predictor.transform, "masks")[0].prompted


def test_mask_models_are_evaluated_with_masks_and_refuse_keypoints(dataset, masks_predictor):
    from kpr.errors import PromptError

    result = evaluate(masks_predictor.model, dataset, prompt_mode="masks")
    assert result.prompt_mode == "masks" and 0 <= result.summary()["all"]["rank1"] <= 1
    with pytest.raises(PromptError, match="keypoint prompt given to a model with mask prompts"):
        evaluate(masks_predictor.model, dataset, prompt_mode="keypoints")


def test_both_prompt_modes_are_the_models_own_and_the_empty_one(predictor, masks_predictor):
    from kpr.engine.evaluate import prompt_modes

    assert prompt_modes("both", predictor.config) == ["keypoints", "empty"]
    assert prompt_modes("both", masks_predictor.config) == ["masks", "empty"]
    assert prompt_modes("masks", masks_predictor.config) == ["masks"]
    with pytest.raises(ConfigError, match="prompts: expected one of"):
        prompt_modes("boxes", predictor.config)
