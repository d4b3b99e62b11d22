"""kpr.configuration: YAML 1.2 numbers, typed overrides that merge mappings, errors naming them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpr.configuration import apply_overrides, load_yaml, merge, to_dict
from kpr.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    lr: float = 0.1
    epochs: int = 10
    name: str = "sgd"


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    options: dict[str, Any] = field(default_factory=dict)
    images: int = 100
    ids: int = 10

    def __post_init__(self) -> None:
        if self.images < 2 * self.ids:
            raise ConfigError(f"Outer.images must be >= 2 * ids, got {self.images}")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-3", 1e-3),
        ("1E5", 1e5),
        (".5", 0.5),
        ("-2e-4", -2e-4),
        ("+1.5e+2", 150.0),
        ("3.", 3.0),
        ("1_000", 1000),
        ("1_000.5", 1000.5),
        ("010", 10),
        ("0x1F", 31),
        ("0o17", 15),
        ("-7", -7),
    ],
)
def test_numbers_in_usual_notations_are_numbers(text, value):
    parsed = load_yaml(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    "text", ["'1e-3'", '"1e-3"', "'10'", "no", "on", "2024-01-01", "1:30", "1e", "abc"]
)
def test_quoted_values_and_words_stay_strings(text):
    assert isinstance(load_yaml(text), str)


def test_yaml_core_specials():
    assert load_yaml("true") is True and load_yaml("null") is None and load_yaml("~") is None
    assert load_yaml(".inf") == math.inf and math.isnan(load_yaml(".nan"))
    assert load_yaml("{a: 1e-3, b: [256, 128]}") == {"a": 1e-3, "b": [256, 128]}


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_round_trips_in_every_python_notation(x):
    for text in (repr(x), f"{x:e}", f"{x:E}", f"{x:.17g}"):
        assert load_yaml(text) == float(text), text


@given(st.integers())
def test_any_int_is_an_int(n):
    assert load_yaml(str(n)) == n and type(load_yaml(str(n))) is int
    assert load_yaml(f"'{n}'") == str(n)


def test_invalid_yaml_is_a_config_error_with_its_position():
    with pytest.raises(ConfigError, match=r"invalid YAML \(.*line 1, column 4\)"):
        load_yaml("[1,")


def test_override_numbers_in_scientific_notation():
    assert apply_overrides(Outer(), ["inner.lr=1e-3"]).inner.lr == 1e-3
    assert apply_overrides(Outer(), ["inner.name='1e-3'"]).inner.name == "1e-3"


def test_errors_name_the_override():
    with pytest.raises(ConfigError, match=r"^override inner\.lr=abc: inner\.lr: expected a number"):
        apply_overrides(Outer(), ["inner.epochs=3", "inner.lr=abc"])
    with pytest.raises(
        ConfigError, match=r"^override inner\.lrr=1: inner: unknown key\(s\) \['lrr'\]"
    ):
        apply_overrides(Outer(), ["inner.lrr=1"])
    with pytest.raises(ConfigError, match=r"^override images: expected key=value"):
        apply_overrides(Outer(), ["images"])
    with pytest.raises(
        ConfigError, match=r"^override images.x=1: 'images' is not a config section"
    ):
        apply_overrides(Outer(), ["images.x=1"])
    with pytest.raises(ConfigError, match=r"^override ids=80: Outer\.images must be"):
        apply_overrides(Outer(), ["images=150", "ids=80"])


def test_a_mapping_is_merged_into_a_mapping_key_by_key():
    base = Outer(
        inner=Inner(lr=0.5, epochs=3), options={"backbone": {"name": "swin", "depth": 2}, "k": 1}
    )
    out = apply_overrides(base, ["inner={lr: 1e-3}", "options.backbone={pretrained: w.pth}"])
    assert out.inner == Inner(lr=1e-3, epochs=3)
    assert out.options == {"backbone": {"name": "swin", "depth": 2, "pretrained": "w.pth"}, "k": 1}
    assert base.options == {"backbone": {"name": "swin", "depth": 2}, "k": 1}  # not mutated
    assert apply_overrides(base, ["options.new.deep=1"]).options["new"] == {"deep": 1}


def test_tilde_removes_a_key():
    base = Outer(inner=Inner(lr=0.5), options={"a": 1, "b": 2})
    out = apply_overrides(base, ["~options.a", "~inner"])
    assert out.options == {"b": 2} and out.inner == Inner()
    with pytest.raises(ConfigError, match=r"^override ~options\.zz: no key 'zz' to remove"):
        apply_overrides(base, ["~options.zz"])


def test_overrides_consistent_together_work_in_any_order():
    # Each first override alone breaks images >= 2 * ids; the result is validated once.
    assert apply_overrides(Outer(), ["images=12", "ids=6"]) == Outer(images=12, ids=6)
    assert apply_overrides(Outer(), ["ids=60", "images=150"]) == Outer(images=150, ids=60)


def test_merge_and_to_dict_copy_nested_mappings():
    base = {"a": {"b": 1, "c": [1, 2]}}
    assert merge(base, {"a": {"b": 2}}) == {"a": {"b": 2, "c": [1, 2]}}
    assert merge(base, {"a": 3}) == {"a": 3} and base == {"a": {"b": 1, "c": [1, 2]}}
    options = {"x": {"y": 1}}
    copied = to_dict(Outer(options=options))["options"]
    copied["x"]["y"] = 2
    assert options == {"x": {"y": 1}}
