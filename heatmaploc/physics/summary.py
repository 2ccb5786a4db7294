"""What the physics refinement estimated for an image, in one line (the CLI's and the
napari widget's report of ``Points.physics``)."""
from __future__ import annotations


def physics_summary(physics: dict) -> str:
    """One line: what the blind refinement estimated, or why its fit was not used."""
    if physics.get("family") == "psf":
        if not physics["accepted"]:
            return f"point-spread fit NOT used ({physics['reason']})"
        return (f"point-spread fit: {physics['scale']} map, {physics['psf']} PSF {physics['psf_width_px']:.2f} px, "
                f"count {physics['count_network']} -> {physics['count']}, levels (dB) "
                + " ".join(f"{v:.1f}" for v in physics["levels_db"]))
    if physics["kernel"] is None and physics["accepted"]:
        return f"physics: no wave in view (noise {physics['noise_std']:.3g})"
    parts = [f"{physics['kernel']} {physics['observable']}", f"colormap {physics['colormap'] or 'none (raw)'}"]
    if physics["wavelength_px"] is not None:
        parts.append(f"wavelength {physics['wavelength_px']:.3f} px")
    if physics["damping"] is not None:
        parts.append(f"damping {physics['damping']:.4f}")
    parts.append(f"count {physics['count_network']} -> {physics['count']}")
    head = "physics fit used" if physics["accepted"] else f"physics fit NOT used ({physics['reason']})"
    return f"{head}: " + ", ".join(parts)
