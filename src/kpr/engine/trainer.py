"""The training loop: P×K batches with BIPO and prompts, GiLt + part-prediction losses, SGD with the
official schedule, AMP, fixbase, gradient accumulation, DDP, TensorBoard, periodic evaluation and
resumable atomic checkpoints (``last`` every epoch, ``best`` on the best evaluated Rank-1)."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from kpr.checkpoint import build_model
from kpr.checkpoint.kpr_format import load_weights, read_kpr_checkpoint, save_kpr_checkpoint
from kpr.configuration import to_dict
from kpr.data.train_dataset import TrainBatch, collate_train
from kpr.devices import resolve_device
from kpr.engine.config import OptimConfig, TrainConfig
from kpr.engine.distributed import DistInfo, barrier, init_distributed, mean_across_ranks
from kpr.engine.evaluate import EvalResult, eval_dataset_for, evaluate, prompt_modes
from kpr.engine.schedule import set_lr, warmup_cosine_lr
from kpr.engine.train_data import (
    build_sampler,
    build_train_data,
    data_config_for,
    open_train_dataset,
)
from kpr.engine.training_state import (
    read_training_state,
    rng_state,
    set_rng_state,
    write_training_state,
)
from kpr.errors import ConfigError, KPRError
from kpr.io_utils import write_text_atomic
from kpr.losses import LossWeights, build_loss
from kpr.modeling.build import model_config
from kpr.modeling.kpr import KPR
from kpr.modeling.part_head import PartHead

if TYPE_CHECKING:
    from kpr.engine.batch_server import BatchFeed

log = logging.getLogger(__name__)


class TrainingDivergedError(KPRError):
    """The loss became NaN/inf; the last good state was saved."""


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    epochs_run: int
    last_checkpoint: Path
    best_checkpoint: Path | None
    evaluations: dict[int, dict[str, Any]]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _all_finite(state: dict[str, torch.Tensor]) -> bool:
    return all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dict → {dotted.key: leaf}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def freeze_unused_branches(model: KPR, weights: LossWeights) -> None:
    """Freeze what no loss term reaches: the background branch and the per-part BNNecks always (as
    officially, they never receive a gradient), and each branch whose loss weight is 0. A global
    head's one branch is always trained."""
    head = model.head
    if not isinstance(head, PartHead):
        return
    unused = [head.reduce_background, head.neck_background, head.neck_parts]
    if weights.id_global == 0:
        unused += [head.reduce_global, head.neck_global]
    if weights.id_foreground == 0:
        unused += [head.reduce_foreground, head.neck_foreground]
    if weights.id_concat == 0:
        unused.append(head.neck_concat)
    if weights.triplet_parts == 0 and weights.id_concat == 0:
        unused.append(head.reduce_parts)
    for module in unused:
        module.requires_grad_(False)


def build_optimizer(params: list[torch.nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD with momentum (official) or AdamW (decoupled weight decay), starting at ``min_lr``."""
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.min_lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        params, lr=cfg.min_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


class Trainer:
    """Train a KPR model from a :class:`TrainConfig` (single process or under ``torchrun``).

    ``progress`` shows a bar per epoch; ``on_batch`` is called after every training step (the
    side-by-side runner's shared progress bar, :mod:`kpr.engine.side_by_side`). ``batches``, a
    :class:`~kpr.engine.batch_server.BatchFeed`, gives the training batches built by a batch
    server instead of a loader of this trainer's own (the same batches: the server builds them
    with :func:`~kpr.engine.train_data.build_train_data` from a recipe of the same
    :func:`~kpr.engine.batch_server.batches_key`).
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        device: str | torch.device | None = None,
        progress: bool = True,
        on_batch: Callable[[], None] | None = None,
        batches: BatchFeed | None = None,
    ):
        self.config = config
        self.on_batch = on_batch
        self.device = resolve_device(device)
        self.dist: DistInfo = init_distributed(self.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        self.progress = progress and self.dist.is_main
        self.output_dir = Path(config.output_dir)
        seed_everything(config.seed)

        self.dataset = open_train_dataset(config)
        self.eval_dataset = eval_dataset_for(config.dataset, self.dataset)
        num_cameras = (
            self.dataset.num_cameras
            if config.camera_embedding and self.dataset.num_cameras > 1
            else 0
        )
        overrides = {
            "num_cameras": num_cameras,
            **config.model_overrides,
            "num_classes": self.dataset.num_train_pids,
        }
        self.model = build_model(model_config(config.model, **overrides)).to(self.device)
        self.use_cameras = self.model.camera_embedding is not None
        self.data_config = data_config_for(config, self.model.config)
        if batches is None:
            data = build_train_data(
                config, self.dataset, self.data_config, self.dist.rank, self.dist.world_size
            )
            self.sampler = data.sampler
            self.loader = DataLoader(
                data.train_set,
                batch_sampler=self.sampler,
                collate_fn=collate_train,
                num_workers=config.sampler.workers,
                persistent_workers=config.sampler.workers > 0,
                pin_memory=self.device.type == "cuda",
            )
        else:
            # The same sampler as the server's, for the epoch lengths and the resumable state;
            # a DataLoader all the same, which draws the same seed from torch's generator.
            self.sampler = build_sampler(config, self.dataset)
            self.loader = DataLoader(batches, batch_size=None)
        self.batches = batches
        freeze_unused_branches(self.model, config.loss)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(params, config.optim)
        self.loss = build_loss(self.model.config.head, config.loss)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self._ddp_frozen: bool | None = None
        self.ddp_model: torch.nn.Module = self.model
        self.start_epoch = 0
        self.best_rank1 = -1.0
        self.evaluations: dict[int, dict[str, Any]] = {}
        self.global_step = 0
        self._epoch = 0

    def _amp_dtype(self) -> torch.dtype | None:
        amp = self.config.optim.amp
        if amp == "auto":
            return torch.float16 if self.device.type == "cuda" else None
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / "checkpoints"

    def _config_document(self) -> dict[str, Any]:
        return to_dict(self.config)

    def _training_state(self, epoch: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "global_step": self.global_step,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(consumed=len(self.sampler)),
            "best_rank1": self.best_rank1,
            "rng": rng_state(),
        }

    def save(self, name: str, epoch: int) -> Path:
        """Atomically write ``checkpoints/<name>`` (weights, model config, training state)."""
        state = self._training_state(epoch)
        metadata = {
            "train_config": self._config_document(),
            "epoch": epoch,
            "evaluations": self.evaluations,
        }
        return save_kpr_checkpoint(
            self.checkpoint_dir / name,
            self.model.config,
            self.model.state_dict(),
            metadata,
            write_extra=lambda tmp: write_training_state(tmp, state),
        )

    def _save_last_good(self) -> Path | None:
        """Save the last finite weights as ``checkpoints/last_good``: the current ones if they are
        finite (the loss diverged in this forward pass), else those of ``checkpoints/last`` if they
        are; ``None`` if there is no finite state."""
        if _all_finite(self.model.state_dict()):
            return self.save("last_good", self._epoch)
        last = self.checkpoint_dir / "last"
        if not last.is_dir():
            return None
        ckpt = read_kpr_checkpoint(last)
        if not _all_finite(ckpt.state_dict):
            return None
        return save_kpr_checkpoint(
            self.checkpoint_dir / "last_good", ckpt.config, ckpt.state_dict, ckpt.metadata
        )

    def resume(self) -> None:
        """Continue from ``checkpoints/last``.

        Same config required; weights, optimizer, sampler, RNG restored.
        """
        directory = self.checkpoint_dir / "last"
        ckpt = read_kpr_checkpoint(directory)
        saved, current = (
            _flatten(ckpt.metadata.get("train_config") or {}),
            _flatten(self._config_document()),
        )
        differing = sorted(
            k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k)
        )
        if differing:
            raise ConfigError(
                f"{directory}: cannot resume, the run was made with a different config "
                f"(differs in {differing[:5]})"
            )
        load_weights(self.model, ckpt.state_dict, directory)
        state = read_training_state(directory)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])
        self.start_epoch = int(state["epoch"]) + 1
        self.global_step = int(state["global_step"])
        self.best_rank1 = float(state["best_rank1"])
        self.evaluations = {int(k): v for k, v in ckpt.metadata.get("evaluations", {}).items()}
        log.info("resumed from %s at epoch %d", directory, self.start_epoch)

    # ------------------------------------------------------------------ loop
    def _set_fixbase(self, epoch: int) -> None:
        frozen = epoch < self.config.optim.fixbase_epochs
        self.model.prompt_encoder.requires_grad_(not frozen)
        self.model.prompt_encoder.train(not frozen)
        if self.dist.enabled and frozen != self._ddp_frozen:
            # DDP fixes its set of trainable parameters when wrapping: rewrap when fixbase
            # changes it.
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = DistributedDataParallel(self.model, device_ids=device_ids)
            self._ddp_frozen = frozen

    def _step(self, batch: TrainBatch, accumulate: int, do_step: bool) -> dict[str, float]:
        batch = batch.to(self.device, non_blocking=True)
        cameras = batch.camids if self.use_cameras else None
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            out = self.ddp_model(batch.images, batch.prompts, cameras)
            loss = self.loss(out, batch.pids, batch.target_masks)
        if not torch.isfinite(loss.total):
            where = self._save_last_good() if self.dist.is_main else None
            kept = f"the last finite state is in {where}" if where else "no finite state was saved"
            raise TrainingDivergedError(
                f"loss is {loss.total.item()} at step {self.global_step}; "
                f"batch images: {list(batch.paths)[:8]}… "
                f"({kept})"
            )
        self.scaler.scale(loss.total / accumulate).backward()
        if do_step:
            if self.config.optim.max_grad_norm:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(
                    self.model.parameters(), self.config.optim.max_grad_norm
                )
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
        return {"loss": float(loss.total.detach()), **loss.components}

    def train_epoch(self, epoch: int, writer: Any) -> dict[str, float]:
        cfg = self.config.optim
        self._epoch = epoch
        self.sampler.set_epoch(epoch)
        if self.batches is not None:
            self.batches.set_epoch(epoch)
        num_batches = len(self.sampler)  # this epoch's: the count varies with the epoch's draw

        def lr_at(step: int) -> float:
            at = epoch + step / num_batches if cfg.lr_update == "step" else epoch
            return warmup_cosine_lr(at, cfg.lr, cfg.min_lr, cfg.warmup_epochs, cfg.epochs)

        lr = lr_at(0)
        self._set_fixbase(epoch)
        self.ddp_model.train()
        if epoch < cfg.fixbase_epochs:
            self.model.prompt_encoder.eval()
        batches = self.loader
        if self.progress:
            from tqdm.auto import tqdm

            batches = tqdm(
                self.loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False
            )
        totals: dict[str, float] = {}
        count, images, start = 0, 0, time.perf_counter()
        for i, batch in enumerate(batches):
            lr = lr_at(i)
            set_lr(self.optimizer, lr)
            do_step = (i + 1) % cfg.grad_accumulation == 0 or i + 1 == num_batches
            sync = (
                contextlib.nullcontext()
                if do_step or not self.dist.enabled
                else self.ddp_model.no_sync()
            )
            with sync:
                values = self._step(batch, cfg.grad_accumulation, do_step)
            self.global_step += 1
            if self.on_batch is not None:
                self.on_batch()
            count += 1
            images += len(batch.paths)
            for key, value in values.items():
                totals[key] = totals.get(key, 0.0) + value
            if writer is not None:
                for key, value in values.items():
                    writer.add_scalar(f"train/{key}", value, self.global_step)
            if self.progress:
                batches.set_postfix(
                    loss=f"{values['loss']:.3f}",
                    lr=f"{lr:.2e}",
                    img_s=f"{images / (time.perf_counter() - start):.0f}",
                )
        means = {k: mean_across_ranks(v / max(count, 1), self.dist) for k, v in totals.items()}
        means.update(lr=lr, images_per_s=images / max(time.perf_counter() - start, 1e-9))
        if writer is not None:
            writer.add_scalar("train/lr", lr, epoch)
        return means

    def run_eval(
        self, epoch: int | None, modes: list[str], vis_dir: Path | None = None
    ) -> dict[str, EvalResult]:
        ec = self.config.eval
        results = {}
        for mode in modes:
            results[mode] = evaluate(
                self.model,
                self.eval_dataset,
                prompt_mode=mode,
                batch_size=ec.batch_size,
                max_rank=ec.max_rank,
                protocol=ec.protocol,
                use_cameras=self.use_cameras,
                progress=self.progress,
                visualize=ec.visualize if vis_dir is not None else 0,
                topk_visualize=ec.topk_visualize,
                vis_dir=None if vis_dir is None else vis_dir / mode,
                rerank=ec.rerank,
            )
        return results

    def _eval_modes(self) -> list[str]:
        return list(prompt_modes(self.config.eval.prompts, self.model.config))

    def fit(self, resume: bool = False) -> TrainResult:
        if resume:
            self.resume()
        elif self.dist.is_main and (self.checkpoint_dir / "last").exists():
            raise ConfigError(
                f"{self.checkpoint_dir / 'last'} exists: continue that run with --resume "
                "(resume=True) or choose another output_dir"
            )
        writer = None
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(
                self.output_dir / "train_config.json", json.dumps(self._config_document(), indent=2)
            )
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.output_dir / "tensorboard"))
            print(self.dataset.stats_table())
        cfg = self.config
        try:
            for epoch in range(self.start_epoch, cfg.optim.epochs):
                stats = self.train_epoch(epoch, writer)
                if self.dist.is_main:
                    log.info(
                        "epoch %d/%d: %s",
                        epoch + 1,
                        cfg.optim.epochs,
                        ", ".join(f"{k} {v:.4g}" for k, v in stats.items()),
                    )
                last = epoch + 1 == cfg.optim.epochs
                every = cfg.eval.every_epochs
                if self.dist.is_main and (last or (every and (epoch + 1) % every == 0)):
                    results = self.run_eval(
                        epoch, self._eval_modes(), self.output_dir / "rankings" if last else None
                    )
                    self.evaluations[epoch] = {m: r.summary() for m, r in results.items()}
                    rank1 = next(iter(results.values())).overall.cmc[0]
                    if writer is not None:
                        for mode, r in results.items():
                            writer.add_scalar(f"eval/{mode}/rank1", float(r.overall.cmc[0]), epoch)
                            writer.add_scalar(f"eval/{mode}/mAP", float(r.overall.mAP), epoch)
                    self.save("last", epoch)
                    if rank1 > self.best_rank1:
                        self.best_rank1 = float(rank1)
                        self.save("best", epoch)
                elif self.dist.is_main:
                    self.save("last", epoch)
                barrier(self.dist)
        finally:
            if writer is not None:
                writer.close()
        if self.dist.is_main and self.evaluations:
            write_text_atomic(
                self.output_dir / "results.json",
                json.dumps(
                    {"evaluations": {str(k): v for k, v in self.evaluations.items()}}, indent=2
                ),
            )
        best = self.checkpoint_dir / "best"
        return TrainResult(
            self.output_dir,
            cfg.optim.epochs - self.start_epoch,
            self.checkpoint_dir / "last",
            best if best.exists() else None,
            self.evaluations,
        )


def results_table(results: dict[str, dict[str, Any]]) -> str:
    """Printable table of {variant: EvalResult.summary()} (Rank-1/mAP per query group)."""
    groups = sorted(
        {g for summary in results.values() for g in summary if g != "occlusion_deciles"},
        key=lambda g: (g != "all", g),
    )
    header = f"{'variant':24s}" + "".join(f"{g + ' R1':>18s}{g + ' mAP':>18s}" for g in groups)
    lines = [header, "-" * len(header)]
    for name, summary in results.items():
        cells = "".join(
            f"{100 * summary[g]['rank1']:18.1f}{100 * summary[g]['mAP']:18.1f}"
            if g in summary
            else f"{'–':>18s}{'–':>18s}"
            for g in groups
        )
        lines.append(f"{name:24s}{cells}")
    return "\n".join(lines)
