"""Time and peak memory of part-based retrieval (streaming top-k vs the official full-matrix path).

Every case runs in its own subprocess so that its peak resident memory (``ru_maxrss``, which also
sees torch's allocations) is measured in isolation. Features are random unit vectors ``[N, S, D]``
with random binary visibility (the foreground slot always visible, as in the model).

Cases per size:

- ``topk``: :func:`kpr.retrieval.topk_gallery`, the k nearest gallery items per query, never
  holding the ``[Nq, Ng]`` matrix;
- ``full``: :func:`kpr.retrieval.part_distance`, the whole ``[Nq, Ng]`` matrix computed in chunks
  (skipped when that matrix exceeds ``--full-max-gb``);
- ``official``: a re-implementation of the official evaluator's memory profile (per-slot
  ``[S, Nq, Ng]`` tensor, masked mean, ``max + 1`` sentinel) followed by a top-k on the full matrix
  (skipped when its estimated footprint exceeds ``--official-max-gb``).

Example::

    python benchmarks/retrieval.py --sizes 2000x20000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from machine import machine_facts  # noqa: E402

if TYPE_CHECKING:
    import torch

OFFICIAL_GALLERY_CHUNK = 500
GIB = 1024**3


def _parse_size(text: str) -> tuple[int, int]:
    try:
        nq, ng = (int(part) for part in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"size must look like 2000x20000, got {text!r}") from err
    if nq < 1 or ng < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return nq, ng


def _current_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _peak_rss_bytes() -> int:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _make_problem(
    nq: int, ng: int, slots: int, dim: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    tensors = []
    for n in (nq, ng):
        emb = torch.randn(n, slots, dim, generator=gen)
        emb.div_(emb.norm(dim=-1, keepdim=True))
        vis = torch.rand(n, slots, generator=gen) < 0.7
        vis[:, 0] = True
        tensors += [emb, vis]
    q, qv, g, gv = tensors
    return q, g, qv, gv


def _official_topk(
    q: torch.Tensor, g: torch.Tensor, qv: torch.Tensor, gv: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Official-style path: full per-slot matrix kept in memory, then the masked mean."""
    import torch

    q_t, g_t = q.transpose(0, 1).contiguous(), g.transpose(0, 1).contiguous()
    parts, combined = [], []
    for start in range(0, g.shape[0], OFFICIAL_GALLERY_CHUNK):
        gc = g_t[:, start : start + OFFICIAL_GALLERY_CHUNK]
        sq = q_t.pow(2).sum(-1)[:, :, None] + gc.pow(2).sum(-1)[:, None, :]
        dist = sq.baddbmm(q_t, gc.mT, alpha=-2.0).clamp_min(0.0).sqrt()
        mask = qv.t()[:, :, None] & gv[start : start + OFFICIAL_GALLERY_CHUNK].t()[:, None, :]
        count = mask.sum(0)
        mean = (dist * mask).sum(0) / count
        mean[count == 0] = -1
        dist[~mask] = -1
        parts.append(dist)
        combined.append(mean)
    body_part = torch.cat(parts, dim=2)
    del parts
    distmat = torch.cat(combined, dim=1)
    sentinel = body_part.max() + 1
    distmat[distmat == -1] = sentinel
    body_part[body_part == -1] = sentinel
    return distmat.topk(k, dim=1, largest=False)


def _worker(args: argparse.Namespace) -> None:
    import torch

    from kpr.retrieval import part_distance, topk_gallery

    if args.threads:
        torch.set_num_threads(args.threads)
    q, g, qv, gv = _make_problem(args.nq, args.ng, args.slots, args.dim, args.seed)
    baseline = _current_rss_bytes()
    start = time.perf_counter()
    chunks = {"chunk_size": args.chunk_size, "query_chunk_size": args.query_chunk_size}
    if args.worker == "topk":
        dist, idx = topk_gallery(q, g, qv, gv, args.k, **chunks)
    elif args.worker == "full":
        dist, idx = part_distance(q, g, qv, gv, **chunks).topk(args.k, dim=1, largest=False)
    else:
        dist, idx = _official_topk(q, g, qv, gv, args.k)
    elapsed = time.perf_counter() - start
    np.savez(args.out, dist=dist.numpy(), idx=idx.numpy())
    report = {
        "seconds": elapsed,
        "peak_rss_gb": _peak_rss_bytes() / GIB,
        "rss_before_gb": baseline / GIB,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(report))


def _run_case(case: str, nq: int, ng: int, args: argparse.Namespace, out: Path) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        case,
        "--nq",
        str(nq),
        "--ng",
        str(ng),
        "--out",
        str(out),
        *_shared_flags(args),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _shared_flags(args: argparse.Namespace) -> list[str]:
    return [
        "--slots",
        str(args.slots),
        "--dim",
        str(args.dim),
        "--k",
        str(args.k),
        "--chunk-size",
        str(args.chunk_size),
        "--query-chunk-size",
        str(args.query_chunk_size),
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
    ]


def _agreement(reference: Path, other: Path) -> str:
    """Distance gap and share of rows with the same neighbours once ties are put in index order."""
    rows = []
    for path in (reference, other):
        with np.load(path) as res:
            order = np.lexsort((res["idx"], res["dist"]))
            rows.append(np.take_along_axis(res["idx"], order, axis=1))
            rows.append(np.take_along_axis(res["dist"], order, axis=1))
    idx_a, dist_a, idx_b, dist_b = rows
    same_rows = float((idx_a == idx_b).all(axis=1).mean())
    return f"max |d - d_topk| {np.abs(dist_a - dist_b).max():.1e}, same neighbours {same_rows:.2%}"


def _bench(args: argparse.Namespace) -> None:
    print(
        f"S={args.slots} D={args.dim} k={args.k} chunks: gallery {args.chunk_size}, "
        f"query {args.query_chunk_size}"
    )
    columns = ("case", "seconds", "Mpairs/s", "peak GB", "RSS before")
    print(f"{'Nq x Ng':>14} " + " ".join(f"{c:>10}" for c in columns))
    for nq, ng in args.sizes:
        pairs = nq * ng
        full_gb = pairs * 4 / GIB
        official_gb = 2 * args.slots * full_gb + 3 * full_gb
        cases = ["topk"]
        if full_gb <= args.full_max_gb:
            cases.append("full")
        if official_gb <= args.official_max_gb:
            cases.append("official")
        with tempfile.TemporaryDirectory() as tmp:
            outputs = {}
            for case in cases:
                outputs[case] = Path(tmp) / f"{case}.npz"
                res = _run_case(case, nq, ng, args, outputs[case])
                if "error" in res:
                    print(f"{nq:>6}x{ng:<7} {case:>10} failed: {res['error']}")
                    outputs.pop(case)
                    continue
                print(
                    f"{nq:>6}x{ng:<7} {case:>10} {res['seconds']:>10.2f} "
                    f"{pairs / res['seconds'] / 1e6:>10.1f} {res['peak_rss_gb']:>10.2f} "
                    f"{res['rss_before_gb']:>10.2f}"
                )
            for case in ("full", "official"):
                if case in outputs and "topk" in outputs:
                    agreement = _agreement(outputs["topk"], outputs[case])
                    print(f"{'':>14} {case:>10} vs topk: {agreement}")
            skipped = [c for c in ("full", "official") if c not in cases]
            if skipped:
                print(f"{'':>14} skipped (too large): {', '.join(skipped)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: [_parse_size(part) for part in text.split(",")],
        default=[(1000, 10000)],
        help="comma-separated NqxNg sizes (default 1000x10000, under a minute)",
    )
    parser.add_argument("--slots", type=int, default=9, help="embedding slots S = 1 + K")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--query-chunk-size", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full-max-gb", type=float, default=2.0)
    parser.add_argument("--official-max-gb", type=float, default=8.0)
    parser.add_argument("--worker", choices=["topk", "full", "official"], help=argparse.SUPPRESS)
    parser.add_argument("--nq", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ng", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    print(machine_facts(), flush=True)
    if args.worker:
        _worker(args)
    else:
        _bench(args)


if __name__ == "__main__":
    main()
