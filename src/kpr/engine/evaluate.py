"""Evaluation: embed query and gallery, rank with the part-based distance, score, draw rankings."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from kpr.data.parsing import read_sample_keypoints
from kpr.data.samples import ReIDDataset, ReIDSample
from kpr.data.train_dataset import DataConfig, EvalDataset, collate_eval
from kpr.errors import KPRError
from kpr.imaging import read_rgb
from kpr.keypoints.groupings import target_grouping
from kpr.modeling.kpr import KPR
from kpr.retrieval.distance import body_part_distance, l2_normalize, part_distance
from kpr.retrieval.metrics import RankResult, evaluate_rank, results_by_decile
from kpr.retrieval.rerank import k_reciprocal_rerank

log = logging.getLogger(__name__)
PromptMode = Literal["keypoints", "empty"]


@dataclass(frozen=True)
class Features:
    """Embeddings of a split: [N, 1+K, D] L2-normalised, visibility [N, 1+K], labels [N]."""

    embeddings: torch.Tensor
    visibility: torch.Tensor
    pids: np.ndarray
    camids: np.ndarray


@dataclass(frozen=True)
class EvalResult:
    """Scores of one evaluation (one prompt mode). ``subsets`` holds the same metrics restricted
    to query groups, e.g. ``multi_person`` for the synthetic benchmark."""

    prompt_mode: str
    overall: RankResult
    subsets: dict[str, RankResult] = field(default_factory=dict)
    deciles: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def scores(r: RankResult) -> dict[str, float]:
            return {"rank1": float(r.cmc[0]), "rank5": float(r.cmc[min(4, len(r.cmc) - 1)]), "mAP": float(r.mAP),
                    "mINP": float(r.mINP), "num_valid_queries": int(r.valid_query_mask.sum())}

        out: dict[str, Any] = {"all": scores(self.overall)}
        out.update({name: scores(r) for name, r in self.subsets.items()})
        if self.deciles:
            out["occlusion_deciles"] = self.deciles
        return out


@torch.inference_mode()
def extract_features(
    model: KPR,
    samples: Sequence[ReIDSample],
    data_config: DataConfig,
    *,
    prompt_mode: PromptMode = "keypoints",
    batch_size: int = 128,
    workers: int = 0,
    use_cameras: bool = True,
    progress: bool = False,
) -> Features:
    """Embed ``samples`` in eval mode (prompts from their keypoints, or the empty prompt)."""
    model.eval()
    device = next(model.parameters()).device
    loader = DataLoader(EvalDataset(samples, data_config, prompt_mode), batch_size=batch_size,
                        num_workers=workers, collate_fn=collate_eval)
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc=f"embedding ({prompt_mode} prompts)", unit="batch", leave=False)
    embeddings, visibility, pids, camids = [], [], [], []
    for batch in loader:
        cams = batch.camids.to(device) if use_cameras else None
        out = model(batch.images.to(device), batch.prompts.to(device), cams)
        embeddings.append(l2_normalize(out.embeddings.float()).cpu())
        visibility.append(out.visibility.cpu())
        pids.append(batch.pids.numpy())
        camids.append(batch.camids.numpy())
    return Features(torch.cat(embeddings), torch.cat(visibility), np.concatenate(pids), np.concatenate(camids))


def query_groups(query: Sequence[ReIDSample]) -> dict[str, np.ndarray]:
    """Boolean masks of query subsets worth reporting (from sample attributes)."""
    kinds = [s.attributes.get("occlusion") for s in query]
    groups = {}
    for kind in sorted({k for k in kinds if k}):
        groups[kind] = np.array([k == kind for k in kinds])
    return groups


def evaluate(
    model: KPR,
    dataset: ReIDDataset,
    data_config: DataConfig,
    *,
    prompt_mode: PromptMode = "keypoints",
    batch_size: int = 128,
    workers: int = 0,
    max_rank: int = 50,
    protocol: Literal["market", "no_filter"] | None = None,
    use_cameras: bool = True,
    progress: bool = False,
    visualize: int = 0,
    topk_visualize: int = 10,
    vis_dir: str | Path | None = None,
    rerank: bool = False,
) -> EvalResult:
    """Rank-k / mAP / mINP of ``model`` on ``dataset``'s query and gallery splits. ``rerank``
    scores k-reciprocal re-ranked distances (``kpr.retrieval.rerank``) instead."""
    if not dataset.query or not dataset.gallery:
        raise KPRError(f"{dataset.name}: evaluation needs non-empty query and gallery splits")
    kwargs = dict(prompt_mode=prompt_mode, batch_size=batch_size, workers=workers, use_cameras=use_cameras, progress=progress)
    q = extract_features(model, dataset.query, data_config, **kwargs)
    g = extract_features(model, dataset.gallery, data_config, **kwargs)
    distmat = part_distance(q.embeddings, g.embeddings, q.visibility, g.visibility).numpy()
    if rerank:
        q_q = part_distance(q.embeddings, q.embeddings, q.visibility, q.visibility).numpy()
        g_g = part_distance(g.embeddings, g.embeddings, g.visibility, g.visibility).numpy()
        distmat = k_reciprocal_rerank(distmat, q_q, g_g)
    protocol = protocol or dataset.eval_protocol
    overall = evaluate_rank(distmat, q.pids, g.pids, q.camids, g.camids, max_rank=max_rank, protocol=protocol)
    if overall.num_queries_without_match:
        log.warning("%d of %d queries have no match in the gallery and are not scored",
                    overall.num_queries_without_match, len(q.pids))
    subsets = {}
    for name, mask in query_groups(dataset.query).items():
        if mask.any() and not mask.all():
            try:
                subsets[name] = evaluate_rank(distmat[mask], q.pids[mask], g.pids, q.camids[mask], g.camids,
                                              max_rank=max_rank, protocol=protocol)
            except KPRError:
                log.warning("query subset %r has no query with a match; not reported", name)
        elif mask.all():
            subsets[name] = overall
    deciles = []
    occ = [s.attributes.get("occ_level") for s in dataset.query]
    if all(v is not None for v in occ) and len(occ) >= 10:
        deciles = [dataclasses.asdict(d) for d in results_by_decile(distmat, q.pids, g.pids, q.camids, g.camids, np.asarray(occ, float),
                                              max_rank=max_rank, protocol=protocol)]
    if visualize and vis_dir is not None:
        write_rankings(model, dataset, data_config, q, g, distmat, overall, prompt_mode, visualize, topk_visualize,
                       Path(vis_dir), use_cameras)
    return EvalResult(prompt_mode, overall, subsets, deciles)


def write_rankings(
    model: KPR, dataset: ReIDDataset, data_config: DataConfig, q: Features, g: Features, distmat: np.ndarray,
    result: RankResult, prompt_mode: PromptMode, count: int, topk: int, out_dir: Path, use_cameras: bool,
) -> list[Path]:
    """Ranking grids (query + top-k) for the worst and some random queries."""
    from kpr.viz.ranking import RankedItem, ranking_grid, select_queries, write_png

    valid = np.flatnonzero(result.valid_query_mask)
    chosen = [int(valid[i]) for i in select_queries(result.all_ap, min(count, len(valid)))]
    part_names = target_grouping(model.config.target_grouping).part_names
    paths = []
    for qi in chosen:
        order = np.argsort(distmat[qi], kind="stable")[:topk]
        items = [dataset.query[qi], *[dataset.gallery[i] for i in order]]
        embedded = extract_features_with_masks(model, items, data_config, prompt_mode, use_cameras)
        per_slot = body_part_distance(embedded[1][:1], embedded[1][1:], embedded[2][:1], embedded[2][1:]).numpy()[:, 0]
        ranked = []
        for j, sample in enumerate(items):
            skeletons = read_sample_keypoints(sample) if prompt_mode == "keypoints" else None
            is_query = j == 0
            dist = None if is_query else float(distmat[qi, order[j - 1]])
            slot_dist = None if is_query else np.where(
                embedded[2][0].bool().numpy() & embedded[2][j].bool().numpy(), per_slot[:, j - 1], np.nan)
            ranked.append(RankedItem(
                name=Path(sample.image).name, image=read_rgb(sample.image), part_masks=embedded[0][j].numpy(),
                visibility=embedded[2][j].float().numpy(),
                target=None if skeletons is None else skeletons.target,
                negatives=None if skeletons is None else skeletons.negatives,
                pid=sample.pid, correct=None if is_query else sample.pid == dataset.query[qi].pid,
                distance=dist, part_distances=slot_dist, rank=None if is_query else j,
            ))
        grid = ranking_grid(ranked[0], ranked[1:], part_names, model.config.prompt_grouping)
        ap = float(result.all_ap[np.searchsorted(valid, qi)])
        paths.append(write_png(out_dir / f"query{qi:05d}_ap{ap:.2f}.png", grid))
    return paths


@torch.inference_mode()
def extract_features_with_masks(
    model: KPR, samples: Sequence[ReIDSample], data_config: DataConfig, prompt_mode: PromptMode, use_cameras: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(part masks [N, K+1, Hf, Wf], embeddings [N, 1+K, D], visibility [N, 1+K]) of a few samples."""
    dataset = EvalDataset(samples, data_config, prompt_mode)
    batch = collate_eval([dataset[i] for i in range(len(dataset))])
    device = next(model.parameters()).device
    out = model(batch.images.to(device), batch.prompts.to(device), batch.camids.to(device) if use_cameras else None)
    return out.part_masks.float().cpu(), l2_normalize(out.embeddings.float()).cpu(), out.visibility.cpu()
