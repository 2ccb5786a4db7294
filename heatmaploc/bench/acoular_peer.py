"""The acoustics field's standard tools as a benchmark peer: acoular's CLEAN-SC and DAMAS
deconvolutions of the array's cross-spectral matrix.

They get what an image user does not have: the microphones' cross-spectral matrix and
the array geometry (:attr:`heatmaploc.bench.suites.Suite.csms`, ``scenes``), on the
map's own focus grid.  Units: positions in wavelengths, so the speed of sound ``C`` and
the frequency are equal (wavelength 1); true-level steering, as the simulator's maps.
The deconvolved map is a few non-zero pixels per source; a source is a local maximum
within a dynamic range of the strongest (tuned on a separate suite,
:func:`tune_dynamic_range`, as the classical baselines are), its position the
power-weighted centroid and its power the sum of the components within half a main
lobe of it.  Needs the ``acoustics`` extra (acoular).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from heatmaploc.points import Points

METHODS = ("clean-sc", "damas")
DYNAMIC_RANGE_DB = 25.0
C = 343.0  # the speed of sound; the frequency is C (wavelength 1, the simulator's unit)


def unavailable_reason() -> str | None:
    """Why the peer cannot run here (None when acoular imports)."""
    try:
        import acoular  # noqa: F401
    except ImportError as err:
        return f"acoular is not installed ({err}): pip install 'heatmaploc[acoustics]'"
    return None


def deconvolved_map(scene, csm: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    """``(H, W)`` power per pixel of ``method`` (``clean-sc`` or ``damas``) on the map's
    focus grid (:func:`heatmaploc.physics.beamform.focus_grid`), the diagonal removed."""
    import acoular as ac

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    mics = ac.MicGeom(pos_total=np.vstack([scene.mics.T, np.zeros(len(scene.mics))]))
    half_w, half_h = (width - 1) / 2 * scene.pixel, (height - 1) / 2 * scene.pixel
    grid = ac.RectGrid(x_min=-half_w, x_max=half_w, y_min=-half_h, y_max=half_h, z=scene.distance,
                       increment=scene.pixel)
    if (grid.nxsteps, grid.nysteps) != (width, height):
        raise ValueError(f"acoular's grid is {grid.nxsteps} x {grid.nysteps}, the map {width} x {height}")
    spectra = ac.PowerSpectraImport(csm=np.asarray(csm, dtype=np.complex128)[None], frequencies=np.array([C]))
    steer = ac.SteeringVector(grid=grid, mics=mics, steer_type="true level", env=ac.Environment(c=C))
    if method == "clean-sc":
        bf = ac.BeamformerCleansc(freq_data=spectra, steer=steer, r_diag=True, cached=False)
    else:
        bf = ac.BeamformerDamas(freq_data=spectra, steer=steer, r_diag=True, cached=False, n_iter=100)
    return np.asarray(bf.synthetic(C, 0), dtype=np.float64).reshape(width, height).T


def points_of_map(power: np.ndarray, radius_px: float, dynamic_range_db: float = DYNAMIC_RANGE_DB) -> Points:
    """The sources of a deconvolved ``(H, W)`` map: local maxima (within ``radius_px``)
    above ``dynamic_range_db`` below the strongest; each one's power-weighted centroid
    and summed power (``strength``) over the components within ``radius_px``."""
    power = np.where(np.isfinite(power), np.maximum(power, 0.0), 0.0)
    peak = float(power.max()) if power.size else 0.0
    if peak <= 0:
        return Points(np.zeros((0, 2)))
    r = max(1, int(round(radius_px)))
    size = 2 * r + 1
    is_max = (power == ndimage.maximum_filter(power, size=size, mode="constant")) & (
        power >= peak * 10 ** (-dynamic_range_db / 10))
    rows, cols = np.nonzero(is_max)
    yy, xx = np.mgrid[: power.shape[0], : power.shape[1]]
    xy, strength = [], []
    for y, x in zip(rows, cols):
        near = (xx - x) ** 2 + (yy - y) ** 2 <= radius_px**2
        w = np.where(near, power, 0.0)
        total = float(w.sum())
        xy.append(((w * xx).sum() / total, (w * yy).sum() / total))
        strength.append(total)
    order = np.argsort(strength)[::-1]
    strength = np.asarray(strength)[order]
    return Points(np.asarray(xy).reshape(-1, 2)[order], strength / strength.max(), strength=strength)


DYNAMIC_RANGES_DB = (10.0, 12.5, 15.0, 17.5, 20.0, 22.5, 25.0, 30.0)


def deconvolved_maps(suite, method: str, limit: int | None = None) -> tuple[list[np.ndarray], float]:
    """The first ``limit`` maps' deconvolutions and the median seconds per map."""
    import time

    cfg, maps, seconds = suite.config, [], []
    for scene, csm in list(zip(suite.scenes, suite.csms))[:limit]:
        begin = time.perf_counter()
        maps.append(deconvolved_map(scene, csm, cfg.height, cfg.width, method))
        seconds.append(time.perf_counter() - begin)
    return maps, float(np.median(seconds)) if seconds else float("nan")


def map_points(maps: list[np.ndarray], scenes, dynamic_range_db: float) -> list[Points]:
    """:func:`points_of_map` of each map, merging within half its scene's main lobe."""
    return [points_of_map(m, 0.5 * scene.mainlobe_px, dynamic_range_db) for m, scene in zip(maps, scenes)]


def tune_dynamic_range(maps: list[np.ndarray], scenes, truths, radius: float) -> tuple[float, float]:
    """The dynamic range of :data:`DYNAMIC_RANGES_DB` that maximizes pooled F1 at
    ``radius`` on a tuning suite (as the other baselines are tuned); ``(dB, F1)``."""
    from heatmaploc.metrics import point_metrics

    scored = [(point_metrics([p.xy for p in map_points(maps, scenes, dr)], truths, radius).f1, dr)
              for dr in DYNAMIC_RANGES_DB]
    f1, dr = max(scored)
    return dr, f1
