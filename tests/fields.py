"""Two known sources rendered by the simulator's forward model: shared by the field-fit
tests and the CLI tests of the field fit."""
import numpy as np

from heatmaploc.simulate.scene import Scene, synthesize

TRUTH = np.array([[9.3, 12.6], [22.8, 19.1]])
STRENGTHS = np.array([0.9 * np.exp(0.4j), 0.6 * np.exp(-2.0j)])


def render(kernel: str, wavelength: float, damping: float = 0.0, size: float = 0.8, shape=(32, 36),
           observable: str = "snapshot") -> np.ndarray:
    """``(H, W)`` float64 field of the two sources ``TRUTH`` (time phase 1.1)."""
    k = 2 * np.pi / wavelength
    scene = Scene(TRUTH, STRENGTHS, complex(k, k * damping), kernel, observable, time_phase=1.1, source_size=size)
    return synthesize(scene, *shape)
