"""Physics refinement: least-squares fit of the wave field, started from detected points.

When the physics of a raw snapshot is known (the Green's function and the wavelength:
a membrane or a plate driven at a known frequency), the positions that the heatmap gives
(about 0.1-1 px off) can be refined to the Cramér-Rao limit by fitting the field model

    I(p) = Re( sum_j q_j G(k r_j(p)) ) + c + noise,   r_j(p) = sqrt(|p - s_j|^2 + a^2),

to the image: positions ``s_j`` (and the source size ``a``, optionally the wavelength)
by nonlinear least squares, the complex strengths ``q_j`` (the time phase included)
and the offset ``c`` by linear least squares at every step (variable projection).
An amplitude map (what a scanning vibrometer gives) fits ``|sum_j q_j G(k r_j(p))| + c``
instead: the strengths start from a phase-retrieval estimate (alternating projections,
Gerchberg-Saxton style) and are then fitted with the positions, since ``|.|`` is not
linear in them; their common phase is not observable.
The count is the detector's: the fit moves points, it never adds or removes them.

A colormap rendering of a snapshot (RGB through a known matplotlib colormap after
min-max scaling, as the simulator and most vibrometer software export) is first mapped
back to a scalar field (:func:`heatmaploc.physics.colormap.invert_colormap`); the unknown
scaling is affine, so the strengths and the offset absorb it.

Coordinates follow docs/design.md section 1: ``(x, y)`` pixels, pixel centres at integers.
Unlabelled sources outside the image bias the fit.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from heatmaploc.data.io import channels_of, check_image
from heatmaploc.data.preprocess import to_unit_range
from heatmaploc.points import Points
from heatmaploc.physics.colormap import get_colormap, invert_colormap
from heatmaploc.physics.forward import OBSERVABLES, unit_fields
from heatmaploc.physics.kernels import KERNELS


@dataclass(frozen=True)
class FieldModel:
    """What is known of the physics of an image.

    Attributes:
        kernel: Green's function, one of ``heatmaploc.physics.kernels.KERNELS``
            (``free``: membrane / 2-D acoustics; ``plate``: Kirchhoff plate; ``seed``).
        wavelength_px: wavelength ``2 pi / Re(k)`` in pixels.
        damping: ``Im(k) / Re(k)`` (0: undamped).
        source_size_px: start value of the regularization length ``a`` (pixels).
        fit_source_size: also fit ``a`` (one value for all sources of the image).
        fit_wavelength: also fit the wavelength (within +-20 % of ``wavelength_px``).
        fit_offset: fit the constant ``c`` (otherwise ``c = 0``: the field model is
            exact, as for the simulator's raw snapshots).
        colormap: the image is an RGB rendering through this matplotlib colormap
            (``None``: a raw single-channel field).
        observable: ``"snapshot"`` (``Re u``) or ``"amplitude"`` (``|u|``).
    """

    kernel: str
    wavelength_px: float
    damping: float = 0.0
    source_size_px: float = 1.0
    fit_source_size: bool = True
    fit_wavelength: bool = False
    fit_offset: bool = True
    colormap: str | None = None
    observable: str = "snapshot"

    @classmethod
    def from_scene(cls, scene, **options) -> "FieldModel":
        """The physics of a simulated :class:`~heatmaploc.simulate.scene.Scene`: its kernel,
        wavelength, damping and source size (``options`` set or override any field)."""
        k = complex(scene.wavenumber)
        known = {"kernel": scene.kernel, "wavelength_px": scene.wavelength, "damping": k.imag / k.real,
                 "source_size_px": scene.source_size}
        return cls(**{**known, **options})

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise ValueError(f"unknown kernel {self.kernel!r}; expected one of {KERNELS}")
        if not (math.isfinite(self.wavelength_px) and self.wavelength_px > 0):
            raise ValueError(f"wavelength_px must be a positive number, got {self.wavelength_px!r}")
        if not (math.isfinite(self.damping) and self.damping >= 0):
            raise ValueError(f"damping must be >= 0, got {self.damping!r}")
        if not (math.isfinite(self.source_size_px) and self.source_size_px >= 0):
            raise ValueError(f"source_size_px must be >= 0, got {self.source_size_px!r}")
        if self.observable not in OBSERVABLES:
            raise ValueError(f"unknown observable {self.observable!r}; expected one of {OBSERVABLES}")
        if self.colormap is not None:
            get_colormap(self.colormap)
            if not self.fit_offset:
                raise ValueError("a colormap rendering is min-max scaled: its fit needs fit_offset=True")

    def wavenumber(self, wavelength_px: float | None = None) -> complex:
        """Complex ``k`` (radians per pixel) for ``wavelength_px`` (default: the model's)."""
        k = 2.0 * math.pi / (wavelength_px or self.wavelength_px)
        return complex(k, k * self.damping)


@dataclass(frozen=True)
class FieldFit:
    """Result of :func:`fit_field`.

    Attributes:
        xy: ``(N, 2)`` refined ``(x, y)`` pixels.
        strengths: ``(N,)`` complex ``q_j`` (they absorb the snapshot's time phase).
        offset: the fitted constant ``c`` (0 unless ``fit_offset``).
        source_size_px, wavelength_px: fitted (or fixed) global parameters.
        residual_std: rms of the final residual (an estimate of the noise std).
        converged: ``scipy.optimize.least_squares`` reported success.
    """

    xy: np.ndarray
    strengths: np.ndarray
    offset: float
    source_size_px: float
    wavelength_px: float
    residual_std: float
    converged: bool


def _checked_field(image: np.ndarray, name: str, colormap: str | None = None) -> np.ndarray:
    """The image as a float64 ``(H, W)`` field, after :func:`~heatmaploc.data.io.check_image`'s
    checks (dtype, shape, NaN): one channel as it is, or with ``colormap`` an RGB(A)
    image mapped back through the colormap (uint8 / 255, uint16 / 65535; floats must
    already be colours in [0, 1]: rescaling them would change the colours)."""
    arr = check_image(np.asarray(image), name)
    channels = channels_of(arr)
    if colormap is not None:
        if channels not in (3, 4):
            raise ValueError(f"{name}: a colormap ({colormap}) field fit needs an RGB image, got shape {arr.shape}")
        if arr.dtype.kind == "f":
            if arr.min() < 0 or arr.max() > 1:
                raise ValueError(f"{name}: float RGB values must lie in [0, 1] for a colormap ({colormap}) field fit, "
                                 f"got [{arr.min():g}, {arr.max():g}]")
            rgb = arr[..., :3].astype(np.float64)
        else:
            rgb = to_unit_range(arr, 3, name).transpose(1, 2, 0)
        return invert_colormap(rgb, colormap)
    if channels != 1:
        raise ValueError(f"{name}: the field fit needs a single-channel raw field (H, W), got shape {arr.shape}; "
                         "for an RGB colormap rendering name its colormap")
    return arr.reshape(arr.shape[:2]).astype(np.float64)


def _fields(model: FieldModel, xy: np.ndarray, size: float, wavelength: float, shape: tuple[int, int]) -> np.ndarray:
    """``(H*W, n)`` complex unit-source fields ``G_j`` at the pixel centres."""
    h, w = shape
    return unit_fields(model.kernel, xy, np.arange(w), np.arange(h), model.wavenumber(wavelength), size).reshape(len(xy), -1).T


def _design(model: FieldModel, xy: np.ndarray, size: float, wavelength: float, shape: tuple[int, int]) -> np.ndarray:
    """``(H*W, 2n [+ 1])`` columns ``Re G_j``, ``-Im G_j`` per source, then a constant
    (with ``fit_offset``)."""
    fields = _fields(model, xy, size, wavelength, shape)
    n = fields.shape[1]
    cols = np.ones((fields.shape[0], 2 * n + int(model.fit_offset)))
    cols[:, 0:2 * n:2] = fields.real
    cols[:, 1:2 * n:2] = -fields.imag
    return cols


def retrieve_strengths(fields: np.ndarray, amplitude: np.ndarray, fit_offset: bool = True, starts: int = 4,
                       iterations: int = 40, seed: int = 0) -> tuple[np.ndarray, float]:
    """Complex strengths ``q (n,)`` and offset ``c`` with ``|fields @ q| + c ~ amplitude``
    for fixed source fields ``(P, n)`` and amplitudes ``(P,)``: alternating projections
    (take the phase of the current field, then solve the linear least-squares problem
    ``amplitude * phase = fields @ q + c * phase``) from ``starts`` phase draws (the
    first all in phase); the best final residual wins.  ``q`` is defined up to a
    common phase."""
    n = fields.shape[1]
    # real and imaginary rows of fields @ q in the unknowns (Re q, Im q): fixed; only the
    # offset's column, c * phase, changes with the phase
    real_rows = np.vstack([np.hstack([fields.real, -fields.imag]), np.hstack([fields.imag, fields.real])])
    rng = np.random.default_rng(seed)
    best = (np.inf, np.zeros(n, np.complex128), 0.0)
    for trial in range(starts):
        q = np.ones(n, np.complex128) if trial == 0 else np.exp(2j * np.pi * rng.random(n))
        c = 0.0
        for _ in range(iterations):
            phase = np.exp(1j * np.angle(fields @ q))
            design = np.column_stack([real_rows, np.concatenate([phase.real, phase.imag])]) if fit_offset else real_rows
            rhs = amplitude * phase
            sol, *_ = np.linalg.lstsq(design, np.concatenate([rhs.real, rhs.imag]), rcond=None)
            q, c = sol[:n] + 1j * sol[n:2 * n], (float(sol[-1]) if fit_offset else 0.0)
        err = float(np.sum((np.abs(fields @ q) + c - amplitude) ** 2))
        if err < best[0]:
            best = (err, q, c)
    return best[1], best[2]


def fit_field(image: np.ndarray, xy: np.ndarray, model: FieldModel, max_shift: float = 2.0,
              name: str = "image") -> FieldFit:
    """Refine the ``(N, 2)`` start positions ``xy`` on ``image`` (a snapshot or, with
    ``model.observable == "amplitude"``, an amplitude map): raw ``(H, W)``, or
    ``(H, W, 3)`` RGB when ``model.colormap`` names its colormap.

    Each position may move at most ``max_shift`` pixels per axis (and stays inside the
    image); ``name`` is used in error messages.  ``N = 0`` returns an empty fit.
    """
    field = _checked_field(image, name, model.colormap)
    start = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    h, w = field.shape
    target = field.ravel()
    if len(start) == 0:
        offset = float(target.mean()) if model.fit_offset else 0.0
        return FieldFit(start, np.zeros(0, np.complex128), offset, model.source_size_px, model.wavelength_px,
                        float(np.sqrt(np.mean((target - offset) ** 2))), True)
    if max_shift <= 0:
        raise ValueError(f"max_shift must be > 0, got {max_shift}")
    lo = np.maximum(start - max_shift, -0.5).ravel()
    hi = np.minimum(start + max_shift, np.array([w - 0.5, h - 0.5])).ravel()
    p0, plo, phi = [start.ravel()], [lo], [hi]
    if model.fit_source_size:
        p0.append([max(model.source_size_px, 0.05)])
        plo.append([0.01])
        phi.append([5.0])
    if model.fit_wavelength:
        p0.append([model.wavelength_px])
        plo.append([0.8 * model.wavelength_px])
        phi.append([1.2 * model.wavelength_px])
    p0, plo, phi = np.concatenate(p0), np.concatenate(plo), np.concatenate(phi)
    p0 = np.clip(p0, plo + 1e-9, phi - 1e-9)
    n = len(start)

    def unpack(p: np.ndarray) -> tuple[np.ndarray, float, float]:
        i = 2 * n
        size = model.source_size_px
        if model.fit_source_size:
            size, i = float(p[i]), i + 1
        wavelength = float(p[i]) if model.fit_wavelength else model.wavelength_px
        return p[: 2 * n].reshape(n, 2), size, wavelength

    def solve(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cols = _design(model, *unpack(p), (h, w))
        coef, *_ = np.linalg.lstsq(cols, target, rcond=None)
        return coef, target - cols @ coef

    if model.observable == "amplitude":
        return _fit_amplitude(target, model, (h, w), p0, plo, phi, unpack)
    result = least_squares(lambda p: solve(p)[1], p0, bounds=(plo, phi), x_scale=1.0, method="trf")
    pos, size, wavelength = unpack(result.x)
    coef, resid = solve(result.x)
    strengths = coef[0:2 * n:2] + 1j * coef[1:2 * n:2]
    offset = float(coef[-1]) if model.fit_offset else 0.0
    return FieldFit(pos.copy(), strengths, offset, size, wavelength, float(np.sqrt(np.mean(resid**2))),
                    bool(result.success))


def _fit_amplitude(target: np.ndarray, model: FieldModel, shape: tuple[int, int], p0: np.ndarray, plo: np.ndarray,
                   phi: np.ndarray, unpack) -> FieldFit:
    """:func:`fit_field` for an amplitude map: strengths from :func:`retrieve_strengths`
    at the start, then positions, global parameters, strengths and offset together."""
    m = len(p0)
    q0, c0 = retrieve_strengths(_fields(model, *unpack(p0), shape), target, model.fit_offset)
    n = len(q0)

    def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        return x[:m], x[m:m + n] + 1j * x[m + n:m + 2 * n], (float(x[-1]) if model.fit_offset else 0.0)

    def residual(x: np.ndarray) -> np.ndarray:
        p, q, c = split(x)
        return np.abs(_fields(model, *unpack(p), shape) @ q) + c - target

    def jacobian(x: np.ndarray) -> np.ndarray:
        # d|u| = Re(conj(u) du) / |u|: exact in q and c; central differences of the
        # fields in the positions (one source's field per coordinate) and globals.
        p, q, _ = split(x)
        _, size, wavelength = unpack(p)
        fields = _fields(model, *unpack(p), shape)
        u = fields @ q
        conj_unit = np.conj(u) / np.maximum(np.abs(u), 1e-12)
        jac = np.empty((len(target), len(x)))
        for i in range(m):
            step = 1e-5 * max(1.0, abs(p[i]))
            plus, minus = p.copy(), p.copy()
            plus[i] += step
            minus[i] -= step
            if i < 2 * n:  # a coordinate of source i // 2
                j = i // 2
                xy_plus, xy_minus = unpack(plus)[0][j:j + 1], unpack(minus)[0][j:j + 1]
                du = q[j] * (_fields(model, xy_plus, size, wavelength, shape)
                             - _fields(model, xy_minus, size, wavelength, shape))[:, 0]
            else:
                du = (_fields(model, *unpack(plus), shape) - _fields(model, *unpack(minus), shape)) @ q
            jac[:, i] = np.real(conj_unit * du) / (2 * step)
        jac[:, m:m + n] = np.real(conj_unit[:, None] * fields)
        jac[:, m + n:m + 2 * n] = -np.imag(conj_unit[:, None] * fields)
        if model.fit_offset:
            jac[:, -1] = 1.0
        return jac

    free = 2 * n + int(model.fit_offset)
    x0 = np.concatenate([p0, q0.real, q0.imag, [c0] if model.fit_offset else []])
    lo, hi = np.concatenate([plo, np.full(free, -np.inf)]), np.concatenate([phi, np.full(free, np.inf)])
    result = least_squares(residual, x0, jac=jacobian, bounds=(lo, hi), x_scale="jac", method="trf")
    p, q, c = split(result.x)
    pos, size, wavelength = unpack(p)
    return FieldFit(pos.copy(), q, c, size, wavelength, float(np.sqrt(np.mean(residual(result.x) ** 2))),
                    bool(result.success))


def refine_points(image: np.ndarray, points: Points, model: FieldModel, max_shift: float = 2.0,
                  name: str = "image") -> Points:
    """:func:`fit_field` on a :class:`~heatmaploc.points.Points` (e.g. from
    ``Localizer.predict``): the same points, scores and labels with refined ``xy``."""
    fit = fit_field(image, points.xy, model, max_shift=max_shift, name=name)
    return Points(fit.xy, scores=points.scores, labels=points.labels, frame=points.frame)


def model_from_meta(record: Mapping, **options) -> FieldModel | None:
    """The physics that a simulated image's ``meta.json`` record states (``kernel``,
    ``wavelength_px``, ``damping``, ``observable``, and ``colormap`` for a colormap
    rendering) as a :class:`FieldModel` whose source size starts at 1 px and is fitted
    (``options`` set other fields), or ``None`` for a record without the physics."""
    if "kernel" not in record or "wavelength_px" not in record:
        return None
    colormap = record.get("colormap") if record.get("rendering") == "colormap" else None
    return FieldModel(record["kernel"], float(record["wavelength_px"]), damping=float(record.get("damping", 0.0)),
                      colormap=colormap, observable=record.get("observable", "snapshot"), **options)
