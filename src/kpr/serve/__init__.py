"""Click-prompting in the browser: ``kpr serve`` (FastAPI app, JSON API, the page).

>>> from kpr.serve import ReidService, create_app                      # doctest: +SKIP
>>> app = create_app(ReidService(predictor, GalleryIndex.open("G"), signature))   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kpr.lazy import lazy_exports

_EXPORTS = {
    "ModelQueue": "kpr.serve.worker",
    "QueueFull": "kpr.serve.worker",
    "ReidService": "kpr.serve.service",
    "ServeOptions": "kpr.serve.app",
    "UploadError": "kpr.serve.uploads",
    "UploadLimits": "kpr.serve.uploads",
    "create_app": "kpr.serve.app",
    "decode_image": "kpr.serve.uploads",
}

if TYPE_CHECKING:
    from kpr.serve.app import ServeOptions, create_app
    from kpr.serve.service import ReidService
    from kpr.serve.uploads import UploadError, UploadLimits, decode_image
    from kpr.serve.worker import ModelQueue, QueueFull

__all__ = [
    "ModelQueue",
    "QueueFull",
    "ReidService",
    "ServeOptions",
    "UploadError",
    "UploadLimits",
    "create_app",
    "decode_image",
]

__getattr__, __dir__ = lazy_exports("kpr.serve", globals(), _EXPORTS)
