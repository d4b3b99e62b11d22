"""Run by test_trainer under torchrun (2 processes, gloo).

Trains one epoch and dumps a weight digest per rank.
"""

import json
import os
from pathlib import Path

import torch.distributed as dist
from tiny_training import tiny_overrides

from kpr.engine.config import load_train_config
from kpr.engine.trainer import Trainer

out = Path(os.environ["KPR_DDP_OUT"])
config = load_train_config(
    None,
    tiny_overrides(os.environ["KPR_DDP_ROOT"], out / "run", epochs=1) + ["eval.every_epochs=0"],
)
trainer = Trainer(config, device="cpu", progress=False)
first = next(iter(trainer.sampler))
trainer.fit()
rank = dist.get_rank()
# Parameters must agree; BatchNorm running statistics are per-rank until the next forward syncs
# them.
weights = [float(p.double().sum()) for p in trainer.model.parameters()]
(out / f"rank{rank}.json").write_text(
    json.dumps(
        {
            "weights": weights,
            "batches": len(trainer.sampler),
            "first_pids": sorted({r.index for r in first}),
        }
    )
)
dist.destroy_process_group()
