"""heatmaploc: find a variable number of point sources in 2-D field images.

Coordinates everywhere are DESIGN.md pixels: ``(x, y)``, ``x`` along columns, pixel
centres at integers (the top-left pixel spans ``[-0.5, 0.5]^2``).
"""
__version__ = "0.1.0"

from heatmaploc.codec import CodecConfig, HeatmapCodec
from heatmaploc.points import PhysicalFrame, Points

__all__ = ["__version__", "CodecConfig", "HeatmapCodec", "PhysicalFrame", "Points"]
