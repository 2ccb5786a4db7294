"""Whether the data need a source at a point, whatever arrives there from elsewhere.

A field that satisfies the homogeneous wave equation in a disc (what reflecting edges,
a reverberant plate, sources out of reach or a smoothly varying medium send into it) is
a *regular* field there: a superposition of plane waves of the disc's wavenumber from
all directions (a Herglotz wave), which ``2 (ceil(k R) + PLANE_WAVE_MARGIN) + 1``
plane waves at fixed, equally spaced directions represent to within the noise over a
disc of radius ``R`` (the Fourier-Bessel orders up to ``k R`` plus the margin).  Only a
source in the disc makes the field singular there (the kernel's logarithmic peak, its
near field).  So a point needs a source when its disc is better explained, by BIC,
with a source near the point than by a regular field alone (:func:`source_evidence`).
No model of the rest of the image enters, and no other source is assumed in the disc
(another source there makes the disc need one): this is the test for fields that no
image-wide or windowed model explains.

Positions are ``(x, y)`` pixels (docs/design.md section 1).  Unweighted within the
disc (the noise varies little over one wavelength); the BIC is that of unknown noise
variance, ``N ln(RSS_without / RSS_with) - p ln N`` with ``p = 4`` (a position and a
complex strength).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import minimize_scalar

from heatmaploc.physics.forward import map_offsets, radial_fields
from heatmaploc.physics.kernels import FIT_TABLE_STEP, wavenumber
from heatmaploc.physics.wavefit import WaveFit
from heatmaploc.physics.wavelinear import linear_complex, linear_snapshot, plane_wave_paths

DISC_WAVELENGTHS = 1.0  # the disc's radius
PLANE_WAVE_MARGIN = 3  # Fourier-Bessel orders beyond k R that the plane waves resolve
WAVELENGTH_RANGE = (0.95, 1.05)  # each model's wavelength, as factors of the estimate
SEARCH_STEP_PX = 1.0  # the source is tried on a 3 x 3 grid of this step about the point
SOURCE_PARAMETERS = 4  # x, y, Re q, Im q
AMPLITUDE_STARTS = 6  # phase draws of an amplitude fit without a start
AMPLITUDE_ITERATIONS = 400  # alternating projections converge linearly, slowly near a field's zeros
TRIAL_ITERATIONS = 60  # for choosing among the trial positions
CONVERGED = 1e-7  # relative RSS decrease that ends the projections
MIN_SAMPLES_PER_PARAMETER = 3  # a disc (clipped by the image) with fewer pixels per parameter is not tested


@dataclass(frozen=True)
class DiscEvidence:
    """What a point's disc says.

    Attributes:
        gain: the BIC gain of a source near the point (positive: the disc needs it).
        residual_ratio: the rms residual of the regular field alone in units of the
            noise (the disc's median of ``1 / weights``); signal_ratio: the disc's
            values' standard deviation in the same units.
    """

    gain: float
    residual_ratio: float
    signal_ratio: float


def source_evidence(field: np.ndarray, weights: np.ndarray, point: np.ndarray, like: WaveFit) -> DiscEvidence | None:
    """The BIC gain of a source near ``point`` ``(2,)`` in its disc of ``field``
    ``(H, W)`` (module docstring) and how well a regular field alone explains it;
    ``weights``: ``(H, W)`` one over the noise std.  ``like``: the wave model of the
    place (kernel, observable, wavelength, damping, source size, anisotropy), e.g. a
    window's fit; each model takes its best wavelength within ``WAVELENGTH_RANGE`` of
    that one (plane waves of a slightly wrong wavelength leave a residual that a source
    would absorb).  None where the disc has too few pixels to tell."""
    h, w = field.shape
    radius = DISC_WAVELENGTHS * like.wavelength_px
    x0, y0 = (float(v) for v in point)
    r0, r1 = max(0, int(math.floor(y0 - radius))), min(h, int(math.ceil(y0 + radius)) + 1)
    c0, c1 = max(0, int(math.floor(x0 - radius))), min(w, int(math.ceil(x0 + radius)) + 1)
    ys, xs = np.arange(r0, r1, dtype=np.float64), np.arange(c0, c1, dtype=np.float64)
    gx, gy = np.meshgrid(xs - x0, ys - y0)
    disc = (gx**2 + gy**2 <= radius**2).ravel()
    orders = int(math.ceil(2.0 * math.pi * DISC_WAVELENGTHS)) + PLANE_WAVE_MARGIN  # |n| up to k R + margin
    count = 2 * orders + 1
    n = int(disc.sum())
    if n < MIN_SAMPLES_PER_PARAMETER * (2 * count + 1 + SOURCE_PARAMETERS):
        return None
    mx, my = map_offsets(like.metric, gx.ravel()[disc], gy.ravel()[disc])
    paths = plane_wave_paths(2.0 * math.pi * np.arange(count) / count, mx, my)
    data = field[r0:r1, c0:c1].ravel()[disc]

    def sources(xy: np.ndarray, wavelength: float) -> np.ndarray:
        g = radial_fields(like.kernel, xy, xs, ys, wavenumber(wavelength, like.damping), like.source_size_px,
                          table_step=FIT_TABLE_STEP, metric=like.metric)[0]
        return g[:, disc]

    def base(wavelength: float) -> np.ndarray:
        return np.exp(1j * (2.0 * math.pi / wavelength) * paths)  # (count, n)

    def profile(columns: Callable[[float], np.ndarray],
                start: np.ndarray | None) -> tuple[float, float, np.ndarray | None]:
        """The best wavelength within ``WAVELENGTH_RANGE`` of the estimate for the model
        ``columns(wavelength)``: ``(rss, wavelength, q)``; an amplitude fit warm from the
        last one."""
        state = {"q": start}

        def rss(lam: float) -> float:
            value, q = _fit(columns(lam), data, like.observable, state["q"])
            if q is not None:
                state["q"] = q
            return value

        lo, hi = (like.wavelength_px * f for f in WAVELENGTH_RANGE)
        found = minimize_scalar(rss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4 * like.wavelength_px})
        value, q = _fit(columns(found.x), data, like.observable, state["q"])
        return value, float(found.x), q

    # an amplitude fit's first profile step starts from its phase draws' best; a linear
    # fit needs no start
    start = _fit(base(like.wavelength_px), data, like.observable)[1] if like.observable == "amplitude" else None
    rss_without, lam_without, q_without = profile(base, start)
    steps = SEARCH_STEP_PX * np.array([-1.0, 0.0, 1.0])
    trials = np.array([[x0 + dx, y0 + dy] for dy in steps for dx in steps])
    warm = None if q_without is None else np.append(q_without, 0.0)
    regular = base(lam_without)
    chosen = min(trials, key=lambda t: _fit(np.vstack([regular, sources(t[None], lam_without)]), data,
                                            like.observable, warm, TRIAL_ITERATIONS)[0])

    def with_source(lam: float) -> np.ndarray:
        return np.vstack([base(lam), sources(chosen[None], lam)])

    rss_with, lam_with, q_with = profile(with_source, warm)
    if q_with is not None:  # an amplitude fit is not convex: also from its draws, and the model without
        # the source from the solution with it
        cold = _fit(with_source(lam_with), data, like.observable)
        if cold[0] < rss_with:
            rss_with, q_with = cold
        rss_without = min(rss_without, _fit(base(lam_with), data, like.observable, q_with[:-1])[0])
    rss_with = min(rss_with, rss_without)  # the models are nested
    tiny = 1e-300
    gain = n * math.log(max(rss_without, tiny) / max(rss_with, tiny)) - SOURCE_PARAMETERS * math.log(n)
    weight = float(np.median(weights[r0:r1, c0:c1].ravel()[disc]))
    values = 2 * n if np.iscomplexobj(data) else n  # a complex pixel holds two values
    spread = math.sqrt(float(np.sum(np.abs(data - data.mean()) ** 2)) / values)
    return DiscEvidence(float(gain), math.sqrt(rss_without / values) * weight, spread * weight)


def _fit(fields: np.ndarray, data: np.ndarray, observable: str, start: np.ndarray | None = None,
         iterations: int = AMPLITUDE_ITERATIONS) -> tuple[float, np.ndarray | None]:
    """RSS of the best ``obs(q @ fields) + c`` for the unit fields ``(m, n)`` and the
    data ``(n,)``, and (amplitude only) the strengths ``q``; linear for a snapshot or a
    complex field; for an amplitude, alternating projections from ``start`` when given,
    else from ``AMPLITUDE_STARTS`` phase draws (the first all in phase), the best kept."""
    if observable == "snapshot":
        return float(np.sum(linear_snapshot(fields, data, True)[2] ** 2)), None
    if observable == "complex":
        return float(np.sum(np.abs(linear_complex(fields, data, True)[2]) ** 2)), None
    m = len(fields)
    # the real rows of fields^T q in (Re q, Im q) are fixed; only the offset's column
    # c * phase changes, so each projection is two products with one factorization
    rows = np.vstack([np.hstack([fields.real.T, -fields.imag.T]), np.hstack([fields.imag.T, fields.real.T])])
    basis, upper = np.linalg.qr(rows)
    starts = [start] if start is not None else [np.ones(m, np.complex128)] + [
        np.exp(2j * np.pi * np.random.default_rng(seed).random(m)) for seed in range(AMPLITUDE_STARTS - 1)]
    best: tuple[float, np.ndarray | None] = (math.inf, None)
    for q in starts:
        q = np.asarray(q, np.complex128)
        last = math.inf
        for _ in range(iterations):
            u = q @ fields
            phase = np.exp(1j * np.angle(u))
            v = np.concatenate([phase.real, phase.imag])
            b = np.concatenate([data, data]) * v
            v_out = v - basis @ (basis.T @ v)
            b_out = b - basis @ (basis.T @ b)
            c = float(v_out @ b_out / max(float(v_out @ v_out), 1e-300))
            x = np.linalg.solve(upper, basis.T @ (b - c * v))
            q = x[:m] + 1j * x[m:]
            rss = float(np.sum((np.abs(q @ fields) + c - data) ** 2))
            if last - rss <= CONVERGED * rss:
                break
            last = rss
        if rss < best[0]:
            best = (rss, q)
    return best
