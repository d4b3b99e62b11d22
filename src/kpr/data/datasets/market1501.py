"""``market1501``: Market-1501 in its official layout (``Market-1501-v15.09.15/``)."""

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

MARKET1501 = MarketStyleLayout(name="market1501", dirname="Market-1501-v15.09.15", num_cameras=6)


@register_dataset("market1501")
def market1501(
    root: str | os.PathLike[str],
    *,
    keypoints_dir: str | None = DEFAULT_KEYPOINTS_DIR,
    masks_dir: str | None = DEFAULT_MASKS_DIR,
    masks_suffix: str = ".npy",
    drop_train_without_keypoints: bool = False,
    on_bad_sample: BadSamplePolicy = "raise",
    verify: bool = True,
    verbose: bool = True,
) -> ReIDDataset:
    """Market-1501: 751 train identities, 6 cameras.

    Parameters
    ----------
    root : path-like
        The folder containing ``Market-1501-v15.09.15/``, or that folder itself.
    keypoints_dir : str or None
        Subfolder of ``external_annotation/`` holding the keypoint JSONs; ``None`` for none.
        If the folder is absent the samples have no keypoints (with a warning).
    masks_dir : str or None
        Subfolder of ``masks/`` holding the 36-channel PifPaf ``.npy`` parsing labels.
    masks_suffix : str
        Parsing file name = image stem + this suffix.
    drop_train_without_keypoints : bool
        Drop training images whose keypoint file holds only zeros.
    on_bad_sample : {"raise", "skip"}
        Raise at the first bad sample (unparsable name, unpaired or corrupt file), or skip
        it and emit one counted :class:`~kpr.data.datasets._common.BadSampleWarning`.
    verify : bool
        Decode every image, parse every keypoint file and check every parsing file's shape.
    verbose : bool
        Print the dataset directory and the stats table.

    Returns
    -------
    ReIDDataset
        Train pids relabelled 0..P-1 by increasing raw pid; query/gallery pids raw (gallery
        distractors keep pid 0); junk (pid -1) dropped; camid 0-based.
    """
    return build_market_style(
        MARKET1501,
        root,
        keypoints_dir=keypoints_dir,
        masks_dir=masks_dir,
        masks_suffix=masks_suffix,
        drop_train_without_keypoints=drop_train_without_keypoints,
        on_bad_sample=on_bad_sample,
        verify=verify,
        verbose=verbose,
    )
