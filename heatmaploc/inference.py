"""Running a model on prepared samples: the device, batching by shape, and the one
torch inference loop that the API, evaluation and training validation share (torch is
imported by the functions that use it: batching and decoding serve the ONNX engine too).

Outputs follow the one output interface of :mod:`heatmaploc.models.outputs`: per
image the maps of a heatmap model or the points of a point model, each with
``decode(codec, threshold) -> Points``.
"""
from __future__ import annotations

from typing import Any, Sequence

from heatmaploc.codec import HeatmapCodec
from heatmaploc.physics.support import SUPPORT_SHARE, TRACE_SHARE, Support
from heatmaploc.points import Points


def pick_device(name: str = "auto"):
    """The ``torch.device`` of ``name``; ``"auto"``: CUDA when available, else the CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def batches_by_shape(shapes: Sequence[tuple], batch_size: int) -> list[list[int]]:
    """Indices of ``shapes`` grouped into batches of equal shape, in a stable order."""
    groups: dict[tuple, list[int]] = {}
    for i, shape in enumerate(shapes):
        groups.setdefault(tuple(shape), []).append(i)
    return [idx[j : j + batch_size] for idx in groups.values() for j in range(0, len(idx), batch_size)]


def predict_samples(model, samples: Sequence[dict], device, batch_size: int = 16,
                    channels_last: bool = False, tta: str = "none") -> list[Any]:
    """Run the model on prepared samples (``{"image": (C, H, W) tensor}``), batched by
    shape; per sample the model's output (:mod:`heatmaploc.models.outputs`: the maps of
    a heatmap model, averaged over the test-time augmentation ``tta``, or the points of
    a point model)."""
    import torch

    model.eval()
    out: list[Any] = [None] * len(samples)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    with torch.no_grad():
        for idx in batches_by_shape([s["image"].shape for s in samples], batch_size):
            x = torch.stack([samples[i]["image"] for i in idx]).to(device).to(memory_format=fmt)
            for i, o in zip(idx, model.outputs(x, tta)):
                out[i] = o
    return out


def decode_outputs(outputs: Sequence[Any], codec: HeatmapCodec, threshold: float | None = None) -> list[Points]:
    """Model outputs -> one :class:`Points` per image (``threshold`` overrides the
    codec's for heatmap outputs)."""
    return [o.decode(codec, threshold) for o in outputs]


def support_candidates(outputs: Sequence[Any], codec: HeatmapCodec, threshold: float | None = None) -> list[Support]:
    """Per image the :class:`~heatmaploc.physics.support.Support` of the physics
    refinement's additions (:func:`heatmaploc.physics.refine.refine_physics`'s
    ``candidates``): the ``(c, 2)`` heatmap peaks above ``SUPPORT_SHARE`` times the
    detection threshold (``threshold``, default the codec's) and where the heatmap
    reaches ``TRACE_SHARE`` times it.  A point model's peaks are its points, with no
    trace map."""
    level = codec.config.threshold if threshold is None else float(threshold)
    return [Support(o.decode(codec, SUPPORT_SHARE * level).xy, o.trace_mask(codec, TRACE_SHARE * level))
            for o in outputs]
