"""Physics refinement: least-squares fit of the wave field, started from detected points.

When the physics of a raw snapshot is known (the Green's function and the wavelength:
a membrane or a plate driven at a known frequency), the positions that the heatmap gives
(about 0.1-1 px off) can be refined to the Cramér-Rao limit by fitting the field model

    I(p) = Re( sum_j q_j G(k r_j(p)) ) + c + noise,   r_j(p) = sqrt(|p - s_j|^2 + a^2),

to the image: positions ``s_j``, the complex strengths ``q_j`` (the time phase
included) and the offset ``c`` (and the source size ``a``, optionally the wavelength)
together by nonlinear least squares with exact derivatives, the strengths starting
from the linear least-squares solution (:func:`heatmaploc.physics.wavefit.fit_wave`,
the fitter the blind refinement uses too).  An amplitude map (what a scanning
vibrometer gives) fits ``|sum_j q_j G(k r_j(p))| + c`` instead: the strengths start
from a phase-retrieval estimate (alternating projections, Gerchberg-Saxton style,
:func:`heatmaploc.physics.wavelinear.retrieve_strengths`); their common phase is not
observable.
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

from heatmaploc.data.io import channels_of, check_image
from heatmaploc.points import Points
from heatmaploc.physics.colormap import get_colormap, invert_colormap, rgb_colours
from heatmaploc.physics.forward import ALL_OBSERVABLES
from heatmaploc.physics.wavefit import SOURCE_SIZE_RANGE, fit_wave
from heatmaploc.physics.waveproblem import FitOptions, Hypothesis
from heatmaploc.physics.kernels import KERNELS, wavenumber


KNOWN_TABLE_STEP = 0.05  # px; Hermite interpolation error (k h)^4 / 384 < 1e-7 for wavelengths >= 4 px


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
        observable: ``"snapshot"`` (``Re u``), ``"amplitude"`` (``|u|``) or
            ``"complex"`` (``u``: a complex-valued image).
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
        if self.observable not in ALL_OBSERVABLES:
            raise ValueError(f"unknown observable {self.observable!r}; expected one of {ALL_OBSERVABLES}")
        if self.observable == "complex" and self.colormap is not None:
            raise ValueError("a complex field has no colormap rendering")
        if self.colormap is not None:
            get_colormap(self.colormap)
            if not self.fit_offset:
                raise ValueError("a colormap rendering is min-max scaled: its fit needs fit_offset=True")

    def wavenumber(self, wavelength_px: float | None = None) -> complex:
        """Complex ``k`` (radians per pixel) for ``wavelength_px`` (default: the model's)."""
        return wavenumber(wavelength_px or self.wavelength_px, self.damping)


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
    """The image as a float64 ``(H, W)`` field (complex128 for a complex image), after
    :func:`~heatmaploc.data.io.check_image`'s checks (dtype, shape, NaN): one channel as it is, or with ``colormap`` an RGB(A)
    image mapped back through the colormap (uint8 / 255, uint16 / 65535; floats must
    already be colours in [0, 1]: rescaling them would change the colours)."""
    arr = check_image(np.asarray(image), name)
    if np.iscomplexobj(arr):
        return arr.reshape(arr.shape[:2]).astype(np.complex128)
    channels = channels_of(arr)
    if colormap is not None:
        if channels not in (3, 4):
            raise ValueError(f"{name}: a colormap ({colormap}) field fit needs an RGB image, got shape {arr.shape}")
        return invert_colormap(rgb_colours(arr, name, f" for a colormap ({colormap}) field fit"), colormap)
    if channels != 1:
        raise ValueError(f"{name}: the field fit needs a single-channel raw field (H, W), got shape {arr.shape}; "
                         "for an RGB colormap rendering name its colormap")
    return arr.reshape(arr.shape[:2]).astype(np.float64)


def fit_field(image: np.ndarray, xy: np.ndarray, model: FieldModel, max_shift: float = 2.0,
              name: str = "image") -> FieldFit:
    """Refine the ``(N, 2)`` start positions ``xy`` on ``image`` (a snapshot or, with
    ``model.observable == "amplitude"``, an amplitude map): raw ``(H, W)``, or
    ``(H, W, 3)`` RGB when ``model.colormap`` names its colormap.

    Each position may move at most ``max_shift`` pixels per axis (and stays inside the
    image); ``name`` is used in error messages.  ``N = 0`` returns an empty fit.  The
    fit is :func:`heatmaploc.physics.wavefit.fit_wave` with the model's kernel,
    observable and damping held and the kernel evaluated exactly.
    """
    field = _checked_field(image, name, model.colormap)
    start = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if np.iscomplexobj(field) != (model.observable == "complex"):
        raise ValueError(f"{name}: a {'complex' if np.iscomplexobj(field) else 'real'}-valued image does not fit "
                         f"the {model.observable} observable")
    target = field.ravel()
    if len(start) == 0:
        offset = target.mean() if model.fit_offset else 0.0
        return FieldFit(start, np.zeros(0, np.complex128), offset, model.source_size_px, model.wavelength_px,
                        float(np.sqrt(np.mean(np.abs(target - offset) ** 2))), True)
    if max_shift <= 0:
        raise ValueError(f"max_shift must be > 0, got {max_shift}")
    size = max(model.source_size_px, SOURCE_SIZE_RANGE[0]) if model.fit_source_size else model.source_size_px
    fit = fit_wave(field, start, Hypothesis(model.kernel, model.observable, model.wavelength_px, model.damping, size),
                   FitOptions(fit_wavelength=model.fit_wavelength, fit_damping=False, fit_size=model.fit_source_size,
                              fit_offset=model.fit_offset, max_shift=max_shift, wavelength_range=(0.8, 1.2),
                              table_step=KNOWN_TABLE_STEP, max_nfev=100))
    return FieldFit(fit.xy, fit.strengths, fit.offset, fit.source_size_px, fit.wavelength_px, fit.residual_std,
                    fit.converged)


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
