"""What one wave-field fit states and solves: the model (:class:`Hypothesis`), the
options (:class:`FitOptions`, :class:`PlaneWaves`), and the least-squares problem
(:class:`WaveProblem`: parameter layout, residual and its exact Jacobian) that
:func:`heatmaploc.physics.wavefit.fit_wave` hands to ``scipy.optimize.least_squares``.

The parameter vector is, in this order: ``x, y`` per source | ``Re q`` of the sources,
then of the plane waves | ``Im q`` likewise | the offset ``c`` (``Re, Im`` for a complex
field; absent when not fitted) | the free globals among source size ``a``, wavelength
``lambda`` and damping ``d`` | the plane waves' angles | the anisotropy's ratio and
angle (when fitted).  Every kernel is a function of ``k r``, so all derivatives follow
from ``dG/dr`` (:func:`heatmaploc.physics.forward.radial_fields`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from heatmaploc.physics.forward import anisotropy_metric, map_offsets, radial_fields
from heatmaploc.physics.kernels import FIT_TABLE_STEP, wavenumber
from heatmaploc.physics.wavelinear import plane_wave_paths

WAVELENGTH_RANGE = (0.75, 1.35)  # fitted wavelength bounds, as factors of the start value
HUBER_SCALE = 3.0  # where the robust loss turns linear, in units of the residual's scale


@dataclass(frozen=True)
class Hypothesis:
    """A wave model and the start (or held) values of its globals: kernel
    (``KERNELS``), observable (``snapshot``, ``amplitude``, or ``complex`` for a complex
    field), wavelength (pixels), damping, source size (pixels) and anisotropy
    ``(ratio, angle)`` (:func:`~heatmaploc.physics.forward.anisotropy_metric`; ``None``:
    isotropic)."""

    kernel: str
    observable: str
    wavelength_px: float
    damping: float = 0.0
    source_size_px: float = 1.0
    anisotropy: tuple[float, float] | None = None


@dataclass(frozen=True)
class FitOptions:
    """How :func:`fit_wave` fits a :class:`Hypothesis`.

    Attributes:
        fit_wavelength, fit_damping, fit_size, fit_offset, fit_anisotropy: which
            globals are free (the seed kernel has no damping; an anisotropy only when
            the hypothesis has one).
        wavelength_range: bounds of a fitted wavelength, as factors of the start.
        max_shift: the default box of every position: the start ``+- max_shift``
            inside the image.
        stride: fit every ``stride``-th pixel of each axis (a cheaper, noisier fit).
        robust: Huber loss with its corner at ``HUBER_SCALE`` (residuals in units of
            the noise, so with weights), by one reweighting of the converged quadratic
            fit: heavy-tailed errors, e.g. a colormap inverted under strong noise, lose
            their pull; the fit's ``rss`` is then the Huber cost, which equals the RSS
            where no residual passes the corner.
        table_step: kernel table step (px; ``None``: exact kernel values, slower).
        max_nfev: evaluations of each ``least_squares`` run.
        tr_solver: ``least_squares``'s trust-region solver: ``lsmr`` (iterative, for
            the many parameters of a whole image) or ``exact`` (dense, faster for the
            few of a small window with single-threaded BLAS).
    """

    fit_wavelength: bool = True
    fit_damping: bool = True
    fit_size: bool = True
    fit_offset: bool = True
    fit_anisotropy: bool = True
    wavelength_range: tuple[float, float] = WAVELENGTH_RANGE
    max_shift: float = 2.0
    stride: int = 1
    robust: bool = False
    table_step: float | None = FIT_TABLE_STEP
    max_nfev: int = 60
    tr_solver: str = "lsmr"


@dataclass(frozen=True)
class PlaneWaves:
    """Plane waves ``b exp(i Re(k) e_m . (p - origin))`` that join the sources (what
    arrives from outside a window: reflections, sources out of reach): ``count`` of
    them, their phase reference ``origin`` ``(x, y)`` and their start directions
    ``angles (count,)`` in radians (``None``: the strongest directions on the
    wavelength's ring of the spectrum of what a fit without them leaves,
    :func:`~heatmaploc.physics.spectrum.ring_directions`).  Their complex amplitudes
    are fitted like strengths, their directions too."""

    count: int
    origin: tuple[float, float] = (0.0, 0.0)
    angles: np.ndarray | None = None


@dataclass
class WaveProblem:
    """One fit's data and layout (module docstring).

    Attributes:
        kernel, observable: the hypothesis; wavelength, damping, source_size: the
            values of the globals that are held.
        xs, ys: ``(w,)``, ``(h,)`` pixel coordinates of the fitted grid; grid_x,
            grid_y: ``(P,)`` offsets of its pixels from the plane waves' origin.
        data: ``(P,)`` values (``(2 P,)`` for a complex field: real, then imaginary
            parts); weight_data: their weights (``None``: 1).
        n, m: sources and plane waves; globals_free: names of the free globals.
        fit_offset, fit_anisotropy: whether those are parameters; anisotropy: the
            held (or start) ``(ratio, angle)``, ``None`` for isotropic.
        table_step: kernel table step; fixed_field: ``(P,)`` complex field added and
            held.
    """

    kernel: str
    observable: str
    wavelength: float
    damping: float
    source_size: float
    xs: np.ndarray
    ys: np.ndarray
    grid_x: np.ndarray
    grid_y: np.ndarray
    data: np.ndarray
    weight_data: np.ndarray | None
    n: int
    m: int
    globals_free: list[str]
    fit_offset: bool
    fit_anisotropy: bool
    anisotropy: tuple[float, float] | None
    table_step: float | None
    fixed_field: np.ndarray | None

    def __post_init__(self) -> None:
        self.nt = self.n + self.m
        self.complex_data = self.observable == "complex"
        self.amplitude = self.observable == "amplitude"
        self.i_q = 2 * self.n
        self.i_c = 2 * self.n + 2 * self.nt
        self.n_offset = (2 if self.complex_data else 1) if self.fit_offset else 0
        self.i_g = self.i_c + self.n_offset
        self.i_t = self.i_g + len(self.globals_free)
        self.i_a = self.i_t + self.m  # ratio, angle of a fitted anisotropy
        self.irls = np.ones(len(self.data))  # robust reweighting factors (1: quadratic loss)
        self._cache: dict[bytes, tuple] = {}

    def metric_of(self, x: np.ndarray) -> np.ndarray | None:
        """The ``(2, 2)`` anisotropy metric at ``x`` (``None``: isotropic)."""
        if self.anisotropy is None:
            return None
        return anisotropy_metric(*(x[self.i_a:self.i_a + 2] if self.fit_anisotropy else self.anisotropy))

    def unpack(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, complex, float, float, float]:
        """``(positions (n, 2), q (n + m,), c, a, lambda, d)`` of ``x``."""
        n, nt, i_c = self.n, self.nt, self.i_c
        g = dict(zip(self.globals_free, x[self.i_g:self.i_t]))
        q = x[self.i_q:self.i_q + nt] + 1j * x[self.i_q + nt:i_c]
        c = (complex(x[i_c], x[i_c + 1]) if self.complex_data else float(x[i_c])) if self.fit_offset else 0.0
        return (x[:2 * n].reshape(n, 2), q, c, g.get("a", self.source_size), g.get("lambda", self.wavelength),
                g.get("d", self.damping))

    def observed(self, z: np.ndarray, u: np.ndarray) -> np.ndarray:
        """What a change ``z (k, P)`` of the complex field changes in the data
        ``(k, len(data))``, to first order at the field ``u``."""
        if self.amplitude:
            return np.real(np.conj(u) / np.maximum(np.abs(u), 1e-12) * z)
        if self.complex_data:
            return np.concatenate([z.real, z.imag], axis=-1)
        return z.real

    def mapped_grid(self, metric: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        return map_offsets(metric, self.grid_x, self.grid_y)

    def evaluate(self, x: np.ndarray) -> tuple:
        """The model's pieces at ``x`` (cached for the last ``x``): positions, q, c, a,
        lambda, d, unit fields ``g (n + m, P)``, ``dG/dr``, distances, offsets, the field
        ``u (P,)`` and the plane waves' paths."""
        key = x.tobytes()
        if key not in self._cache:
            pos, q, c, a, lam, d = self.unpack(x)
            metric = self.metric_of(x)
            g, dg, r, offsets = radial_fields(self.kernel, pos, self.xs, self.ys, wavenumber(lam, d), a,
                                              table_step=self.table_step, metric=metric)
            theta = x[self.i_t:self.i_a]
            waves = plane_wave_paths(theta, *self.mapped_grid(metric))
            plane = np.exp(1j * (2 * math.pi / lam) * waves)
            u = q[:self.n] @ g + q[self.n:] @ plane
            if self.fixed_field is not None:
                u = u + self.fixed_field
            g = np.vstack([g, plane])
            self._cache.clear()
            self._cache[key] = (pos, q, c, a, lam, d, g, dg, r, offsets, u, waves)
        return self._cache[key]

    def residual(self, x: np.ndarray) -> np.ndarray:
        """Weighted (and robustly reweighted) model minus data at ``x``."""
        u = self.evaluate(x)[10]
        c = self.unpack(x)[2]
        if self.complex_data:
            model = np.concatenate([u.real + np.real(c), u.imag + np.imag(c)])
        else:
            model = (np.abs(u) if self.amplitude else u.real) + c
        res = (model - self.data) * self.irls
        return res if self.weight_data is None else res * self.weight_data

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """The exact ``(len(data), len(x))`` Jacobian of :meth:`residual`."""
        n, m, nt = self.n, self.m, self.nt
        i_q, i_c, i_t, i_a = self.i_q, self.i_c, self.i_t, self.i_a
        observed = self.observed
        pos, q, c, a, lam, d, g, dg, r, offsets, u, waves = self.evaluate(x)
        jac = np.empty((len(self.data), len(x)))
        qdg = q[:n, None] * dg
        metric = self.metric_of(x)
        # d r / d s = -M^T (M (p - s)) / r: the mapped offsets taken back through M^T
        back = offsets if metric is None else np.einsum("ji,jnp->inp", metric, offsets)
        jac[:, 0:2 * n:2] = observed(-qdg * back[0] / r, u).T
        jac[:, 1:2 * n:2] = observed(-qdg * back[1] / r, u).T
        jac[:, i_q:i_q + nt] = observed(g, u).T
        jac[:, i_q + nt:i_c] = observed(1j * g, u).T
        if self.complex_data and self.fit_offset:
            half = len(self.data) // 2
            jac[:, i_c:i_c + 2] = 0.0
            jac[:half, i_c] = 1.0
            jac[half:, i_c + 1] = 1.0
        elif self.fit_offset:
            jac[:, i_c] = 1.0
        column = self.i_g
        for name in self.globals_free:
            if name == "a":
                du = (qdg * (a / r)).sum(axis=0)
            elif name == "lambda":
                du = (qdg * (-r / lam)).sum(axis=0)
                if m:  # d/dlambda of exp(i (2 pi / lambda) phase) = -i (2 pi / lambda^2) phase exp(...)
                    du = du + (q[n:, None] * g[n:] * waves * (-2j * math.pi / lam**2)).sum(axis=0)
            else:
                du = (qdg * r).sum(axis=0) * (1j / (1 + 1j * d))
            jac[:, column] = observed(du[None], u)[0]
            column += 1
        theta = x[i_t:i_a]
        mx, my = self.mapped_grid(metric)
        across = -np.sin(theta)[:, None] * mx + np.cos(theta)[:, None] * my  # d(phase)/d(angle)
        jac[:, i_t:i_a] = observed(q[n:, None] * g[n:] * across * (2j * math.pi / lam), u).T
        if self.fit_anisotropy:
            ratio = x[i_a]
            # the mapped offsets (u', v'): d/d ratio (0, -v'/ratio), d/d angle (ratio v', -u'/ratio)
            dr_ratio = -offsets[1] ** 2 / (ratio * r)
            dr_angle = offsets[0] * offsets[1] * (ratio - 1.0 / ratio) / r
            k_plane = 2j * math.pi / lam
            ex, ey = np.cos(theta)[:, None], np.sin(theta)[:, None]
            path_ratio = ey * (-my / ratio)
            path_angle = ex * (ratio * my) + ey * (-mx / ratio)
            for column, dr, dpath in ((i_a, dr_ratio, path_ratio), (i_a + 1, dr_angle, path_angle)):
                du = (qdg * dr).sum(axis=0) + (q[n:, None] * g[n:] * k_plane * dpath).sum(axis=0)
                jac[:, column] = observed(du[None], u)[0]
        jac *= self.irls[:, None]
        return jac if self.weight_data is None else jac * self.weight_data[:, None]
