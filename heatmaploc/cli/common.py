"""What several subcommands share: argument types, output checks, loading a localizer
with the command's options, and the point-metrics table."""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any, Sequence

from heatmaploc.codec import REFINE_MODES, CodecConfig
from heatmaploc.tiling import TileConfig
from heatmaploc.tta import TTA_MODES


def _number(text: str, kind, what: str, ok, rule: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r}: must be {rule}")
    return value


def threshold_arg(text: str) -> float:
    """A decode threshold: a probability in [0, 1)."""
    return _number(text, float, "a number", lambda v: 0.0 <= v < 1.0, "in [0, 1)")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, float, "a number", lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _number(text, int, "an integer", lambda v: v >= 1, "an integer >= 1")


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _number(text, int, "an integer", lambda v: v >= 0, "an integer >= 0")


def writable_file(path: str | None, option: str) -> None:
    """Fail now, in one line, if ``path`` (an output file of ``option``) cannot be
    written: a folder, a missing or read-only parent folder, a read-only file."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{option} {p}: is a folder; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{option} {p}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"{option} {p}: not writable")
    _try_write_in(parent, f"{option} {p}")


def _try_write_in(folder: Path, label: str) -> None:
    """Create and remove a temporary file in ``folder``, as the atomic writes will: the
    permission bits do not tell (root, read-only mounts, special file systems)."""
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".heatmaploc-check-")
    except OSError as err:
        raise ValueError(f"{label}: cannot write in {folder} ({err.strerror})") from None
    os.close(fd)
    os.unlink(tmp)


def writable_folder(path: str | None, option: str) -> None:
    """Fail now, in one line, if ``path`` (an output folder of ``option``) cannot be
    created or written."""
    if path is None:
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{option} {p}: exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{option} {p}: cannot create the folder ({err.strerror})") from None
    if not os.access(p, os.W_OK):
        raise ValueError(f"{option} {p}: not writable")
    _try_write_in(p, f"{option} {p}")


def load_localizer(checkpoint: str | None, device: str, refine: str | None = None, tta: str | None = None,
                   args=None):
    """The checkpoint's (or the shipped) Localizer with the command's overrides; ``args``
    may carry the :func:`add_large_image_options` (``tile``, ``tile_overlap``, ``max_peaks``)."""
    from heatmaploc.api import Localizer

    onnx = getattr(args, "onnx", None)
    if onnx is not None and checkpoint is not None:
        raise ValueError("--onnx and --checkpoint exclude each other (the ONNX file carries its own codec)")
    if onnx is not None:
        if device not in ("auto", "cpu"):
            raise ValueError(f"--onnx runs on the CPU (onnxruntime); got --device {device}")
        loc = Localizer.from_onnx(onnx, tta)
    elif checkpoint in (None, "default"):
        loc = Localizer.default(device, tta)
    else:
        loc = Localizer.from_checkpoint(checkpoint, device, tta)
    loc = loc.with_codec(refine=refine) if refine in REFINE_MODES else loc
    if args is not None:
        if getattr(args, "tile", None) is not None or getattr(args, "tile_overlap", None) is not None:
            loc = loc.with_tiling(args.tile, args.tile_overlap)
        if getattr(args, "max_peaks", None) is not None:
            loc = loc.with_codec(max_peaks=args.max_peaks)
    return loc


def add_large_image_options(p) -> None:
    """``--tile``, ``--tile-overlap``, ``--max-peaks`` (and ``--onnx``, the other engine)."""
    p.add_argument("--onnx", metavar="FILE",
                   help="run the network exported by 'heatmaploc export' with onnxruntime on the CPU instead of "
                        "a checkpoint with torch (same preprocessing, tiling, TTA and decoding)")
    p.add_argument("--tile", type=nonnegative_int, metavar="PX",
                   help="images with a side above PX run in overlapping tiles of at most PX pixels, stitched and "
                        f"decoded without a peak cap (0: never tile); default: the checkpoint's, else {TileConfig().size}")
    p.add_argument("--tile-overlap", type=nonnegative_int, metavar="PX",
                   help=f"minimum overlap of neighbouring tiles (default: the checkpoint's, else {TileConfig().overlap})")
    p.add_argument("--max-peaks", type=positive_int, metavar="N",
                   help=f"most peaks kept per untiled image (default: the checkpoint's, else {CodecConfig().max_peaks}; a "
                        "warning says when it drops peaks)")


def add_tta_option(p) -> None:
    p.add_argument("--tta", choices=TTA_MODES,
                   help="average the heatmap over flips ('flip', 4 passes) or flips and quarter turns ('d4', 8 passes); "
                        "default: the checkpoint's (the shipped model: d4), else none")


def add_refine_option(p, physics: bool = False) -> None:
    """``--refine``; with ``physics`` also the blind physics refinement and its options."""
    p.add_argument("--refine", choices=REFINE_MODES + (("physics",) if physics else ()),
                   help="sub-pixel step (default: the checkpoint's: offset for models with a regression head, "
                        "else softargmax)" + ("; physics: then fit the physics estimated from each image (a wave "
                                              "field, or a point-spread map or spot image, chosen from the image), "
                                              "correcting the count (heatmaploc.physics.refine)" if physics else ""))
    if physics:
        p.add_argument("--known", metavar="KEY=VALUE", action="append", default=[],
                       help="with --refine physics: what is known of the physics (kernel=plate, observable=amplitude, "
                            "wavelength_px=14.2, damping=0.01, colormap=jet or colormap=none for raw fields; "
                            "family=wave or family=psf, with scale=db|linear and psf=PSF.npy for a power map)")
        p.add_argument("--workers", type=positive_int, default=None,
                       help="with --refine physics: processes for the refinement, shared by the images or, for one "
                            "image, by its windows (default: one per CPU)")


def physics_options(args) -> dict[str, Any] | None:
    """The ``--known`` values as the ``physics`` mapping of the API (``None`` without
    ``--refine physics``); every problem names the option."""
    if getattr(args, "refine", None) != "physics":
        if getattr(args, "known", None):
            raise ValueError("--known needs --refine physics")
        return None
    from heatmaploc.physics.known import parse_known

    return parse_known(args.known, "--known")


def print_point_table(metrics: dict, radii: Sequence[float]) -> None:
    print("| radius (px) | precision | recall | F1 | RMSE (px) | mean dist (px) | count acc | count MAE |")
    print("|---|---|---|---|---|---|---|---|")
    for r in radii:
        m = metrics[f"r{r:g}"]
        print(f"| {r:g} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['rmse']:.4f} | "
              f"{m['mean_distance']:.4f} | {m['count_accuracy']:.4f} | {m['count_mae']:.4f} |")
