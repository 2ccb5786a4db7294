"""Run configuration: dataclasses loaded from YAML, with ``section.key=value`` overrides.

One source of truth for defaults: these dataclasses.  A run's resolved config is saved
beside its checkpoints (``config.yaml``) and inside them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_args, get_type_hints

import yaml

from heatmaploc.codec import CodecConfig
from heatmaploc.data.augment import AugmentConfig
from heatmaploc.atomic import atomic_write_bytes
from heatmaploc.metrics import HEADLINE_RADIUS
from heatmaploc.tta import TTA_MODES


@dataclass(frozen=True)
class DataConfig:
    """Where training and validation images come from.

    Attributes:
        train, val: dataset folders (docs/design.md section 2).  When ``train`` is unset the
            training images are simulated on the fly from ``simulate`` (no disk).
        simulate: simulator preset for streamed training data / a simulated val set.
        simulate_overrides: ``SimConfig`` fields changed for both.
        train_seed: seed of the streamed training images (image ``i`` of step ``s``
            is ``simulate_image(cfg, train_seed, s * batch + i)``).
        val_share: with ``train`` a folder and ``val`` unset, the share of its images
            held out for validation (:func:`heatmaploc.data.index.split_dataset`: chosen by
            their file names alone; the rest train).
        val_seed, val_size: the fixed simulated validation set when ``val`` is unset.
        mix: a training mixture (used instead of ``train`` / ``simulate`` for the
            streamed training images): components ``{"share": s, "simulate": preset,
            "overrides": {...}}`` (streamed) or ``{"share": s, "folder": dataset,
            "val": dataset}`` (a simulated or labelled folder), shares summing to 1;
            sample ``g`` comes from the component drawn for ``g``
            (:class:`heatmaploc.data.sources.MixSource`).  Unless ``val`` or
            ``val_share`` is set, validation draws the same mixture from ``val_seed``,
            with each folder component's ``val`` folder (components without one are
            left out of validation and the other shares renormalized).
        in_channels: network input channels (1 or 3); images are converted by
            :mod:`heatmaploc.data.preprocess`.
        workers: DataLoader worker processes.
    """

    train: str | None = None
    val: str | None = None
    val_share: float | None = None
    simulate: str | None = "default"
    simulate_overrides: dict = field(default_factory=dict)
    train_seed: int = 1000
    val_seed: int = 999
    val_size: int = 256
    mix: tuple[dict, ...] = ()
    in_channels: int = 3
    workers: int = 1
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(crop_size=(128, 128)))

    def __post_init__(self) -> None:
        _check_ranges(self, positive=("val_size",), non_negative=("workers", "train_seed", "val_seed"))
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {self.in_channels!r}")
        _check_mix(self.mix)
        if self.val_share is not None:
            if not 0.0 < self.val_share < 1.0:
                raise ValueError(f"val_share must be in (0, 1), got {self.val_share!r}")
            if self.val or not self.train:
                raise ValueError("val_share holds out part of the train folder: set data.train, and not data.val")


@dataclass(frozen=True)
class TrainConfig:
    """Optimization.  ``steps`` is the total number of optimizer steps; an epoch is
    ``steps_per_epoch`` steps (validation + checkpoint after each).  ``init_from``
    names a checkpoint whose weights start the run (a path relative to the working
    directory, or ``default`` for the shipped model); ``--init-from`` overrides it.
    ``max_minutes`` is a wall-clock budget, summed over resumed runs and checked after
    every step (the epoch in progress then ends early, with its validation and
    checkpoint); when set, the cosine schedule follows whichever of steps and time is
    further along, so a time-budgeted run still ends at a low learning rate.  ``tta``
    is the test-time augmentation (:mod:`heatmaploc.tta`) under which the decode
    threshold is chosen after training; it is saved as the checkpoint's default
    (per-epoch validation always runs one pass).  ``offset_weight`` and
    ``sigma_weight`` weigh the regression losses (:func:`heatmaploc.losses.offset_losses`)
    of a model with a regression head against the heatmap loss.  ``amp`` trains in
    bfloat16 autocast on CUDA; ``cpu_bf16`` does the same on the CPU (a gain only on
    CPUs with native bfloat16; ``tools/profile_training.py --compare
    train.cpu_bf16=true`` measures it)."""

    steps: int = 6000
    steps_per_epoch: int = 250
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    grad_clip: float = 1.0
    loss: str = "bce"
    bce_pos_weight: float = 20.0
    focal_alpha: float = 2.0
    focal_beta: float = 4.0
    ema_decay: float | None = 0.998
    amp: bool = True
    cpu_bf16: bool = False
    channels_last: bool = True
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    val_radius: float = HEADLINE_RADIUS
    threshold_grid: tuple[float, ...] = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)
    max_minutes: float | None = None
    init_from: str | None = None
    tta: str = "none"
    offset_weight: float = 1.0
    sigma_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.offset_weight < 0 or self.sigma_weight < 0:
            raise ValueError(f"offset_weight and sigma_weight must be >= 0, got {self.offset_weight}, {self.sigma_weight}")
        if self.tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {TTA_MODES}, got {self.tta!r}")
        # lr 0 is allowed: it freezes the weights (a run that only calibrates or checks loading)
        _check_ranges(self, positive=("steps", "steps_per_epoch", "batch_size", "grad_clip", "val_radius",
                                      "max_minutes", "threads"),
                      non_negative=("lr", "weight_decay", "warmup_steps", "bce_pos_weight", "seed"))
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) or null, got {self.ema_decay!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs."""

    model: dict = field(default_factory=lambda: {"name": "heatmapnet"})
    codec: CodecConfig = field(default_factory=CodecConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MIX_KEYS = {"share", "simulate", "overrides", "folder", "val"}


def _check_mix(mix: tuple[dict, ...]) -> None:
    """``ValueError`` naming the first malformed component of a training mixture."""
    for i, component in enumerate(mix):
        where = f"mix[{i}]"
        if not isinstance(component, dict):
            raise ValueError(f"{where}: expected a mapping, got {component!r}")
        unknown = sorted(set(component) - MIX_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(MIX_KEYS)}")
        share = component.get("share")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not share > 0:
            raise ValueError(f"{where}: share must be a number > 0, got {share!r}")
        if ("simulate" in component) == ("folder" in component):
            raise ValueError(f"{where}: give either simulate (a preset) or folder (a dataset)")
        if "folder" in component and "overrides" in component:
            raise ValueError(f"{where}: overrides apply to a simulate component, not a folder")
    total = sum(c["share"] for c in mix)
    if mix and abs(total - 1.0) > 1e-6:
        raise ValueError(f"mix: shares must sum to 1, got {total:g}")


def _check_ranges(obj: Any, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = ()) -> None:
    """``ValueError`` naming the first field of ``obj`` out of its range (``None`` passes)."""
    for names, ok, rule in ((positive, lambda v: v > 0, "> 0"), (non_negative, lambda v: v >= 0, ">= 0")):
        for name in names:
            value = getattr(obj, name)
            if value is not None and not ok(value):
                raise ValueError(f"{name} must be {rule}, got {value!r}")


def _typed(cls, name: str, value: Any, where: str) -> Any:
    """``value`` checked against the type of field ``name`` of ``cls`` (ints stay ints,
    an int is taken as a float where a float is expected); ``ValueError`` naming the
    key and the value otherwise.  Containers and unions beyond ``X | None`` pass."""
    hint = get_type_hints(cls).get(name)
    args = [a for a in get_args(hint) if a is not type(None)] if get_args(hint) else [hint]
    if value is None:
        if type(None) in get_args(hint) or hint is None:
            return value
        raise ValueError(f"{_join(where, name)}: a value is required, got null")
    if len(args) != 1 or args[0] not in (int, float, bool, str):
        return value
    kind = args[0]
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    raise ValueError(f"{_join(where, name)}: expected {words[kind]}, got {value!r}")


def _build(cls, values: Any, where: str, base: Any = None):
    """``cls`` from the mapping ``values``, each key over ``base`` (default: ``cls()``).
    Nested sections start from the enclosing default's own value, so a partial section
    (``data.augment.point_crop``) keeps what the parent's default sets (the 128-pixel
    crop of ``DataConfig.augment``)."""
    if values is None:
        return base if base is not None else cls()
    if not isinstance(values, dict):
        raise ValueError(f"{where or 'top level'}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where or 'top level'}: unknown key(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    defaults = base if base is not None else cls()
    for name, value in values.items():
        current = getattr(defaults, name)
        if is_dataclass(current):
            kwargs[name] = _build(type(current), value, _join(where, name), base=current)
        elif isinstance(current, dict) and isinstance(value, dict) and "name" not in value:
            kwargs[name] = {**current, **value}  # e.g. model: {aspp: conv} keeps the name
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = _typed(cls, name, value, where)
    try:
        return replace(defaults, **kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}" if where else str(err)) from None


def _join(where: str, name: str) -> str:
    """The dotted key of ``name`` inside section ``where`` (``""``: the top level)."""
    return f"{where}.{name}" if where else name


def config_from_dict(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Map a nested dict (YAML) onto :class:`RunConfig`; unknown keys are errors, named
    with ``source`` and their dotted key (``configs/x.yaml: train.steps: ...``)."""
    try:
        return _build(RunConfig, data or {}, "")
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML file (or the defaults when ``path`` is None), then apply dotted
    overrides like ``{"train.steps": 100, "model.aspp": "conv"}``."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: invalid YAML ({err})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        source = str(path)
    if overrides:
        source += " with the --set overrides"
    return config_from_dict(apply_overrides(data, overrides), source)


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Set each dotted key of ``overrides`` (``"train.steps": 100``) in the nested
    config dict ``data`` (changed in place and returned)."""
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {dotted!r}: {key!r} is not a section")
        node[last] = value
    return data


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write ``cfg`` as YAML, atomically."""
    atomic_write_bytes(Path(path), yaml.safe_dump(to_plain(cfg.to_dict()), sort_keys=False).encode())


def to_plain(value: Any) -> Any:
    """Tuples -> lists, recursively (for YAML/JSON)."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def with_model(cfg: RunConfig, **model: Any) -> RunConfig:
    return replace(cfg, model={**cfg.model, **model})
