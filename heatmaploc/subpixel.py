"""Sub-pixel refinement of heatmap peaks (the codec's ``decode`` calls these).

Every function works on all peaks of a batch at once, in numpy (so decoding needs no
torch): ``maps`` ``(BK, H, W)`` (one heatmap per image and class), integer peak pixels
``px, py`` ``(BK, P)`` and their ``valid`` mask, and returns float64 offsets
``(dx, dy)`` ``(BK, P)`` from the peak pixel (docs/design.md section 1 pixels).
"""
from __future__ import annotations

import numpy as np

REGRESSION_CHANNELS = 3  # dx, dy, log sigma after the K heatmaps
BASIN_NEIGHBOURS = 8  # other peaks a window pixel is compared with (the nearest ones)


def read_regression(reg: np.ndarray, idx: np.ndarray, k: int):
    """``dx, dy, log sigma`` (float64 ``(BK, P)``) at flat pixel indices ``idx``
    ``(BK, P)`` of the ``(B, 3, H, W)`` regression maps shared by the ``K`` classes."""
    b = reg.shape[0]
    rows = reg.reshape(b, REGRESSION_CHANNELS, -1)[np.arange(b * k) // k]  # (BK, 3, HW)
    vals = np.take_along_axis(rows, idx[:, None, :], axis=2).astype(np.float64)
    return vals[:, 0], vals[:, 1], vals[:, 2]


def window(r: int) -> tuple[np.ndarray, np.ndarray]:
    """``(S,)`` integer column and row offsets of a ``(2r+1)^2`` window, raster order."""
    oy, ox = np.mgrid[-r : r + 1, -r : r + 1]
    return ox.reshape(-1), oy.reshape(-1)


def softargmax(maps: np.ndarray, px: np.ndarray, py: np.ndarray, valid: np.ndarray, r: int, sigma: float,
               subtract_background: bool = True, debias: bool = True):
    """Centroid of each peak's ``(2r+1)^2`` window (pixels inside the image and in the
    peak's own basin; the window minimum subtracted when ``subtract_background``),
    with its truncation bias removed (``debias``) for Gaussian peaks of width ``sigma``."""
    bk, h, w = maps.shape
    ox, oy = window(r)  # (S,)
    gx = px[..., None] + ox  # (BK, P, S)
    gy = py[..., None] + oy
    inside = (gx >= 0) & (gx < w) & (gy >= 0) & (gy < h)
    flat_idx = (np.clip(gy, 0, h - 1) * w + np.clip(gx, 0, w - 1)).reshape(bk, -1)
    vals = np.take_along_axis(maps.reshape(bk, -1), flat_idx, axis=1).reshape(gx.shape).astype(np.float64)
    keep = inside & basin(px, py, valid, ox, oy) & valid[..., None]
    oxd, oyd = ox.astype(np.float64), oy.astype(np.float64)
    mx, my = centroid(vals, keep, oxd, oyd, subtract_background)
    if not debias:
        return mx, my
    return debiased(mx, my, keep, oxd, oyd, sigma, r, subtract_background)


def basin(px, py, valid, ox, oy) -> np.ndarray:
    """``(BK, P, S)``: window pixels at least as close to their own peak as to any
    of its nearest other peaks (ties kept on both sides)."""
    bk, p = px.shape
    if p < 2:
        return np.ones((bk, p, ox.size), dtype=bool)
    pxf, pyf = px.astype(np.float64), py.astype(np.float64)
    d2 = (pxf[:, :, None] - pxf[:, None, :]) ** 2 + (pyf[:, :, None] - pyf[:, None, :]) ** 2
    blocked = ~valid[:, None, :] | np.eye(p, dtype=bool)[None]
    d2 = np.where(blocked, np.inf, d2)
    m = min(BASIN_NEIGHBOURS, p - 1)
    near = np.argsort(d2, axis=2, kind="stable")[:, :, :m]  # (BK, P, M)
    near_d2 = np.take_along_axis(d2, near, axis=2)
    qx = np.take_along_axis(pxf, near.reshape(bk, -1), axis=1).reshape(bk, p, m)
    qy = np.take_along_axis(pyf, near.reshape(bk, -1), axis=1).reshape(bk, p, m)
    sx = pxf[..., None] + ox  # (BK, P, S)
    sy = pyf[..., None] + oy
    other = (sx[..., None] - qx[:, :, None, :]) ** 2 + (sy[..., None] - qy[:, :, None, :]) ** 2
    other = np.where(np.isinf(near_d2)[:, :, None, :], np.inf, other)
    own = (ox.astype(np.float64) ** 2 + oy.astype(np.float64) ** 2).reshape(1, 1, -1)
    return own <= other.min(axis=-1)


def centroid(vals, keep, ox, oy, subtract_background: bool = True):
    """Centroid offsets of ``vals`` over ``keep`` with the background rule."""
    if subtract_background:
        bg = np.where(keep, vals, np.inf).min(axis=-1, keepdims=True)
        bg = np.where(np.isfinite(bg), bg, 0.0)
    else:
        bg = np.zeros_like(vals[..., :1])
    wts = np.where(keep, np.clip(vals - bg, 0.0, None), 0.0)
    total = wts.sum(-1)
    safe = np.where(total > 0, total, 1.0)
    mx = np.where(total > 0, (wts * ox).sum(-1) / safe, 0.0)
    my = np.where(total > 0, (wts * oy).sum(-1) / safe, 0.0)
    return mx, my


def debiased(mx, my, keep, ox, oy, sigma: float, r: int, subtract_background: bool = True, steps: int = 6,
             eps: float = 1e-3):
    """Solve ``centroid(ideal Gaussian at c) = (mx, my)`` for ``c`` by Newton steps
    with a diagonal finite-difference Jacobian, on the same kept pixels."""
    inv = 1.0 / (2.0 * sigma**2)
    r = float(r)

    def model(cx, cy):
        g = np.exp(-((ox - cx[..., None]) ** 2 + (oy - cy[..., None]) ** 2) * inv)
        return centroid(g, keep, ox, oy, subtract_background)

    cx, cy = mx.copy(), my.copy()
    for _ in range(steps):
        fx, fy = model(cx, cy)
        jx = (model(cx + eps, cy)[0] - fx) / eps
        jy = (model(cx, cy + eps)[1] - fy) / eps
        cx = np.clip(cx + (mx - fx) / np.maximum(jx, 0.05), -r, r)
        cy = np.clip(cy + (my - fy) / np.maximum(jy, 0.05), -r, r)
    return cx, cy


def parabola(maps: np.ndarray, px: np.ndarray, py: np.ndarray):
    """Log-parabola vertex on each axis through the peak and its two neighbours."""
    bk, h, w = maps.shape
    flat = np.log(np.maximum(maps.reshape(bk, -1).astype(np.float64), 1e-12))

    def at(x, y):
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        v = np.take_along_axis(flat, np.clip(y, 0, h - 1) * w + np.clip(x, 0, w - 1), axis=1)
        return v, inside

    c, _ = at(px, py)
    offsets = []
    for dxs, dys in (((-1, 1), (0, 0)), ((0, 0), (-1, 1))):
        lo, ok_lo = at(px + dxs[0], py + dys[0])
        hi, ok_hi = at(px + dxs[1], py + dys[1])
        curv = lo - 2 * c + hi
        ok = ok_lo & ok_hi & (curv < 0)
        off = np.where(ok, 0.5 * (lo - hi) / np.where(ok, curv, -1.0), 0.0)
        offsets.append(np.clip(off, -0.5, 0.5))
    return offsets[0], offsets[1]
