"""The point-spread family's refinement of one power map: the scale (linear or dB), the
PSF (parametric shapes by BIC, then a template estimated from the map), the count by
BIC (additions at significant residual peaks, removals), and the sources' powers.

Decisions (stated): a shape, the template, an addition or a removal is taken when it
lowers the BIC over independent samples
(:meth:`~heatmaploc.physics.psffit.PSFFit.bic`) at one correlation area; an addition
needs ``ADD_BIC`` and a power of at least ``ADD_SIGNIFICANCE`` sigmas (no source in
empty space) and, when the network's support candidates are given, a candidate within
half the PSF's width (as the wave family's windows add only at heatmap peaks above half
the threshold); a network point is removed when the BIC is no worse without it (tried
only where its significance leaves that possible, :func:`_may_go`).  An addition
that ends within one FWHM of another source is not taken (:func:`_unresolved`): that
is the PSF's resolution, where a fit cannot tell one source from two and an estimated
PSF's own error splits main lobes.  (Removals there stay decided by the BIC: a network
that has not seen dB maps reports one main lobe as several points.)  A fitted source
that stands for a network point reports the two positions combined by their stated
uncertainties (:func:`combined_positions`), not the fit's alone: the PSF is estimated
from the map, and where the map's PSF varies over the view (a beamformer focused in the
near field, grating lobes) the fit's position errors exceed its stated sigma.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from heatmaploc.physics import psffit
from heatmaploc.physics.model_order import pairs
from heatmaploc.physics.psf import PARAMETRIC_SHAPES, PSF, from_array, symmetric_template
from heatmaploc.physics.psffit import DB_GAMMA, Data, PSFFit
from heatmaploc.physics.support import within_reach

log = logging.getLogger(__name__)

ADD_BIC = 10.0
ADD_SIGNIFICANCE = 4.0
MAX_ADDITIONS = 12
FLOOR_FRACTION = 0.02  # a dB map with more pixels than this at its minimum is floored there


@dataclass(frozen=True)
class PSFResult:
    """What the point-spread refinement found.

    Attributes:
        fit: the final :class:`~heatmaploc.physics.psffit.PSFFit`.
        scale: ``linear`` or ``db``; gamma: the dB factor (``db`` only).
        added, removed: sources added and network points removed.
        bic_by_shape: BIC of each PSF tried (at one correlation area).
    """

    fit: PSFFit
    scale: str
    added: int
    removed: int
    bic_by_shape: dict[str, float]

    @property
    def levels_db(self) -> np.ndarray:
        """``(n,)`` levels in dB relative to the strongest source."""
        p = np.maximum(self.fit.powers, psffit.TINY)
        return 10.0 * np.log10(p / p.max()) if len(p) else p


def db_data(values: np.ndarray, gamma: float | None) -> Data:
    """:class:`Data` of a dB map (``gamma`` None: a colormap's inverse, fitted later),
    its floor left out when clipped."""
    floor = values <= values.min() + 1e-6 * max(float(np.ptp(values)), psffit.TINY)
    mask = ~floor if floor.mean() > FLOOR_FRACTION else None
    return Data(values, "db", DB_GAMMA if gamma is None else gamma, mask)


def initial_width(power: np.ndarray, xy: np.ndarray) -> float:
    """FWHM guess (pixels): the area above half the maximum around the strongest peak
    as a disc."""
    peak = np.unravel_index(int(np.argmax(power)), power.shape)
    lo = float(np.median(power))
    half = power >= lo + 0.5 * (power[peak] - lo)
    labels, _ = ndimage.label(half)
    area = float(np.count_nonzero(labels == labels[peak]))
    return float(np.clip(2.0 * math.sqrt(area / math.pi), 1.5, 0.25 * min(power.shape)))


def combined_positions(fit_xy: np.ndarray, fit_sigma: np.ndarray, start_xy: np.ndarray, start_sigma: np.ndarray,
                       max_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """``(m, 2)`` positions and ``(m,)`` sigmas of the fitted sources ``fit_xy (m, 2)``
    (per-coordinate sigmas ``fit_sigma (m,)``), each source paired one to one with a
    start point ``start_xy (n, 2)`` (:func:`~heatmaploc.physics.model_order.pairs`)
    moved to the inverse-variance mean of the two estimates, with sigma
    ``(sigma_fit^-2 + sigma_start^-2)^-1/2``; unpaired sources, and pairs whose start
    sigma is not a positive finite number, keep the fit's."""
    xy, sigma = np.array(fit_xy, dtype=np.float64), np.array(fit_sigma, dtype=np.float64)
    start = np.asarray(start_xy, dtype=np.float64).reshape(-1, 2)
    rows, cols = pairs(xy, start, max_shift)
    start_sigma = np.asarray(start_sigma, dtype=np.float64)[cols]
    ok = np.isfinite(start_sigma) & (start_sigma > 0) & np.isfinite(sigma[rows]) & (sigma[rows] > 0)
    rows, cols, start_sigma = rows[ok], cols[ok], start_sigma[ok]
    w_fit, w_start = sigma[rows] ** -2, start_sigma ** -2
    xy[rows] = (w_fit[:, None] * xy[rows] + w_start[:, None] * start[cols]) / (w_fit + w_start)[:, None]
    sigma[rows] = (w_fit + w_start) ** -0.5
    return xy, sigma


def _with_noise(data: Data, fit: PSFFit) -> Data:
    return replace(data, noise=psffit.noise_model(data, fit.model, fit.background))


def estimate_template(fit: PSFFit, radius: int) -> PSF:
    """A symmetric template (:func:`~heatmaploc.physics.psf.symmetric_template`) from the
    strongest source of ``fit``: the data's power without the background and the other
    sources, sampled at integer offsets from its sub-pixel position, over its power."""
    data = fit.data
    power = data.power  # the units the fit's powers are in (psffit.solve_linear)
    s = int(np.argmax(fit.powers))
    others = np.delete(np.arange(fit.count), s)
    rest = psffit.design(fit.psf, fit.xy[others], power.shape) @ fit.powers[others] + fit.background
    alone = power - rest.reshape(power.shape)
    dy, dx = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float64)
    x, y = fit.xy[s]
    cols, rows = x + dx, y + dy
    h, w = power.shape
    known = (cols >= 0) & (cols <= w - 1) & (rows >= 0) & (rows <= h - 1)
    if data.mask is not None:
        known &= ndimage.map_coordinates(data.mask.astype(float), [rows, cols], order=1, mode="constant") > 0.999
    values = ndimage.map_coordinates(alone, [rows, cols], order=3, mode="nearest") / max(fit.powers[s], psffit.TINY)
    return symmetric_template(values, known, fit.psf)


def refine_psf(values: np.ndarray, xy: np.ndarray, known: Mapping | None = None, max_shift: float = 3.0,
               name: str = "image", support: np.ndarray | None = None) -> PSFResult | None:
    """The point-spread refinement of the ``(H, W)`` float map ``values`` (a raw map, or
    a colormap's inverse) from the ``(n, 2)`` network points ``xy`` (module docstring).
    ``known``: ``scale`` (``linear``/``db``), ``psf`` (an array: a given template),
    ``raw`` (bool: ``values`` are the map's own numbers, so a dB map's factor is known).
    ``support``: ``(c, 2)`` positions where a source may be added (None: anywhere).
    None when there is no point to start from and nothing to add."""
    known = dict(known or {})
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if known.get("scale"):
        scales = [known["scale"]]
    elif known.get("raw"):
        scales = ["db" if psffit.is_db_map(values) else "linear"]
    else:
        scales = ["linear", "db"]
    best: PSFResult | None = None
    for scale in scales:
        data = Data(values, "linear") if scale == "linear" else db_data(values, DB_GAMMA if known.get("raw") else None)
        result = _refine_scale(data, xy, known, max_shift, name, support)
        if result is not None and (best is None or _score(result) < _score(best)):
            best = result
    return best


def _score(result: PSFResult) -> float:
    """The BIC of a final fit, comparable across scales: the chi-square in the values'
    own units (each scale's noise model)."""
    f = result.fit
    log_noise = float(np.sum(np.log(f.data.noise[f.data.used] ** 2)))
    return f.bic() + log_noise / f.area


def _refine_scale(data: Data, xy: np.ndarray, known: Mapping, max_shift: float, name: str,
                  support: np.ndarray | None) -> PSFResult | None:
    if not len(xy):
        return None
    if data.scale == "db" and not known.get("raw"):
        data = replace(data, gamma=_fit_gamma(data, xy, known))
    power = data.power
    width = initial_width(power, xy)
    given = known.get("psf")
    shapes = [from_array(given, "psf")] if given is not None else [PSF(s, width) for s in PARAMETRIC_SHAPES]
    first = psffit.fit(data, shapes[0], xy, max_shift=max_shift)
    data = _with_noise(data, first)
    fits = {p.shape: psffit.fit(data, p, xy, max_shift=max_shift) for p in shapes}
    area = max(f.area for f in fits.values())
    bic = {k: f.bic(area) for k, f in fits.items()}
    current = fits[min(bic, key=bic.get)]
    data = _with_noise(data, current)
    current = psffit.fit(data, current.psf, current.xy, max_shift=max_shift)
    bic[current.psf.shape] = current.bic()
    start_count = current.count
    current, added = _additions(data, current, max_shift, support)
    current, removed = _removals(data, current, start_count, max_shift)
    if given is None:  # a template from the map, once the sources are known; the count decided again with it
        radius = int(min(max(data.values.shape) // 2, math.ceil(6 * current.psf.width)))
        template = estimate_template(current, radius)
    if given is None and template.shape == "template":  # none where the strongest source's centre is not positive
        templated = psffit.fit(data, template, current.xy, max_shift=max_shift, area=current.area)
        penalty = _template_parameters(template, current.area)
        bic["template"] = templated.bic(current.area) + penalty * current.log_samples()
        if bic["template"] < current.bic():
            current, more = _additions(data, templated, max_shift, support)
            current, fewer = _removals(data, current, current.count - more, max_shift)
            added, removed = added + more, removed + fewer
    log.info("%s: point-spread fit (%s, %s PSF, width %.2f px): %d sources, %d added, %d removed", name,
             data.scale, current.psf.shape, current.psf.width, current.count, added, removed)
    return PSFResult(current, data.scale, added, removed, {k: round(float(v), 3) for k, v in bic.items()})


def _template_parameters(template: PSF, area: float) -> float:
    """Independent samples a template adds: all of its samples, halved by its symmetry,
    over the correlation area (each was estimated from the noisy map)."""
    return 0.5 * template.template.size / max(area, 1.0)


def _fit_gamma(data: Data, xy: np.ndarray, known: Mapping) -> float:
    """The dB factor of a colormapped dB map: the best of a log-spaced scan of dB spans
    (the inverse's values lie in [0, 1], so ``gamma = span ln(10) / 10``), by the sum
    of squared residuals of a Gaussian-PSF fit at the network's positions."""
    width = initial_width(np.exp(DB_GAMMA * 30.0 * (data.values - data.values.max())), xy)
    span = float(np.ptp(data.values)) or 1.0
    best, best_rss = DB_GAMMA, math.inf
    for db_span in (6.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0):
        trial = replace(data, gamma=DB_GAMMA * db_span / span)
        f = psffit.fit(trial, PSF("gaussian", width), xy, max_shift=0.0)
        rss = float(np.sum(f.residual[trial.used] ** 2))
        if rss < best_rss:
            best, best_rss = trial.gamma, rss
    return best


def _matched_peak(fit: PSFFit, exclude: np.ndarray) -> tuple[float, float] | None:
    """The strongest positive peak of the normalized residual filtered by the PSF,
    outside ``exclude`` (``(H, W)`` bool), as ``(x, y)``; None where nothing is left."""
    data = fit.data
    normalized = np.where(data.used, fit.residual / data.noise, 0.0)  # a source raises a dB map too
    r = int(math.ceil(fit.psf.width))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    kernel = fit.psf(dx, dy)
    filtered = ndimage.correlate(normalized, kernel / np.sqrt(np.sum(kernel**2)), mode="constant")
    filtered[exclude] = -np.inf
    idx = int(np.argmax(filtered))
    if not np.isfinite(filtered.flat[idx]) or filtered.flat[idx] <= 0:
        return None
    row, col = np.unravel_index(idx, filtered.shape)
    return float(col), float(row)


def _near(xy: np.ndarray, shape: tuple[int, int], radius: float) -> np.ndarray:
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    out = np.zeros(shape, bool)
    for x, y in xy:
        out |= (cols - x) ** 2 + (rows - y) ** 2 <= radius**2
    return out


def _additions(data: Data, current: PSFFit, max_shift: float,
               support: np.ndarray | None = None) -> tuple[PSFFit, int]:
    """Sources added one at a time at the matched residual peak while the BIC drops by
    ``ADD_BIC``, the new power is ``ADD_SIGNIFICANCE`` sigmas and the new source is
    resolved from the others (:func:`_unresolved`); only within half the PSF's width of
    a ``support`` position when given."""
    added = 0
    tried = np.zeros(data.values.shape, bool)
    if support is not None:
        tried = ~_near(np.asarray(support, dtype=np.float64).reshape(-1, 2), data.values.shape,
                       0.5 * current.psf.width)
    for _ in range(MAX_ADDITIONS):
        exclude = tried | _near(current.xy, data.values.shape, 0.5 * current.psf.width)
        peak = _matched_peak(current, exclude)
        if peak is None:
            break
        trial = psffit.fit(data, current.psf, np.vstack([current.xy, peak]), fit_width=False, max_shift=max_shift,
                           area=current.area)
        new = trial.count - 1
        significant = trial.powers[new] >= ADD_SIGNIFICANCE * trial.power_sigma[new]
        if trial.bic() <= current.bic() - ADD_BIC and significant and not _unresolved(trial.xy, new, trial.psf.width):
            current, added = trial, added + 1
        else:
            tried |= _near(np.array([peak]), data.values.shape, 0.5 * current.psf.width)
            if tried.mean() > 0.5:
                break
    return current, added


def _unresolved(xy: np.ndarray, k: int, width: float) -> bool:
    """Whether row ``k`` of ``xy (n, 2)`` lies within ``width`` pixels (the PSF's FWHM)
    of another row."""
    return bool(within_reach(xy[k:k + 1], np.delete(xy, k, axis=0), width)[0])


def _may_go(fit: PSFFit, k: int) -> bool:
    """Whether removing source ``k`` of ``fit`` may not raise the BIC: with the positions
    fixed, removing it raises ``chi2 / A`` by ``(p_k / sigma_k)^2`` (weighted least
    squares) while the BIC's penalty falls by ``3 ln(N / A)``; the others moving to take
    its place can lower that rise, so a source is kept without a trial fit only when
    its significance is beyond four times the penalty plus 25 (5 sigma)."""
    z2 = (fit.powers[k] / fit.power_sigma[k]) ** 2 if fit.power_sigma[k] > 0 else 0.0
    penalty = 3.0 * fit.log_samples()
    return not z2 > 4.0 * penalty + 25.0


def _removals(data: Data, current: PSFFit, start_count: int, max_shift: float) -> tuple[PSFFit, int]:
    """Network points (the first ``start_count`` rows) removed, weakest first, while the
    BIC is no worse without them (tried only where :func:`_may_go`)."""
    removed = 0
    rows = list(range(current.count))
    is_network = np.arange(current.count) < start_count
    for j in sorted(np.flatnonzero(is_network), key=lambda j: current.powers[j]):
        position = {i: k for k, i in enumerate(rows)}
        if not _may_go(current, position[j]):
            continue
        keep = [i for i in rows if i != j]
        if not keep:
            break
        trial = psffit.fit(data, current.psf, current.xy[[position[i] for i in keep]], fit_width=False,
                           max_shift=max_shift, area=current.area)
        if trial.bic() <= current.bic():
            current, rows, removed = trial, keep, removed + 1
    return current, removed
