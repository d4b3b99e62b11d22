"""Recipes: overrides blame themselves, mappings merge, augmentation size/normalisation are the
model's, and the official recipes require the released parsing labels."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest

from kpr.data.transforms import AugmentationConfig, build_train_transform
from kpr.engine.config import RecipeAugmentation, load_train_config, resolve_augmentation
from kpr.errors import ConfigError
from kpr.modeling.build import model_config
from kpr.recipes import list_recipes, resolve_recipe

RECIPE = """\
model: kpr_solider_swin_base_384x128
model_overrides:
  backbone: {name: solider_swin, semantic_weight: 0.2, pretrained: weights/a.pth}
optim: {lr: 2e-4, epochs: 60}
"""


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE)
    return path


def test_scientific_notation_in_recipes_and_overrides(recipe):
    assert load_train_config(recipe).optim.lr == 2e-4
    config = load_train_config(recipe, ["optim.lr=1e-3", "optim.min_lr=1E-6", "optim.momentum=.5"])
    assert (config.optim.lr, config.optim.min_lr, config.optim.momentum) == (1e-3, 1e-6, 0.5)


def test_a_bad_override_is_blamed_not_the_recipe(recipe):
    with pytest.raises(
        ConfigError, match=r"^override optim\.lr=abc: optim\.lr: expected a number"
    ) as info:
        load_train_config(recipe, ["optim.lr=abc"])
    assert "recipe.yaml" not in str(info.value)
    recipe.write_text(RECIPE + "sampler: {workers: two}\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml: sampler\.workers: expected an integer"):
        load_train_config(recipe, ["optim.lr=1e-3"])


def test_a_mapping_override_merges_into_the_recipe(recipe):
    config = load_train_config(
        recipe, ["model_overrides.backbone={pretrained: weights/b.pth}", "optim={lr: 1e-3}"]
    )
    assert config.model_overrides["backbone"] == {
        "name": "solider_swin",
        "semantic_weight": 0.2,
        "pretrained": "weights/b.pth",
    }
    assert (config.optim.lr, config.optim.epochs) == (1e-3, 60)
    backbone = model_config(config.model, **config.model_overrides).backbone
    assert (backbone.semantic_weight, backbone.pretrained) == (0.2, "weights/b.pth")


def test_tilde_resets_a_section_so_a_dataset_can_be_swapped():
    duke = resolve_recipe("official/imagenet_occ_duke")
    assert load_train_config(duke).dataset.options  # keypoints_dir, meaningless elsewhere
    config = load_train_config(duke, ["~dataset", "dataset={name: synthetic, root: /d}"])
    assert (config.dataset.name, config.dataset.root, config.dataset.options) == (
        "synthetic",
        "/d",
        {},
    )


def test_recipe_augmentation_mirrors_augmentation_config():
    recipe, library = dataclasses.fields(RecipeAugmentation), dataclasses.fields(AugmentationConfig)
    assert [f.name for f in recipe] == [f.name for f in library]
    hints = typing.get_type_hints(RecipeAugmentation)
    for f in library:
        expected = typing.get_type_hints(AugmentationConfig)[f.name]
        if f.name in ("image_size", "mean", "std"):
            assert getattr(RecipeAugmentation(), f.name) is None
            expected = expected | None
        else:
            assert getattr(RecipeAugmentation(), f.name) == getattr(AugmentationConfig(), f.name)
        assert hints[f.name] == expected, f.name


def test_augmentation_size_and_normalisation_come_from_the_model():
    solider = model_config("kpr_solider_swin_base_384x128")
    aug = resolve_augmentation(RecipeAugmentation(bipo_p=0.05, pad=4), solider)
    assert aug == AugmentationConfig(
        image_size=(384, 128), bipo_p=0.05, pad=4, mean=(0.5,) * 3, std=(0.5,) * 3
    )
    out = build_train_transform(aug)(
        np.zeros((50, 20, 3), np.uint8),
        None,
        np.zeros((17, 3)),
        np.zeros((0, 17, 3)),
        np.random.default_rng(0),
    )
    assert out.image.shape == (3, 384, 128)
    same = RecipeAugmentation(image_size=(384, 128), mean=(0.5, 0.5, 0.5))
    assert resolve_augmentation(same, solider).image_size == (384, 128)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "augmentation.image_size=[256, 128]",
            (
                r"augmentation\.image_size \[256, 128\] differs from the model's image_size "
                r"\[384, 128\]; remove it or set model_overrides\.image_size"
            ),
        ),
        (
            "augmentation.mean=[0.485, 0.456, 0.406]",
            (
                r"augmentation\.mean \[0\.485, 0\.456, 0\.406\] differs from the model's "
                r"pixel_mean \[0\.5, 0\.5, 0\.5\]; remove it or set model_overrides\.pixel_mean"
            ),
        ),
        (
            "augmentation.std=[1, 1, 1]",
            r"augmentation\.std \[1\.0, 1\.0, 1\.0\] differs .* pixel_std",
        ),
    ],
)
def test_a_recipe_size_or_normalisation_other_than_the_models_is_an_error(override, message):
    config = load_train_config(resolve_recipe("official/solider_market"), [override])
    with pytest.raises(ConfigError, match=message):
        resolve_augmentation(
            config.augmentation, model_config(config.model, **config.model_overrides)
        )


def test_bad_augmentation_values_fail_when_the_recipe_is_read():
    with pytest.raises(
        ConfigError, match=r"^override augmentation\.bipo_p=1\.5: .*bipo_p must be in \[0, 1\]"
    ):
        load_train_config(None, ["augmentation.bipo_p=1.5"])


def test_every_shipped_recipe_resolves_its_augmentation_and_label_source():
    for name in list_recipes():
        config = load_train_config(resolve_recipe(name))
        model = model_config(config.model, **config.model_overrides)
        aug = resolve_augmentation(config.augmentation, model)
        assert (aug.image_size, aug.mean, aug.std) == (
            model.image_size,
            model.pixel_mean,
            model.pixel_std,
        )
        # The paper's targets need the released parsing labels; no silent keypoint fallback.
        assert config.label_source == ("parsing" if name.startswith("official/") else "auto"), name
    assert load_train_config(None).label_source == "parsing"
