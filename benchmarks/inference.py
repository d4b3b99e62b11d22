"""CPU inference throughput: kpr's default path vs the official computation, plus opt-in fast paths.

The "official" variant runs the same weights through the official graph: SOLIDER window blocks
whose qkv and output projections run on every zero-padded token (kpr runs them on the real tokens
only, an exact rewrite), multi-stage fusion as one
1×1 convolution over the concatenation of the upsampled stages (sum of stage widths, 1,920 channels
for Swin-B at full token resolution) and every branch, BNNeck and identity classifier. kpr's default
path applies each stage's slice of the 1×1 kernel at the stage's own resolution and skips what
retrieval does not use. Outputs are checked against the official variant. The fast paths are those
``precision="auto"`` chooses among (bf16 autocast, int8 dynamic quantization of the Linear layers,
ONNX Runtime float32); every result line names the machine.

    python benchmarks/inference.py  # real Swin-B / SwinV2-B + tiny, batch 1 and 32
    python benchmarks/inference.py --models tiny --batch-sizes 32
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn.functional as F
from machine import machine_facts, machine_tag

from kpr.allocator import tune_cpu_allocator
from kpr.checkpoint import create_model
from kpr.compat.model import official_window_blocks
from kpr.denormals import flush_denormals
from kpr.modeling.kpr import KPR
from kpr.modeling.linear import use_cpu_linear
from kpr.quantization import quantize_linear_int8
from kpr.retrieval.distance import l2_normalize

MODELS = {
    "solider_swin_b_384x128": (
        "kpr_solider_swin_base_384x128",
        {"num_classes": 751, "num_cameras": 6},
    ),
    "swinv2_b_256x128": ("kpr_swinv2_base_256x128", {"num_classes": 1000}),
    "tiny_128x64": ("kpr_tiny_128x64", {"num_classes": 100}),
}


def official_graph_forward(model: KPR, images: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
    """The official computation: SOLIDER blocks on every padded token, concat fusion at full
    resolution, then the full head; every Linear on PyTorch's default CPU GEMM (MKL), as the
    official code runs it."""
    with use_cpu_linear("aten"):
        with official_window_blocks(model):
            stages = model.forward_stages(images, prompts)
        size = stages[0].shape[-2:]
        upsampled = [stages[0]] + [
            F.interpolate(s, size=size, mode="bilinear", align_corners=True) for s in stages[1:]
        ]
        fusion = model.fusion
        features = F.relu(fusion.bn(fusion.proj(torch.cat(upsampled, dim=1))))
        return model.forward_head(features, full=True).embeddings


def kpr_forward(model: KPR, images: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
    return model(images, prompts).embeddings


def kpr_forward_on_mkl(model: KPR, images: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
    """kpr's graph with every Linear on MKL: what the GEMM library choice alone is worth."""
    with use_cpu_linear("aten"):
        return model(images, prompts).embeddings


def call(fn, model, images, prompts, autocast: bool) -> tuple[float, torch.Tensor]:
    """(seconds, embeddings) of one forward."""
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with torch.inference_mode(), ctx:
        start = time.perf_counter()
        out = fn(model, images, prompts)
        return time.perf_counter() - start, out.float()


def build(name: str) -> KPR:
    registered, overrides = MODELS[name]
    torch.manual_seed(0)
    model = create_model(registered, **overrides).eval()
    # Non-trivial BN statistics so outputs are not degenerate, and non-zero Linear biases as trained
    # weights have. With a fresh init's zero biases, the official graph's zero-padded tokens stay
    # zero through qkv; a padded query whose window holds only padding then sees the real tokens
    # through the -100 shift mask alone, its attention output is subnormal, and on an Intel Xeon
    # `proj` ran ×30 slower on those rows (docs/performance.md). Trained biases avoid that.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
            elif isinstance(module, torch.nn.Linear) and module.bias is not None:
                module.bias.normal_(0, 0.02)
    return model


def fast_paths(model: KPR, onnx: bool) -> list[tuple[str, object, bool]]:
    """(label, forward, autocast) of the int8 and ONNX Runtime paths (the export is untimed)."""
    int8 = quantize_linear_int8(model)
    paths = [("kpr int8 dynamic", lambda _m, x, p: int8(x, p).embeddings, False)]
    if onnx:
        from kpr.export import OnnxSession, export_onnx_bytes

        start = time.perf_counter()
        session = OnnxSession(export_onnx_bytes(model))
        print(f"  (ONNX export + session: {time.perf_counter() - start:.0f} s)", flush=True)
        paths.append(("onnxruntime fp32", lambda _m, x, p: session(x, p)[0], False))
    return paths


def run(name: str, model: KPR, extra: list, batch: int, repeats: int, compile_: bool) -> None:
    h, w = model.config.image_size
    images = torch.randn(batch, 3, h, w)
    prompts = torch.rand(batch, model.config.prompt_channels, h, w)
    variants = [
        ("official graph fp32", official_graph_forward, False),
        ("kpr fp32", kpr_forward, False),
        ("kpr fp32, MKL linears", kpr_forward_on_mkl, False),
        ("kpr bf16 autocast", kpr_forward, True),
        *extra,
    ]
    if compile_:
        variants.append(("kpr bf16 + compile", torch.compile(kpr_forward), True))
    # One warm-up call each, then interleaved rounds (A B C A B C …) and the median per path, so
    # that a transient slowdown of the shared machine hits every path alike.
    outputs = [call(fn, model, images, prompts, autocast)[1] for _, fn, autocast in variants]
    times: list[list[float]] = [[] for _ in variants]
    for _ in range(repeats):
        for i, (_, fn, autocast) in enumerate(variants):
            times[i].append(call(fn, model, images, prompts, autocast)[0])
    rates = [batch / statistics.median(t) for t in times]
    reference, base = outputs[0], rates[0]
    for (label, _, _), rate, out in zip(variants, rates, outputs):
        dev = (out - reference).abs().max().item()
        cos = F.cosine_similarity(l2_normalize(out), l2_normalize(reference), dim=-1).min().item()
        print(
            f"{name:24s} batch {batch:3d}  {label:22s} {rate:8.2f} img/s  x{rate / base:4.2f}  "
            f"max|Δemb| {dev:.2e}  min cos {cos:.5f}  {machine_tag()}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=list(MODELS), choices=list(MODELS) + ["tiny"]
    )
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile (slow warm-up)"
    )
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime path")
    parser.add_argument(
        "--keep-denormals",
        action="store_true",
        help="compute subnormal floats as the official code does (kpr's CLI flushes them); on "
        "Intel CPUs this slows the official graph's explicit attention",
    )
    args = parser.parse_args()
    # As the CLI does, first thing (the worker threads inherit it); every path of a row runs in
    # this one process.
    flushed = not args.keep_denormals and flush_denormals()
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    print(f"{machine_facts()}, subnormals {'flushed' if flushed else 'kept'}", flush=True)
    for name in ["tiny_128x64" if m == "tiny" else m for m in args.models]:
        model = build(name)
        extra = fast_paths(model, onnx=not args.no_onnx)
        for batch in args.batch_sizes:
            repeats = args.repeats if batch > 1 else 5 * args.repeats
            run(name, model, extra, batch, repeats, args.compile)


if __name__ == "__main__":
    main()
