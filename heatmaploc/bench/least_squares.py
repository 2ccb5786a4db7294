"""The least-squares baseline's start: a greedy matched filter with the known count (its
fit is :func:`heatmaploc.physics.fieldfit.fit_field`)."""
from __future__ import annotations

import numpy as np

from heatmaploc.physics.crlb import WaveModel, real_values, render_sources


def initial_guesses(image: np.ndarray, model: WaveModel, n: int, grid: int = 16, rng: np.random.Generator | None = None) -> np.ndarray:
    """Greedy matched-filter start ``(n, 4)`` rows ``(x, y, A, phi)`` for a least-squares
    fit with known count (:func:`heatmaploc.physics.fieldfit.fit_field`): place sources one at a
    time at the ``grid x grid`` position (plus linear amplitude/phase) that best explains
    the residual."""
    residual = real_values(np.asarray(image).reshape(image.shape[:2]))
    ys = np.linspace(0, model.height - 1, grid)
    xs = np.linspace(0, model.width - 1, grid)
    chosen = []
    for _ in range(n):
        best, best_err = None, np.inf
        for y in ys:
            for x in xs:
                basis_c = real_values(render_sources(model, np.array([[x, y, 1.0, 0.0]])))
                basis_s = real_values(render_sources(model, np.array([[x, y, 1.0, np.pi / 2]])))
                design = np.stack([basis_c, basis_s], 1)
                coef, *_ = np.linalg.lstsq(design, residual, rcond=None)
                err = np.sum((residual - design @ coef) ** 2)
                if err < best_err:
                    amp = float(np.hypot(*coef))
                    phi = float(np.arctan2(coef[1], coef[0]))  # q = c0 + i c1
                    best, best_err = np.array([x, y, amp, phi]), err
        chosen.append(best)
        residual = residual - real_values(render_sources(model, best[None]))
    return np.array(chosen).reshape(-1, 4)
