import pytest

from kpr.engine.config import load_train_config
from kpr.errors import ConfigError
from kpr.recipes import list_recipes, resolve_recipe


def test_every_shipped_recipe_loads():
    names = list_recipes()
    assert len([n for n in names if n.startswith("official/")]) == 10
    for name in names:
        config = load_train_config(resolve_recipe(name))
        assert config.optim.epochs >= 1


def test_official_recipes_keep_the_official_hyper_parameters():
    market = load_train_config(resolve_recipe("official/solider_market"))
    assert (market.optim.lr, market.optim.fixbase_epochs, market.optim.epochs) == (0.0002, 20, 120)
    assert (market.sampler.ids_per_batch, market.sampler.instances_per_id) == (16, 4)
    assert market.optim.min_lr == 1.6e-5 and market.loss.part_prediction == 0.35
    duke = load_train_config(resolve_recipe("official/solider_occ_duke"))
    assert duke.optim.fixbase_epochs == 10
    posetrack = load_train_config(resolve_recipe("official/imagenet_occ_posetrack"))
    assert (posetrack.optim.lr, posetrack.augmentation.bipo_p) == (0.008, 0.2)
    assert posetrack.camera_embedding is False
    assert load_train_config(resolve_recipe("official/imagenet_market")).augmentation.bipo_p == 0.05


def test_bad_configs_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"optim: unknown key\(s\) \['lrr'\]"):
        load_train_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="optim.epochs: expected an integer"):
        load_train_config(None, ["optim.epochs=ten"])
    with pytest.raises(ConfigError, match="optim.amp"):
        load_train_config(None, ["optim.amp=half"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_train_config(None, ["optim.epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: [1, 2}\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="no such config file or shipped recipe"):
        resolve_recipe("nope")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # lr=-1 trained (gradient ascent); epochs=0 exited 0 without training.
        ("optim.lr=-1", "optim: lr must be > 0, got -1.0"),
        ("optim.epochs=0", "optim: epochs must be >= 1, got 0"),
        ("optim.weight_decay=-0.1", "optim: weight_decay must be >= 0"),
        ("optim.min_lr=1", r"optim: min_lr \(1.0\) exceeds lr \(0.008\)"),
        ("optim.max_grad_norm=0", "optim: max_grad_norm must be > 0"),
        ("optim.grad_accumulation=0", "optim: grad_accumulation must be >= 1"),
        # These two were internal errors from PyTorch at the start of training.
        ("eval.batch_size=0", "eval: batch_size must be >= 1, got 0"),
        ("sampler.workers=-1", "sampler: workers must be >= 0, got -1"),
        ("sampler.ids_per_batch=0", "sampler: ids_per_batch must be >= 1"),
        ("sampler.cache_mb=-1", "sampler: cache_mb must be >= 0, got -1"),
    ],
)
def test_values_that_cannot_train_are_refused_when_the_recipe_is_read(override, message):
    with pytest.raises(ConfigError, match=rf"override {override.replace('.', '[.]')}: {message}"):
        load_train_config(None, [override])


def test_an_infinite_loader_cache_is_refused(tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("sampler: {cache_mb: .inf}\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml.*cache_mb must be a finite number"):
        load_train_config(recipe)


def test_a_yaml_recipe_with_a_bad_value_names_the_file(tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("optim: {lr: 0}\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml.*lr must be > 0, got 0"):
        load_train_config(recipe)
