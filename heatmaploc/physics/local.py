"""Local physics: each source, or group of sources, fitted in a window of its own.

Near a source, a heterogeneous medium, an orthotropic plate, a reflecting edge or a
finite source all look like the homogeneous model with *local* parameters, and what
arrives from farther away looks like a few plane waves.  So every window fits

    f(p) = obs( sum_j q_j G(k r_j(p)) + sum_m b_m exp(i Re(k) e_m . (p - o)) ) + c

on the pixels within ``WINDOW_WAVELENGTHS`` wavelengths of its sources, with its own
complex wavenumber (wavelength and damping), source size, positions, strengths and
plane-wave amplitudes (:func:`heatmaploc.physics.wavefit.fit_wave` with
``PlaneWaves``).  The kernel, the observable, the colormap and the noise map are the
image's (:mod:`heatmaploc.physics.blind` estimates them once).

**Layout** (:func:`heatmaploc.physics.windows.window_layout`): sources closer than
``GROUP_WAVELENGTHS`` wavelengths form a group (connected components of that graph); each group is one
window, the bounding box of its sources grown by the radius; a source of another group
inside the window is fitted too (it shapes the window's pixels) but reported by its own
window only, so every source is reported once.

**Decisions, per source** (docs/design.md section 5d):

* a fitted position replaces the network's only where the window's weighted residual
  is down to the noise (rms ``<= ACCEPT_RATIO`` in units of the model-free noise) and
  the move is consistent with the combined uncertainty,
  ``|d|^2 / (sigma_net^2 + sigma_fit^2) <= MOVE_CHI2`` (chi-square, 2 degrees of
  freedom, 0.999);
* a network point is removed only where the window without it is down to the noise
  too and its BIC is lower, or where the window is not down to the noise and a regular
  field explains the point's disc as well by BIC
  (:func:`heatmaploc.physics.regularfield.source_evidence`: no model of anything
  outside the disc);
* a source is added only at a *candidate* (a peak of the network's heatmap above a
  floor, passed in by the caller) where the window with it is down to the noise, its
  BIC is lower than without it and the window without it is not down to the noise:
  a wrong model elsewhere never adds a source, and an empty region has no candidate.

Everything else keeps the network's point and sigma.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from scipy.spatial import cKDTree
from tqdm import tqdm

from heatmaploc.physics.forward import map_offsets, radial_fields
from heatmaploc.physics.kernels import FIT_TABLE_STEP
from heatmaploc.physics.observation import in_view
from heatmaploc.physics.regularfield import source_evidence
from heatmaploc.physics.wavefit import DAMPING_MAX, SOURCE_SIZE_RANGE, WaveFit, fit_wave, warm_strengths
from heatmaploc.physics.waveproblem import FitOptions, Hypothesis, PlaneWaves
from heatmaploc.physics.wavelinear import plane_wave_paths
from heatmaploc.physics.windows import NEIGHBOUR_WAVELENGTHS, Window, box, box_distance, window_layout, window_radius
from heatmaploc.processes import bounded_map, single_threaded_pool

log = logging.getLogger(__name__)

ACCEPT_RATIO = 1.15  # window residual rms over the model-free noise that counts as "down to the noise"
CORE_WAVELENGTHS = 0.35  # core half-width around each source: its position, the rest of the window held
MIN_CORE_PX = 3.0
MODEL_TOLERANCE = 0.1  # the share of a window's signal rms a local model may leave unexplained beyond the noise
PLANE_WAVES = 2  # plane waves (free directions) of what arrives from outside a window
MOVE_CHI2 = 13.8  # chi-square with 2 degrees of freedom at 0.999
SPREAD_CHI2 = 5.99  # chi-square with 2 degrees of freedom at 0.95: a core move beyond the noise (model_spread)
LOCAL_WAVELENGTH_RANGE = (0.8, 1.25)  # a window's wavelength, as factors of the image's
PINNED = 0.98  # a fitted value this close to its upper bound is pinned there
CANDIDATE_CLEARANCE_PX = 2.0  # a candidate this close to a fitted source is that source
TASKS_AHEAD = 8  # windows submitted per worker ahead of the one awaited (bounded memory)
MIN_WINDOWS_PER_WORKER = 4  # fewer windows than this per process are not worth a process's start (about 1 s)


@dataclass(frozen=True)
class LocalSource:
    """One reported source of the local refinement.

    Attributes:
        xy: ``(2,)`` position; sigma: its standard deviation (pixels).
        decision: ``refined`` (the window's fit), ``kept`` (the network's point),
            ``added`` (a supported candidate the window needs).
        residual_ratio: the window's residual rms in units of the noise.
        wavelength_px, damping, source_size_px, strength: the window's local fit
            (None where the network's point was kept).
        strength_sigma, phase_sigma: standard deviations of ``|strength|`` (unit
            scale) and of its phase (radians), from the window fit's covariance.
    """

    xy: np.ndarray
    sigma: float
    decision: str
    residual_ratio: float | None = None
    wavelength_px: float | None = None
    damping: float | None = None
    source_size_px: float | None = None
    strength: complex | None = None
    strength_sigma: float | None = None
    phase_sigma: float | None = None

    def to_dict(self, scale: float = 1.0) -> dict:
        """JSON-friendly values; ``strength`` (amplitude ``|q|``, times ``scale``, the
        field's units per unit-scale unit) and ``phase`` (radians) of the local fit."""
        out = {"decision": self.decision}
        for key in ("residual_ratio", "wavelength_px", "damping", "source_size_px"):
            value = getattr(self, key)
            if value is not None:
                out[key] = round(float(value), 6)
        if self.strength is not None:
            out["strength"] = round(abs(self.strength) * scale, 6)
            out["phase"] = round(float(np.angle(self.strength)), 6)
        if self.strength_sigma is not None:
            out["strength_sigma"] = round(float(self.strength_sigma) * scale, 6)
            out["phase_sigma"] = round(float(self.phase_sigma), 6)
        return out


def explained(residual_ratio: float, signal_ratio: float) -> bool:
    """Whether a fit with residual rms ``residual_ratio`` explains data of rms
    ``signal_ratio`` (both in units of the noise): down to the noise
    (``<= ACCEPT_RATIO``), or what it leaves beyond the noise,
    ``sqrt(residual_ratio^2 - 1)``, is at most ``MODEL_TOLERANCE`` of the signal."""
    excess = math.sqrt(max(residual_ratio**2 - 1.0, 0.0))
    return residual_ratio <= ACCEPT_RATIO or excess <= MODEL_TOLERANCE * signal_ratio


class _WindowFitter:
    """Fits of one window with the image's hypothesis: the window's own wavelength,
    damping and source size, ``PLANE_WAVES`` plane waves, a robust loss; ``fixed``:
    a ``(P,)`` complex field held at the window's pixels (row-major), or None."""

    def __init__(self, field: np.ndarray, weights: np.ndarray, window: Window, hypothesis: Hypothesis,
                 max_shift: float, max_nfev: int, fixed: np.ndarray | None = None) -> None:
        self.field, self.weights, self.window, self.hyp = field, weights, window, hypothesis
        self.max_shift, self.max_nfev, self.fixed = max_shift, max_nfev, fixed
        self.pixels = (np.arange(*window.rows), np.arange(*window.cols))
        self.lo = np.array([window.cols[0] - 0.5, window.rows[0] - 0.5])
        self.hi = np.array([window.cols[1] - 0.5, window.rows[1] - 0.5])
        values = field[np.ix_(*self.pixels)] * weights[np.ix_(*self.pixels)]
        # in units of the noise, per real data value (a complex pixel holds two)
        self.signal_rms = float(np.std(values) / (math.sqrt(2.0) if np.iscomplexobj(values) else 1.0))

    def ok(self, fit: WaveFit) -> bool:
        """The window's fit explains it: its residual rms is down to the noise
        (``<= ACCEPT_RATIO``), or what it leaves beyond the noise is at most
        ``MODEL_TOLERANCE`` of the window's signal rms; its values are finite; and its
        source size and damping are not pinned at their upper bounds (a wave model that
        needs them there mimics something else, e.g. a blob)."""
        pinned = len(fit.xy) and (fit.source_size_px >= PINNED * SOURCE_SIZE_RANGE[1] or fit.damping >= PINNED * DAMPING_MAX)
        return bool(explained(fit.residual_std, self.signal_rms) and not pinned
                    and np.all(np.isfinite(fit.xy)) and np.all(np.isfinite(fit.sigma)))

    def fit(self, xy: np.ndarray, like: WaveFit | None = None) -> WaveFit:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        inside = self.window.contains(xy)[:, None]
        lo = np.where(inside, np.maximum(xy - self.max_shift, self.lo), xy - self.max_shift)
        hi = np.where(inside, np.minimum(xy + self.max_shift, self.hi), xy + self.max_shift)
        hyp = self.hyp
        warm, angles = ({} if self.fixed is None else {"strengths": np.full(len(xy), np.nan)}), None
        if like is not None:
            warm = {"strengths": np.concatenate([warm_strengths(like, xy), like.background]), "offset": like.offset}
            angles = like.background_angles
            hyp = Hypothesis(hyp.kernel, hyp.observable, like.wavelength_px, like.damping, like.source_size_px,
                             like.anisotropy)
        options = FitOptions(fit_size=len(xy) > 0, fit_anisotropy=len(xy) > 0, robust=True,
                             wavelength_range=LOCAL_WAVELENGTH_RANGE, max_nfev=self.max_nfev, tr_solver="exact")
        return fit_wave(self.field, xy, hyp, options, bounds=(lo, hi), weights=self.weights, pixels=self.pixels,
                        planes=PlaneWaves(PLANE_WAVES, self.window.centre, angles), fixed_field=self.fixed, **warm)


    def without(self, fit: WaveFit, start: np.ndarray, row: int,
                better: Callable[[WaveFit], bool]) -> tuple[WaveFit, bool]:
        """The window's fit without source ``row`` from a warm start (``fit``'s values)
        and, unless that one passes ``better``, from a cold start (``start (n, 2)``, the
        layout's points, without that row): two independent starts.  Returns the fit
        that passes (else the lower BIC) and whether it passes."""
        warm = self.fit(np.delete(fit.xy, row, axis=0), like=fit)
        if better(warm):
            return warm, True
        cold = self.fit(np.delete(start, row, axis=0))
        if better(cold):
            return cold, True
        return min(warm, cold, key=lambda f: f.bic()), False


def rendered_part(fit: WaveFit, rows: list[int], pixels: tuple[np.ndarray, np.ndarray],
                  origin: tuple[float, float]) -> np.ndarray:
    """``(P,)`` complex field of the sources ``rows`` of ``fit`` and its plane waves about
    ``origin`` at the pixels ``pixels = (rows, cols)``, row-major."""
    ys, xs = (np.asarray(p, dtype=np.float64) for p in pixels)
    metric = fit.metric
    g = radial_fields(fit.kernel, fit.xy[rows], xs, ys, fit.wavenumber, fit.source_size_px,
                      table_step=FIT_TABLE_STEP, metric=metric)[0]
    u = fit.strengths[rows] @ g if rows else np.zeros(len(xs) * len(ys), np.complex128)
    if len(fit.background):
        gx, gy = map_offsets(metric, *(v.ravel() for v in np.meshgrid(xs - origin[0], ys - origin[1])))
        u = u + fit.background @ np.exp(1j * (2 * math.pi / fit.wavelength_px)
                                        * plane_wave_paths(fit.background_angles, gx, gy))
    return u


def polish_cores(field: np.ndarray, weights: np.ndarray, fit: WaveFit, rows: list[int], window: Window,
                 max_shift: float, max_nfev: int = 30) -> tuple[WaveFit, tuple[int, int]]:
    """The sources ``rows`` of a window's ``fit`` refitted in their core, the box of
    half-width ``max(MIN_CORE_PX, CORE_WAVELENGTHS * wavelength)`` around them: a
    medium that varies bends the wavefronts more the farther they travel, so the
    position is taken where the local model holds best; the window's other sources and
    plane waves are held, and so are its wavelength, damping and source size.  Returns
    the core's fit and its ``(h, w)`` pixel shape."""
    half = max(MIN_CORE_PX, CORE_WAVELENGTHS * fit.wavelength_px)
    (r0, r1), (c0, c1) = box(fit.xy[rows], half, field.shape)
    r0, r1 = max(r0, window.rows[0]), min(r1, window.rows[1])
    c0, c1 = max(c0, window.cols[0]), min(c1, window.cols[1])
    pixels = (np.arange(r0, r1), np.arange(c0, c1))
    others = [r for r in range(len(fit.xy)) if r not in rows]
    fixed = rendered_part(fit, others, pixels, window.centre)
    xy = fit.xy[rows]
    lo = np.maximum(xy - max_shift, [c0 - 0.5, r0 - 0.5])
    hi = np.minimum(xy + max_shift, [c1 - 0.5, r1 - 0.5])
    core = fit_wave(field, xy, Hypothesis(fit.kernel, fit.observable, fit.wavelength_px, fit.damping,
                                          fit.source_size_px),
                    FitOptions(fit_wavelength=False, fit_damping=False, fit_size=False, robust=True, max_nfev=max_nfev,
                               tr_solver="exact"),
                    bounds=(lo, hi), weights=weights, pixels=pixels, fixed_field=fixed, strengths=fit.strengths[rows],
                    offset=fit.offset)
    return core, (r1 - r0, c1 - c0)


def model_spread(field: np.ndarray, weights: np.ndarray, fit: WaveFit, max_shift: float) -> np.ndarray:
    """``(n, 2, 2)`` covariance that the positions of an image-wide ``fit`` (of
    ``field`` at unit scale, residuals weighted by ``weights``) gain from the model's
    own error, which the fit's statistical covariance does not hold: a mismatched
    medium biases the positions, and the fit absorbs the bias without a trace in the
    residual.  Each source in view is refitted in its core (:func:`polish_cores`, the
    rest of the fit held) and moves by ``d``; under a true model that move is noise, of
    per-coordinate variance ``v = sigma_core^2 - sigma_fit^2`` (the core's estimate is
    the less efficient of the two; Hausman's test), so where ``|d|^2 / v`` exceeds
    ``SPREAD_CHI2`` the move is the model's and ``|d|^2 / 2 - v`` per coordinate is the
    spread added.  Sources out of view, and moves within the noise, add nothing."""
    h, w = field.shape
    whole = Window(np.arange(len(fit.xy)), np.zeros(0, np.int64), (0, h), (0, w))
    spread = np.zeros((len(fit.xy), 2, 2))
    for r in np.flatnonzero(in_view(fit.xy, field.shape)):
        core, _ = polish_cores(field, weights, fit, [int(r)], whole, max_shift)
        move = float(np.sum((core.xy[0] - fit.xy[r]) ** 2))
        noise = float(core.sigma[0]) ** 2 - float(fit.sigma[r]) ** 2
        if np.isfinite(move) and np.isfinite(noise) and move > SPREAD_CHI2 * max(noise, 0.0):
            spread[r] = (0.5 * move - noise) * np.eye(2)  # positive: move > 5.99 max(v, 0) >= 2 v
    return spread


def correlation_area(residual: np.ndarray, reach: float) -> float:
    """Pixels per independent residual sample of an ``(h, w)`` residual map (real or
    complex): the sum of its normalized autocorrelation over the lags within ``reach``
    pixels (clipped at 0; 1 for white noise).  A model mismatch leaves a smooth
    residual, whose pixels are not independent: the fit's covariance, which assumes
    they are, is scaled by this."""
    r = residual - residual.mean()
    h, w = r.shape
    spectrum = np.fft.fft2(r, s=(2 * h, 2 * w))
    corr = np.fft.ifft2(np.abs(spectrum) ** 2).real
    if corr[0, 0] <= 0:
        return 1.0
    corr = np.fft.fftshift(corr / corr[0, 0])
    dy, dx = np.mgrid[-h:h, -w:w]
    near = dx**2 + dy**2 <= reach**2
    return float(max(1.0, np.sum(np.clip(corr[near], 0.0, None))))


def refine_window(field: np.ndarray, weights: np.ndarray, window: Window, xy: np.ndarray, sigma: np.ndarray,
                  tentative: np.ndarray, hypothesis: Hypothesis, max_shift: float = 3.0,
                  max_nfev: int = 20) -> list[LocalSource]:
    """The sources a window reports (module docstring): its network members refined,
    kept or removed, and its tentative members (support candidates) added or dropped.

    Args:
        field: ``(H, W)`` field at unit scale; weights: ``(H, W)`` one over the noise std
            in the same units (weighted residuals are in units of the noise).
        xy, sigma: ``(n, 2)`` all points of the layout and their ``(n,)`` sigmas.
        tentative: ``(n,)`` bool: the point is a support candidate, not a network point.
    """
    fitter = _WindowFitter(field, weights, window, hypothesis, max_shift, max_nfev)
    members = set(int(i) for i in window.members)
    source_of = [int(i) for i in np.concatenate([window.members, window.neighbours])]  # layout index per fitted row
    fit = fitter.fit(xy[source_of])

    # a candidate stays only where the window with it is down to the noise (or the model
    # tolerance), without it is not, and the BIC prefers it; weakest first
    candidates = [i for i in members if tentative[i]]
    if candidates and not fitter.ok(fit):  # no candidate can pass: all dropped in one refit
        keep = [r for r, i in enumerate(source_of) if i not in candidates]
        source_of = [source_of[r] for r in keep]
        fit = fitter.fit(fit.xy[keep], like=fit)
        candidates = []
    for i in sorted(candidates, key=lambda i: float(np.abs(fit.strengths[source_of.index(i)]))):
        row = source_of.index(i)
        trial, needless = fitter.without(fit, xy[source_of], row, lambda f: fitter.ok(f) or f.bic() <= fit.bic()
                                         or fit.residual_std > ACCEPT_RATIO)
        if needless:
            del source_of[row]
            fit = trial
    while fitter.ok(fit):  # removals: a network member the window does not need, weakest first
        mine = [r for r, i in enumerate(source_of) if i in members and not tentative[i]]
        for r in sorted(mine, key=lambda r: float(np.abs(fit.strengths[r]))):
            trial, needless = fitter.without(fit, xy[source_of], r, lambda f: fitter.ok(f) and f.bic() < fit.bic())
            if needless:
                log.debug("window rows %s cols %s: removed (%.2f, %.2f)", window.rows, window.cols, *fit.xy[r])
                del source_of[r]
                fit = trial
                break
        else:
            break
    ok = fitter.ok(fit)
    ratio = fit.residual_std
    mine = [r for r, i in enumerate(source_of) if i in members]
    core, core_inflation = None, 1.0
    if ok and mine:
        core, shape = polish_cores(field, weights, fit, mine, window, max_shift, max_nfev)
        core_inflation = math.sqrt(correlation_area(core.complex_residual().reshape(shape), 0.5 * fit.wavelength_px))
    unneeded: set[int] = set()
    if ratio > ACCEPT_RATIO:  # the window's model is not down to the noise: the model-free test too
        unneeded = _unneeded(field, weights, xy, [i for i in members if not tentative[i]], fit)
    out = []
    for r, i in enumerate(source_of):
        if i not in members:
            continue
        local = dict(residual_ratio=ratio, wavelength_px=fit.wavelength_px, damping=fit.damping,
                     source_size_px=fit.source_size_px, strength=complex(fit.strengths[r]),
                     strength_sigma=float(fit.strength_sigma[r]), phase_sigma=float(fit.phase_sigma[r]))
        position, fit_sigma = fit.xy[r], float(fit.sigma[r])
        if core is not None:
            # the core's statistical sigma, and the spread that the region fitted makes:
            # half the squared window-to-core move per coordinate
            position = core.xy[mine.index(r)]
            move = float(np.sum((position - fit.xy[r]) ** 2))
            fit_sigma = math.sqrt((float(core.sigma[mine.index(r)]) * core_inflation) ** 2 + 0.5 * move)
        if tentative[i]:
            out.append(LocalSource(position.copy(), fit_sigma, "added", **local))
            continue
        if i in unneeded:
            continue
        move = position - xy[i]
        if ok and float(move @ move) <= MOVE_CHI2 * (float(sigma[i]) ** 2 + fit_sigma**2):
            out.append(LocalSource(position.copy(), fit_sigma, "refined", **local))
        else:
            out.append(LocalSource(xy[i].copy(), float(sigma[i]), "kept", residual_ratio=ratio))
    return out


def _unneeded(field: np.ndarray, weights: np.ndarray, xy: np.ndarray, network: list[int], fit: WaveFit) -> set[int]:
    """The network points among ``network`` (layout indices of ``xy``) whose disc a
    regular field of the window ``fit``'s wave model explains: as well as with a source
    by BIC (:func:`~heatmaploc.physics.regularfield.source_evidence`, gain at most 0)
    and down to the noise, or within the model tolerance, as a window is explained
    (where it is not, that wave model does not hold there and the test says nothing).
    No other point is assumed in the disc: a false point beside a real source stays
    (the source's field needs one), and a real source is never explained away by a
    false point beside it."""
    gone: set[int] = set()
    for i in network:
        evidence = source_evidence(field, weights, xy[i], fit)
        if evidence is None:
            continue
        if explained(evidence.residual_ratio, evidence.signal_ratio) and evidence.gain <= 0.0:
            log.debug("(%.2f, %.2f) removed: a regular field explains its disc (BIC gain %.1f)", *xy[i], evidence.gain)
            gone.add(i)
    return gone


def window_needs(field: np.ndarray, weights: np.ndarray, xy: np.ndarray, row: int, hypothesis: Hypothesis,
                 max_shift: float = 3.0, max_nfev: int = 20, context: WaveFit | None = None) -> bool:
    """Whether the window of source ``row`` of ``xy (n, 2)`` needs it: the window (its
    :func:`window_radius` around it; the other sources within ``NEIGHBOUR_WAVELENGTHS``
    fitted too), with its own wavelength, damping, source size and plane waves, has a
    lower BIC with it than without it, and is not explained without it (the local
    path's rule for an addition), from both a warm and a cold start.  A local model
    absorbs what a mismatch of the image-wide model leaves, so a source that only
    patched that mismatch is not needed here.  ``context``: an accepted image-wide fit
    of the same sources (strengths at the field's unit scale; rows beyond ``xy``'s
    first ``len(context.xy)`` are not its): its sources farther than
    ``NEIGHBOUR_WAVELENGTHS`` from the window are held in it as that fit has them, so
    the plane waves take only what that model misses.  ``field`` and ``weights`` as in
    :func:`refine_window`."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    rows, cols = box(xy[row:row + 1], window_radius(hypothesis.wavelength_px), field.shape)
    near = box_distance(xy, rows, cols) <= NEIGHBOUR_WAVELENGTHS * hypothesis.wavelength_px
    near[row] = False
    window = Window(np.array([row]), np.flatnonzero(near), rows, cols)
    fixed = None
    if context is not None:  # what the image-wide fit's farther sources send into the window, held
        far = [int(i) for i in np.flatnonzero(~near) if i != row and i < len(context.xy)]
        fixed = rendered_part(context, far, (np.arange(*rows), np.arange(*cols)), window.centre) if far else None
    fitter = _WindowFitter(field, weights, window, hypothesis, max_shift, max_nfev, fixed)
    source_of = [row] + [int(i) for i in window.neighbours]
    fit = fitter.fit(xy[source_of])
    _, needless = fitter.without(fit, xy[source_of], 0, lambda f: f.bic() <= fit.bic() or fitter.ok(f))
    return not needless


def refine_locally(field: np.ndarray, weights: np.ndarray, xy: np.ndarray, sigma: np.ndarray,
                   hypothesis: Hypothesis, candidates: np.ndarray | None = None, max_shift: float = 3.0,
                   workers: int = 1, progress: bool = False) -> list[LocalSource]:
    """Every network point ``xy (n, 2)`` (sigmas ``(n,)``) and every support candidate
    ``(c, 2)`` farther than ``CANDIDATE_CLEARANCE_PX`` from them through the windows of
    :func:`window_layout` (:func:`refine_window`): the network points refined, kept or
    removed, the candidates added or dropped.  ``field`` and ``weights`` as in
    :func:`refine_window`.  Each window is fitted on its own pixels alone
    (:func:`window_task`), so up to ``workers`` processes (single-threaded BLAS, at
    least ``MIN_WINDOWS_PER_WORKER`` windows each) share the windows with the same
    result as one; ``progress``: a progress bar over the windows.  Returns the reported
    sources, window by window."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    cand = np.zeros((0, 2)) if candidates is None else np.asarray(candidates, dtype=np.float64).reshape(-1, 2)
    if len(cand) and len(xy):
        cand = cand[cKDTree(xy).query(cand, k=1)[0] >= CANDIDATE_CLEARANCE_PX]
    points = np.vstack([xy, cand])
    tentative = np.r_[np.zeros(len(xy), bool), np.ones(len(cand), bool)]
    sigmas = np.r_[np.asarray(sigma, dtype=np.float64).reshape(len(xy)), np.full(len(cand), np.nan)]
    windows = window_layout(points, field.shape, hypothesis.wavelength_px)
    tasks = (window_task(field, weights, window, points, sigmas, tentative, hypothesis, max_shift)
             for window in windows)
    workers = max(1, min(int(workers), len(windows) // MIN_WINDOWS_PER_WORKER))
    bar = dict(total=len(windows), desc="windows", unit="window", disable=not progress)
    if workers == 1:
        done = [_refine_task(task) for task in tqdm(tasks, **bar)]
    else:
        with single_threaded_pool(workers) as pool:
            done = list(tqdm(bounded_map(pool, _refine_task, tasks, TASKS_AHEAD * workers), **bar))
    return [source for sources in done for source in sources]


def window_task(field: np.ndarray, weights: np.ndarray, window: Window, xy: np.ndarray, sigma: np.ndarray,
                tentative: np.ndarray, hypothesis: Hypothesis, max_shift: float) -> tuple:
    """The arguments of :func:`refine_window` for ``window`` on its own pixels: the
    ``field`` and ``weights`` cropped to it, its members and neighbours (rows of
    ``xy (n, 2)``, ``sigma (n,)``, ``tentative (n,)``) renumbered and moved to the
    crop's coordinates, and the crop's ``(x, y)`` origin last.  A window's fit reads
    no pixel outside it, so the crop changes nothing but what a worker receives."""
    (r0, r1), (c0, c1) = window.rows, window.cols
    rows = np.concatenate([window.members, window.neighbours]).astype(np.int64)
    k = len(window.members)
    crop = Window(np.arange(k), np.arange(k, len(rows)), (0, r1 - r0), (0, c1 - c0))
    origin = np.array([c0, r0], dtype=np.float64)
    return (np.ascontiguousarray(field[r0:r1, c0:c1]), np.ascontiguousarray(weights[r0:r1, c0:c1]), crop,
            xy[rows] - origin, sigma[rows], tentative[rows], hypothesis, max_shift, origin)


def _refine_task(task: tuple) -> list[LocalSource]:
    """:func:`refine_window` of one :func:`window_task`, positions back in the image's
    coordinates."""
    *args, origin = task
    return [replace(s, xy=s.xy + origin) for s in refine_window(*args)]
