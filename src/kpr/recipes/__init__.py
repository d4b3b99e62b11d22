"""Training recipes shipped with kpr: the official ones (``official/*``) and CPU-sized synthetic
ones."""

from __future__ import annotations

from pathlib import Path

from kpr.errors import ConfigError

RECIPES_DIR = Path(__file__).parent


def list_recipes() -> list[str]:
    names = (p.relative_to(RECIPES_DIR).with_suffix("") for p in RECIPES_DIR.rglob("*.yaml"))
    return sorted(str(n) for n in names)


def resolve_recipe(name_or_path: str | Path) -> Path:
    """A YAML path as given, or the shipped recipe of that name (``official/solider_market``)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = RECIPES_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise ConfigError(
        f"{name_or_path}: no such config file or shipped recipe; recipes: {list_recipes()}"
    )
