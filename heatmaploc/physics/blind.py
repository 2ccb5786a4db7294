"""Blind physics refinement: estimate the wave model of an image, correct the count,
and refine the points to the physical limit, with no metadata.

For one image and the network's points (docs/design.md section 1 coordinates):

1. **Field.** A single-channel image is the field; a complex-valued one is the
   complex field itself (observable ``complex``: the fit uses its real and imaginary
   parts).  An RGB image is mapped back through the colormap its pixels lie nearest
   to (:func:`~heatmaploc.physics.colormap.identify_colormap`).
2. **Noise level** per pixel, independent of any model: the wavelet noise estimate
   (``skimage.restoration.estimate_sigma``) of a raw field, or of the RGB channels
   carried through the colormap's local slope; every fit weighs the residual by it.
3. **Wavelength.** Snapshot: the peaks of the radial power spectrum
   (:mod:`~heatmaploc.physics.spectrum`), each refined by a scan of the profile RSS
   (strengths solved linearly at the network's points); wavelengths longer than the
   image are scanned on a coarse grid.  Amplitude map: twice the spectral peak
   (``|u|`` beats at ``2k``) and a coarse grid, each tried by a quick fit.
4. **Model.** Every kernel x observable hypothesis is fitted (positions, strengths,
   offset, source size, wavelength, damping: :func:`~heatmaploc.physics.wavefit.fit_wave`)
   on every second pixel; the lowest BIC wins.
5. **Count** (:mod:`~heatmaploc.physics.model_order`): sources are added at the most
   structured residual (inside the image: reported; outside: modelled, not reported)
   and removed while the BIC improves.  Where that leaves the image unexplained, the
   other kernels' count searches run too, and one that explains the image with a
   lower BIC replaces it (the screen read the network's points, which may lack
   sources).
6. **Final fit** on all pixels; each point's ``sigma`` is the fit's Cramér-Rao-style
   standard deviation, widened where the image is explained but a refit of the
   source's core moves it beyond the noise (:func:`~heatmaploc.physics.local.model_spread`:
   a mismatched medium's bias, which the residual does not show).
7. **Fallback.** The result is accepted only if its positions are finite and its
   residual is down to the noise level: weighted rms ``<= ACCEPT_RATIO`` times the
   larger of 1 and the residual's own white-noise level (its finest wavelet details,
   :func:`residual_noise`), so that a noise estimate that came out low (an RGB
   rendering clipped at its colormap's ends hides part of its noise) does not reject
   a model that leaves only white noise, while a model that misses structure still
   fails; otherwise the network's points and sigmas are kept and the reason is
   recorded.

Known physics (``known``: any of ``kernel``, ``observable``, ``wavelength_px``,
``damping``, ``colormap``; ``colormap: None`` for a raw field) is used as given.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from heatmaploc.data.io import check_image
from heatmaploc.physics.forward import OBSERVABLES
from heatmaploc.physics.kernels import KERNELS
from heatmaploc.physics.known import validate_known
from heatmaploc.physics.local import model_spread
from heatmaploc.physics.model_order import model_image, outside_ring, paired, residual_candidates, select_count
from heatmaploc.physics.observation import in_view, observed_field, unit_scale, wavelet_noise
from heatmaploc.physics.spectrum import amplitude_starts, snapshot_wavelength, wavelength_candidates
from heatmaploc.physics.summary import PhysicsEstimate
from heatmaploc.physics.wavefit import WaveFit, fit_wave, warm_strengths
from heatmaploc.physics.waveproblem import FitOptions, Hypothesis

log = logging.getLogger(__name__)

ACCEPT_RATIO = 1.15  # residual std over the model-free noise estimate that counts as "down to the noise"
MIN_SIZE = 8  # pixels per side; smaller images carry no wave to estimate
SEARCH_PIXELS = 4096  # pixels the model and count search fit (every search_stride-th pixel); the final fit uses all
MAX_MARGIN = 96  # pixels beyond the image where sources outside the view are looked for
ORTHOTROPIC_STARTS, ORTHOTROPIC_RATIO = 4, 1.2  # axis angles 0, 45, 90, 135 degrees at this ratio (0 starts: isotropic only)
CLOSE_CALL_BIC = 6.0  # hypotheses whose coarse BICs differ by less are decided on finer pixels (odds < e^3)


class _Fitter:
    """Fits of one image under one hypothesis, with bounds that keep reported sources
    in the image and let added outside sources stay outside (in a margin)."""

    def __init__(self, field: np.ndarray, weights: np.ndarray, margin: int, max_shift: float) -> None:
        self.field, self.weights, self.margin, self.max_shift = field, weights, margin, max_shift
        h, w = field.shape
        self.inside = (np.array([-0.5, -0.5]), np.array([w - 0.5, h - 0.5]))
        self.outer = (self.inside[0] - margin, self.inside[1] + margin)

    def bounds(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inside sources move ``max_shift`` px and stay in the image, except that one
        on the edge may also leave it (it may stand for a source outside the view);
        outside sources move anywhere in the margin around the image."""
        inside = in_view(xy, self.field.shape)[:, None]
        lo = np.where(inside, np.maximum(xy - self.max_shift, self.inside[0]), self.outer[0])
        hi = np.where(inside, np.minimum(xy + self.max_shift, self.inside[1]), self.outer[1])
        on_edge_lo, on_edge_hi = xy <= self.inside[0] + 1.0, xy >= self.inside[1] - 1.0
        lo = np.where(on_edge_lo, self.outer[0], lo)
        hi = np.where(on_edge_hi, self.outer[1], hi)
        return lo, hi

    def fit(self, xy: np.ndarray, kernel: str, observable: str, wavelength: float, damping: float, size: float,
            stride: int, fixed: Mapping, max_nfev: int = 40, like: WaveFit | None = None, robust: bool = True,
            anisotropy: tuple[float, float] | None = None) -> WaveFit:
        """A fit from ``xy``; with ``like`` (a fit of the same hypothesis) its strengths
        and offset start the sources it has (same coordinates), the others are
        estimated, and its anisotropy (if any) starts this fit's (else ``anisotropy``)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if like is not None and anisotropy is None:
            anisotropy = like.anisotropy
        warm = {"strengths": warm_strengths(like, xy), "offset": like.offset} if like is not None and len(xy) else {}
        options = FitOptions(fit_wavelength="wavelength_px" not in fixed, fit_damping="damping" not in fixed,
                             stride=stride, robust=robust, max_nfev=max_nfev)
        return fit_wave(self.field, xy, Hypothesis(kernel, observable, wavelength, damping, size, anisotropy), options,
                        bounds=self.bounds(xy), weights=self.weights, **warm)


def _applies(kernel: str, observable: str) -> bool:
    """Whether ``kernel`` is a hypothesis for ``observable``: the seed kernel is a snapshot's only."""
    return not (kernel == "seed" and observable == "amplitude")


def _with_first_source(field: np.ndarray, fit: WaveFit, fitter: _Fitter, known: Mapping, stride: int,
                       margin: int) -> WaveFit:
    """``fit`` (of no source) or, when its BIC is lower, the fit of one source at the
    most structured residual."""
    candidates = residual_candidates(field - model_image(fit, field.shape), fit, margin, fitter.weights, count=1)
    if not candidates:
        return fit
    candidate = candidates[0]
    trial = fitter.fit(candidate[None], fit.kernel, fit.observable, fit.wavelength_px, fit.damping,
                       fit.source_size_px, stride, known, max_nfev=12)
    return trial if trial.bic() < fit.bic() else fit


def residual_noise(field: np.ndarray, fit: WaveFit, weights: np.ndarray) -> float:
    """The white-noise std (:func:`~heatmaploc.physics.observation.wavelet_noise`) of
    ``fit``'s residual over the ``(H, W)`` ``field``, weighted by ``weights`` (in units of
    the model-free noise estimate): about 1 where that estimate was right, above it
    where the estimate was low.  A smooth model error, such as a wave the model misses,
    barely reaches the finest wavelet details."""
    return wavelet_noise((field - model_image(fit, field.shape)) * weights)


def down_to_noise(fit: WaveFit, white: float) -> bool:
    """Whether ``fit`` explains its image: its weighted residual rms within
    ``ACCEPT_RATIO`` of the noise, or of the residual's own white-noise level ``white``
    (:func:`residual_noise`) where that is higher."""
    return fit.residual_std <= ACCEPT_RATIO * max(1.0, white)


def _changes(start: np.ndarray, fitted: np.ndarray, max_shift: float) -> dict[str, int]:
    """``added`` / ``removed``: fitted sources and network points left unpaired
    (:func:`paired`)."""
    fitted_paired, start_paired = paired(fitted, start, max_shift)
    return {"added": int(np.sum(~fitted_paired)), "removed": int(np.sum(~start_paired))}


def _orthotropic(fitter: _Fitter, fit: WaveFit, known: Mapping, stride: int) -> WaveFit:
    """``fit``'s sources and globals refitted as an orthotropic medium, from
    ``ORTHOTROPIC_STARTS`` axis angles at ratio ``ORTHOTROPIC_RATIO`` on every
    ``2 * stride``-th pixel; the lowest BIC is refitted on every ``stride``-th."""
    starts = [fitter.fit(fit.xy, fit.kernel, fit.observable, fit.wavelength_px, fit.damping, fit.source_size_px,
                         2 * stride, known, max_nfev=12, like=fit, robust=False, anisotropy=(ORTHOTROPIC_RATIO, angle))
              for angle in np.linspace(0.0, np.pi, ORTHOTROPIC_STARTS, endpoint=False)]
    best = min(starts, key=lambda f: f.bic())
    return fitter.fit(best.xy, best.kernel, best.observable, best.wavelength_px, best.damping, best.source_size_px,
                      stride, known, max_nfev=25, like=best)


def _final_fit(fitter: _Fitter, fit: WaveFit, known: Mapping) -> WaveFit:
    """``fit`` polished on all pixels."""
    return fitter.fit(fit.xy, fit.kernel, fit.observable, fit.wavelength_px, fit.damping, fit.source_size_px, 1, known,
                      max_nfev=20, like=fit)


def _screen(fitter: _Fitter, start: np.ndarray, known: Mapping, signed: bool, spectral: list[float], stride: int,
            damping: float, name: str) -> WaveFit | None:
    """The best hypothesis, fitted on every ``2 * stride``-th pixel: first the
    observable (snapshot or amplitude) with one kernel, then the other kernels for
    that observable at its wavelength.  ``signed``: the raw field is clearly negative
    somewhere, which an amplitude ``|u|`` never is.  ``None`` when no wavelength is
    found for any hypothesis."""
    kernels = [known["kernel"]] if known.get("kernel") else list(KERNELS)
    observables = [known["observable"]] if known.get("observable") else list(OBSERVABLES)
    if signed and "observable" not in known:
        observables = ["snapshot"]
    if np.iscomplexobj(fitter.field):
        observables = ["complex"]
    size = max(fitter.field.shape)

    def trial(kernel: str, observable: str, starts: list[float]) -> WaveFit:
        fits = [fitter.fit(start, kernel, observable, lam, damping, 1.0, 2 * stride, known, max_nfev=12, robust=False)
                for lam in starts]
        if len(start) == 0:  # nothing to tell the hypotheses apart yet: let each explain one source first
            fits = [_with_first_source(fitter.field, f, fitter, known, 2 * stride, fitter.margin) for f in fits]
        best = min(fits, key=lambda f: f.bic())
        log.debug("%s: %s %s wavelength %.3f BIC %.1f", name, kernel, observable, best.wavelength_px, best.bic())
        return best

    def starts_for(observable: str) -> list[float]:
        if "wavelength_px" in known:
            return [known["wavelength_px"]]
        if observable == "amplitude":
            return amplitude_starts(spectral, size)
        wavelength = snapshot_wavelength(fitter.field, start, spectral, 2 * stride)  # a complex field: its own profile
        return [] if wavelength is None else [wavelength]

    first: dict[str, WaveFit] = {}
    for observable in observables:
        usable = [k for k in kernels if _applies(k, observable)]
        starts = starts_for(observable)
        if usable and starts:
            first[observable] = trial("free" if "free" in usable else usable[0], observable, starts)
    if not first:
        return None
    lead = min(first.values(), key=lambda f: f.bic())
    others = [trial(k, lead.observable, [lead.wavelength_px]) for k in kernels
              if k != lead.kernel and _applies(k, lead.observable)]
    fits = sorted([lead] + others, key=lambda f: f.bic())
    close = [f for f in fits if f.bic() - fits[0].bic() < CLOSE_CALL_BIC]
    if len(close) < 2:
        return fits[0]
    # a close call on the coarse grid: the hypotheses it cannot tell apart are fitted
    # further on twice the pixels (each from its own values) and decided there
    finer = [fitter.fit(f.xy, f.kernel, f.observable, f.wavelength_px, f.damping, f.source_size_px, stride, known,
                        max_nfev=25, like=f, robust=False) for f in close]
    for f in finer:
        log.debug("%s: close call, %s %s on finer pixels: BIC %.1f", name, f.kernel, f.observable, f.bic())
    return close[int(np.argmin([f.bic() for f in finer]))]


@dataclass(frozen=True)
class LocalStart:
    """What the local refinement of an image starts from: the ``(H, W)`` field at unit
    scale (``(field - offset) / scale``), the weights that put its residuals in units
    of the noise, and the image's hypothesis."""

    field: np.ndarray
    weights: np.ndarray
    scale: float
    hypothesis: Hypothesis


def estimate(image: np.ndarray, xy: np.ndarray, known: Mapping | None = None, name: str = "image",
             max_shift: float = 3.0, search_stride: int | None = None) -> tuple[PhysicsEstimate, WaveFit | None]:
    """Estimate the physics of ``image`` and fit it from the ``(n, 2)`` start points ``xy``.

    Returns the estimate and the final fit of all pixels (``None`` when no fit ran);
    ``estimate.accepted`` says whether the fit should replace the start points.
    Raises ``ValueError`` (naming ``name``) for an unreadable image or bad ``known``.
    """
    est, fit, _ = estimate_with_start(image, xy, known, name, max_shift, search_stride)
    return est, fit


def estimate_with_start(image: np.ndarray, xy: np.ndarray, known: Mapping | None, name: str, max_shift: float,
                        search_stride: int | None, observed: tuple | None = None, model_error: bool = True
                        ) -> tuple[PhysicsEstimate, WaveFit | None, LocalStart | None]:
    """:func:`estimate`, and where a wave model with a source was fitted (accepted or
    not), what the local refinement starts from (:class:`LocalStart`, for
    :mod:`heatmaploc.physics.refine`).  ``observed``: the image's
    :func:`~heatmaploc.physics.observation.observed_field` when the caller has it;
    ``model_error``: widen an accepted fit's sigma by the model's own error (step 6;
    False for a caller that uses the estimated model and not the fit's points)."""
    started = time.perf_counter()
    known = validate_known(known, name)
    start = np.asarray(xy, dtype=np.float64).reshape(-1, 2)

    def reject(reason: str, **values) -> tuple[PhysicsEstimate, None, None]:
        log.info("%s: the global physics fit kept the network's points (%s)", name, reason)
        return PhysicsEstimate(False, reason, count_network=len(start), count=len(start),
                               seconds=time.perf_counter() - started, **values), None, None

    arr = check_image(np.asarray(image), name)
    if min(arr.shape[:2]) < MIN_SIZE:
        return reject(f"image {arr.shape[0]}x{arr.shape[1]} is smaller than {MIN_SIZE}x{MIN_SIZE}")
    if (known.get("observable") == "complex") != np.iscomplexobj(arr) and known.get("observable") is not None:
        raise ValueError(f"{name}: observable {known['observable']!r} given for a "
                         f"{'complex' if np.iscomplexobj(arr) else 'real'}-valued image; the complex observable "
                         f"is that of a complex image, and only it")
    field, colormap, noise_map = observed if observed is not None else observed_field(arr, name, known)
    if float(np.max(np.abs(field - field.mean()))) <= 1e-12 * max(1.0, float(np.abs(field).max())):
        return reject("constant image", colormap=colormap)
    lowest = None if colormap is not None or np.iscomplexobj(field) else float(field.min())
    field, weights, offset, scale, noise = unit_scale(field, noise_map)
    signed = lowest is not None and lowest < -5 * noise
    spectral = [known["wavelength_px"]] if "wavelength_px" in known else wavelength_candidates(field)
    margin = min(max(field.shape) // 2, MAX_MARGIN)
    if search_stride is None:  # about SEARCH_PIXELS pixels for the model and count search, whatever the size
        search_stride = max(2, int(round(math.sqrt(field.size / SEARCH_PIXELS))))
    fitter = _Fitter(field, weights, margin, max_shift)
    damping0 = float(known.get("damping", 0.01))
    lead = _screen(fitter, start, known, signed, spectral, search_stride, damping0, name)
    if lead is None:
        return reject("no wavelength found (no wave in view)", colormap=colormap, noise_std=noise)

    def refit(xy: np.ndarray, like: WaveFit) -> WaveFit:
        return fitter.fit(xy, like.kernel, like.observable, like.wavelength_px, like.damping, like.source_size_px,
                          search_stride, known, max_nfev=15, like=like)

    def with_outside_source(fit: WaveFit, rings: int) -> WaveFit:
        """``fit`` plus the best of a ring of starts outside the view, refitted."""
        ring = [fitter.fit(np.vstack([fit.xy, p[None]]), fit.kernel, fit.observable, fit.wavelength_px, fit.damping,
                           fit.source_size_px, 2 * search_stride, known, max_nfev=10, like=fit, robust=False)
                for p in outside_ring(field.shape, margin, rings=rings)]
        lead = min(ring, key=lambda f: f.bic())
        return refit(lead.xy, lead)

    def explained(fit: WaveFit) -> bool:
        return down_to_noise(fit, residual_noise(field, fit, weights))

    def searched(lead: WaveFit, alternatives: bool = True) -> tuple[WaveFit, WaveFit]:
        """The count search from ``lead`` (a screening fit) under its hypothesis:
        ``(chosen, final)``, the search's fit and its polish on all pixels; with
        ``alternatives``, where that leaves the image unexplained, also the searches
        from a source outside the view and from no source (the lowest BIC wins)."""
        best = fitter.fit(lead.xy, lead.kernel, lead.observable, lead.wavelength_px, lead.damping,
                          lead.source_size_px, search_stride, known, max_nfev=25)
        if best.observable == "amplitude":
            # an amplitude map's residual does not point outside the view (its fringes are
            # not a kernel): a source there is looked for once, from a ring of starts
            outside = with_outside_source(best, rings=1)
            if outside.bic() < refit(best.xy, best).bic():
                best = outside
        chosen = select_count(field, best, refit, margin, weights).fit
        final = _final_fit(fitter, chosen, known)
        if alternatives and not explained(final):
            # the network's points led to a fit that does not explain the image: try a source
            # outside the view from two rings of starts, and a greedy search from no source
            empty = refit(np.zeros((0, 2)), chosen)
            options = [refit(chosen.xy, chosen),
                       select_count(field, with_outside_source(chosen, rings=2), refit, margin, weights).fit,
                       select_count(field, empty, refit, margin, weights, max_changes=10).fit]
            better = min(options, key=lambda f: f.bic())
            if better is not options[0]:
                chosen, final = better, _final_fit(fitter, better, known)
        return chosen, final

    chosen, final = searched(lead)
    if not explained(final) and "kernel" not in known and len(start):
        # the kernels were screened at the network's points; where it missed sources the
        # wrong kernel can screen best and its search not recover: each other kernel
        # goes through the count search too, and replaces it where it explains the image
        # with a lower BIC (where no isotropic kernel does, as in an anisotropic medium,
        # the screened one stays the start of what follows)
        for kernel in KERNELS:
            if kernel == lead.kernel or not _applies(kernel, lead.observable):
                continue
            other = fitter.fit(start, kernel, lead.observable, lead.wavelength_px, lead.damping, 1.0,
                               2 * search_stride, known, max_nfev=12, robust=False)
            other_chosen, other_final = searched(other, alternatives=False)
            log.debug("%s: %s searched too, BIC %.1f (%s %.1f)", name, kernel, other_final.bic(), final.kernel,
                      final.bic())
            if other_final.bic() < final.bic() and explained(other_final):
                chosen, final = other_chosen, other_final
    if ORTHOTROPIC_STARTS and not explained(final) and len(start):
        # an orthotropic medium: the wavelength along an axis and a ratio across it, by BIC;
        # from the network's points (the isotropic count changes absorb the mismatch)
        oriented = _orthotropic(fitter, refit(start, chosen), known, search_stride)
        oriented = select_count(field, oriented, refit, margin, weights).fit
        oriented_final = _final_fit(fitter, oriented, known)
        log.debug("%s: orthotropic fit ratio %.3f angle %.3f, BIC %.1f (isotropic %.1f)", name,
                  *oriented_final.anisotropy, oriented_final.bic(), final.bic())
        if oriented_final.bic() < final.bic():
            chosen, final = oriented, oriented_final
    white = residual_noise(field, final, weights)
    accepted = down_to_noise(final, white)
    if accepted and len(final.xy) and model_error:
        final = replace(final, cov_xy=final.cov_xy + model_spread(field, weights, final, max_shift))
    final = replace(final, strengths=final.strengths * scale, offset=final.offset * scale + offset,
                    cov_q=final.cov_q * scale**2)
    inside = in_view(final.xy, field.shape)
    if len(final.xy) == 0:  # no source in or out of view: nothing to estimate
        if not accepted:
            return reject(f"residual {final.residual_std:.2f}x the noise level with no source", colormap=colormap,
                          noise_std=noise, residual_ratio=final.residual_std, residual_noise=white)
        return PhysicsEstimate(True, "", colormap=colormap, noise_std=noise, residual_ratio=final.residual_std,
                               residual_noise=white,
                               count_network=len(start), removed=len(start), seconds=time.perf_counter() - started,
                               mode="global"), final, None
    values = dict(kernel=final.kernel, observable=final.observable, colormap=colormap,
                  wavelength_px=final.wavelength_px, damping=None if final.kernel == "seed" else final.damping,
                  source_size_px=final.source_size_px, noise_std=noise, residual_ratio=final.residual_std,
                  residual_noise=white,
                  anisotropy_ratio=None if final.anisotropy is None else final.anisotropy[0],
                  anisotropy_angle=None if final.anisotropy is None else final.anisotropy[1],
                  count_network=len(start), count=int(inside.sum()), hidden_sources=int((~inside).sum()),
                  **_changes(start, final.xy[inside], max_shift))
    local = LocalStart(field, weights, scale, Hypothesis(final.kernel, final.observable, final.wavelength_px,
                                                         final.damping, final.source_size_px, final.anisotropy))
    if not np.all(np.isfinite(final.xy)) or not np.all(np.isfinite(final.sigma)):
        est, *_ = reject("the fit did not give finite positions", **values)
        return est, None, local
    if not accepted:
        reason = (f"residual {final.residual_std:.2f}x the noise level: no model explains the image "
                  f"(best {final.kernel} {final.observable})")
        est, *_ = reject(reason, **{k: v for k, v in values.items() if k not in ("count_network", "count")})
        return est, final, local
    return PhysicsEstimate(True, "", seconds=time.perf_counter() - started, mode="global", **values), final, local
