"""Checkpoints: what rebuilds a model (config + weights + codec) and what resumes a run.

Written atomically (temporary file + ``os.replace``), so an interrupt never leaves a
half-written checkpoint in place of a good one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from heatmaploc._version import __version__
from heatmaploc.config import to_plain
from heatmaploc.inference_config import CALIBRATED_FIELDS
from heatmaploc.atomic import atomic_path
from heatmaploc.shipped import SHIPPED, default_checkpoint_path

FORMAT = "heatmaploc-checkpoint"
FORMAT_VERSION = 1

def checkpoint_path(name: str | Path) -> Path:
    """``name`` as a checkpoint path: ``"default"`` is the shipped model."""
    return default_checkpoint_path() if str(name) == SHIPPED else Path(name)


def save_checkpoint(path: str | Path, payload: dict[str, Any], half: bool = False) -> Path:
    """Atomically write ``payload`` (must hold ``model_config`` and ``model_state``);
    ``half=True`` stores floating weights as float16 (half the size)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__, **payload}
    if half:
        data["model_state"] = {k: v.half() if v.is_floating_point() else v for k, v in data["model_state"].items()}
        data["stored_half"] = True
    with atomic_path(path) as tmp:
        torch.save(data, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable file, not a heatmaploc checkpoint, or a format from
            another version of the package.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise ValueError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a heatmaploc checkpoint")
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format {data.get('format_version')} was written by heatmaploc "
            f"{data.get('package_version')}; this heatmaploc {__version__} reads format {FORMAT_VERSION}"
        )
    for key in ("model_config", "model_state"):
        if key not in data:
            raise ValueError(f"{path}: checkpoint lacks {key!r}")
    if data.get("stored_half"):
        data["model_state"] = {k: v.float() if v.is_floating_point() else v for k, v in data["model_state"].items()}
    return data


NEW_HEAD_PREFIX = "regression_head."


def adapt_state_dict(state: dict[str, torch.Tensor], model: nn.Module, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Fit ``state`` to ``model`` when only input channels differ (fine-tuning a
    3-channel model on gray data or the reverse).

    A weight whose shape differs from the model's only in dim 1 (1 vs 3) is
    converted: 3 -> 1 sums the RGB filters (a gray image replicated to RGB gives the
    same response); 1 -> 3 splits the filter in three equal parts.  Any other mismatch
    raises ``ValueError`` naming the tensor.

    A model with a regression head started from a checkpoint without one (adding
    sub-pixel offsets to a trained heatmap model) keeps the head's fresh weights: its
    last conv starts at zero (:class:`heatmaploc.models.head.RegressionHead`).
    """
    target = model.state_dict()
    fresh = {k: v for k, v in target.items() if k.startswith(NEW_HEAD_PREFIX) and k not in state}
    state = {**state, **fresh}
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    if missing or unexpected:
        raise ValueError(f"{source}: weights do not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    out = {}
    for key, value in state.items():
        want = target[key].shape
        if value.shape == want:
            out[key] = value
        elif value.dim() == 4 and value.shape[0] == want[0] and value.shape[2:] == want[2:] and {value.shape[1], want[1]} == {1, 3}:
            out[key] = value.sum(1, keepdim=True) if want[1] == 1 else value.repeat(1, 3, 1, 1) / 3.0
        else:
            raise ValueError(f"{source}: tensor {key} has shape {tuple(value.shape)}, the model needs {tuple(want)}")
    return out


def adopt_model_config(asked: dict[str, Any], checkpoint_model: dict[str, Any], source: str,
                       unset: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model config of a run whose weights start from a checkpoint: the
    checkpoint's own, with what the run's config ``asked`` for on top where the weights
    can follow it.

    ``asked`` (a run config's ``model`` section) may set ``in_channels`` (the first
    convolution is adapted, :func:`adapt_state_dict`) and turn ``regression`` on for a
    checkpoint without the head (it starts at zero); any other key that differs from
    the checkpoint's is a ``ValueError`` naming it, since those weights cannot start
    another architecture.  ``asked == unset`` (a config that says nothing of the model,
    whose section holds only the default name) adopts the checkpoint's model as it is.
    """
    asked = {} if unset is not None and asked == unset else dict(asked)
    for key, value in asked.items():
        have = checkpoint_model.get(key)
        adaptable = key == "in_channels" or (key == "regression" and value and not have)
        if not adaptable and to_plain(value) != to_plain(have):
            raise ValueError(f"model.{key}={value!r} conflicts with the checkpoint {source}, whose weights are those of "
                             f"model.{key}={have!r}; drop the setting to adopt the checkpoint's model, or train "
                             "without starting from it")
    return {**checkpoint_model, **asked}


def adopt_codec_config(run_codec: dict[str, Any], checkpoint_codec: dict[str, Any],
                       defaults: dict[str, Any]) -> dict[str, Any]:
    """The codec of a run started from a checkpoint: the checkpoint's geometry and
    decoding (target width, sub-pixel mode, peak cap, ...), except where the run's
    codec differs from ``defaults`` (the :class:`~heatmaploc.codec.CodecConfig`
    defaults: what a config sets explicitly).  The decode threshold and sigma factor
    are recalibrated by the run, so they are not taken over."""
    base = {k: v for k, v in checkpoint_codec.items() if k in defaults and k not in CALIBRATED_FIELDS}
    explicit = {k: v for k, v in run_codec.items() if to_plain(v) != to_plain(defaults.get(k))}
    return {**run_codec, **base, **explicit}
