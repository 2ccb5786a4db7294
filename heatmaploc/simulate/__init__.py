"""Physics field generators, presets, rendering and dataset writing."""
from heatmaploc.simulate.config import PRESETS, SimConfig, get_preset
from heatmaploc.simulate.generate import SimulatedImage, simulate_image, write_dataset
from heatmaploc.simulate.scene import Scene, complex_field, sample_scene, synthesize

__all__ = [
    "PRESETS", "SimConfig", "get_preset", "SimulatedImage", "simulate_image", "write_dataset",
    "Scene", "complex_field", "sample_scene", "synthesize",
]
