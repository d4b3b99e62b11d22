"""``occluded_duke``: Occluded-DukeMTMC in its official layout (``Occluded_Duke/``)."""

from __future__ import annotations

import os

from kpr.data.datasets import register_dataset
from kpr.data.datasets._common import BadSamplePolicy
from kpr.data.datasets._market_style import (
    DEFAULT_KEYPOINTS_DIR,
    DEFAULT_MASKS_DIR,
    MarketStyleLayout,
    build_market_style,
)
from kpr.data.samples import ReIDDataset

OCCLUDED_DUKE = MarketStyleLayout(name="occluded_duke", dirname="Occluded_Duke", num_cameras=8)


@register_dataset("occluded_duke")
def occluded_duke(
    root: str | os.PathLike[str],
    *,
    keypoints_dir: str | None = DEFAULT_KEYPOINTS_DIR + "_v3",
    masks_dir: str | None = DEFAULT_MASKS_DIR,
    masks_suffix: str = ".jpg.confidence_fields.npy",
    drop_train_without_keypoints: bool = True,
    on_bad_sample: BadSamplePolicy = "raise",
    verify: bool = True,
    verbose: bool = True,
) -> ReIDDataset:
    """Occluded-Duke: the Market-1501 layout with 8 cameras.

    The defaults follow the official configs: keypoints from the ``…_v3`` annotation folder,
    parsing files named ``<stem>.jpg.confidence_fields.npy``, and training images whose keypoint
    file holds only zeros dropped (``filter_out_no_skeletons``). Parameters as for
    :func:`kpr.data.datasets.market1501.market1501`, with ``root`` the folder containing
    ``Occluded_Duke/`` or that folder itself.
    """
    return build_market_style(
        OCCLUDED_DUKE,
        root,
        keypoints_dir=keypoints_dir,
        masks_dir=masks_dir,
        masks_suffix=masks_suffix,
        drop_train_without_keypoints=drop_train_without_keypoints,
        on_bad_sample=on_bad_sample,
        verify=verify,
        verbose=verbose,
    )
