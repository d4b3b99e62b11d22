"""Retrieval: part-based distances, streaming top-k and re-identification metrics."""

from __future__ import annotations

from kpr.retrieval.distance import body_part_distance, l2_normalize, part_distance, topk_gallery
from kpr.retrieval.metrics import (
    DecileResult,
    RankResult,
    SSMDResult,
    evaluate_rank,
    results_by_decile,
    ssmd,
)
from kpr.retrieval.rerank import k_reciprocal_rerank

__all__ = [
    "DecileResult",
    "RankResult",
    "SSMDResult",
    "body_part_distance",
    "evaluate_rank",
    "k_reciprocal_rerank",
    "l2_normalize",
    "part_distance",
    "results_by_decile",
    "ssmd",
    "topk_gallery",
]
