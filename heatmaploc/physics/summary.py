"""What the physics refinement estimated for an image: the record
(:class:`PhysicsEstimate`, ``Points.physics`` as a dict) and its one line (the CLI's and
the napari widget's report)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PhysicsEstimate:
    """What the blind refinement estimated for one image (JSON-friendly via :meth:`to_dict`).

    Attributes:
        accepted: the fit replaced the network's points (else they were kept).
        reason: why the fit was rejected (empty when accepted).
        kernel, observable, colormap: the chosen model (``colormap`` None: raw field).
        wavelength_px, damping, source_size_px: fitted globals (None when not estimated).
        anisotropy_ratio, anisotropy_angle: an orthotropic medium's wavelength ratio
            (across / along the axis; ``wavelength_px`` is along it) and axis angle
            (radians from ``x`` towards ``y``, modulo pi); None: isotropic.
        noise_std: model-free noise estimate of the field (median over pixels; field
            units: the colormap's value in [0, 1] for an RGB rendering).
        residual_ratio: rms of the fit's residual in units of the per-pixel noise
            (1: down to the noise).
        residual_noise: the white-noise level of that residual (its finest wavelet
            details) in the same units: above 1 where the model-free noise estimate was
            low (:func:`heatmaploc.physics.blind.residual_noise`).
        count_network, count: points before and after; added, removed: count changes.
        hidden_sources: sources the fit placed outside the image (not reported).
        seconds: wall time of the refinement.
        mode: whose points were reported: ``global`` (the image-wide fit),
            ``local`` (windows decided per source, :mod:`heatmaploc.physics.local`),
            ``windowed`` (a large image: windows over the whole image with the model
            of a crop, :func:`heatmaploc.physics.refine.refine_windowed`) or
            ``network`` (none refined).
        unconfirmed: sources the accepted image-wide fit added that their own window
            does not need (:func:`heatmaploc.physics.local.window_needs`): not reported.
        unconfirmed_removals: network points the accepted image-wide fit dropped that
            their own window needs: reported as the network gave them.
        sources: with ``mode`` ``local`` or ``windowed``, one dict per reported point, in order: its
            ``decision`` (refined, kept, added) and its window's local fit.
        family: ``wave``, or ``none`` where the family test found nothing beyond the
            noise (a point-spread map's record is :func:`heatmaploc.physics.refine.refine_point_spread`'s).
        family_evidence: the family test's record
            (:meth:`heatmaploc.physics.family.FamilyEvidence.to_dict`); None where the
            family was stated (``known``).
    """

    accepted: bool
    reason: str
    kernel: str | None = None
    observable: str | None = None
    colormap: str | None = None
    wavelength_px: float | None = None
    damping: float | None = None
    source_size_px: float | None = None
    anisotropy_ratio: float | None = None
    anisotropy_angle: float | None = None
    noise_std: float | None = None
    residual_ratio: float | None = None
    residual_noise: float | None = None
    count_network: int = 0
    count: int = 0
    added: int = 0
    removed: int = 0
    hidden_sources: int = 0
    seconds: float = 0.0
    mode: str = "network"
    sources: list | None = None
    unconfirmed: int = 0
    unconfirmed_removals: int = 0
    family: str = "wave"
    family_evidence: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(float(v), 6) if isinstance(v, (float, np.floating)) else v) for k, v in asdict(self).items()}


def physics_summary(physics: dict) -> str:
    """One line: what the blind refinement estimated, or why its fit was not used; for
    the local and windowed paths, what the windows decided."""
    if physics.get("family") == "none":
        return f"physics: nothing to refine ({physics['reason']})"
    if physics.get("family") == "psf":
        if not physics["accepted"]:
            return f"point-spread fit NOT used ({physics['reason']})"
        chosen = physics.get("family_evidence")
        return (f"point-spread fit: {physics['scale']} map, {physics['psf']} PSF {physics['psf_width_px']:.2f} px, "
                f"count {physics['count_network']} -> {physics['count']}, levels (dB) "
                + " ".join(f"{v:.1f}" for v in physics["levels_db"])
                + (f" (family chosen by the profile: tail ratio {chosen['tail_ratio']:.3f})" if chosen else ""))
    if physics["kernel"] is None and physics["accepted"]:
        return f"physics: no wave in view (noise {physics['noise_std']:.3g})"
    parts = [f"{physics['kernel']} {physics['observable']}", f"colormap {physics['colormap'] or 'none (raw)'}"]
    if physics["wavelength_px"] is not None:
        parts.append(f"wavelength {physics['wavelength_px']:.3f} px")
    if physics["damping"] is not None:
        parts.append(f"damping {physics['damping']:.4f}")
    parts.append(f"count {physics['count_network']} -> {physics['count']}")
    if physics.get("mode") in ("local", "windowed"):
        decisions = [s["decision"] for s in physics.get("sources", [])]
        parts.append(", ".join(f"{d} {decisions.count(d)}" for d in ("refined", "kept", "added")))
        head = f"physics decided per window ({physics['reason']})"
    else:
        head = "physics fit used" if physics["accepted"] else f"physics fit NOT used ({physics['reason']})"
    return f"{head}: " + ", ".join(parts)
