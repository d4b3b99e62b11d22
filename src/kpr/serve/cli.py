"""``kpr index``, ``kpr search`` and ``kpr serve``: embed a gallery once, query it, serve it."""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import socket
import sys
from pathlib import Path

from kpr.errors import KPRError


def add_serve_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``index``, ``search`` and ``serve`` on the ``kpr`` subcommand group."""
    from kpr.cli import _add_model_options, _add_on_error, _add_overwrite

    index = subparsers.add_parser(
        "index",
        help="embed a gallery once into an index directory (safetensors + JSON)",
        description="Embed gallery crops into an index directory G (safetensors shards and a JSON "
        "manifest recording the checkpoint). Resumable: run the same command again after an "
        "interruption and it carries on; G appears only once it is complete.",
    )
    index.add_argument("--images", nargs="+", required=True, help="image files and/or directories")
    index.add_argument(
        "--keypoints", help="directory of keypoint JSON files, or 'auto' (pose estimator)"
    )
    index.add_argument(
        "--estimator",
        default=None,
        help="pose estimator for crops without a keypoint file (--keypoints auto: mediapipe)",
    )
    index.add_argument("--out", required=True, help="index directory to create")
    index.add_argument(
        "--shard-size", type=int, default=1024, help="crops per shard (the resume unit)"
    )
    _add_on_error(index)
    _add_model_options(index)
    _add_overwrite(index, "an existing index at --out")
    index.set_defaults(func=cmd_index)

    search = subparsers.add_parser(
        "search", help="the top-k gallery matches of query crops in an index"
    )
    search.add_argument("--index", required=True, help="index directory made by kpr index")
    search.add_argument(
        "--images", nargs="+", required=True, help="query image files and/or directories"
    )
    search.add_argument(
        "--keypoints", help="directory of keypoint JSON files, or 'auto' (pose estimator)"
    )
    search.add_argument(
        "--estimator", default=None, help="pose estimator for queries without a keypoint file"
    )
    search.add_argument("--top", type=int, default=10, help="matches per query (default 10)")
    search.add_argument("--out", help="also write the matches to this .json file")
    _add_on_error(search)
    _add_model_options(search)
    for action in search._actions:
        if action.dest == "checkpoint":
            action.required = False
            action.help = (
                "default: the checkpoint the index records (it must have the same weights)"
            )
    _add_overwrite(search, "an existing --out file")
    search.set_defaults(func=cmd_search)

    serve = subparsers.add_parser(
        "serve",
        help="the click-prompting page and JSON API for an index",
        description="Serve the page and JSON API on http://HOST:PORT/.",
    )
    serve.add_argument(
        "--index", required=True, help="index directory made by kpr index with this checkpoint"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--top-k", type=int, default=10, help="matches per query (default 10)")
    serve.add_argument(
        "--estimator",
        default="mediapipe",
        help="pose estimator proposing keypoints, or 'none' (default mediapipe if installed)",
    )
    serve.add_argument(
        "--max-upload-mb", type=float, default=8.0, help="largest accepted crop file (default 8)"
    )
    serve.add_argument(
        "--max-pixels", type=int, default=16_000_000, help="largest accepted crop (default 16 Mpx)"
    )
    serve.add_argument(
        "--queue",
        type=int,
        default=8,
        help="requests waiting for the model beyond which the server answers 503 (default 8)",
    )
    _add_model_options(serve, batch_size=None)
    serve.set_defaults(func=cmd_serve)


def _query_prompts(images: list[Path], args: argparse.Namespace) -> list:
    from kpr.cli import _estimate_missing, _keypoints_for

    return _estimate_missing(images, _keypoints_for(images, args.keypoints), args)


def cmd_index(args: argparse.Namespace) -> int:
    from kpr.cli import _keypoints_for, _predictor, collect_images, estimator_name, skip_note
    from kpr.retrieval.index import ModelSignature, build_index

    images = collect_images(args.images)
    predictor = _predictor(args)
    name = estimator_name(args)
    estimator = None
    if name:
        from kpr.pose import create_estimator

        estimator = create_estimator(name)
    result = build_index(
        predictor,
        images,
        args.out,
        signature=ModelSignature.of(predictor, args.checkpoint),
        keypoints=_keypoints_for(images, args.keypoints),
        estimator=estimator,
        estimator_name=name,
        shard_size=args.shard_size,
        batch_size=args.batch_size,
        on_error="skip" if args.on_error == "skip" else "raise",
        overwrite=args.overwrite,
        progress=True,
    )
    for file, reason in result.skipped:
        print(skip_note("index", file, reason), file=sys.stderr)
    resumed = f" ({result.resumed} from an interrupted run)" if result.resumed else ""
    skipped = f", {len(result.skipped)} skipped" if result.skipped else ""
    print(f"indexed {len(result.index)} crops{resumed}{skipped} -> {result.index.path}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from kpr.cli import _output_file, _predictor, collect_images, skip_note
    from kpr.retrieval.index import GalleryIndex, ModelSignature

    out = _output_file(args.out, args.overwrite, ".json") if args.out else None
    if args.top < 1:
        raise KPRError(f"--top: must be >= 1, got {args.top}")
    index = GalleryIndex.open(args.index)
    checkpoint = args.checkpoint = args.checkpoint or index.signature.checkpoint
    predictor = _predictor(args)
    index.signature.check_matches(ModelSignature.of(predictor, checkpoint), index.path)
    images = collect_images(args.images)
    prompts = _query_prompts(images, args)
    results = []
    for chunk in predictor.embed_iter(
        images,
        prompts,
        batch_size=args.batch_size,
        on_error="skip" if args.on_error == "skip" else "raise",
    ):
        for position, reason in chunk.skipped:
            print(skip_note("search", images[position], reason), file=sys.stderr)
        if chunk.embeddings is None:
            continue
        found = index.search(chunk.embeddings, args.top)
        for row, position in enumerate(chunk.indices):
            matches = [
                {
                    "rank": r + 1,
                    "name": index.names[i],
                    "file": str(index.files[i]),
                    "distance": d if math.isfinite(d) else None,
                }
                for r, (d, i) in enumerate(
                    zip(found.distances[row].tolist(), found.indices[row].tolist())
                )
            ]
            results.append(
                {
                    "query": str(images[position]),
                    "prompted": bool(chunk.embeddings.prompted[row]),
                    "matches": matches,
                }
            )
    for result in results:
        tag = "" if result["prompted"] else "  (no prompt)"
        print(f"{result['query']}{tag}")
        for m in result["matches"]:
            shown = "—" if m["distance"] is None else f"{m['distance']:.4f}"
            print(f"  {m['rank']:>3}  {shown:>8}  {m['name']}")
    if out is not None:
        from kpr.io_utils import write_text_atomic

        write_text_atomic(
            out,
            json.dumps(
                {"index": str(index.path), "checkpoint": str(checkpoint), "results": results},
                indent=1,
            ),
        )
        print(f"matches -> {out}")
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from kpr.cli import _predictor
    from kpr.retrieval.index import GalleryIndex, ModelSignature
    from kpr.serve.app import ServeOptions, create_app
    from kpr.serve.service import ReidService
    from kpr.serve.uploads import UploadLimits

    if args.queue < 1 or args.top_k < 1 or args.max_upload_mb <= 0 or args.max_pixels < 1:
        raise KPRError("--queue, --top-k, --max-upload-mb and --max-pixels must be positive")
    listening = _listen(args.host, args.port)  # before the model loads: a taken port fails fast
    with listening:
        index = GalleryIndex.open(args.index)
        predictor = _predictor(args)
        service = ReidService(
            predictor,
            index,
            ModelSignature.of(predictor, args.checkpoint),
            estimator=_estimator(args.estimator),
            top_k=args.top_k,
        )
        options = ServeOptions(
            UploadLimits(int(args.max_upload_mb * (1 << 20)), args.max_pixels), args.queue
        )
        app = create_app(service, options)
        if not _is_loopback(args.host):
            print(
                f"kpr serve: warning: binding {args.host}: anyone who can reach this address can "
                "query the gallery",
                file=sys.stderr,
            )
        port = listening.getsockname()[1]
        print(
            f"kpr serve: {len(index)} gallery crops; open http://{args.host}:{port}/",
            file=sys.stderr,
        )
        server = uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False))
        server.run(sockets=[listening])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), or a one-line error naming them (uvicorn logged a bind
    failure as several lines, and a port out of range was an internal error)."""
    if not 0 <= port <= 65535:
        raise KPRError(f"--port: expected 0..65535, got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise KPRError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    listening = socket.socket(family, kind, proto)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
    except OSError as exc:
        listening.close()
        raise KPRError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror})"
        ) from None
    return listening


def _estimator(name: str) -> object | None:
    if name == "none":
        return None
    from kpr.pose import MissingExtraError, create_estimator

    try:
        return create_estimator(name)
    except MissingExtraError as exc:
        print(f"kpr serve: warning: no keypoint proposals ({exc})", file=sys.stderr)
        return None
