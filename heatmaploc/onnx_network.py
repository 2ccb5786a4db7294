"""An exported network run by onnxruntime: no torch, no ``onnx`` package.

``heatmaploc export`` (:mod:`heatmaploc.onnx_export`, which needs torch) writes the
network alone: ``(B, C, H, W)`` normalized images -> ``(B, K[+3], H, W)`` logits (and
regression maps), with dynamic batch, height and width, and what runs around it as
metadata (``heatmaploc.*`` keys: codec config, inference calibration and tiling, model
facts, package version).  :class:`OnnxNetwork` reads both back with onnxruntime alone,
so a deployment that only predicts installs ``heatmaploc[onnx-runtime]``: test-time
augmentation (:func:`heatmaploc.tta.averaged_maps`), tiling and decoding all run in
numpy.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from heatmaploc.outputs import HeatmapOutput
from heatmaploc.shipped import EXTRA_OF_MODULE
from heatmaploc.subpixel import REGRESSION_CHANNELS
from heatmaploc.tta import averaged_maps

META_PREFIX = "heatmaploc."
META_KEYS = ("codec_config", "inference", "model")
INPUT_NAME, OUTPUT_NAME = "image", "maps"
DEFAULT_OPSET = 18  # the opset heatmaploc export writes (the shipped copy's)


def require(module: str):
    """Import ``module`` (``onnxruntime`` or ``onnx``) or raise one ``ValueError`` line
    naming the extra that installs it (:data:`heatmaploc.shipped.EXTRA_OF_MODULE`)."""
    try:
        return __import__(module)
    except ImportError:
        raise ValueError(f"ONNX support needs the '{module}' package: "
                         f"pip install 'heatmaploc[{EXTRA_OF_MODULE[module]}]'") from None


class OnnxNetwork:
    """An exported network on the CPU: ``net(x)`` maps a ``(B, C, H, W)`` float32 array
    to the ``(B, K[+3], H, W)`` float32 logits (and regression maps).

    Attributes:
        path: the ``.onnx`` file; meta: its parsed ``heatmaploc.*`` metadata.
        in_channels, classes, pad_multiple: from the metadata.
        config: ``.regression`` says whether the maps carry the regression channels.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        ort = require("onnxruntime")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX file")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own errors (foreign bytes, unsupported ops, invalid graph)
            first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            if "protobuf" in first.lower():
                raise ValueError(f"{self.path}: not an ONNX model ({first})") from None
            raise ValueError(f"{self.path}: onnxruntime cannot load it ({first})") from None
        custom = self.session.get_modelmeta().custom_metadata_map
        meta = {k[len(META_PREFIX):]: v for k, v in custom.items() if k.startswith(META_PREFIX)}
        missing = set(META_KEYS) - set(meta)
        if missing:
            raise ValueError(f"{self.path}: not exported by 'heatmaploc export' (no {', '.join(sorted(missing))} "
                             "metadata)")
        try:
            self.meta: dict[str, Any] = {k: (json.loads(v) if k != "version" else v) for k, v in meta.items()}
            facts = self.meta["model"]
            self.in_channels, self.classes = int(facts["in_channels"]), int(facts["classes"])
            self.pad_multiple = int(facts.get("pad_multiple", 1))
            self.config = SimpleNamespace(regression=bool(facts["regression"]))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{self.path}: its heatmaploc metadata is unreadable ({type(err).__name__}: {err})") from None
        inputs = self.session.get_inputs()
        dims = list(inputs[0].shape) if inputs else []
        channels_differ = len(dims) == 4 and isinstance(dims[1], int) and dims[1] != self.in_channels
        if len(inputs) != 1 or len(dims) != 4 or channels_differ:
            raise ValueError(f"{self.path}: expected one (B, {self.in_channels}, H, W) input, got "
                             f"{[(i.name, i.shape) for i in inputs]}")
        self.input_name = inputs[0].name
        self.out_channels = self.classes + (REGRESSION_CHANNELS if self.config.regression else 0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        arr = np.ascontiguousarray(x, dtype=np.float32)
        (out,) = self.session.run(None, {self.input_name: arr})
        if out.shape[0] != arr.shape[0] or out.shape[1] != self.out_channels or out.shape[2:] != arr.shape[2:]:
            raise ValueError(f"{self.path}: the network gave maps of shape {out.shape} for an input of shape "
                             f"{arr.shape}; expected ({arr.shape[0]}, {self.out_channels}, H, W)")
        return out

    def maps(self, x: np.ndarray, tta: str = "none") -> np.ndarray:
        """``(B, C, H, W)`` images -> ``(B, K[+3], H, W)`` maps averaged over ``tta``."""
        return averaged_maps(self, np.asarray(x, dtype=np.float32), tta)

    def outputs(self, x: np.ndarray, tta: str = "none") -> list[HeatmapOutput]:
        """One :class:`~heatmaploc.outputs.HeatmapOutput` per image of the batch."""
        return [HeatmapOutput(m) for m in self.maps(x, tta)]
