"""Typed configs: frozen dataclasses ⇄ plain dicts (JSON/YAML), with validation and overrides.

One mechanism serves model configs, checkpoint metadata, training recipes and ``kpr synth``:
unknown keys and wrong types raise :class:`~kpr.errors.ConfigError` naming the dotted field, and
an error caused by a ``key=value`` override names the override.
"""

from __future__ import annotations

import dataclasses
import operator
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import yaml

from kpr.errors import ConfigError, KPRError

T = TypeVar("T")


def as_hw(value: Any, name: str, error: type[KPRError] = ConfigError) -> tuple[int, int]:
    """Validate an (H, W) size: two positive integers; ``error`` names ``name`` otherwise."""
    try:
        h, w = (operator.index(v) for v in value)
    except (TypeError, ValueError):
        raise error(f"{name}: expected two integers (H, W), got {value!r}") from None
    if h <= 0 or w <= 0:
        raise error(f"{name}: expected positive (H, W), got ({h}, {w})")
    return h, w


# ----------------------------------------------------------------------------------------- YAML

_TAG = "tag:yaml.org,2002:"
_DIGITS = r"[0-9](?:_?[0-9])*"  # underscores between digits, as in Python literals
# YAML 1.2 core schema (plus digit underscores): tag, pattern, possible first characters ("" is
# the empty scalar). Ints come before floats, whose pattern also matches them.
_CORE_SCALARS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("null", r"~|null|Null|NULL|", ("~", "n", "N", "")),
    ("bool", r"true|True|TRUE|false|False|FALSE", tuple("tTfF")),
    ("int", rf"[-+]?{_DIGITS}|0o[0-7]+|0x[0-9a-fA-F]+", tuple("-+0123456789")),
    (
        "float",
        (
            rf"[-+]?(?:\.{_DIGITS}|{_DIGITS}(?:\.(?:{_DIGITS})?)?)(?:[eE][-+]?{_DIGITS})?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
        ),
        tuple("-+.0123456789"),
    ),
)
# YAML 1.1 rules replaced by the above (timestamps and "=" have no 1.2 core equivalent).
_YAML11_TAGS = {_TAG + t for t in ("null", "bool", "int", "float", "timestamp", "value")}


class _CoreLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema scalars instead of YAML 1.1's: ``1e-3``,
    ``.5`` and ``1E5`` are floats (YAML 1.1 reads them as strings), ``010`` is ten, and
    ``no``, ``on`` and dates stay strings."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _YAML11_TAGS]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    return int(text, 0) if text[:2] in ("0o", "0x") else int(text, 10)


for _name, _pattern, _first in _CORE_SCALARS:
    _CoreLoader.add_implicit_resolver(_TAG + _name, re.compile(rf"^(?:{_pattern})$"), list(_first))
_CoreLoader.add_constructor(_TAG + "int", _construct_int)


def load_yaml(text: str) -> Any:
    """Parse YAML with YAML 1.2 core-schema scalars (numbers in any usual notation are numbers;
    quoted values stay strings). Raises :class:`ConfigError` on invalid YAML."""
    try:
        return yaml.load(text, Loader=_CoreLoader)  # a SafeLoader: builds plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML ({exc.problem}{at})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML ({exc})") from None


# ---------------------------------------------------------------------------- dicts ⇄ dataclasses


def to_dict(obj: Any) -> Any:
    """Dataclass tree → plain dicts/lists (tuples become lists; mappings are copied)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _at(where: str, message: str) -> str:
    return f"{where}: {message}" if where else message


def _sub(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            errors[0] if len(errors) == 1 else _at(where, f"{value!r} fits none of {tp}")
        )
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(_at(where, f"{value!r} is not one of {list(args)}"))
        return value
    if origin is tuple:
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ConfigError(_at(where, f"expected a list, got {value!r}"))
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(_at(where, f"expected {len(args)} values, got {len(value)}"))
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(_at(where, f"expected a mapping, got {value!r}"))
        return {k: _convert(v, args[1], _sub(where, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(_at(where, f"expected a number, got {value!r}"))
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(_at(where, f"expected an integer, got {value!r}"))
        return value
    if tp in (bool, str):
        if not isinstance(value, tp):
            raise ConfigError(_at(where, f"expected {tp.__name__}, got {value!r}"))
        return value
    raise ConfigError(_at(where, f"unsupported field type {tp}"))


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and types recursively.

    Messages start with the dotted field under ``where`` (``config.optim.lr: …``); an empty
    ``where`` gives ``optim.lr: …``.
    """
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(_at(where, f"expected a mapping, got {type(data).__name__}"))
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(_at(where, f"unknown key(s) {unknown}; valid keys: {sorted(fields)}"))
    kwargs = {k: _convert(v, hints[k], _sub(where, k)) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(_at(where, str(exc))) from None
    except ConfigError as exc:
        # A dataclass's own validation (__post_init__) does not know where its values came from.
        raise ConfigError(_at(where, str(exc))) from None


# ------------------------------------------------------------------------------------ overrides


def merge(base: Any, update: Any) -> Any:
    """``update`` laid over ``base``: mappings merge key by key (recursively), anything else is
    replaced. Neither argument is modified."""
    if isinstance(base, Mapping) and isinstance(update, Mapping):
        out = dict(base)
        for key, value in update.items():
            out[key] = merge(base.get(key), value)
        return out
    return update


_MISSING = object()


def _override(data: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` or ``~dotted.key`` to ``data`` in place."""
    remove = item.startswith("~")
    if remove:
        key, value = item[1:], None
        if not key or "=" in key:
            raise ConfigError("expected ~key (remove a key) or key=value")
    else:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError("expected key=value (or ~key to remove a key)")
        value = load_yaml(raw)
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        # A missing key opens a new section: free mappings (model_overrides, options) grow.
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{part!r} is not a config section")
        node = child
    if not remove:
        node[leaf] = merge(node.get(leaf), value)
    elif node.pop(leaf, _MISSING) is _MISSING:
        raise ConfigError(f"no key {leaf!r} to remove")


def apply_overrides(config: T, overrides: Sequence[str]) -> T:
    """``config`` (a config dataclass) with command-line overrides applied in order.

    ``dotted.key=value`` sets a field; the value is YAML (:func:`load_yaml`, so ``1e-3`` is a
    number and ``'1e-3'`` a string), and a mapping given for a mapping is merged into it key by
    key (``model_overrides.backbone={pretrained: x}`` keeps the other backbone fields).
    ``~dotted.key`` removes a key: a field goes back to its default, an entry of a free mapping
    (``dataset.options``) is dropped. The result is validated once, so overrides that are only
    consistent together (``num_images=100 num_train_ids=10``) work in any order. Errors name
    the override: ``override optim.lr=abc: optim.lr: expected a number, got 'abc'``.
    """
    data = to_dict(config)
    for item in overrides:
        try:
            _override(data, item)
        except ConfigError as exc:
            raise ConfigError(f"override {item}: {exc}") from None
    try:
        return from_dict(type(config), data, where="")
    except ConfigError as exc:
        raise ConfigError(f"{_culprit(config, overrides, str(exc))}: {exc}") from None


def _culprit(config: Any, overrides: Sequence[str], message: str) -> str:
    """The first override after which validation fails with ``message`` (replayed on error)."""
    data = to_dict(config)
    for item in overrides:
        _override(data, item)
        try:
            from_dict(type(config), data, where="")
        except ConfigError as exc:
            if str(exc) == message:
                return f"override {item}"
    return "overrides " + " ".join(overrides)
