"""Physics refinement: least-squares fit of the wave field, started from detected points.

When the physics of a raw snapshot is known (the Green's function and the wavelength:
a membrane or a plate driven at a known frequency), the positions that the heatmap gives
(about 0.1-1 px off) can be refined to the Cramér-Rao limit by fitting the field model

    I(p) = Re( sum_j q_j G(k r_j(p)) ) + c + noise,   r_j(p) = sqrt(|p - s_j|^2 + a^2),

to the image: positions ``s_j`` (and the source size ``a``, optionally the wavelength)
by nonlinear least squares, the complex strengths ``q_j`` (the time phase included)
and the offset ``c`` by linear least squares at every step (variable projection).
The count is the detector's: the fit moves points, it never adds or removes them.

A colormap rendering of a snapshot (RGB through a known matplotlib colormap after
min-max scaling, as the simulator and most vibrometer software export) is first mapped
back to a scalar field (:func:`heatmaploc.simulate.render.invert_colormap`); the unknown
scaling is affine, so the strengths and the offset absorb it.

Coordinates follow DESIGN.md section 1: ``(x, y)`` pixels, pixel centres at integers.
Amplitude maps ``|u|`` do not fit this model, and unlabelled sources outside the image
bias the fit.
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
from heatmaploc.simulate.kernels import KERNELS, unit_fields
from heatmaploc.simulate.render import get_colormap, invert_colormap


@dataclass(frozen=True)
class FieldModel:
    """What is known of the physics of an image.

    Attributes:
        kernel: Green's function, one of ``heatmaploc.simulate.kernels.KERNELS``
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
    """

    kernel: str
    wavelength_px: float
    damping: float = 0.0
    source_size_px: float = 1.0
    fit_source_size: bool = True
    fit_wavelength: bool = False
    fit_offset: bool = True
    colormap: str | None = None

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
    image in the package's [0, 1] rule mapped back through the colormap."""
    arr = check_image(np.asarray(image), name)
    channels = channels_of(arr)
    if colormap is not None:
        if channels not in (3, 4):
            raise ValueError(f"{name}: a colormap ({colormap}) field fit needs an RGB image, got shape {arr.shape}")
        return invert_colormap(to_unit_range(arr, 3, name).transpose(1, 2, 0), colormap)
    if channels != 1:
        raise ValueError(f"{name}: the field fit needs a single-channel raw field (H, W), got shape {arr.shape}; "
                         "for an RGB colormap rendering name its colormap")
    return arr.reshape(arr.shape[:2]).astype(np.float64)


def _design(model: FieldModel, xy: np.ndarray, size: float, wavelength: float, shape: tuple[int, int]) -> np.ndarray:
    """``(H*W, 2n [+ 1])`` columns ``Re G_j``, ``-Im G_j`` per source, then a constant
    (with ``fit_offset``)."""
    h, w = shape
    n = len(xy)
    fields = unit_fields(model.kernel, xy, np.arange(w), np.arange(h), model.wavenumber(wavelength), size)
    cols = np.ones((h * w, 2 * n + int(model.fit_offset)))
    cols[:, 0:2 * n:2] = fields.real.reshape(n, -1).T
    cols[:, 1:2 * n:2] = -fields.imag.reshape(n, -1).T
    return cols


def fit_field(image: np.ndarray, xy: np.ndarray, model: FieldModel, max_shift: float = 2.0,
              name: str = "image") -> FieldFit:
    """Refine the ``(N, 2)`` start positions ``xy`` on the snapshot ``image``: raw ``(H, W)``,
    or ``(H, W, 3)`` RGB when ``model.colormap`` names its colormap.

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

    result = least_squares(lambda p: solve(p)[1], p0, bounds=(plo, phi), x_scale=1.0, method="trf")
    pos, size, wavelength = unpack(result.x)
    coef, resid = solve(result.x)
    strengths = coef[0:2 * n:2] + 1j * coef[1:2 * n:2]
    offset = float(coef[-1]) if model.fit_offset else 0.0
    return FieldFit(pos.copy(), strengths, offset, size, wavelength, float(np.sqrt(np.mean(resid**2))),
                    bool(result.success))


def refine_points(image: np.ndarray, points: Points, model: FieldModel, max_shift: float = 2.0,
                  name: str = "image") -> Points:
    """:func:`fit_field` on a :class:`~heatmaploc.points.Points` (e.g. from
    ``Localizer.predict``): the same points, scores and labels with refined ``xy``."""
    fit = fit_field(image, points.xy, model, max_shift=max_shift, name=name)
    return Points(fit.xy, scores=points.scores, labels=points.labels, frame=points.frame)


def model_from_meta(record: Mapping, **options) -> FieldModel | None:
    """The physics that a simulated image's ``meta.json`` record states (``kernel``,
    ``wavelength_px``, ``damping``, and ``colormap`` for a colormap rendering) as a
    :class:`FieldModel` whose source size starts at 1 px and is fitted (``options`` set
    other fields), or ``None`` for an amplitude map or a record without the physics."""
    if record.get("observable", "snapshot") != "snapshot" or "kernel" not in record or "wavelength_px" not in record:
        return None
    colormap = record.get("colormap") if record.get("rendering") == "colormap" else None
    return FieldModel(record["kernel"], float(record["wavelength_px"]), damping=float(record.get("damping", 0.0)),
                      colormap=colormap, **options)
