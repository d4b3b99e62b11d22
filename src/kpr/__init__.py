"""kpr: keypoint-promptable person re-identification.

The public API (imported lazily, so ``import kpr`` and the CLI stay fast)::

    import kpr
    predictor = kpr.KPRPredictor.from_pretrained("model.pth.tar")   # or kpr.load_model(path)
    model = kpr.create_model("kpr_tiny_128x64")  # registered configs: kpr.list_models()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kpr.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "KPR": "kpr.modeling",
    "KPRConfig": "kpr.modeling",
    "BackboneConfig": "kpr.modeling",
    "create_model": "kpr.checkpoint",
    "list_models": "kpr.modeling",
    "load_model": "kpr.checkpoint",
    "save_model": "kpr.checkpoint",
    "load_checkpoint": "kpr.checkpoint",
    "KPRPredictor": "kpr.predictor",
    "Embeddings": "kpr.predictor",
    "Skeletons": "kpr.keypoints",
    "read_keypoints_file": "kpr.keypoints",
    "write_keypoints_file": "kpr.keypoints",
    "part_distance": "kpr.retrieval",
    "read_embeddings": "kpr.embeddings_file",
    "KPRError": "kpr.errors",
}

__all__ = [
    "KPR",
    "BackboneConfig",
    "Embeddings",
    "KPRConfig",
    "KPRError",
    "KPRPredictor",
    "Skeletons",
    "__version__",
    "create_model",
    "list_models",
    "load_checkpoint",
    "load_model",
    "part_distance",
    "read_embeddings",
    "read_keypoints_file",
    "save_model",
    "write_keypoints_file",
]

if TYPE_CHECKING:
    from kpr.checkpoint import create_model, load_checkpoint, load_model, save_model
    from kpr.embeddings_file import read_embeddings
    from kpr.errors import KPRError
    from kpr.keypoints import Skeletons, read_keypoints_file, write_keypoints_file
    from kpr.modeling import KPR, BackboneConfig, KPRConfig, list_models
    from kpr.predictor import Embeddings, KPRPredictor
    from kpr.retrieval import part_distance


__getattr__, __dir__ = lazy_exports("kpr", globals(), _EXPORTS)
