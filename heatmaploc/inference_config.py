"""How a trained network is run: the one home of a checkpoint's ``inference`` settings.

A checkpoint (``best.pt``, the shipped model) and an exported ONNX file carry the same
``inference`` mapping, read and written only here:

* ``tta``: the default test-time augmentation (:data:`heatmaploc.tta.TTA_MODES`);
* ``thresholds``, ``sigma_scales``: per augmentation mode, the decode threshold and
  the factor on the regression head's sigmas calibrated on validation data
  (:func:`heatmaploc.evaluation.calibrate_checkpoint`);
* ``tiling``: ``{"size", "overlap"}`` of tiled inference of large images
  (:class:`heatmaploc.tiling.TileConfig`).

:class:`heatmaploc.api.Localizer` holds one :class:`InferenceConfig`; the CLI's help
text quotes its defaults.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from heatmaploc.codec import HeatmapCodec
from heatmaploc.tiling import TileConfig
from heatmaploc.tta import TTA_MODES

CALIBRATED_FIELDS = ("threshold", "sigma_scale")  # the codec fields a run calibrates per test-time augmentation mode


@dataclass(frozen=True)
class InferenceConfig:
    """A network's inference settings (module docstring).

    Attributes:
        tta: default test-time augmentation mode.
        thresholds: calibrated decode threshold per mode (modes not calibrated: absent).
        sigma_scales: calibrated sigma factor per mode.
        tiling: tiled inference of images larger than ``tiling.size``.
    """

    tta: str = "none"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    sigma_scales: Mapping[str, float] = field(default_factory=dict)
    tiling: TileConfig = TileConfig()

    def __post_init__(self) -> None:
        if self.tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {TTA_MODES}, got {self.tta!r}")
        for what, values in (("thresholds", self.thresholds), ("sigma_scales", self.sigma_scales)):
            unknown = sorted(set(values) - set(TTA_MODES))
            if unknown:
                raise ValueError(f"inference {what}: unknown test-time augmentation mode(s) {unknown}")
        object.__setattr__(self, "thresholds", {k: float(v) for k, v in self.thresholds.items()})
        object.__setattr__(self, "sigma_scales", {k: float(v) for k, v in self.sigma_scales.items()})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, source: str = "checkpoint") -> "InferenceConfig":
        """The settings of a checkpoint's or ONNX file's ``inference`` mapping (defaults
        for what it lacks); a ``ValueError`` naming ``source`` when a value is wrong."""
        values = dict(values or {})
        unknown = sorted(set(values) - {"tta", "thresholds", "sigma_scales", "tiling"})
        try:
            if unknown:
                raise ValueError(f"unknown inference setting(s) {unknown}")
            tiling = TileConfig(**{k: int(v) for k, v in (values.get("tiling") or {}).items()})
            return cls(values.get("tta", "none"), dict(values.get("thresholds") or {}),
                       dict(values.get("sigma_scales") or {}), tiling)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: its inference settings do not fit this heatmaploc ({err})") from None

    def to_dict(self) -> dict[str, Any]:
        """The mapping a checkpoint or ONNX file stores (:meth:`from_dict` reads it back)."""
        return {"tta": self.tta, "thresholds": dict(self.thresholds), "sigma_scales": dict(self.sigma_scales),
                "tiling": {"size": self.tiling.size, "overlap": self.tiling.overlap}}

    def codec_for(self, codec: HeatmapCodec, mode: str | None = None) -> HeatmapCodec:
        """``codec`` with the threshold and sigma factor calibrated for ``mode`` (default
        :attr:`tta`); what was not calibrated for it stays."""
        mode = self.tta if mode is None else mode
        changes = {}
        if mode in self.thresholds:
            changes["threshold"] = self.thresholds[mode]
        if mode in self.sigma_scales:
            changes["sigma_scale"] = self.sigma_scales[mode]
        return HeatmapCodec(replace(codec.config, **changes)) if changes else codec

    def calibrated(self, mode: str, threshold: float, sigma_scale: float) -> "InferenceConfig":
        """A copy with ``mode``'s calibration set (the other modes' kept)."""
        return replace(self, thresholds={**self.thresholds, mode: threshold},
                       sigma_scales={**self.sigma_scales, mode: sigma_scale})

    def with_(self, tta: str | None = None, tile_size: int | None = None,
              tile_overlap: int | None = None) -> "InferenceConfig":
        """A copy with the default mode and tiling replaced where given."""
        return replace(self, tta=self.tta if tta is None else tta, tiling=self.tiling.with_(tile_size, tile_overlap))
