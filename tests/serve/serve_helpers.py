"""Shared by the serve tests: a tiny random model, synthetic crops, and a live uvicorn server."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import uvicorn
from PIL import Image

import kpr
from kpr.keypoints.io import read_keypoints_file


def make_checkpoint(directory: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    return kpr.save_model(kpr.create_model("kpr_tiny_128x64"), directory)


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def prompt_field(keypoint_file: Path | None, swap: bool = False) -> str:
    """The ``prompt`` form field from an official keypoint file; ``swap``: the first other person
    becomes the target and the target a negative (the prompt points at the wrong person)."""
    if keypoint_file is None:
        return json.dumps({"keypoints": None, "negatives": []})
    skeletons = read_keypoints_file(keypoint_file)
    target, negatives = skeletons.target.tolist(), skeletons.negatives.tolist()
    if swap:
        target, negatives = negatives[0], [target, *negatives[1:]]
    return json.dumps({"keypoints": target, "negatives": negatives})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:  # noqa: ANN001
    """Serve ``app`` with uvicorn on a free localhost port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
