"""Dataset adapters, registered by name (``build_dataset("market1501", root=…)``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kpr.data.samples import ReIDDataset
from kpr.errors import ConfigError

DatasetBuilder = Callable[..., ReIDDataset]
_DATASETS: dict[str, DatasetBuilder] = {}


def register_dataset(name: str) -> Callable[[DatasetBuilder], DatasetBuilder]:
    def decorator(fn: DatasetBuilder) -> DatasetBuilder:
        _DATASETS[name] = fn
        return fn

    return decorator


def list_datasets() -> list[str]:
    _import_adapters()
    return sorted(_DATASETS)


def build_dataset(name: str, **kwargs: Any) -> ReIDDataset:
    """Build the dataset registered as ``name`` (``root`` and adapter options as keyword arguments)."""
    _import_adapters()
    if name not in _DATASETS:
        raise ConfigError(f"dataset {name!r} is not registered; known: {sorted(_DATASETS)}")
    return _DATASETS[name](**kwargs)


def _import_adapters() -> None:
    # Adapters register themselves on import.
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
