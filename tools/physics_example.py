"""Figure of the blind physics refinement on one image: the network's points, the
refined points and either the image-wide fit's residual or, where the refinement
decided per source in local windows, each point's decision, with what was estimated.

    python tools/physics_example.py examples/images/plate_0.png --out docs/figures/physics_example.png

Ground truth is drawn when a ``points.csv`` lies beside the image (or beside its
``images/`` folder).  Prints the estimate and the points before and after.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--tta", default=None, help="network test-time augmentation (default: the model's)")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from heatmaploc import Localizer
    from heatmaploc.data.inputs import ground_truth_for
    from heatmaploc.data.io import read_image
    from heatmaploc.metrics import point_metrics
    from heatmaploc.physics.blind import estimate
    from heatmaploc.physics.observation import observed_field
    from heatmaploc.physics.refine import refine_physics
    from heatmaploc.physics.model_order import model_image

    path = Path(args.image)
    image = read_image(path)
    loc = Localizer.default(tta=args.tta)
    network, candidates = loc.predict_with_support(image)
    refined = refine_physics(image, network, name=str(path), candidates=candidates)  # as predict(refine="physics")
    est = refined.physics
    truth = ground_truth_for(path, {})
    print(f"{path.name}: estimated {est}")
    for label, pts in (("network", network.xy), ("refined", refined.xy)):
        line = f"{label}: {len(pts)} points"
        if truth is not None:
            m = point_metrics([pts], [truth], 2.0)
            line += f", F1@2 {m.f1:.3f}, RMSE@2 {m.rmse:.4f} px (truth: {len(truth)})"
        print(line)

    field, _, noise = observed_field(image, str(path), {})
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.6))
    shown = image if image.ndim == 3 else field
    for ax, pts, title in ((axes[0], network.xy, f"network: {network.count} points"),
                           (axes[1], refined.xy, f"+ blind physics: {refined.count} points")):
        ax.imshow(shown, cmap=None if image.ndim == 3 else "gray")
        if truth is not None:
            ax.scatter(*truth.T, s=90, facecolors="none", edgecolors="white", linewidths=1.5, label="truth")
        ax.scatter(*pts.T, marker="x", s=60, c="red", linewidths=1.8, label="points")
        ax.set_title(title)
        ax.legend(loc="lower right", fontsize=8)
    if est["mode"] in ("local", "windowed"):
        axes[2].imshow(shown, cmap=None if image.ndim == 3 else "gray")
        colours = {"refined": "lime", "kept": "orange", "added": "cyan"}
        for (x, y), source in zip(refined.xy, est["sources"]):
            axes[2].scatter([x], [y], marker="o", s=70, facecolors="none", edgecolors=colours[source["decision"]],
                            linewidths=2)
            if "wavelength_px" in source:
                axes[2].annotate(f"{source['wavelength_px']:.1f}", (x, y), xytext=(5, 5), textcoords="offset points",
                                 color="white", fontsize=7)
        for decision, colour in colours.items():
            axes[2].scatter([], [], marker="o", facecolors="none", edgecolors=colour, label=decision)
        axes[2].legend(loc="lower right", fontsize=8)
        axes[2].set_title("local decisions (labels: each window's wavelength, px)")
    else:
        _, fit = estimate(image, network.xy, name=str(path))
        if fit is not None:
            residual = (field - model_image(fit, field.shape)) / noise
            im = axes[2].imshow(residual, cmap="RdBu_r", vmin=-4, vmax=4)
            fig.colorbar(im, ax=axes[2], fraction=0.046, label="residual / noise std")
        axes[2].set_title("fit residual (noise units)")
    damping = est.get("damping")
    outcome = {"global": "image-wide fit used", "local": "decided per source in local windows",
               "windowed": "a large image: decided per source in windows",
               "network": "kept network: " + est["reason"]}[est["mode"]]
    text = (f"{est.get('kernel')} {est.get('observable')}, colormap {est.get('colormap') or 'none (raw)'}\n"
            f"wavelength {est.get('wavelength_px') or float('nan'):.3f} px, damping "
            f"{'-' if damping is None else f'{damping:.4f}'}\n"
            f"count {est['count_network']} -> {est['count']} (+{est['added']} / -{est['removed']}), "
            f"{est['hidden_sources']} outside the view\n"
            f"image-wide residual {est.get('residual_ratio') or float('nan'):.2f} x noise: {outcome}")
    lines = text.splitlines()
    fig.suptitle(f"{path.name}: {lines[0]}, {lines[1]}\n{lines[2]}; {lines[3]}", fontsize=10)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
