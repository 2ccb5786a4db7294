"""``heatmaploc info``: versions, presets; summarize a dataset or a model."""
from __future__ import annotations

import numpy as np

from heatmaploc._version import __version__


def add(sub) -> None:
    p = sub.add_parser("info", help="versions, devices, presets; summarize a dataset or a model")
    p.add_argument("--dataset", help="validate a dataset folder and summarize it")
    p.add_argument("--model", help="registry name: parameters and FLOPs")
    p.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"),
                   help="input size for FLOPs (default 256 256)")
    p.set_defaults(func=run)


def engines() -> str:
    """The engines installed here, with their versions (torch's devices and threads)."""
    from heatmaploc.shipped import has_module

    parts = []
    if has_module("torch"):
        import torch

        parts.append(f"torch {torch.__version__}  cuda {'yes' if torch.cuda.is_available() else 'no'}"
                     f"  threads {torch.get_num_threads()}")
    else:
        parts.append("torch not installed")
    if has_module("onnxruntime"):
        import onnxruntime

        parts.append(f"onnxruntime {onnxruntime.__version__}")
    return "  ".join(parts)


def run(args) -> int:
    from heatmaploc.simulate import PRESETS

    print(f"heatmaploc {__version__}  {engines()}")
    print(f"simulator presets: {', '.join(sorted(PRESETS))}")
    if args.dataset:
        from heatmaploc.data import load_dataset

        index = load_dataset(args.dataset, progress=True)
        counts = index.counts()
        shapes = sorted({r.shape for r in index.records})
        hist = np.bincount(counts)
        print(f"dataset {index.root}: {len(index)} images, {int(counts.sum())} points, "
              f"shapes {shapes[:4]}{' ...' if len(shapes) > 4 else ''}")
        print("count histogram: " + ", ".join(f"{n}:{c}" for n, c in enumerate(hist) if c))
        if index.frame is not None:
            print(f"physical frame: pixel_size {index.frame.pixel_size:g}, origin {index.frame.origin}")
    if args.model:
        from heatmaploc.models import build_model, model_complexity

        model = build_model(args.model)
        stats = model_complexity(model, tuple(args.size), in_channels=getattr(model, "in_channels", 3))
        print(f"model {args.model}: {stats['params_m']:.3f} M parameters, "
              f"{stats['gflops']:.3f} GFLOPs at {args.size[0]}x{args.size[1]}")
    return 0
