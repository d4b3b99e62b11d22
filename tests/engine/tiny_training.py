"""Overrides that shrink any recipe to a tiny model on a tiny dataset.

Shared by the tests and ddp_worker.
"""


def tiny_overrides(root, out, epochs=1):
    return [
        "model=kpr_tiny_128x64",
        (
            "model_overrides={backbone: {name: solider_swin, embed_dim: 16, depths: [1, 1, 1, 1], "
            "num_heads: [1, 1, 2, 2]}, embedding_dim: 32}"
        ),
        f"dataset.root={root}",
        "dataset.options={verbose: false}",
        "sampler={ids_per_batch: 3, instances_per_id: 2, workers: 0}",
        f"optim.epochs={epochs}",
        "optim.warmup_epochs=1",
        "optim.lr=0.01",
        "eval.visualize=0",
        "eval.batch_size=64",
        f"output_dir={out}",
    ]
