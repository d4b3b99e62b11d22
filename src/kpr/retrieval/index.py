"""A gallery embedded once and searched many times: safetensors shards plus a JSON manifest.

Layout of an index directory ``G``::

    G/manifest.json          format, the model that made it, items (name, file), shards
    G/shard-00000.safetensors  embeddings [n, S, D], visibility [n, S], prompted [n] and the
                               prompt of every row (target [n, 17, 3], negatives + offsets)

Shard ``i`` holds the crops at input positions ``[i * shard_size, (i + 1) * shard_size)`` that
could be embedded. :func:`build_index` writes the shards into ``G.partial/`` one at a time (each
atomically), so a killed build resumes where it stopped, and renames the directory onto ``G``
only when the manifest is written: ``G`` is complete or absent. :meth:`GalleryIndex.search` keeps
one shard in memory at a time when the gallery is larger than ``max_resident_bytes``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from kpr.checkpoint.fingerprint import weights_fingerprint
from kpr.errors import CheckpointError, KPRError
from kpr.io_utils import atomic_path, replace_path, write_text_atomic
from kpr.keypoints.coco import NUM_KEYPOINTS
from kpr.keypoints.io import Skeletons, read_keypoints_file
from kpr.predictor import Embeddings, KPRPredictor
from kpr.retrieval.distance import topk_gallery

INDEX_FORMAT = "kpr-gallery-index"
INDEX_VERSION = 1
MANIFEST = "manifest.json"
PLAN = "plan.json"
DEFAULT_SHARD_SIZE = 1024
DEFAULT_MAX_RESIDENT_BYTES = 256 << 20

__all__ = [
    "GalleryIndex",
    "IndexBuild",
    "ModelSignature",
    "SearchResult",
    "build_index",
    "gallery_names",
]


@dataclass(frozen=True)
class ModelSignature:
    """What an index records of the model that embedded it, and checks against at search time."""

    fingerprint: str
    checkpoint: str
    image_size: tuple[int, int]
    num_slots: int
    embedding_dim: int
    prompt_grouping: str
    target_grouping: str

    @classmethod
    def of(cls, predictor: KPRPredictor, checkpoint: str | os.PathLike[str]) -> ModelSignature:
        c = predictor.config
        # An absolute path, so that kpr search finds the checkpoint from any directory.
        where = os.path.abspath(checkpoint) if Path(checkpoint).exists() else str(checkpoint)
        return cls(
            weights_fingerprint(predictor.model),
            where,
            tuple(c.image_size),
            1 + c.num_parts,
            c.embedding_dim,
            c.prompt_grouping,
            c.target_grouping,
        )

    @classmethod
    def from_json(cls, data: dict) -> ModelSignature:
        return cls(**{**data, "image_size": tuple(data["image_size"])})

    def check_matches(self, other: ModelSignature, index: Path) -> None:
        """Refuse ``other`` (the model at hand) unless it has the weights of this index."""
        if other.fingerprint != self.fingerprint:
            raise CheckpointError(
                f"{index}: this index was built with checkpoint {self.checkpoint} (weights "
                f"{self.fingerprint[:12]}), not with {other.checkpoint} (weights "
                f"{other.fingerprint[:12]}); rebuild it with kpr index --checkpoint "
                f"{other.checkpoint}"
            )


@dataclass(frozen=True)
class SearchResult:
    """The k nearest gallery rows of each query.

    ``distances`` [Nq, k] ascending (``inf`` for a pair with no part visible in both crops, which
    ranks last) and ``indices`` [Nq, k] int64 rows of the index.
    """

    distances: torch.Tensor
    indices: torch.Tensor


@dataclass(frozen=True)
class IndexBuild:
    """What :func:`build_index` did: the index, rows embedded now and before, and skipped crops."""

    index: GalleryIndex
    embedded_now: int
    resumed: int
    skipped: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Shard:
    file: str
    start: int
    rows: int
    nbytes: int


@dataclass(frozen=True, eq=False)
class _ShardData:
    embeddings: torch.Tensor  # [n, S, D]
    visibility: torch.Tensor  # [n, S]


def gallery_names(images: Sequence[Path]) -> list[str]:
    """Item names: POSIX paths relative to the images' common parent directory (unique)."""
    resolved = [Path(os.path.abspath(p)) for p in images]
    root = Path(os.path.commonpath([p.parent for p in resolved])) if resolved else Path()
    names = [p.relative_to(root).as_posix() for p in resolved]
    seen: dict[str, Path] = {}
    for name, path in zip(names, images):
        if name in seen:
            raise KPRError(f"{path}: given twice (also as {seen[name]})")
        seen[name] = path
    return names


class GalleryIndex:
    """A built index, opened read-only. Use :meth:`open`."""

    def __init__(self, path: Path, manifest: dict, max_resident_bytes: int):
        self.path = path
        self.signature = ModelSignature.from_json(manifest["model"])
        self.names: tuple[str, ...] = tuple(item["name"] for item in manifest["items"])
        self.files: tuple[Path, ...] = tuple(Path(item["file"]) for item in manifest["items"])
        self.skipped: tuple[tuple[str, str], ...] = tuple(
            (s["file"], s["reason"]) for s in manifest.get("skipped", [])
        )
        self._positions = {name: i for i, name in enumerate(self.names)}
        self._shards = tuple(_Shard(**s) for s in manifest["shards"])
        self._resident: tuple[_ShardData, ...] | None = None
        if sum(s.nbytes for s in self._shards) <= max_resident_bytes:
            self._resident = tuple(self._load(s) for s in self._shards)

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], max_resident_bytes: int = DEFAULT_MAX_RESIDENT_BYTES
    ) -> GalleryIndex:
        """Open an index directory; shards are kept in memory if they fit ``max_resident_bytes``."""
        path = Path(path)
        manifest_file = path / MANIFEST
        if not manifest_file.is_file():
            hint = (
                " (an unfinished build: run kpr index again to resume it)"
                if (path.with_name(path.name + ".partial").is_dir())
                else ""
            )
            raise KPRError(f"{path}: not a kpr gallery index (no {MANIFEST}){hint}")
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KPRError(f"{manifest_file}: cannot read the manifest ({exc})") from None
        if manifest.get("format") != INDEX_FORMAT or manifest.get("version") != INDEX_VERSION:
            raise KPRError(
                f"{manifest_file}: format {manifest.get('format')!r} version "
                f"{manifest.get('version')!r}, expected {INDEX_FORMAT!r} version {INDEX_VERSION}"
            )
        return cls(path, manifest, max_resident_bytes)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_slots(self) -> int:
        return self.signature.num_slots

    def position(self, name: str) -> int | None:
        """The row of the item called ``name``, None if the index has no such item."""
        return self._positions.get(name)

    def _load(self, shard: _Shard) -> _ShardData:
        with safe_open(self.path / shard.file, framework="pt") as f:
            return _ShardData(f.get_tensor("embeddings"), f.get_tensor("visibility"))

    def _iter_shards(self) -> Iterator[tuple[_Shard, _ShardData]]:
        for i, shard in enumerate(self._shards):
            if shard.rows:
                yield shard, self._resident[i] if self._resident is not None else self._load(shard)

    def _locate(self, row: int) -> tuple[_Shard, int]:
        if not 0 <= row < len(self):
            raise KPRError(f"{self.path}: row {row} out of range [0, {len(self)})")
        for shard in self._shards:
            if row < shard.start + shard.rows:
                return shard, row - shard.start
        raise AssertionError("shards do not cover the items")

    def rows(self, rows: Sequence[int]) -> Embeddings:
        """The embeddings of the given rows, in that order (reads only those rows)."""
        emb, vis, prompted = [], [], []
        for row in rows:
            shard, local = self._locate(int(row))
            with safe_open(self.path / shard.file, framework="pt") as f:
                emb.append(f.get_slice("embeddings")[local : local + 1])
                vis.append(f.get_slice("visibility")[local : local + 1])
                prompted.append(f.get_slice("prompted")[local : local + 1])
        return Embeddings(torch.cat(emb), torch.cat(vis), torch.cat(prompted))

    def prompt(self, row: int) -> Skeletons | None:
        """The prompt row ``row`` was embedded with, None if it had none."""
        shard, local = self._locate(row)
        with safe_open(self.path / shard.file, framework="pt") as f:
            if not bool(f.get_slice("prompted")[local : local + 1][0]):
                return None
            target = f.get_slice("prompt_target")[local : local + 1][0].double().numpy()
            lo, hi = (int(v) for v in f.get_slice("prompt_negative_offsets")[local : local + 2])
            negatives = f.get_slice("prompt_negatives")[lo:hi].double().numpy() if hi > lo else None
        if negatives is None:
            negatives = np.zeros((0, NUM_KEYPOINTS, 3))
        return Skeletons(target, negatives)

    def search(self, query: Embeddings, k: int) -> SearchResult:
        """The ``k`` nearest rows (part-based distance, as :meth:`KPRPredictor.distance`) of each
        query, streaming the shards; ``k`` is capped at the gallery size."""
        q_emb, q_vis = query.embeddings, query.visibility
        if q_emb.ndim != 3 or tuple(q_emb.shape[1:]) != (
            self.num_slots,
            self.signature.embedding_dim,
        ):
            raise KPRError(
                f"query embeddings have shape {list(q_emb.shape)}, expected [N, "
                f"{self.num_slots}, {self.signature.embedding_dim}] for the index {self.path}"
            )
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise KPRError(f"k must be a positive integer, got {k!r}")
        k = min(k, len(self))
        best_d: torch.Tensor | None = None
        best_i: torch.Tensor | None = None
        for shard, data in self._iter_shards():
            d, i = topk_gallery(q_emb, data.embeddings, q_vis, data.visibility, min(k, shard.rows))
            # topk_gallery's no-common-part sentinel is per call; +inf ranks such pairs last
            # across shards too.
            shared = ((q_vis[:, None, :] > 0) & (data.visibility[i] > 0)).any(-1)
            d = d.masked_fill(~shared, float("inf"))
            i = i + shard.start
            if best_d is not None and best_i is not None:
                # Earlier shards hold lower rows: a stable sort keeps ties ordered by row.
                d, i = torch.cat([best_d, d], 1), torch.cat([best_i, i], 1)
            d, order = d.sort(dim=1, stable=True)
            best_d, best_i = d[:, :k], i.gather(1, order[:, :k])
        if best_d is None or best_i is None:
            raise KPRError(f"{self.path}: the index holds no embedded crop")
        return SearchResult(best_d, best_i)


def _as_skeletons(keypoints: object, name: str) -> Skeletons | None:
    if keypoints is None or isinstance(keypoints, Skeletons):
        return keypoints
    if isinstance(keypoints, (str, os.PathLike)):
        return read_keypoints_file(keypoints)
    raise KPRError(
        f"{name}: keypoints must be a file, Skeletons or None, got {type(keypoints).__name__}"
    )


def _prompt_tensors(prompts: Sequence[Skeletons | None]) -> dict[str, torch.Tensor]:
    targets = np.zeros((len(prompts), NUM_KEYPOINTS, 3), np.float32)
    negatives: list[np.ndarray] = []
    offsets = [0]
    for row, prompt in enumerate(prompts):
        if prompt is not None:
            targets[row] = prompt.target
            negatives.append(prompt.negatives.reshape(-1, NUM_KEYPOINTS, 3))
        offsets.append(offsets[-1] + (len(negatives[-1]) if prompt is not None else 0))
    stacked = np.concatenate(negatives) if negatives else np.zeros((0, NUM_KEYPOINTS, 3))
    return {
        "prompt_target": torch.from_numpy(targets),
        "prompt_negatives": torch.from_numpy(stacked.astype(np.float32)),
        "prompt_negative_offsets": torch.tensor(offsets, dtype=torch.int64),
    }


def _embed_shard(
    predictor: KPRPredictor,
    images: Sequence[Path],
    keypoints: Sequence[object],
    positions: range,
    estimator: object | None,
    batch_size: int,
    on_error: str,
) -> tuple[dict[str, torch.Tensor], list[int], list[tuple[int, str]]]:
    """Embed the crops at ``positions``: the shard's tensors, kept positions, skipped ones."""
    skipped: list[tuple[int, str]] = []
    prompts: list[Skeletons | None] = []
    usable: list[int] = []
    for pos in positions:
        try:
            prompt = _as_skeletons(keypoints[pos], str(images[pos]))
            if prompt is None and estimator is not None:
                from kpr.pose import auto_skeletons

                prompt = auto_skeletons(images[pos], estimator, str(images[pos]))  # type: ignore[arg-type]
        except KPRError as exc:
            if on_error == "raise":
                raise
            skipped.append((pos, str(exc)))
            continue
        usable.append(pos)
        prompts.append(prompt)
    kept: list[int] = []
    kept_prompts: list[Skeletons | None] = []
    chunks: list[Embeddings] = []
    if usable:
        for chunk in predictor.embed_iter(
            [images[p] for p in usable],
            prompts,
            batch_size=batch_size,
            on_error="skip" if on_error == "skip" else "raise",
        ):
            skipped += [(usable[local], reason) for local, reason in chunk.skipped]
            if chunk.embeddings is not None:
                chunks.append(chunk.embeddings)
                kept += [usable[i] for i in chunk.indices]
                kept_prompts += [prompts[i] for i in chunk.indices]
    if chunks:
        emb = Embeddings.cat(chunks)
        tensors = {
            "embeddings": emb.embeddings,
            "visibility": emb.visibility,
            "prompted": emb.prompted,
        }
    else:
        s, d = predictor.config.num_parts + 1, predictor.config.embedding_dim
        tensors = {
            "embeddings": torch.zeros((0, s, d)),
            "visibility": torch.zeros((0, s), dtype=torch.bool),
            "prompted": torch.zeros(0, dtype=torch.bool),
        }
    # Rows embedded without a drawable prompt keep no prompt, so the stored prompt is what ran.
    stored = [p if bool(tensors["prompted"][r]) else None for r, p in enumerate(kept_prompts)]
    return {**tensors, **_prompt_tensors(stored)}, kept, sorted(skipped)


def _plan(
    signature: ModelSignature,
    images: Sequence[Path],
    keypoints: Sequence[object],
    estimator_name: str | None,
    shard_size: int,
) -> dict:
    return {
        "model": signature.fingerprint,
        "shard_size": shard_size,
        "estimator": estimator_name,
        "images": [str(Path(os.path.abspath(p))) for p in images],
        "keypoints": [None if k is None else str(k) for k in keypoints],
    }


def build_index(
    predictor: KPRPredictor,
    images: Sequence[Path],
    out: str | os.PathLike[str],
    *,
    signature: ModelSignature,
    keypoints: Sequence[object] | None = None,
    estimator: object | None = None,
    estimator_name: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int = 32,
    on_error: str = "raise",
    overwrite: bool = False,
    progress: bool = False,
) -> IndexBuild:
    """Embed ``images`` into an index directory ``out`` (resumable, atomic; see the module doc).

    Parameters
    ----------
    keypoints:
        One entry per image: a keypoint JSON path, :class:`Skeletons` or None (no prompt, or the
        ``estimator``'s proposal when one is given).
    estimator, estimator_name:
        A ``kpr.pose`` estimator for crops without keypoints, and its name (recorded so that a
        resumed build uses the same one).
    on_error:
        ``"raise"`` stops at the first unusable crop; ``"skip"`` leaves it out and reports it.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise KPRError(f"--out {out}: already exists (pass --overwrite to replace it)")
    if out.exists() and not (out / MANIFEST).is_file():
        raise KPRError(
            f"--out {out}: exists and is not a kpr gallery index; refusing to replace it"
        )
    if shard_size < 1:
        raise KPRError(f"shard_size: must be >= 1, got {shard_size}")
    if not images:
        raise KPRError("images: nothing to index")
    keypoints = list(keypoints) if keypoints is not None else [None] * len(images)
    if len(keypoints) != len(images):
        raise KPRError(
            f"keypoints: expected one entry per image ({len(images)}), got {len(keypoints)}"
        )
    names = gallery_names(images)
    work = out.with_name(out.name + ".partial")
    plan = _plan(signature, images, keypoints, estimator_name, shard_size)
    if (work / PLAN).is_file():
        if json.loads((work / PLAN).read_text(encoding="utf-8")) != plan:
            raise KPRError(
                f"{work}: an unfinished index of other images, keypoints or checkpoint; "
                "delete it to start over"
            )
    else:
        work.mkdir(parents=True, exist_ok=True)
        write_text_atomic(work / PLAN, json.dumps(plan))
    starts = range(0, len(images), shard_size)
    files = [f"shard-{i:05d}.safetensors" for i in range(len(starts))]
    resumed = 0
    done = [(work / f).is_file() for f in files]
    for start, finished in zip(starts, done):
        resumed += min(shard_size, len(images) - start) if finished else 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(images), initial=resumed, desc="indexing", unit="crop")
    embedded_now = 0
    for start, file, finished in zip(starts, files, done):
        if finished:
            continue
        positions = range(start, min(start + shard_size, len(images)))
        tensors, kept, skipped = _embed_shard(
            predictor, images, keypoints, positions, estimator, batch_size, on_error
        )
        metadata = {"positions": json.dumps(kept), "skipped": json.dumps(skipped)}
        with atomic_path(work / file) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        embedded_now += len(kept)
        if bar is not None:
            bar.update(len(positions))
    if bar is not None:
        bar.close()
    manifest = _manifest(work, files, names, images, signature)
    if not manifest["items"]:
        raise KPRError(
            f"none of the {len(images)} images could be embedded; nothing written to {out}"
        )
    write_text_atomic(work / MANIFEST, json.dumps(manifest, indent=1))
    (work / PLAN).unlink()
    if out.exists():
        shutil.rmtree(replace_path(work, out))
    else:
        os.rename(work, out)
    index = GalleryIndex.open(out)
    return IndexBuild(index, embedded_now, resumed, index.skipped)


def _manifest(
    work: Path,
    files: Sequence[str],
    names: Sequence[str],
    images: Sequence[Path],
    signature: ModelSignature,
) -> dict:
    items, shards, skipped = [], [], []
    for file in files:
        with safe_open(work / file, framework="pt") as f:
            meta = f.metadata()
        nbytes = (work / file).stat().st_size
        positions = json.loads(meta["positions"])
        shards.append({"file": file, "start": len(items), "rows": len(positions), "nbytes": nbytes})
        items += [
            {"name": names[p], "file": str(Path(os.path.abspath(images[p])))} for p in positions
        ]
        skipped += [{"file": str(images[p]), "reason": r} for p, r in json.loads(meta["skipped"])]
    return {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "model": asdict(signature),
        "items": items,
        "shards": shards,
        "skipped": skipped,
    }
