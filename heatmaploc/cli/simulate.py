"""``heatmaploc simulate``: write a simulated dataset."""
from __future__ import annotations

from pathlib import Path

from heatmaploc.cli.common import nonnegative_int, positive_int
from heatmaploc.keyvalues import parse_overrides
from heatmaploc.simulate import PRESETS


def add(sub) -> None:
    p = sub.add_parser("simulate", help="write a simulated dataset (images/, points.csv, meta.json)")
    g = p.add_argument_group("dataset")
    g.add_argument("--preset", default="default", help=f"simulator preset: {', '.join(sorted(PRESETS))}")
    g.add_argument("--n", type=positive_int, required=True, help="number of images")
    g.add_argument("--out", required=True, help="output dataset folder")
    g.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (same seed, same bytes)")
    g.add_argument("--start", type=nonnegative_int, default=0, help="index of the first image")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a SimConfig field, e.g. --set count_range=[0,10]")
    r = p.add_argument_group("run")
    r.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    r.add_argument("--preview", nargs="?", type=int, const=8, default=None, metavar="N",
                   help="also write OUT/preview.png with the first N images and their points (default 8)")
    p.set_defaults(func=run)


def run(args) -> int:
    from heatmaploc.data import load_dataset, read_image
    from heatmaploc.simulate import get_preset, write_dataset
    from heatmaploc.viz import plot_points_grid

    cfg = get_preset(args.preset, **parse_overrides(args.overrides))
    out = write_dataset(cfg, args.n, args.out, seed=args.seed, workers=args.workers, start=args.start)
    index = load_dataset(out)
    counts = index.counts()
    print(f"wrote {len(index)} images to {out} ({int(counts.sum())} sources, "
          f"{counts.min()}-{counts.max()} per image, preset {args.preset!r}, seed {args.seed})")
    if args.preview:
        recs = index.records[: args.preview]
        images = [read_image(r.path) for r in recs]
        titles = [f"{r.name}  n={len(r.points)}  {index.meta['images'][r.name].get('kernel', '')}" for r in recs]
        path = plot_points_grid(images, [r.points for r in recs], Path(out) / "preview.png", titles=titles)
        print(f"preview: {path}")
    return 0
