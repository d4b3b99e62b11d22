"""The FastAPI app: the JSON API, the page and its static files.

=====================  ==========================================================================
``GET /``              the page (plain HTML/CSS/JS from this package: no build step, no CDN)
``POST /api/query``    multipart ``image`` + ``prompt`` (JSON :class:`Prompt`) → matches, maps
``POST /api/keypoints`` multipart ``image`` → the pose front end's :class:`Proposal`
``GET /api/keypoints/{name}`` the prompt a gallery crop was indexed with
``GET /api/gallery``   gallery names, paged (``offset``, ``limit``)
``GET /api/gallery/{name}`` one gallery crop; ``name`` is looked up in the index, never opened
``GET /api/info``      model, prompt groups and colours, limits
``GET /healthz``       liveness and queue occupancy
=====================  ==========================================================================

Errors are ``{"detail": "<what is wrong>"}`` with a 4xx status (503 when the model queue is full).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import numpy as np
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from kpr.errors import KPRError
from kpr.serve.body_limit import BodyLimit
from kpr.serve.schemas import (
    ErrorBody,
    GalleryPage,
    Health,
    Prompt,
    Proposal,
    QueryResponse,
    ServerInfo,
)
from kpr.serve.service import ReidService
from kpr.serve.uploads import FORMATS, UploadError, UploadLimits, decode_image
from kpr.serve.worker import ModelQueue, QueueFull

STATIC = Path(__file__).parent / "static"
_FORM_OVERHEAD = 64 << 10  # multipart boundaries and the prompt field, on top of the image
_SUFFIX_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    **{f".{k.lower()}": v for k, v in FORMATS.items()},
}
_HEADERS = {
    # Everything the page loads comes from this server: a CDN or inline script would be refused.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
T = TypeVar("T")
_PROMPT_HELP = "JSON: {keypoints: [[x, y, c] ×17] | null, negatives: [[[x, y, c] ×17], …]}"


@dataclass(frozen=True)
class ServeOptions:
    """Limits of one server: upload size and pixels, model queue capacity, page size."""

    uploads: UploadLimits = UploadLimits()
    queue_capacity: int = 8
    max_gallery_page: int = 500


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _validation_message(
    exc: ValidationError | RequestValidationError, field: str | None = None
) -> str:
    first = exc.errors()[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
    where = ".".join(([field] if field else []) + loc) or "request"
    return f"{where}: {first.get('msg', 'invalid')}"


def _parse_prompt(raw: str | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    if raw is None or not raw.strip():
        return None, None
    try:
        prompt = Prompt.model_validate_json(raw)
    except ValidationError as exc:
        raise UploadError(422, _validation_message(exc, "prompt")) from None
    target = None if prompt.keypoints is None else np.asarray(prompt.keypoints, dtype=np.float64)
    negatives = (
        np.asarray(prompt.negatives, dtype=np.float64).reshape(-1, 17, 3)
        if prompt.negatives
        else None
    )
    return target, negatives


def create_app(service: ReidService, options: ServeOptions = ServeOptions()) -> FastAPI:
    """The app serving ``service``; its model queue starts with the app and stops with it."""
    model_queue = ModelQueue(options.queue_capacity)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        model_queue.close()

    app = FastAPI(
        title="kpr", summary="keypoint-promptable person re-identification", lifespan=lifespan
    )
    app.state.service = service
    app.state.queue = model_queue
    errors = {status: {"model": ErrorBody} for status in (400, 404, 413, 415, 422, 501, 503)}

    async def run(job: Callable[[], T]) -> T:
        try:
            future = model_queue.submit(job)
        except QueueFull as exc:
            raise UploadError(503, f"{exc}; retry in a moment") from None
        return await asyncio.wrap_future(future)

    async def read_image(image: UploadFile) -> tuple[bytes, str | None]:
        data = await image.read(options.uploads.max_bytes + 1)
        return data, image.content_type

    @app.exception_handler(UploadError)
    async def _upload_error(_: Request, exc: UploadError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(KPRError)
    async def _kpr_error(_: Request, exc: KPRError) -> JSONResponse:
        # Bad keypoints or an unusable crop found by the predictor: the message names the field.
        return _error(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _request_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):  # noqa: ANN001, ANN202
        response = await call_next(request)
        response.headers.update(_HEADERS)
        return response

    @app.post("/api/query", response_model=QueryResponse, responses=errors)
    async def query(
        image: Annotated[UploadFile, File(description="the crop: JPEG, PNG, WebP or BMP")],
        prompt: Annotated[str | None, Form(description=_PROMPT_HELP)] = None,
        k: Annotated[
            int | None, Query(ge=1, le=100, description="matches (default: server's)")
        ] = None,
    ) -> QueryResponse:
        data, content_type = await read_image(image)
        target, negatives = _parse_prompt(prompt)

        def job() -> QueryResponse:
            rgb = decode_image(data, content_type, options.uploads)
            return service.query(rgb, target, negatives, k)

        return await run(job)

    @app.post("/api/keypoints", response_model=Proposal, responses=errors)
    async def keypoints(image: Annotated[UploadFile, File(description="the crop")]) -> Proposal:
        if service.estimator is None:
            raise UploadError(
                501, "no pose estimator on this server (install the pose extra, see docs/pose.md)"
            )
        data, content_type = await read_image(image)
        return await run(lambda: service.propose(decode_image(data, content_type, options.uploads)))

    @app.get("/api/keypoints/{name:path}", response_model=Proposal, responses=errors)
    async def stored_keypoints(name: str) -> Proposal:
        row = service.index.position(name)
        if row is None:
            raise UploadError(404, f"gallery: no item named {name!r} in the index")
        return service.stored_prompt(row)

    @app.get("/api/gallery", response_model=GalleryPage)
    async def gallery(offset: int = Query(0, ge=0), limit: int = Query(100, ge=1)) -> GalleryPage:
        limit = min(limit, options.max_gallery_page)
        names = service.index.names
        return GalleryPage(
            total=len(names), offset=offset, names=list(names[offset : offset + limit])
        )

    @app.get("/api/gallery/{name:path}", response_class=FileResponse, responses=errors)
    async def gallery_item(name: str) -> FileResponse:
        # Only names the index holds map to a file; the request's text never becomes a path.
        path = service.gallery_file(name)
        if path is None:
            raise UploadError(404, f"gallery: no item named {name!r} in the index")
        if not path.is_file():
            raise UploadError(404, f"gallery: the file of {name!r} is no longer on disk")
        media = _SUFFIX_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return FileResponse(path, media_type=media, headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/info", response_model=ServerInfo)
    async def info() -> ServerInfo:
        return service.info(options.uploads.max_bytes)

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        return Health(
            status="ok",
            gallery_size=len(service.index),
            queue_pending=model_queue.pending,
            queue_capacity=model_queue.capacity,
        )

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, max_bytes=options.uploads.max_bytes + _FORM_OVERHEAD)
    return app
