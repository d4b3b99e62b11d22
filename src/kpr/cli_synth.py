"""``kpr synth``: write the synthetic multi-person-occlusion dataset and a contact sheet."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Sequence
from pathlib import Path

from kpr.data.synthetic import SyntheticConfig, generate_synthetic_dataset
from kpr.errors import ConfigError
from kpr.viz.contact_sheet import contact_sheet

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _config_field_types() -> dict[str, type]:
    hints = typing.get_type_hints(SyntheticConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(SyntheticConfig)}


def _coerce(key: str, text: str, kind: type) -> object:
    if kind is bool:
        low = text.strip().lower()
        if low in _TRUE | _FALSE:
            return low in _TRUE
        raise ConfigError(f"synth setting {key}={text!r}: expected a boolean (true/false)")
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"synth setting {key}={text!r}: expected {kind.__name__}") from None


def parse_overrides(items: Sequence[str]) -> dict[str, object]:
    """Turn ``["key=value", ...]`` into typed ``SyntheticConfig`` fields.

    Raises ConfigError on a malformed item, an unknown or repeated key, or a wrongly typed value.
    """
    types = _config_field_types()
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"synth setting {item!r}: expected KEY=VALUE")
        if key not in types:
            raise ConfigError(f"unknown synth setting {key!r}; known settings: {', '.join(types)}")
        if key in out:
            raise ConfigError(f"synth setting {key!r} given twice")
        out[key] = _coerce(key, value, types[key])
    return out


def config_from_args(args: argparse.Namespace) -> SyntheticConfig:
    """The ``SyntheticConfig`` for parsed ``kpr synth`` arguments (``--seed``/``--num-images`` are
    shorthands for ``seed=``/``num_images=``)."""
    values = parse_overrides(args.overrides)
    for key, flag in (("seed", args.seed), ("num_images", args.num_images)):
        if flag is None:
            continue
        if key in values:
            raise ConfigError(f"synth setting {key!r} given both as a flag and as {key}=...")
        values[key] = flag
    return SyntheticConfig(**values)  # type: ignore[arg-type]


def add_synth_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``synth`` on an argparse subcommand group; ``args.func`` is set to ``run_synth``."""
    names = ", ".join(_config_field_types())
    parser = subparsers.add_parser(
        "synth",
        help="write the synthetic multi-person-occlusion dataset",
        description=(
            "Render the built-in synthetic person re-identification dataset (kpr-folder format) "
            "and a contact sheet of sample crops with their keypoint prompts."
        ),
        epilog=f"KEY=VALUE settings: {names}",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--num-images", type=int, default=None, help="total number of images")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes (default 2)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing synthetic dataset in --out"
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="SyntheticConfig fields, e.g. team_size=5"
    )
    parser.set_defaults(func=run_synth)
    return parser


def run_synth(args: argparse.Namespace) -> int:
    """Generate the dataset and ``contact_sheet.png``; print a per-split table. Returns 0."""
    config = config_from_args(args)
    summary = generate_synthetic_dataset(
        args.out, config, workers=args.workers, progress=True, overwrite=args.overwrite
    )
    sheet = Path(args.out) / "contact_sheet.png"
    contact_sheet(args.out, sheet, seed=config.seed)
    print(summary.format_table())
    print(f"{summary.num_images} images in {summary.seconds:.1f} s -> {summary.out_dir}")
    print(f"contact sheet: {sheet}")
    return 0
