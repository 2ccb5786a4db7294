"""``heatmaploc train``: train a model from a YAML config."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from heatmaploc.cli.common import parse_overrides


def add(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("--config", help="YAML config (default: the dataclass defaults of heatmaploc.config)")
    p.add_argument("--out", help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--init-from", metavar="CKPT", help="start from these weights ('default' = the shipped model)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=500")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from heatmaploc.api import default_checkpoint_path
    from heatmaploc.config import load_config
    from heatmaploc.training import train

    cfg = load_config(args.config, parse_overrides(args.overrides))
    out = Path(args.out) if args.out else Path("runs") / (Path(args.config).stem if args.config else "default")
    init = args.init_from or cfg.train.init_from
    init = str(default_checkpoint_path()) if init == "default" else init
    training_log = logging.getLogger("heatmaploc.training")
    training_log.setLevel(min(training_log.getEffectiveLevel(), logging.INFO))  # the per-epoch validation lines
    try:
        with logging_redirect_tqdm():
            result = train(cfg, out, resume=args.resume, init_from=init, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"heatmaploc train: interrupted; continue with: heatmaploc train --out {out} --resume"
              + (f" --config {args.config}" if args.config else ""), file=sys.stderr)
        return 130
    state = "finished" if result.finished else "stopped at the time budget"
    print(f"{state}: best val F1@{cfg.train.val_radius:g} {result.best_metric:.4f}, decode threshold {result.threshold:g}")
    print(f"best checkpoint: {result.best_checkpoint}\nlog: {out / 'log.csv'}  curves: {out / 'curves.png'}")
    return 0
