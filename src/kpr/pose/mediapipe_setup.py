"""Getting MediaPipe ready offline: import it (with its install hint) and build the Tasks bundle.

The ``mediapipe==0.10.21`` wheel is the last to ship the pose models (``pose_detection.tflite``,
``pose_landmark_full.tflite``); newer wheels download them at run time, which cannot work offline.
Its Tasks ``PoseLandmarker`` wants a ``.task`` bundle of the two models carrying TFLite image
normalisation metadata, which the shipped files lack: ``pose_landmarker_bundle`` adds it with
MediaPipe's own metadata writer, once, into a cache directory.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import warnings
from pathlib import Path
from types import ModuleType

from kpr.io_utils import atomic_path
from kpr.pose.errors import MissingExtraError

MEDIAPIPE_VERSION = "0.10.21"
INSTALL_HINT = f'pip install "kpr[pose]" && pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}'
_OPENCV_DISTRIBUTIONS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)
# Input normalisation of each model, (mean, std) on 0..255 pixels: the legacy MediaPipe graphs feed
# the detector [-1, 1] and the landmark model [0, 1].
_MODELS = {
    "pose_detector.tflite": ("modules/pose_detection/pose_detection.tflite", 127.5, 127.5),
    "pose_landmarks_detector.tflite": (
        "modules/pose_landmark/pose_landmark_full.tflite",
        0.0,
        255.0,
    ),
}


def _patch_protobuf() -> None:
    # mediapipe 0.10.21's pybind11_protobuf calls MessageFactory.GetPrototype, removed in protobuf
    # 5; kpr runs protobuf >= 6 (tensorboard needs it). GetMessageClass is its replacement.
    from google.protobuf import message_factory

    if not hasattr(message_factory.MessageFactory, "GetPrototype"):
        message_factory.MessageFactory.GetPrototype = lambda self, descriptor: (
            message_factory.GetMessageClass(descriptor)
        )


def _warn_on_opencv_clash() -> None:
    installed = []
    for dist in _OPENCV_DISTRIBUTIONS:
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        installed.append(dist)
    if len(installed) > 1:
        warnings.warn(
            f"several OpenCV distributions are installed ({', '.join(installed)}); they overwrite "
            "each other's cv2 package: keep only opencv-python-headless (install mediapipe with "
            "--no-deps)",
            stacklevel=3,
        )


def import_mediapipe() -> ModuleType:
    """``import mediapipe``, or a one-line ``MissingExtraError`` saying how to install it."""
    try:
        _patch_protobuf()
        import mediapipe
    except ImportError as exc:
        raise MissingExtraError(
            f"the MediaPipe pose backend needs the pose extra ({exc}); install it with: "
            f"{INSTALL_HINT}"
        ) from exc
    _warn_on_opencv_clash()
    return mediapipe


def default_cache_dir() -> Path:
    """``$KPR_CACHE_DIR``, else ``$XDG_CACHE_HOME/kpr``, else ``~/.cache/kpr``."""
    if os.environ.get("KPR_CACHE_DIR"):
        return Path(os.environ["KPR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kpr"


def _shipped_models(mediapipe: ModuleType) -> dict[str, bytes]:
    root = Path(mediapipe.__file__).parent
    models = {}
    for bundle_name, (relative, _, _) in _MODELS.items():
        path = root / relative
        if not path.is_file():
            raise MissingExtraError(
                f"mediapipe {mediapipe.__version__} does not ship {relative} (only "
                f"{MEDIAPIPE_VERSION} does; newer wheels download models at run time); install "
                f"it with: {INSTALL_HINT}"
            )
        models[bundle_name] = path.read_bytes()
    return models


def pose_landmarker_bundle(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ``PoseLandmarker`` ``.task`` bundle built from the wheel's models, cached.

    The file name carries a hash of the source models, so a different mediapipe wheel gets its
    own bundle; the bundle is written atomically, so concurrent builders are safe.

    Parameters
    ----------
    cache_dir : path-like, optional
        Where to keep the bundle; default ``default_cache_dir()``.
    """
    mediapipe = import_mediapipe()
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer
    from mediapipe.tasks.python.metadata.metadata_writers.model_asset_bundle_utils import (
        create_model_asset_bundle,
    )

    models = _shipped_models(mediapipe)
    digest = hashlib.sha256(b"".join(models.values())).hexdigest()[:16]
    path = Path(cache_dir or default_cache_dir()) / f"pose_landmarker_full-{digest}.task"
    if path.is_file():
        return path
    with_metadata = {}
    for bundle_name, model in models.items():
        _, mean, std = _MODELS[bundle_name]
        writer = metadata_writer.MetadataWriter.create(bytearray(model))
        content, _ = writer.add_general_info(bundle_name).add_image_input([mean], [std]).populate()
        with_metadata[bundle_name] = bytes(content)
    with atomic_path(path) as tmp:
        create_model_asset_bundle(with_metadata, os.fspath(tmp))
    return path
