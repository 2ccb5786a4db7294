"""``heatmaploc finetune``: fine-tune the shipped model (or a checkpoint) on a labelled folder."""
from __future__ import annotations

from pathlib import Path

from heatmaploc.cli.common import positive_float
from heatmaploc.keyvalues import parse_overrides
from heatmaploc.cli.train import check_run_folder, run_training


def add(sub) -> None:
    from heatmaploc.finetune import DEFAULT_MINUTES, VAL_SHARE

    p = sub.add_parser("finetune", help="fine-tune the shipped model (or a checkpoint) on a labelled folder",
                       description="Fine-tune a trained model on a labelled dataset folder (images/ + points.csv): "
                                   "its model and codec are kept, the input channels follow the data, and the decode "
                                   "threshold and sigma factor are calibrated on the validation data.")
    p.add_argument("data", metavar="DATA", help="labelled dataset folder (images/ + points.csv)")
    share = f"{VAL_SHARE:.0%}".replace("%", "%%")  # argparse formats help with %
    p.add_argument("--val", help=f"labelled validation folder (default: {share} of DATA's images, "
                                 "chosen by their file names)")
    p.add_argument("--minutes", type=positive_float, default=DEFAULT_MINUTES,
                   help=f"training budget in minutes (default {DEFAULT_MINUTES:g}; calibration follows)")
    p.add_argument("--checkpoint", default="default", help="the model to start from (default: the shipped model)")
    p.add_argument("--out", default="runs/finetune", help="run folder (default: runs/finetune)")
    p.add_argument("--overwrite", action="store_true", help="start afresh in an --out folder that holds a run")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a value of the recipe, e.g. --set train.lr=1e-4")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from heatmaploc.finetune import finetune_config

    out = Path(args.out)
    check_run_folder(out, resume=False, overwrite=args.overwrite)
    cfg = finetune_config(args.data, val=args.val, checkpoint=args.checkpoint, minutes=args.minutes,
                          overrides=parse_overrides(args.overrides))
    held = f"{cfg.data.val_share:.0%} of {args.data}" if cfg.data.val_share is not None else args.val
    print(f"fine-tuning {args.checkpoint} on {args.data} for {args.minutes:g} min "
          f"({cfg.data.in_channels}-channel input; validation: {held})")
    result = run_training(cfg, out, resume=False, init_from=cfg.train.init_from, quiet=args.quiet)
    if result is None:
        return 130
    if result is not True:
        print(f"best val F1@{cfg.train.val_radius:g} {result.best_metric:.4f} (one pass); decode threshold "
              f"{result.threshold:g} calibrated for tta {cfg.train.tta}")
        print(f"checkpoint: {result.best_checkpoint}\npredict with: heatmaploc predict IMAGES --checkpoint "
              f"{result.best_checkpoint}")
    return 0
