"""heatmaploc: find a variable number of point sources in 2-D field images.

Coordinates everywhere are docs/design.md pixels: ``(x, y)``, ``x`` along columns, pixel
centres at integers (the top-left pixel spans ``[-0.5, 0.5]^2``).
"""
from heatmaploc._version import __version__
from heatmaploc.codec import CodecConfig, HeatmapCodec
from heatmaploc.points import PhysicalFrame, Points


def __getattr__(name: str):
    # The API pulls in image I/O and the engines' glue; import it lazily so `import heatmaploc`
    # stays light (torch itself is imported only when a checkpoint is loaded).
    if name == "Localizer":
        from heatmaploc.api import Localizer

        return Localizer
    raise AttributeError(f"module 'heatmaploc' has no attribute {name!r}")


__all__ = ["__version__", "CodecConfig", "HeatmapCodec", "PhysicalFrame", "Points", "Localizer"]
