"""Fine-tuning a trained model on a small labelled folder, in one call.

``finetune_config(data, ...)`` turns a labelled dataset folder (docs/design.md section
2) and a starting checkpoint (the shipped model by default) into the run config that
:func:`heatmaploc.training.train` trains: the checkpoint's model and codec, the input
channels of the data (the first convolution is adapted), a validation share held out
when no validation folder is given (:data:`VAL_SHARE`, the rule of
:func:`heatmaploc.data.index.split_dataset`), and the small-data recipe
:data:`RECIPE` within a wall-clock budget.  Training then calibrates the decode
threshold and the sigma factor on that validation data, under the checkpoint's own
test-time augmentation, and writes ``best.pt`` for ``predict --checkpoint``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from heatmaploc.config import RunConfig, apply_overrides, config_from_dict
from heatmaploc.data.index import load_dataset, split_dataset
from heatmaploc.inference_config import CALIBRATED_FIELDS, InferenceConfig

VAL_SHARE = 0.2
DEFAULT_MINUTES = 15.0

# The small-data recipe: the whole network with the weight average, validated every 100
# steps.  The learning rate was chosen by measurement (tools/finetune_recipes.py,
# docs/benchmark/finetune/): on two kinds of field the shipped model never saw, 1e-3
# gave the best F1 at 2 px and RMSE of the three recipes tried.  The steps are a
# ceiling: the time budget ends the run and its cosine schedule.
RECIPE: dict[str, Any] = {
    "steps": 100000,
    "steps_per_epoch": 100,
    "batch_size": 16,
    "lr": 1e-3,
    "warmup_steps": 50,
    "loss": "focal",
    "ema_decay": 0.998,
    "offset_weight": 1.0,
    "sigma_weight": 0.1,
}
AUGMENT: dict[str, Any] = {"flips": True, "rot90": True, "crop_size": [128, 128]}


def data_channels(index: Any) -> int:
    """The network input channels for a validated dataset index: 1 when every image is
    single-channel, else 3 (gray images among colour ones are replicated to RGB)."""
    gray = all(len(r.shape) == 2 or r.shape[2] == 1 for r in index.records)
    return 1 if gray else 3


def finetune_config(data: str | Path, *, val: str | Path | None = None, checkpoint: str | Path = "default",
                    minutes: float = DEFAULT_MINUTES, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The run config that fine-tunes ``checkpoint`` (``"default"``: the shipped model)
    on the labelled folder ``data``.

    Args:
        val: a labelled validation folder; ``None`` holds out :data:`VAL_SHARE` of
            ``data``'s images (chosen by their file names).
        minutes: the training budget (calibration on the validation data follows it).
        overrides: dotted config values over the recipe (``{"train.lr": 1e-4}``).

    Raises:
        FileNotFoundError, ValueError: a missing or invalid dataset or checkpoint, a
            validation share too small to calibrate on, a bad override.
    """
    if not minutes > 0:
        raise ValueError(f"minutes must be > 0, got {minutes!r}")
    from heatmaploc.checkpoint import checkpoint_path, load_checkpoint  # torch: only when fine-tuning

    ckpt = load_checkpoint(checkpoint_path(checkpoint))
    index = load_dataset(data)
    inference = InferenceConfig.from_dict(ckpt.get("inference"), str(checkpoint))
    codec = {k: v for k, v in ckpt.get("codec_config", {}).items() if k not in CALIBRATED_FIELDS}
    values = {
        "model": {k: v for k, v in ckpt["model_config"].items() if k != "in_channels"},
        "codec": codec,
        "data": {"train": str(data), "val": str(val) if val is not None else None,
                 "val_share": None if val is not None else VAL_SHARE, "simulate": None,
                 "in_channels": data_channels(index), "workers": 0, "augment": dict(AUGMENT)},
        "train": {**RECIPE, "max_minutes": float(minutes), "init_from": str(checkpoint),
                  "tta": inference.tta},
    }
    source = "the fine-tuning recipe" + (" with the --set overrides" if overrides else "")
    cfg = config_from_dict(apply_overrides(values, overrides), source)
    # before any training: a validation share too small to calibrate on, or a bad --val folder
    if cfg.data.val_share is not None:
        split_dataset(index, cfg.data.val_share)
    elif cfg.data.val:
        load_dataset(cfg.data.val)
    return cfg


def finetune_arrays(start: dict[str, Any], images: Sequence[np.ndarray], points: Sequence[Any], out: str | Path,
                    val_images: Sequence[np.ndarray] | None = None, val_points: Sequence[Any] | None = None,
                    minutes: float = DEFAULT_MINUTES, overrides: dict[str, Any] | None = None,
                    progress: bool = True) -> Path:
    """Fine-tune the checkpoint contents ``start`` on images in memory (what
    :meth:`heatmaploc.api.Localizer.finetune` does): the images become dataset folders
    ``out/data/train`` (and ``out/data/val``), ``start`` is written to
    ``out/start.pt``, and :func:`finetune_config` trains from it.  ``points[i]`` are
    the ``(N_i, 2)`` pixel coordinates of ``images[i]`` (an array or anything with an
    ``xy``).  Returns the path of the calibrated ``best.pt``."""
    from heatmaploc.checkpoint import save_checkpoint
    from heatmaploc.data.io import write_dataset
    from heatmaploc.training import train

    out = Path(out)
    if any((out / name).exists() for name in ("last.pt", "best.pt")):
        raise ValueError(f"{out} already holds a run; give another out folder")

    def dataset(folder: str, images: Sequence[np.ndarray], points: Sequence[Any]) -> Path:
        images, points = list(images), list(points)
        if len(images) != len(points):
            raise ValueError(f"{len(images)} {folder} images but {len(points)} point lists")
        names = [f"{i:05d}.npy" for i in range(len(images))]
        xy = [np.asarray(getattr(p, "xy", p), dtype=np.float64).reshape(-1, 2) for p in points]
        # gray images among colour ones are replicated to RGB, as at prediction
        return write_dataset(out / "data" / folder, dict(zip(names, images)), dict(zip(names, xy)),
                             meta={"mixed_channels": True})

    train_dir = dataset("train", images, points)
    val_dir = dataset("val", val_images, val_points or []) if val_images is not None else None
    checkpoint = save_checkpoint(out / "start.pt", start)
    cfg = finetune_config(train_dir, val=val_dir, checkpoint=checkpoint, minutes=minutes,
                          overrides=dict(overrides or {}))
    return train(cfg, out, progress=progress).best_checkpoint
