"""Evaluation: embed query and gallery, rank with the part-based distance, score, draw rankings.

Crops are prepared and embedded by :mod:`kpr.predictor` (the same :class:`CropTransform` and
:meth:`KPRPredictor.embed_batch` as every other caller); this module only adds the dataset
plumbing, the metrics and the ranking grids.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from kpr.data.datasets import build_dataset
from kpr.data.parsing import read_sample_keypoints
from kpr.data.samples import ReIDDataset, ReIDSample
from kpr.engine.config import DatasetConfig
from kpr.errors import ConfigError, KPRError
from kpr.imaging import read_rgb
from kpr.keypoints import VISIBILITY_THRESHOLD
from kpr.keypoints.groupings import target_grouping
from kpr.masks import (
    CropMasks,
    MaskDegradation,
    PartLabelTable,
    degrade,
    read_part_labels,
    read_person_mask,
    table_for_classes,
)
from kpr.modeling.config import KPRConfig
from kpr.modeling.kpr import KPR
from kpr.predictor import (
    Backend,
    CropTransform,
    Embeddings,
    KPRPredictor,
    Precision,
    PreparedCrop,
)
from kpr.retrieval.distance import body_part_distance, part_distance
from kpr.retrieval.metrics import RankResult, evaluate_rank, results_by_decile
from kpr.retrieval.rerank import k_reciprocal_rerank

log = logging.getLogger(__name__)
PromptMode = Literal["keypoints", "masks", "empty"]
PROMPT_MODES: tuple[PromptMode, ...] = ("keypoints", "masks", "empty")


def prompt_modes(setting: str, config: KPRConfig) -> list[PromptMode]:
    """The prompt modes of an ``eval.prompts`` setting for a model: ``both`` = the model's own
    prompts (keypoints, or masks for ``masks``/``parsing`` models) and the empty prompt."""
    own: PromptMode = "keypoints" if config.prompt_type == "keypoints" else "masks"
    if setting == "both":
        return [own, "empty"]
    if setting not in PROMPT_MODES:
        raise ConfigError(f"prompts: expected one of {[*PROMPT_MODES, 'both']}, got {setting!r}")
    return [setting]  # type: ignore[list-item]


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
            return {
                "rank1": float(r.cmc[0]),
                "rank5": float(r.cmc[min(4, len(r.cmc) - 1)]),
                "mAP": float(r.mAP),
                "mINP": float(r.mINP),
                "num_valid_queries": int(r.valid_query_mask.sum()),
            }

        out: dict[str, Any] = {"all": scores(self.overall)}
        out.update({name: scores(r) for name, r in self.subsets.items()})
        if self.deciles:
            out["occlusion_deciles"] = self.deciles
        return out


def drop_keypoints(keypoints: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Remove ``round(fraction × n)`` of the n drawn keypoints (confidence above
    :data:`~kpr.keypoints.VISIBILITY_THRESHOLD`), chosen uniformly at random.

    Parameters
    ----------
    keypoints : ndarray, shape [17, 3]
    fraction : float in [0, 1]
    rng : numpy Generator

    Returns
    -------
    ndarray, shape [17, 3]
        A copy with the confidence of the removed keypoints set to 0.
    """
    out = np.array(keypoints, dtype=np.float64)
    drawn = np.flatnonzero(out[:, 2] > VISIBILITY_THRESHOLD)
    count = int(np.floor(fraction * len(drawn) + 0.5))
    out[rng.choice(drawn, size=count, replace=False), 2] = 0.0
    return out


class EvalDataset(Dataset[PreparedCrop]):
    """Query or gallery samples → :class:`~kpr.predictor.PreparedCrop` (what the predictor feeds
    the model), in a torch Dataset so a DataLoader can read images in worker processes.

    Parameters
    ----------
    samples : sequence of ReIDSample
    transform : CropTransform
        The model's crop transform (``KPRPredictor.transform``).
    prompt_mode : {"keypoints", "masks", "empty"}
        ``"empty"`` gives every image the empty prompt, e.g. to evaluate a model without prompts;
        ``"masks"`` prompts mask-prompt models from each sample's person mask (``masks``) and,
        for ``parsing`` models, its part labels (``parsing``); a sample without a mask file gets
        the empty prompt.
    drop_keypoints : float in [0, 1]
        Fraction of each image's target keypoints removed at random before its prompt is built
        (see :func:`drop_keypoints`), to measure robustness to missing keypoints.
    drop_seed : int
        Seed of that removal; each image's draw depends only on this seed and its path.
    degrade_masks : MaskDegradation, optional
        ``"masks"`` mode: degrade every mask (:func:`kpr.masks.degrade`, keyed by the image path),
        to imitate a real segmenter.
    part_table : PartLabelTable, optional
        The classes of the samples' part labels (``parsing`` models).
    """

    def __init__(
        self,
        samples: Sequence[ReIDSample],
        transform: CropTransform,
        prompt_mode: PromptMode = "keypoints",
        drop_keypoints: float = 0.0,
        drop_seed: int = 0,
        degrade_masks: MaskDegradation | None = None,
        part_table: PartLabelTable | None = None,
    ) -> None:
        if prompt_mode not in PROMPT_MODES:
            raise ConfigError(
                f"prompt_mode must be one of {list(PROMPT_MODES)}, got {prompt_mode!r}"
            )
        if not 0.0 <= drop_keypoints <= 1.0:
            raise ConfigError(f"drop_keypoints must be in [0, 1], got {drop_keypoints}")
        self.samples = samples
        self.transform = transform
        self.prompt_mode = prompt_mode
        self.drop_keypoints = drop_keypoints
        self.drop_seed = drop_seed
        self.degrade_masks = degrade_masks
        self.part_table = part_table

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> PreparedCrop:
        sample = self.samples[index]
        image = read_rgb(sample.image)
        if self.prompt_mode == "empty":
            return self.transform(image, None, None, str(sample.image))
        if self.prompt_mode == "masks":
            return self.transform(image, None, None, str(sample.image), self._masks(sample))
        skeletons = read_sample_keypoints(sample)
        target = skeletons.target
        if self.drop_keypoints > 0:
            rng = np.random.default_rng([self.drop_seed, zlib.crc32(str(sample.image).encode())])
            target = drop_keypoints(target, self.drop_keypoints, rng)
        name = str(sample.keypoints or sample.image)
        return self.transform(image, target, skeletons.negatives, name)

    def _masks(self, sample: ReIDSample) -> CropMasks | None:
        if sample.masks is None:
            return None
        masks = read_person_mask(sample.masks)
        if self.transform.config.prompt_type == "parsing":
            if sample.parsing is None or self.part_table is None:
                raise KPRError(
                    f"{sample.image}: a parsing-prompt model needs the sample's part-label map "
                    "of a known table (kpr.masks.LABEL_TABLES)"
                )
            masks = read_part_labels(sample.parsing, self.part_table, masks)
        if self.degrade_masks is not None:
            masks = degrade(masks, self.degrade_masks, str(sample.image))
        return masks


def collate_crops(items: Sequence[PreparedCrop]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prepared crops → (images [N, 3, H, W], prompts [N, Cp, H, W], prompted [N] bool)."""
    return (
        torch.stack([it.image for it in items]),
        torch.stack([it.prompt for it in items]),
        torch.tensor([it.prompted for it in items]),
    )


def embed_samples(
    predictor: KPRPredictor,
    samples: Sequence[ReIDSample],
    *,
    prompt_mode: PromptMode = "keypoints",
    drop_keypoints: float = 0.0,
    drop_seed: int = 0,
    degrade_masks: MaskDegradation | None = None,
    part_table: PartLabelTable | None = None,
    batch_size: int = 128,
    workers: int = 0,
    use_cameras: bool = True,
    part_masks: bool = False,
    progress: bool = False,
) -> Embeddings:
    """Embed dataset samples through ``predictor`` (prompts from their keypoints or masks, or
    empty; see :class:`EvalDataset`).

    ``part_masks`` keeps each crop's part maps, in float16 (for ranking grids).
    """
    dataset = EvalDataset(
        samples,
        predictor.transform,
        prompt_mode,
        drop_keypoints,
        drop_seed,
        degrade_masks,
        part_table,
    )
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_crops
    )
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc=f"embedding ({prompt_mode} prompts)", unit="batch", leave=False)
    camids = torch.tensor([s.camid for s in samples], dtype=torch.long)
    chunks, start = [], 0
    for images, prompts, prompted in loader:
        stop = start + len(images)
        cams = camids[start:stop] if use_cameras else None
        out = predictor.embed_batch(images, prompts, cams, prompted=prompted, part_masks=part_masks)
        if out.part_masks is not None:
            out = dataclasses.replace(out, part_masks=out.part_masks.half())
        chunks.append(out)
        start = stop
    return Embeddings.cat(chunks)


def eval_dataset_for(
    config: DatasetConfig, train_dataset: ReIDDataset | None = None
) -> ReIDDataset:
    """The dataset a recipe evaluates on, built the same way by the trainer and ``kpr eval``.

    ``eval_name``/``eval_root`` (each defaulting to the training one) with ``eval_options`` when
    either is set — never the training dataset's options; otherwise the training dataset itself
    (``train_dataset`` if already built).
    """
    if config.eval_name is None and config.eval_root is None:
        if train_dataset is not None:
            return train_dataset
        return build_dataset(config.name, root=Path(config.root).expanduser(), **config.options)
    root = Path(config.eval_root or config.root).expanduser()
    return build_dataset(config.eval_name or config.name, root=root, **config.eval_options)


def query_groups(query: Sequence[ReIDSample]) -> dict[str, np.ndarray]:
    """Boolean masks of the query subsets worth reporting, from the ``occlusion`` attribute.

    ``multi_person``: another person shares the crop (the target is ambiguous without a prompt);
    ``single_person``: the target is the only person (alone or behind an object). Datasets without
    the attribute have no subsets.
    """
    kinds = [s.attributes.get("occlusion") for s in query]
    if not any(kinds):
        return {}
    multi = np.array([k == "multi_person" for k in kinds])
    return {"multi_person": multi, "single_person": ~multi}


def evaluate(
    model: KPR,
    dataset: ReIDDataset,
    *,
    prompt_mode: PromptMode = "keypoints",
    drop_keypoints: float = 0.0,
    drop_seed: int = 0,
    degrade_masks: MaskDegradation | None = None,
    batch_size: int = 128,
    workers: int = 0,
    max_rank: int = 50,
    protocol: Literal["market", "no_filter"] | None = None,
    use_cameras: bool = True,
    precision: Precision = "float32",
    backend: Backend | None = None,
    onnx_file: str | Path | None = None,
    progress: bool = False,
    visualize: int = 0,
    topk_visualize: int = 10,
    vis_dir: str | Path | None = None,
    rerank: bool = False,
) -> EvalResult:
    """Rank-k / mAP / mINP of ``model`` on ``dataset``'s query and gallery splits.

    ``rerank`` scores k-reciprocal re-ranked distances (``kpr.retrieval.rerank``) instead.
    ``degrade_masks`` degrades the masks of ``prompt_mode="masks"`` (:class:`EvalDataset`).
    ``precision``/``backend``/``onnx_file`` choose the inference path (see
    :class:`~kpr.predictor.KPRPredictor`). ``visualize`` > 0 writes that many ranking grids to
    ``vis_dir``, from the part maps kept while embedding (float16: ~18 KB per crop at 128×64,
    ~37 KB at 384×128 with K = 5).
    """
    if not dataset.query or not dataset.gallery:
        raise KPRError(f"{dataset.name}: evaluation needs non-empty query and gallery splits")
    device = next(model.parameters()).device
    predictor = KPRPredictor(model, device, precision, backend=backend, onnx_file=onnx_file)
    draw = bool(visualize and vis_dir is not None)
    if draw and model.config.head == "global":
        log.info("no ranking grids: a global-embedding model has no part maps to draw")
        draw = False
    kwargs = dict(
        prompt_mode=prompt_mode,
        drop_keypoints=drop_keypoints,
        drop_seed=drop_seed,
        degrade_masks=degrade_masks,
        part_table=table_for_classes(dataset.parsing_classes),
        batch_size=batch_size,
        workers=workers,
        use_cameras=use_cameras,
        part_masks=draw,
        progress=progress,
    )
    q = embed_samples(predictor, dataset.query, **kwargs)
    g = embed_samples(predictor, dataset.gallery, **kwargs)
    q_pids, q_camids = _labels(dataset.query)
    g_pids, g_camids = _labels(dataset.gallery)
    distmat = part_distance(q.embeddings, g.embeddings, q.visibility, g.visibility).numpy()
    if rerank:
        q_q = part_distance(q.embeddings, q.embeddings, q.visibility, q.visibility).numpy()
        g_g = part_distance(g.embeddings, g.embeddings, g.visibility, g.visibility).numpy()
        distmat = k_reciprocal_rerank(distmat, q_q, g_g)
    protocol = protocol or dataset.eval_protocol
    overall = evaluate_rank(
        distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank, protocol=protocol
    )
    if overall.num_queries_without_match:
        log.warning(
            "%d of %d queries have no match in the gallery and are not scored",
            overall.num_queries_without_match,
            len(q_pids),
        )
    subsets = {}
    for name, mask in query_groups(dataset.query).items():
        if mask.any() and not mask.all():
            try:
                subsets[name] = evaluate_rank(
                    distmat[mask],
                    q_pids[mask],
                    g_pids,
                    q_camids[mask],
                    g_camids,
                    max_rank=max_rank,
                    protocol=protocol,
                )
            except KPRError:
                log.warning("query subset %r has no query with a match; not reported", name)
        elif mask.all():
            subsets[name] = overall
    deciles = []
    occ = [s.attributes.get("occ_level") for s in dataset.query]
    if all(v is not None for v in occ) and len(occ) >= 10:
        deciles = [
            dataclasses.asdict(d)
            for d in results_by_decile(
                distmat,
                q_pids,
                g_pids,
                q_camids,
                g_camids,
                np.asarray(occ, float),
                max_rank=max_rank,
                protocol=protocol,
            )
        ]
    if draw:
        write_rankings(
            model,
            dataset,
            q,
            g,
            distmat,
            overall,
            prompt_mode,
            visualize,
            topk_visualize,
            Path(vis_dir),
        )
    return EvalResult(prompt_mode, overall, subsets, deciles)


def _labels(samples: Sequence[ReIDSample]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([s.pid for s in samples], dtype=np.int64), np.array(
        [s.camid for s in samples], dtype=np.int64
    )


def write_rankings(
    model: KPR,
    dataset: ReIDDataset,
    q: Embeddings,
    g: Embeddings,
    distmat: np.ndarray,
    result: RankResult,
    prompt_mode: PromptMode,
    count: int,
    topk: int,
    out_dir: Path,
) -> list[Path]:
    """Ranking grids (query + top-k, with the part maps computed during evaluation) for the worst
    and some random queries."""
    from kpr.viz.ranking import RankedItem, ranking_grid, select_queries, write_png

    if q.part_masks is None or g.part_masks is None:
        raise KPRError("write_rankings: the embeddings were computed without part masks")
    valid = np.flatnonzero(result.valid_query_mask)
    chosen = [int(valid[i]) for i in select_queries(result.all_ap, min(count, len(valid)))]
    part_names = target_grouping(model.config.target_grouping).part_names
    paths = []
    for qi in chosen:
        order = np.argsort(distmat[qi], kind="stable")[:topk]
        query, matches = q[qi], g[order.tolist()]
        per_slot = body_part_distance(
            query.embeddings, matches.embeddings, query.visibility, matches.visibility
        ).numpy()[:, 0]
        both = query.visibility.bool().numpy() & matches.visibility.bool().numpy()
        items = [
            (dataset.query[qi], query, 0),
            *[(dataset.gallery[gi], matches, j) for j, gi in enumerate(order)],
        ]
        ranked = []
        for rank, (sample, emb, j) in enumerate(items):
            skeletons = read_sample_keypoints(sample) if prompt_mode == "keypoints" else None
            is_query = rank == 0
            ranked.append(
                RankedItem(
                    name=Path(sample.image).name,
                    image=read_rgb(sample.image),
                    part_masks=emb.part_masks[j].float().numpy(),
                    visibility=emb.visibility[j].float().numpy(),
                    target=None if skeletons is None else skeletons.target,
                    negatives=None if skeletons is None else skeletons.negatives,
                    pid=sample.pid,
                    correct=None if is_query else sample.pid == dataset.query[qi].pid,
                    distance=None if is_query else float(distmat[qi, order[j]]),
                    part_distances=None if is_query else np.where(both[j], per_slot[:, j], np.nan),
                    rank=None if is_query else rank,
                )
            )
        grid = ranking_grid(ranked[0], ranked[1:], part_names, model.config.prompt_grouping)
        ap = float(result.all_ap[np.searchsorted(valid, qi)])
        paths.append(write_png(out_dir / f"query{qi:05d}_ap{ap:.2f}.png", grid))
    return paths
