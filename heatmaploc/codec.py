"""HeatmapCodec: every conversion between point lists and heatmaps.

Coordinates are docs/design.md section 1 pixels: ``(x, y)``, pixel centres at integers.
Heatmaps are ``(K, H, W)`` (one channel per source class) or ``(B, K, H, W)`` (batched)
at the input resolution, numpy arrays: decoding needs no torch.

Decoding (``decode``): sigmoid (for logits) -> max-filter NMS -> peaks above
``threshold`` (at most ``max_peaks`` per image and class, a cap that logs a warning
when it drops peaks; large maps are decoded in blocks without it,
:func:`heatmaploc.tiling.decode_in_blocks`) -> sub-pixel
refinement (:mod:`heatmaploc.subpixel`), vectorized over all peaks of the batch:

* ``"softargmax"`` (default): centroid of the heatmap over a ``(2R+1)^2`` window
  (``R >= 2 sigma``) around the peak pixel, with the window minimum subtracted, using
  only pixels inside the image and inside the peak's own basin (pixels closer to this
  peak than to any other).  A truncated window, an image border or a basin cut makes
  a plain centroid biased towards the kept pixels; the codec removes that bias by
  solving ``centroid(ideal Gaussian at c, same pixels, same rule) = observed centroid``
  for ``c`` with a few Newton steps (the target shape is known: it is what we train).
* ``"argmax"``: the integer peak pixel.
* ``"parabola"``: a 3-point parabola through the log heatmap on each axis.
* ``"offset"``: the peak pixel plus the network's own sub-pixel offset ``(dx, dy)``
  read at that pixel (models with a regression head, CenterNet/DECODE-style).

Regression maps: a model with a regression head outputs ``K + 3`` channels, the ``K``
heatmaps followed by ``dx``, ``dy`` (pixels, source minus pixel centre) and
``log sigma`` (the predicted standard deviation of each coordinate's error, pixels).
``decode`` tells the two layouts apart by the channel count and multiplies the sigmas
by ``sigma_scale`` (calibrated on validation data); ``encode_offsets`` renders
the regression targets: around each source the ``(2 offset_reach + 1)^2`` pixels
nearest to it carry ``source - pixel``.  Every decoded point carries ``sigma``: the
head's value at the peak pixel in ``"offset"`` mode, NaN (unknown) otherwise.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import maximum_filter
from scipy.special import expit
from skimage.draw import disk

from heatmaploc import subpixel
from heatmaploc.points import Points
from heatmaploc.subpixel import REGRESSION_CHANNELS

log = logging.getLogger(__name__)

REFINE_MODES = ("softargmax", "argmax", "parabola", "offset")
LOG_SIGMA_RANGE = (-7.0, 3.0)  # clamp of the predicted log sigma (pixels)


@dataclass(frozen=True)
class CodecConfig:
    """Geometry and decoding parameters (saved with every checkpoint).

    Attributes:
        sigma: Gaussian width of a source in the target heatmap (pixels).
        threshold: minimum peak probability for a detection.
        nms_kernel: odd max-pool size of the peak test.
        window_radius: soft-argmax half-window ``R``; ``None`` -> ``ceil(2.5 sigma)``.
        refine: one of ``REFINE_MODES``.
        subtract_background: subtract the window minimum before the centroid.
        debias: remove truncation bias of the soft-argmax (see module docstring).
        max_peaks: cap on peaks per image and class of a whole-map decode (a warning
            names it when peaks are dropped; block decoding has none).
        num_classes: heatmap channels ``K``.
        mask_radius: disk radius (pixels) of ground-truth masks for pixel metrics.
        offset_reach: Chebyshev half-size of the block of pixels around each source's
            nearest pixel that carries offset targets (1: the 3x3 block).
        sigma_scale: factor on the regression head's sigmas, calibrated on validation
            data after training (:func:`heatmaploc.evaluation.sigma_scale`).
    """

    sigma: float = 2.0
    threshold: float = 0.5
    nms_kernel: int = 3
    window_radius: int | None = None
    refine: str = "softargmax"
    subtract_background: bool = True
    debias: bool = True
    max_peaks: int = 256
    num_classes: int = 1
    mask_radius: float = 3.0
    offset_reach: int = 1
    sigma_scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ValueError(f"nms_kernel must be odd and >= 1, got {self.nms_kernel}")
        if self.refine not in REFINE_MODES:
            raise ValueError(f"refine must be one of {REFINE_MODES}, got {self.refine!r}")
        if self.window_radius is not None and self.window_radius < 1:
            raise ValueError(f"window_radius must be >= 1, got {self.window_radius}")
        if not (math.isfinite(self.sigma_scale) and self.sigma_scale > 0):
            raise ValueError(f"sigma_scale must be a positive number, got {self.sigma_scale}")
        if self.offset_reach < 0:
            raise ValueError(f"offset_reach must be >= 0, got {self.offset_reach}")
        if self.max_peaks < 1 or self.num_classes < 1:
            raise ValueError(f"max_peaks and num_classes must be >= 1, got {self.max_peaks}, {self.num_classes}")


class HeatmapCodec:
    """Points <-> heatmaps <-> masks, for one :class:`CodecConfig`."""

    def __init__(self, config: CodecConfig | None = None, **overrides) -> None:
        base = config or CodecConfig()
        self.config = CodecConfig(**{**asdict(base), **overrides}) if overrides else base

    def check_model(self, model: object, source: str = "the model") -> None:
        """A ``ValueError`` naming ``source`` when ``model`` (anything with a
        ``classes`` attribute: a registry model, an ONNX network) predicts another
        number of classes than this codec decodes."""
        classes = getattr(model, "classes", None)
        if classes is not None and int(classes) != self.config.num_classes:
            raise ValueError(f"{source} predicts {classes} class(es) but its codec decodes "
                             f"codec.num_classes={self.config.num_classes}; set one to the other")

    @property
    def radius(self) -> int:
        """Soft-argmax half-window ``R`` in pixels."""
        cfg = self.config
        return cfg.window_radius if cfg.window_radius is not None else int(math.ceil(2.5 * cfg.sigma))

    # ------------------------------------------------------------------ encode
    def encode(self, points: np.ndarray, shape: tuple[int, int], labels: np.ndarray | None = None) -> np.ndarray:
        """Render the target heatmap.

        Args:
            points: ``(N, 2)`` ``(x, y)`` pixel coordinates (``N`` may be 0).
            shape: ``(H, W)`` of the heatmap.
            labels: ``(N,)`` class indices in ``[0, K)``; all 0 when omitted.

        Returns:
            ``(K, H, W)`` float32 in [0, 1]: per class the max over unit-peak Gaussians
            ``exp(-|p - q|^2 / (2 sigma^2))`` evaluated at pixel centres ``p``.
        """
        h, w = int(shape[0]), int(shape[1])
        k = self.config.num_classes
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        lab = np.zeros(len(pts), np.int64) if labels is None else np.asarray(labels, np.int64).reshape(-1)
        if len(lab) != len(pts):
            raise ValueError(f"got {len(pts)} points but {len(lab)} labels")
        if len(lab) and (lab.min() < 0 or lab.max() >= k):
            raise ValueError(f"labels must be in [0, {k}), got {sorted(set(lab.tolist()))}")
        out = np.zeros((k, h, w), dtype=np.float32)
        sigma = self.config.sigma
        reach = int(math.ceil(4.0 * sigma))
        for (x, y), c in zip(pts, lab):
            x0, x1 = max(int(math.floor(x)) - reach, 0), min(int(math.ceil(x)) + reach + 1, w)
            y0, y1 = max(int(math.floor(y)) - reach, 0), min(int(math.ceil(y)) + reach + 1, h)
            if x0 >= x1 or y0 >= y1:
                continue
            gx = np.exp(-((np.arange(x0, x1) - x) ** 2) / (2 * sigma**2))
            gy = np.exp(-((np.arange(y0, y1) - y) ** 2) / (2 * sigma**2))
            patch = np.outer(gy, gx).astype(np.float32)
            np.maximum(out[c, y0:y1, x0:x1], patch, out=out[c, y0:y1, x0:x1])
        return out

    def encode_offsets(self, points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Render the regression targets of the offset head.

        Args:
            points: ``(N, 2)`` ``(x, y)`` pixel coordinates (any class).
            shape: ``(H, W)``.

        Returns:
            ``(3, H, W)`` float32: ``dx``, ``dy`` (source minus pixel centre, pixels)
            and a 0/1 weight.  The weight is 1 on the ``(2R + 1)^2`` block
            (``R = offset_reach``) centred on the pixel nearest to each source; a pixel
            in two blocks takes the nearer source.
        """
        h, w = int(shape[0]), int(shape[1])
        out = np.zeros((3, h, w), dtype=np.float32)
        best = np.full((h, w), np.inf)
        r = self.config.offset_reach
        for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2):
            cx, cy = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
            x0, x1, y0, y1 = max(cx - r, 0), min(cx + r + 1, w), max(cy - r, 0), min(cy + r + 1, h)
            if x0 >= x1 or y0 >= y1:
                continue
            dx = np.broadcast_to(x - np.arange(x0, x1)[None, :], (y1 - y0, x1 - x0))
            dy = np.broadcast_to(y - np.arange(y0, y1)[:, None], (y1 - y0, x1 - x0))
            d2 = dx**2 + dy**2
            block = (slice(y0, y1), slice(x0, x1))
            closer = d2 < best[block]
            best[block] = np.where(closer, d2, best[block])
            out[(0, *block)] = np.where(closer, dx, out[(0, *block)])
            out[(1, *block)] = np.where(closer, dy, out[(1, *block)])
            out[(2, *block)] = np.where(closer, 1.0, out[(2, *block)])
        return out

    def masks(self, points: np.ndarray, shape: tuple[int, int], radius: float | None = None) -> np.ndarray:
        """``(H, W)`` bool disk mask: pixel centres within ``radius`` (``<=``) of a point."""
        radius = self.config.mask_radius if radius is None else radius
        mask = np.zeros((int(shape[0]), int(shape[1])), dtype=bool)
        for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2):
            # skimage.draw.disk is open (d < r); the contract is the closed disk d <= r
            rr, cc = disk((y, x), radius + 1e-9, shape=mask.shape)
            mask[rr, cc] = True
        return mask

    # ------------------------------------------------------------------ decode
    def decode(self, heatmaps, logits: bool = False, threshold: float | None = None) -> list[Points]:
        """Heatmaps (and regression maps) -> one :class:`Points` per image (numpy; a
        torch tensor is taken too, and copied to the CPU).

        Args:
            heatmaps: ``(B, K, H, W)`` (or ``(K, H, W)``, or ``(H, W)``) probabilities,
                or logits when ``logits=True``; or ``(B, K + 3, H, W)``: the heatmaps
                followed by the regression channels ``dx, dy, log sigma`` (module
                docstring), which ``logits`` leaves alone.
            threshold: overrides ``config.threshold`` for this call.

        Returns:
            ``B`` :class:`Points` with ``xy (N, 2)`` pixels, ``scores`` (peak
            probability), ``labels`` (class channel) and ``sigma`` (pixels; NaN unless
            ``refine="offset"``).
        """
        if hasattr(heatmaps, "detach"):  # a torch tensor, without importing torch
            heatmaps = heatmaps.detach().cpu().numpy()
        hm = np.asarray(heatmaps, dtype=np.float32)
        while hm.ndim < 4:
            hm = hm[None]
        k = self.config.num_classes
        reg = self.split_regression(hm)
        hm = hm[:, :k]
        if logits:
            hm = expit(hm)
        b, _, h, w = hm.shape
        mode = self.config.refine
        if mode == "offset" and reg is None:
            raise ValueError("refine='offset' needs a model with a regression head (K + 3 output channels); "
                             f"got {k} channel(s): use refine='softargmax'")
        thr = self.config.threshold if threshold is None else float(threshold)
        flat = hm.reshape(b * k, h, w)
        peak_y, peak_x, scores, valid = self._find_peaks(flat, thr)
        if scores.shape[1] == 0:
            return [Points(np.zeros((0, 2))) for _ in range(b)]
        sigma = np.full(scores.shape, np.nan)
        limit = 1.0
        if mode == "softargmax":
            dx, dy = subpixel.softargmax(flat, peak_x, peak_y, valid, self.radius, self.config.sigma,
                                         self.config.subtract_background, self.config.debias)
        elif mode == "parabola":
            dx, dy = subpixel.parabola(flat, peak_x, peak_y)
        elif mode == "offset":
            dx, dy, log_sigma = subpixel.read_regression(reg, peak_y * w + peak_x, k)
            sigma = np.exp(np.clip(log_sigma, *LOG_SIGMA_RANGE)) * self.config.sigma_scale
            limit = self.config.offset_reach + 0.5
        else:
            dx = dy = np.zeros(scores.shape)
        # The NMS peak pixel of a unimodal blob is within half a pixel of its centre;
        # +-1 px (the offset head: its block's reach) bounds a refinement misled by a
        # flat or non-Gaussian heatmap, and the result always lies in the valid image
        # area of docs/design.md section 1.
        dx, dy = np.clip(dx, -limit, limit), np.clip(dy, -limit, limit)
        xs = np.clip(peak_x + dx, -0.5, w - 0.5 - 1e-6).reshape(b, k, -1)
        ys = np.clip(peak_y + dy, -0.5, h - 0.5 - 1e-6).reshape(b, k, -1)
        scores, valid, sigma = scores.reshape(b, k, -1), valid.reshape(b, k, -1), sigma.reshape(b, k, -1)
        classes = np.broadcast_to(np.arange(k)[:, None], valid.shape[1:])
        out = []
        for i in range(b):
            sel = valid[i]
            out.append(Points(np.stack([xs[i][sel], ys[i][sel]], axis=1), scores[i][sel].astype(np.float64),
                              classes[sel], sigma=sigma[i][sel]))
        return out

    def split_regression(self, maps: np.ndarray) -> np.ndarray | None:
        """The ``(B, 3, H, W)`` regression channels of ``(B, C, H, W)`` model maps, or
        ``None`` for plain heatmaps; any other channel count is an error."""
        k, c = self.config.num_classes, maps.shape[1]
        if c == k:
            return None
        if c == k + REGRESSION_CHANNELS:
            return maps[:, k:]
        raise ValueError(f"maps have {c} channels; expected {k} heatmaps (num_classes) or {k + REGRESSION_CHANNELS} "
                         "(heatmaps + dx, dy, log sigma)")

    def _find_peaks(self, flat: np.ndarray, threshold: float):
        """Max-filter NMS of ``(BK, H, W)`` maps. Returns ``(peak_y, peak_x, scores,
        valid)``, each ``(BK, P)``, the peaks of each map by descending score."""
        bk, h, w = flat.shape
        # A tiny raster-order ramp breaks exact ties (plateaus, half-pixel phases), so a
        # flat top yields one peak, not two.
        # float64: the ramp step must stay far below any real difference in float32.
        ramp = np.arange(h * w, 0, -1, dtype=np.float64).reshape(1, h, w)
        tie_broken = flat.astype(np.float64) + ramp * (1e-9 / (h * w))
        ks = self.config.nms_kernel
        pooled = maximum_filter(tie_broken, size=(1, ks, ks), mode="constant", cval=-np.inf)
        is_peak = (tie_broken == pooled) & (flat > np.float32(threshold))
        rows, pix = np.nonzero(is_peak.reshape(bk, -1))
        counts = np.bincount(rows, minlength=bk)
        n_max = int(counts.max()) if bk else 0
        if n_max > self.config.max_peaks:
            log.warning("%d peaks above the threshold in one heatmap; only the max_peaks=%d strongest are kept "
                        "(raise it: heatmaploc predict --max-peaks N, or Localizer.with_codec(max_peaks=N))",
                        n_max, self.config.max_peaks)
        p = min(n_max, self.config.max_peaks)
        values = flat.reshape(bk, -1)[rows, pix]
        order = np.lexsort((-values, rows))  # by map, then by descending score (stable)
        rows, pix, values = rows[order], pix[order], values[order]
        rank = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        kept = rank < p
        scores = np.full((bk, p), -1.0, np.float32)
        idx = np.zeros((bk, p), np.int64)
        scores[rows[kept], rank[kept]] = values[kept]
        idx[rows[kept], rank[kept]] = pix[kept]
        return idx // w, idx % w, scores, scores > np.float32(threshold)
