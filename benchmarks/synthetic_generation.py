"""Time generating the default synthetic dataset (~6000 crops at 128x64) into a temporary directory.

Usage: python benchmarks/synthetic_generation.py [--workers N] [--num-images N]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

from machine import machine_facts  # noqa: E402

from kpr.synthetic import SyntheticConfig, generate_synthetic_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--num-images", type=int, default=SyntheticConfig().num_images)
    args = parser.parse_args()
    print(machine_facts(), flush=True)
    config = dataclasses.replace(SyntheticConfig(), num_images=args.num_images)
    with tempfile.TemporaryDirectory(prefix="kpr-synth-bench-") as tmp:
        summary = generate_synthetic_dataset(tmp, config, workers=args.workers)
    print(summary.format_table())
    rate = summary.num_images / summary.seconds
    print(
        f"{summary.num_images} images at {config.image_height}x{config.image_width}, "
        f"{args.workers} workers: {summary.seconds:.1f} s ({rate:.0f} images/s)"
    )


if __name__ == "__main__":
    main()
