"""Running a model on prepared samples: the device, batching by shape, and the one
inference loop that the API, evaluation and training validation share.

Outputs are per sample either the ``(K, H, W)`` float32 probability maps of a heatmap
model (``(K + 3, H, W)`` with the regression maps ``dx, dy, log sigma`` of a model
that has them; see :mod:`heatmaploc.codec`) or the :class:`~heatmaploc.points.Points`
of a point model; :func:`decode_outputs` turns either into points.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn

from heatmaploc.codec import HeatmapCodec
from heatmaploc.models import is_point_model
from heatmaploc.points import Points
from heatmaploc.tta import averaged_maps


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def batches_by_shape(shapes: Sequence[tuple], batch_size: int) -> list[list[int]]:
    """Indices of ``shapes`` grouped into batches of equal shape, in a stable order."""
    groups: dict[tuple, list[int]] = {}
    for i, shape in enumerate(shapes):
        groups.setdefault(tuple(shape), []).append(i)
    return [idx[j : j + batch_size] for idx in groups.values() for j in range(0, len(idx), batch_size)]


@torch.no_grad()
def predict_samples(model: nn.Module, samples: Sequence[dict], device: torch.device, batch_size: int = 16,
                    channels_last: bool = False, tta: str = "none") -> list[Any]:
    """Run the model on prepared samples; per sample the ``(K, H, W)`` probability map
    (float32 numpy; ``(K + 3, H, W)`` with the regression maps of a model that has
    them) for heatmap models (averaged over the test-time augmentation ``tta``, see
    :func:`heatmaploc.tta.averaged_maps`), or a :class:`Points` for point models."""
    model.eval()
    out: list[Any] = [None] * len(samples)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for idx in batches_by_shape([s["image"].shape for s in samples], batch_size):
        x = torch.stack([samples[i]["image"] for i in idx]).to(device).to(memory_format=fmt)
        if is_point_model(model):
            for i, p in zip(idx, model.to_points(model(x), tuple(x.shape[-2:]))):
                out[i] = p
        else:
            probs = averaged_maps(model, x, tta).cpu().numpy()
            for i, p in zip(idx, probs):
                out[i] = p
    return out


def decode_outputs(outputs: Sequence[Any], codec: HeatmapCodec, threshold: float | None = None) -> list[Points]:
    """Heatmaps -> points (one image at a time); point-model outputs pass through."""
    return [o if isinstance(o, Points) else codec.decode(torch.from_numpy(o)[None], threshold=threshold)[0] for o in outputs]
