"""Mask prompts: person masks (target / other people) or a human parser's part labels instead of
keypoints, for models with ``KPRConfig.prompt_type`` ``masks`` or ``parsing``.

* :mod:`kpr.masks.labels`: what mask values mean (person labels, the LIP / ATR / kpr part-label
  tables) and which prompt group each part class feeds;
* :mod:`kpr.masks.crop`: :class:`CropMasks`, one crop's segmentation, from arrays;
* :mod:`kpr.masks.io`: the same from PNG files;
* :mod:`kpr.masks.prompts`: masks → prompt channels at the model's input size;
* :mod:`kpr.masks.degrade`: eroded, dilated or leaking masks, as a real segmenter makes them.

See ``docs/mask_prompts.md``.
"""

from kpr.masks.crop import CropMasks, instance_mask, part_labels, person_mask
from kpr.masks.degrade import (
    DEGRADATION_KINDS,
    MaskDegradation,
    degrade,
    dilate_target,
    erode_target,
    leak_target,
)
from kpr.masks.io import read_instance_mask, read_label_png, read_part_labels, read_person_mask
from kpr.masks.labels import (
    ATR,
    BACKGROUND,
    KPR_REGIONS,
    LABEL_TABLES,
    LIP,
    OTHERS,
    PERSON_LABELS,
    REGIONS,
    TARGET,
    PartLabelTable,
    class_groups,
    label_table,
    table_for_classes,
)
from kpr.masks.prompts import layout_mask_prompt, mask_prompt, target_channels

__all__ = [
    "ATR",
    "BACKGROUND",
    "DEGRADATION_KINDS",
    "KPR_REGIONS",
    "LABEL_TABLES",
    "LIP",
    "OTHERS",
    "PERSON_LABELS",
    "REGIONS",
    "TARGET",
    "CropMasks",
    "MaskDegradation",
    "PartLabelTable",
    "class_groups",
    "degrade",
    "dilate_target",
    "erode_target",
    "instance_mask",
    "label_table",
    "leak_target",
    "layout_mask_prompt",
    "mask_prompt",
    "part_labels",
    "person_mask",
    "read_instance_mask",
    "read_label_png",
    "read_part_labels",
    "read_person_mask",
    "table_for_classes",
    "target_channels",
]
