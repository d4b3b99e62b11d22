"""``kpr export --checkpoint C --out model.onnx [--opset N] [--overwrite]``."""

from __future__ import annotations

import argparse

from kpr.export.format import DEFAULT_OPSET


def cmd_export(args: argparse.Namespace) -> int:
    from kpr.checkpoint import load_model
    from kpr.export.onnx_export import check_onnx_out, export_onnx

    check_onnx_out(args.out, args.overwrite)  # before reading a large checkpoint
    model = load_model(args.checkpoint)
    out = export_onnx(model, args.out, opset=args.opset, overwrite=args.overwrite)
    print(f"exported {args.checkpoint} -> {out} (opset {args.opset})")
    return 0


def add_export_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "export", help="export a checkpoint to ONNX for onnxruntime (docs/export.md)"
    )
    parser.add_argument("--checkpoint", required=True, help="official .pth.tar or kpr checkpoint")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (>= 18)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.set_defaults(func=cmd_export)
    return parser
