"""ONNX export of a checkpoint's network (needs torch; running the file does not:
:mod:`heatmaploc.onnx_network`).

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

import torch

from heatmaploc._version import __version__
from heatmaploc.atomic import atomic_path
from heatmaploc.models.outputs import HeatmapModel
from heatmaploc.onnx_network import DEFAULT_OPSET, INPUT_NAME, META_PREFIX, OUTPUT_NAME, require

log = logging.getLogger(__name__)


def export_onnx(checkpoint: str | Path | None, out: str | Path, opset: int = DEFAULT_OPSET,
                sample_size: tuple[int, int] = (96, 128), half: bool = False) -> Path:
    """Write the network of ``checkpoint`` (``None``: the shipped model) to ``out``.

    The graph is traced by ``torch.onnx.export`` at ``sample_size`` with batch, height
    and width dynamic, then checked by ``onnx.checker``; written atomically (a
    temporary file renamed over ``out``).  ``half``: weights that float16 holds exactly
    (all of a checkpoint saved in half precision, as the shipped one) are stored as
    float16 and cast back in the graph (:func:`store_exact_halves`): half the file, the
    same numbers.  It uses the TorchScript-based exporter: the
    ``torch.export`` one cannot yet reason about the padding arithmetic of the encoder
    stride and the attention windows with symbolic sizes (it fixes the sample's size).
    """
    from heatmaploc.api import Localizer
    from heatmaploc.checkpoint import checkpoint_path
    from heatmaploc.shipped import SHIPPED

    require("onnx")
    import onnx

    loc = Localizer.from_checkpoint(checkpoint_path(SHIPPED if checkpoint is None else checkpoint), "cpu")
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
            # half: batch norms stay unfolded (folded weights are no longer float16-exact;
            # onnxruntime folds them when it loads the file)
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
                              do_constant_folding=not half)
        proto = onnx.load(str(tmp))
        meta = metadata(loc)
        del proto.metadata_props[:]
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = META_PREFIX + key, value
        if half:
            store_exact_halves(proto)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return out


def store_exact_halves(proto) -> int:
    """Store each float32 initializer whose values float16 holds exactly as float16,
    with a ``Cast`` back to float32 in front of the graph (onnxruntime folds it when
    the session loads); returns how many were converted."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    kept, casts = [], []
    for init in graph.initializer:
        values = numpy_helper.to_array(init) if init.data_type == TensorProto.FLOAT else None
        if values is not None and values.size > 1 and np.array_equal(values.astype(np.float16).astype(np.float32), values):
            stored = numpy_helper.from_array(values.astype(np.float16), f"{init.name}__float16")
            casts.append(helper.make_node("Cast", [stored.name], [init.name], to=TensorProto.FLOAT))
            kept.append(stored)
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return len(casts)


def metadata(loc) -> dict[str, str]:
    """What :meth:`heatmaploc.api.Localizer.from_onnx` needs besides the graph (JSON strings)."""
    from dataclasses import asdict

    return {
        "version": __version__,
        "codec_config": json.dumps(asdict(loc.codec.config)),
        "inference": json.dumps(loc.inference.to_dict()),
        "model": json.dumps({"in_channels": loc.in_channels, "classes": int(getattr(loc.model, "classes", 1)),
                             "regression": bool(loc.has_regression),
                             "pad_multiple": int(getattr(loc.model, "pad_multiple", 1))}),
    }
