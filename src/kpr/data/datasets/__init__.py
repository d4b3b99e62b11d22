"""Dataset adapters, registered by name (``build_dataset("market1501", root=…)``)."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

from kpr.data.samples import ReIDDataset
from kpr.errors import ConfigError

DatasetBuilder = Callable[..., ReIDDataset]
_DATASETS: dict[str, DatasetBuilder] = {}


def register_dataset(name: str) -> Callable[[DatasetBuilder], DatasetBuilder]:
    def decorator(fn: DatasetBuilder) -> DatasetBuilder:
        if name in _DATASETS and _DATASETS[name] is not fn:
            warnings.warn(
                f"dataset {name!r} is already registered; replacing it", UserWarning, stacklevel=2
            )
        _DATASETS[name] = fn
        return fn

    return decorator


def list_datasets() -> list[str]:
    _import_adapters()
    return sorted(_DATASETS)


def build_dataset(name: str, **kwargs: Any) -> ReIDDataset:
    """Build the dataset registered as ``name``.

    ``root`` and the adapter options are given as keyword arguments.
    """
    _import_adapters()
    if name not in _DATASETS:
        raise ConfigError(f"dataset {name!r} is not registered; known: {sorted(_DATASETS)}")
    builder = _DATASETS[name]
    accepted = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            options = sorted(k for k in accepted if k != "root")
            raise ConfigError(
                f"dataset {name!r}: unknown option(s) {unknown}; its options: {options}"
            )
    return builder(**kwargs)


def _import_adapters() -> None:
    # Adapters register themselves on import.
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
