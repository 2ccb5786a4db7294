"""ONNX: export a checkpoint's network, and run an exported network with onnxruntime.

Only the network goes into the ONNX file: ``(B, C, H, W)`` normalized images ->
``(B, K[+3], H, W)`` logits (and regression maps), with dynamic batch, height and width
(the padding to the encoder's stride is part of the graph).  Everything around it stays
in heatmaploc and is the same for both engines: normalization, tiling, test-time
augmentation, decoding.  The file carries what that needs as metadata
(``heatmaploc.*`` keys: codec config, inference calibration and tiling, model facts,
package version), so ``Localizer.from_onnx(path)`` needs nothing else.

Needs the ``onnx`` extra (``pip install -e '.[onnx]'``: onnx and onnxruntime).
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from heatmaploc import __version__
from heatmaploc.data.io import atomic_path
from heatmaploc.models.outputs import HeatmapModel

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18
META_PREFIX = "heatmaploc."
INPUT_NAME, OUTPUT_NAME = "image", "maps"


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise ValueError(f"ONNX support needs the '{module}' package: pip install 'heatmaploc[onnx]'") from None


def export_onnx(checkpoint: str | Path | None, out: str | Path, opset: int = DEFAULT_OPSET,
                sample_size: tuple[int, int] = (96, 128)) -> Path:
    """Write the network of ``checkpoint`` (``None``: the shipped model) to ``out``.

    The graph is traced by ``torch.onnx.export`` at ``sample_size`` with batch, height
    and width dynamic, then checked by ``onnx.checker``; written atomically (a
    temporary file renamed over ``out``).  It uses the TorchScript-based exporter: the
    ``torch.export`` one cannot yet reason about the padding arithmetic of the encoder
    stride and the attention windows with symbolic sizes (it fixes the sample's size).
    """
    from heatmaploc.api import Localizer

    _require("onnx")
    import onnx

    loc = Localizer.default("cpu") if checkpoint in (None, "default") else Localizer.from_checkpoint(checkpoint, "cpu")
    if not isinstance(loc.model, HeatmapModel):
        raise ValueError(f"{checkpoint}: only heatmap models export to ONNX (this one predicts points directly)")
    model = loc.model.float().eval()
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{out}: is a directory; give the .onnx file to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    x = torch.randn(2, loc.in_channels, *sample_size)
    axes = {0: "batch", 2: "height", 3: "width"}
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notice and tracer remarks on shape arithmetic
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes})
        proto = onnx.load(str(tmp))
        meta = metadata(loc)
        del proto.metadata_props[:]
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = META_PREFIX + key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return out


def metadata(loc) -> dict[str, str]:
    """What :meth:`heatmaploc.api.Localizer.from_onnx` needs besides the graph (JSON strings)."""
    from dataclasses import asdict

    inference = dict(loc.inference)
    inference["tiling"] = {"size": loc.tiling.size, "overlap": loc.tiling.overlap}
    inference.setdefault("tta", loc.tta)
    return {
        "version": __version__,
        "codec_config": json.dumps(asdict(loc.codec.config)),
        "inference": json.dumps(inference),
        "model": json.dumps({"in_channels": loc.in_channels, "classes": int(getattr(loc.model, "classes", 1)),
                             "regression": bool(loc.has_regression),
                             "pad_multiple": int(getattr(loc.model, "pad_multiple", 1))}),
    }


class OnnxHeatmapNet(HeatmapModel, nn.Module):
    """An exported network run by onnxruntime on the CPU, behind the heatmap-model
    interface (``forward``: ``(B, C, H, W)`` float tensor -> ``(B, K[+3], H, W)``), so
    :class:`~heatmaploc.api.Localizer` tiles, augments and decodes it as the torch model.

    Attributes:
        in_channels, classes, pad_multiple: from the file's metadata.
        config: ``.regression`` says whether the maps carry the regression channels.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        ort = _require("onnxruntime")
        onnx = _require("onnx")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX file")
        try:
            proto = onnx.load(str(self.path), load_external_data=False)
        except Exception as err:  # onnx raises protobuf's DecodeError and others for foreign bytes
            raise ValueError(f"{self.path}: not an ONNX model ({type(err).__name__})") from None
        meta = {p.key[len(META_PREFIX):]: p.value for p in proto.metadata_props if p.key.startswith(META_PREFIX)}
        missing = {"codec_config", "inference", "model"} - set(meta)
        if missing:
            raise ValueError(f"{self.path}: not exported by 'heatmaploc export' (no {', '.join(sorted(missing))} "
                             "metadata)")
        self.meta: dict[str, Any] = {k: (json.loads(v) if k != "version" else v) for k, v in meta.items()}
        facts = self.meta["model"]
        self.in_channels, self.classes = int(facts["in_channels"]), int(facts["classes"])
        self.pad_multiple = int(facts.get("pad_multiple", 1))
        self.config = SimpleNamespace(regression=bool(facts["regression"]))
        inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
        dims = [d.dim_value or None for d in inputs[0].type.tensor_type.shape.dim] if inputs else []
        if len(inputs) != 1 or len(dims) != 4 or dims[1] not in (None, self.in_channels):
            raise ValueError(f"{self.path}: expected one (B, {self.in_channels}, H, W) input, got "
                             f"{[(i.name, dims) for i in inputs]}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own errors (unsupported ops, invalid graph)
            raise ValueError(f"{self.path}: onnxruntime cannot load it ({str(err).splitlines()[0][:200]})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.out_channels = self.classes + (3 if self.config.regression else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        (out,) = self.session.run(None, {self.input_name: arr})
        if out.shape[0] != arr.shape[0] or out.shape[1] != self.out_channels or out.shape[2:] != arr.shape[2:]:
            raise ValueError(f"{self.path}: the network gave maps of shape {out.shape} for an input of shape "
                             f"{arr.shape}; expected ({arr.shape[0]}, {self.out_channels}, H, W)")
        return torch.from_numpy(out)
