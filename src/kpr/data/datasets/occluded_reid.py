"""``occluded_reid``: Occluded-REID (test only) in its official layout (``Occluded_REID/``).

::

    <dataset_dir>/
      occluded_body_images/<pid>/<pid>_<n>.tif      query, camid 0
      whole_body_images/<pid>/<pid>_<n>.tif         gallery, camid 1
      external_annotation/<keypoints_dir>/<split folder>/<pid>_<n>.tif_keypoints.json
      masks/<masks_dir>/<split folder>/<pid>_<n>.npy
"""

from __future__ import annotations

import os

from kpr.data.datasets import register_dataset
from kpr.data.datasets._common import (
    OCCLUDED_TEST_SPLITS,
    BadSamplePolicy,
    BadSamples,
    Candidate,
    build_samples,
    finish,
    parse_image_name,
    parse_prefix_pid,
    require_dir,
    resolve_dataset_dir,
)
from kpr.data.datasets._market_style import (
    DEFAULT_KEYPOINTS_DIR,
    DEFAULT_MASKS_DIR,
    ExternalAnnotations,
)
from kpr.data.samples import ReIDDataset, ReIDSample, Split

NAME = "occluded_reid"
DIRNAME = "Occluded_REID"


@register_dataset(NAME)
def occluded_reid(
    root: str | os.PathLike[str],
    *,
    keypoints_dir: str | None = DEFAULT_KEYPOINTS_DIR,
    masks_dir: str | None = DEFAULT_MASKS_DIR,
    masks_suffix: str = ".npy",
    on_bad_sample: BadSamplePolicy = "raise",
    verify: bool = True,
    verbose: bool = True,
) -> ReIDDataset:
    """Occluded-REID: 200 identities, occluded queries against whole-body gallery images.

    There is no train split. The pid is the integer before the first ``_`` of the file name
    (the per-pid folder is not used); query camid 0, gallery camid 1, so the Market protocol
    removes nothing. Keypoint and parsing files sit in flat per-split folders (no per-pid
    subfolder). Other parameters as for :func:`kpr.data.datasets.market1501.market1501`, with
    ``root`` the folder containing ``Occluded_REID/`` or that folder itself.
    """
    bad = BadSamples(NAME, on_bad_sample)
    folders = [folder for folder, _ in OCCLUDED_TEST_SPLITS.values()]
    data_dir = resolve_dataset_dir(root, DIRNAME, folders, NAME)
    annotations = ExternalAnnotations.find(data_dir, keypoints_dir, masks_dir, masks_suffix, NAME)
    splits: dict[Split, list[ReIDSample]] = {}
    for split, (folder, camid) in OCCLUDED_TEST_SPLITS.items():
        image_dir = require_dir(data_dir / folder, f"{split} split", NAME)
        images = sorted(image_dir.rglob("*.tif"))
        candidates = []
        for image in images:
            pid = bad.guard(parse_image_name, image, parse_prefix_pid)
            if pid is not None:
                candidates.append(Candidate(image, pid, camid, split))
        keypoints, parsing = annotations.companions(folder, split)
        splits[split] = build_samples(
            candidates,
            all_images=images,
            keypoints=keypoints,
            parsing=parsing,
            parsing_format="pifpaf36",
            bad=bad,
            verify=verify,
        )
    dataset = ReIDDataset(
        name=NAME, train=[], query=splits["query"], gallery=splits["gallery"], num_cameras=0
    )
    notes = [
        f"dataset directory {data_dir}",
        annotations.describe(),
    ]
    return finish(dataset, bad, verbose, notes)
