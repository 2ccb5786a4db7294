"""``heatmaploc export``: a checkpoint's network as an ONNX file for onnxruntime."""
from __future__ import annotations

from heatmaploc.cli.common import positive_int
from heatmaploc.onnx_network import DEFAULT_OPSET


def add(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint's network to ONNX (needs the onnx extra)")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="model checkpoint ('default' = the shipped model)")
    p.add_argument("out", metavar="OUT.onnx", help="ONNX file to write")
    p.add_argument("--opset", type=positive_int, default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})")
    p.add_argument("--half", action="store_true",
                   help="store the weights that float16 holds exactly as float16 (a checkpoint saved in half "
                        "precision, as the shipped one: half the file, the same numbers)")
    p.set_defaults(func=run)


def run(args) -> int:
    from heatmaploc.onnx_export import export_onnx

    path = export_onnx(args.checkpoint, args.out, args.opset, half=args.half)
    print(f"exported: {path} (dynamic batch, height and width; run it with heatmaploc predict --onnx {path} or "
          "heatmaploc.Localizer.from_onnx)")
    return 0
