"""The comparison figure of ``kpr compare``: samples, prompts, part-attention maps and distances."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from kpr.errors import KPRError  # noqa: E402
from kpr.io_utils import atomic_path  # noqa: E402
from kpr.viz.drawing import draw_prompt, overlay_heatmap  # noqa: E402


@dataclass(frozen=True)
class Sample:
    """One crop to show: RGB [H, W, 3], its prompt keypoints (or None), part maps and visibility."""

    name: str
    image: NDArray[np.uint8]
    target: NDArray | None
    negatives: NDArray | None
    part_masks: NDArray  # [K+1, Hf, Wf], channel 0 = background
    visibility: NDArray  # [1+K]


# Each crop is a figure row of 2 + K panels: 16 + 16 crops already make a 1925 × 8162 px PNG
# (16 s); 360 × 840 crops took 9 GB and more than 10 minutes.
MAX_CROPS_PER_GROUP = 16


def check_group_size(count: int, what: str) -> None:
    """Refuse more crops than a comparison figure can show, naming the group."""
    if count > MAX_CROPS_PER_GROUP:
        raise KPRError(
            f"{what}: {count} crops; a comparison draws every crop, at most "
            f"{MAX_CROPS_PER_GROUP} per group (for more: kpr embed, kpr index + kpr search, "
            "or kpr eval)"
        )


def comparison_figure(
    group_a: Sequence[Sample],
    group_b: Sequence[Sample],
    distances: NDArray,
    part_names: Sequence[str],
    grouping: str,
    out: str | Path,
) -> Path:
    """Write a PNG: one row per sample (prompt, foreground map, each part map with its visibility)
    and the [A, B] distance matrix (at most ``MAX_CROPS_PER_GROUP`` samples per group). Returns
    the path."""
    check_group_size(len(group_a), "group A")
    check_group_size(len(group_b), "group B")
    samples = [*group_a, *group_b]
    cols = 2 + len(part_names)
    fig = plt.figure(figsize=(1.3 * cols + 4.5, 2.3 * len(samples) + 0.6))
    grid = fig.add_gridspec(len(samples), cols + 3)
    for row, sample in enumerate(samples):
        rgb = sample.image
        tag = "A" if row < len(group_a) else "B"
        panels = [
            (
                draw_prompt(rgb, sample.target, sample.negatives, grouping),
                f"{tag}: {sample.name}",
                None,
            )
        ]
        panels.append((overlay_heatmap(rgb, sample.part_masks[1:].max(axis=0)), "foreground", None))
        for k, name in enumerate(part_names):
            panels.append(
                (
                    overlay_heatmap(rgb, sample.part_masks[k + 1]),
                    name,
                    bool(sample.visibility[k + 1] > 0.5),
                )
            )
        for col, (img, title, visible) in enumerate(panels):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(img)
            ax.set_title(
                title[:22], fontsize=7, color="black" if visible in (None, True) else "grey"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if visible is not None:
                for spine in ax.spines.values():
                    spine.set_edgecolor("limegreen" if visible else "red")
                    spine.set_linewidth(2)
    ax = fig.add_subplot(grid[:, cols:])
    im = ax.imshow(distances, cmap="viridis_r", vmin=0.0)
    for (i, j), value in np.ndenumerate(distances):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color="white")
    ax.set_xticks(range(len(group_b)), [s.name[:14] for s in group_b], rotation=60, fontsize=7)
    ax.set_yticks(range(len(group_a)), [s.name[:14] for s in group_a], fontsize=7)
    ax.set_title("part-based distance (A × B)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(out)
