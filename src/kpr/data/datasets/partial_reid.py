"""``partial_reid``: Partial-REID (test only) in its official layout (``Partial_REID/``).

::

    <dataset_dir>/
      occluded_body_images/<pid>_<n>.jpg                         query, camid 0
      occluded_body_images/<pid>_<n>.jpg.predictions.json        PifPaf keypoints
      occluded_body_images/<pid>_<n>.jpg.confidence_fields.npy   PifPaf parsing fields
      whole_body_images/…                                        gallery, camid 1, same naming
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from kpr.data.datasets import register_dataset
from kpr.data.datasets._common import (
    OCCLUDED_TEST_SPLITS,
    BadSamplePolicy,
    BadSamples,
    Candidate,
    Companion,
    build_samples,
    finish,
    parse_image_name,
    parse_prefix_pid,
    require_dir,
    resolve_dataset_dir,
)
from kpr.data.samples import ReIDDataset, ReIDSample, Split

NAME = "partial_reid"
DIRNAME = "Partial_REID"
KEYPOINTS_SUFFIX = ".predictions.json"
MASKS_SUFFIX = ".confidence_fields.npy"


@register_dataset(NAME)
def partial_reid(
    root: str | os.PathLike[str],
    *,
    keypoints: bool = True,
    masks: bool = True,
    on_bad_sample: BadSamplePolicy = "raise",
    verify: bool = True,
    verbose: bool = True,
) -> ReIDDataset:
    """Partial-REID: 60 identities, partial queries against whole-body gallery images.

    There is no train split. pid = the integer before the first ``_``; query camid 0, gallery
    camid 1. Keypoints are PifPaf ``<image>.predictions.json`` files next to each image (no
    ``is_target``: the first skeleton is the target); parsing labels are
    ``<image>.confidence_fields.npy`` next to each image.

    Parameters
    ----------
    root : path-like
        The folder containing ``Partial_REID/``, or that folder itself.
    keypoints, masks : bool
        Read the side files; a split folder without any such file gives samples without them.
    on_bad_sample, verify, verbose
        As for :func:`kpr.data.datasets.market1501.market1501`.
    """
    bad = BadSamples(NAME, on_bad_sample)
    folders = [folder for folder, _ in OCCLUDED_TEST_SPLITS.values()]
    data_dir = resolve_dataset_dir(root, DIRNAME, folders, NAME)
    splits: dict[Split, list[ReIDSample]] = {}
    notes = [f"dataset directory {data_dir}"]
    for split, (folder, camid) in OCCLUDED_TEST_SPLITS.items():
        image_dir = require_dir(data_dir / folder, f"{split} split", NAME)
        images = sorted(image_dir.glob("*.jpg"))
        candidates = []
        for image in images:
            pid = bad.guard(parse_image_name, image, parse_prefix_pid)
            if pid is not None:
                candidates.append(Candidate(image, pid, camid, split))
        kp = _side_files("keypoints", image_dir, KEYPOINTS_SUFFIX) if keypoints else None
        parsing = _side_files("parsing", image_dir, MASKS_SUFFIX) if masks else None
        notes.append(
            f"{split}: keypoints {'yes' if kp else 'none'}; parsing labels "
            f"{'yes' if parsing else 'none'}"
        )
        splits[split] = build_samples(
            candidates,
            all_images=images,
            keypoints=kp,
            parsing=parsing,
            parsing_format="pifpaf36",
            bad=bad,
            verify=verify,
        )
    dataset = ReIDDataset(
        name=NAME, train=[], query=splits["query"], gallery=splits["gallery"], num_cameras=0
    )
    return finish(dataset, bad, verbose, notes)


def _side_files(kind: str, image_dir: Path, suffix: str) -> Companion | None:
    """Side files next to the images, or ``None`` (with a warning) when there are none."""
    companion = Companion(kind, image_dir, lambda p: p.name + suffix, suffix)
    if companion.present():
        return companion
    warnings.warn(
        f"{NAME}: no *{suffix} files in {image_dir}; the samples will have no {kind}",
        stacklevel=3,
    )
    return None
