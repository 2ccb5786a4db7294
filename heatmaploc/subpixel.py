"""Sub-pixel refinement of heatmap peaks (the codec's ``decode`` calls these).

Every function works on all peaks of a batch at once: ``maps`` ``(BK, H, W)`` (one
heatmap per image and class), integer peak pixels ``px, py`` ``(BK, P)`` and their
``valid`` mask, and returns float64 offsets ``(dx, dy)`` ``(BK, P)`` from the peak
pixel (docs/design.md section 1 pixels).
"""
from __future__ import annotations

import torch

REGRESSION_CHANNELS = 3  # dx, dy, log sigma after the K heatmaps


def read_regression(reg: torch.Tensor, idx: torch.Tensor, k: int):
    """``dx, dy, log sigma`` (float64 ``(BK, P)``) at flat pixel indices ``idx``
    ``(BK, P)`` of the ``(B, 3, H, W)`` regression maps shared by the ``K`` classes."""
    b = reg.shape[0]
    rows = reg.reshape(b, REGRESSION_CHANNELS, -1).repeat_interleave(k, dim=0)  # (BK, 3, HW)
    vals = torch.gather(rows, 2, idx.unsqueeze(1).expand(-1, REGRESSION_CHANNELS, -1)).double()
    return vals[:, 0], vals[:, 1], vals[:, 2]


def window(r: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S,)`` column and row offsets of a ``(2r+1)^2`` window, raster order."""
    off = torch.arange(-r, r + 1, device=device)
    oy, ox = torch.meshgrid(off, off, indexing="ij")
    return ox.reshape(-1), oy.reshape(-1)


def softargmax(maps: torch.Tensor, px: torch.Tensor, py: torch.Tensor, valid: torch.Tensor, r: int, sigma: float,
               subtract_background: bool = True, debias: bool = True):
    """Centroid of each peak's ``(2r+1)^2`` window (pixels inside the image and in the
    peak's own basin; the window minimum subtracted when ``subtract_background``),
    with its truncation bias removed (``debias``) for Gaussian peaks of width ``sigma``."""
    bk, h, w = maps.shape
    ox, oy = window(r, maps.device)  # (S,)
    gx = px.unsqueeze(-1) + ox  # (BK, P, S)
    gy = py.unsqueeze(-1) + oy
    inside = (gx >= 0) & (gx < w) & (gy >= 0) & (gy < h)
    flat_idx = (gy.clamp(0, h - 1) * w + gx.clamp(0, w - 1)).reshape(bk, -1)
    vals = torch.gather(maps.reshape(bk, -1), 1, flat_idx).reshape(gx.shape).double()
    keep = inside & basin(px, py, valid, ox, oy) & valid.unsqueeze(-1)
    oxd, oyd = ox.double(), oy.double()
    mx, my = centroid(vals, keep, oxd, oyd, subtract_background)
    if not debias:
        return mx, my
    return debiased(mx, my, keep, oxd, oyd, sigma, r, subtract_background)


def basin(px, py, valid, ox, oy) -> torch.Tensor:
    """``(BK, P, S)``: window pixels at least as close to their own peak as to any
    of its nearest other peaks (ties kept on both sides)."""
    bk, p = px.shape
    if p < 2:
        return torch.ones(bk, p, ox.numel(), dtype=torch.bool, device=px.device)
    pxf, pyf = px.double(), py.double()
    d2 = (pxf.unsqueeze(2) - pxf.unsqueeze(1)) ** 2 + (pyf.unsqueeze(2) - pyf.unsqueeze(1)) ** 2
    blocked = ~valid.unsqueeze(1) | torch.eye(p, dtype=torch.bool, device=px.device).unsqueeze(0)
    d2 = d2.masked_fill(blocked, float("inf"))
    m = min(8, p - 1)
    near_d2, near = torch.topk(d2, m, dim=2, largest=False)  # (BK, P, M)
    qx = torch.gather(pxf, 1, near.reshape(bk, -1)).reshape(bk, p, m)
    qy = torch.gather(pyf, 1, near.reshape(bk, -1)).reshape(bk, p, m)
    sx = pxf.unsqueeze(-1) + ox.double()  # (BK, P, S)
    sy = pyf.unsqueeze(-1) + oy.double()
    other = (sx.unsqueeze(-1) - qx.unsqueeze(2)) ** 2 + (sy.unsqueeze(-1) - qy.unsqueeze(2)) ** 2
    other = other.masked_fill(torch.isinf(near_d2).unsqueeze(2), float("inf"))
    own = (ox.double() ** 2 + oy.double() ** 2).reshape(1, 1, -1)
    return own <= other.min(dim=-1).values


def centroid(vals, keep, ox, oy, subtract_background: bool = True):
    """Centroid offsets of ``vals`` over ``keep`` with the background rule."""
    big = torch.finfo(vals.dtype).max
    if subtract_background:
        bg = torch.where(keep, vals, torch.full_like(vals, big)).min(dim=-1, keepdim=True).values
        bg = torch.where(torch.isfinite(bg) & (bg < big), bg, torch.zeros_like(bg))
    else:
        bg = torch.zeros_like(vals[..., :1])
    wts = torch.where(keep, (vals - bg).clamp(min=0.0), torch.zeros_like(vals))
    total = wts.sum(-1)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    mx = torch.where(total > 0, (wts * ox).sum(-1) / safe, torch.zeros_like(total))
    my = torch.where(total > 0, (wts * oy).sum(-1) / safe, torch.zeros_like(total))
    return mx, my


def debiased(mx, my, keep, ox, oy, sigma: float, r: int, subtract_background: bool = True, steps: int = 6,
             eps: float = 1e-3):
    """Solve ``centroid(ideal Gaussian at c) = (mx, my)`` for ``c`` by Newton steps
    with a diagonal finite-difference Jacobian, on the same kept pixels."""
    inv = 1.0 / (2.0 * sigma**2)
    r = float(r)

    def model(cx, cy):
        g = torch.exp(-((ox - cx.unsqueeze(-1)) ** 2 + (oy - cy.unsqueeze(-1)) ** 2) * inv)
        return centroid(g, keep, ox, oy, subtract_background)

    cx, cy = mx.clone(), my.clone()
    for _ in range(steps):
        fx, fy = model(cx, cy)
        jx = (model(cx + eps, cy)[0] - fx) / eps
        jy = (model(cx, cy + eps)[1] - fy) / eps
        cx = (cx + (mx - fx) / jx.clamp(min=0.05)).clamp(-r, r)
        cy = (cy + (my - fy) / jy.clamp(min=0.05)).clamp(-r, r)
    return cx, cy


def parabola(maps: torch.Tensor, px: torch.Tensor, py: torch.Tensor):
    """Log-parabola vertex on each axis through the peak and its two neighbours."""
    bk, h, w = maps.shape
    flat = maps.reshape(bk, -1).double().clamp(min=1e-12).log()

    def at(x, y):
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        v = torch.gather(flat, 1, (y.clamp(0, h - 1) * w + x.clamp(0, w - 1)))
        return v, inside

    c, _ = at(px, py)
    offsets = []
    for dxs, dys in (((-1, 1), (0, 0)), ((0, 0), (-1, 1))):
        lo, ok_lo = at(px + dxs[0], py + dys[0])
        hi, ok_hi = at(px + dxs[1], py + dys[1])
        curv = lo - 2 * c + hi
        ok = ok_lo & ok_hi & (curv < 0)
        off = torch.where(ok, 0.5 * (lo - hi) / torch.where(ok, curv, -torch.ones_like(curv)), torch.zeros_like(c))
        offsets.append(off.clamp(-0.5, 0.5))
    return offsets[0], offsets[1]
