"""Thin functions mirroring the official KPR code's behaviour, for users migrating from it.

They are also the contract kpr's equivalence tests check against the official reference outputs.
"""

from kpr.compat.model import official_forward
from kpr.compat.parsing import official_target_masks
from kpr.compat.prompts import official_prompt, read_official_keypoints
from kpr.compat.retrieval import official_distance, official_eval

__all__ = [
    "official_distance",
    "official_eval",
    "official_forward",
    "official_prompt",
    "official_target_masks",
    "read_official_keypoints",
]
