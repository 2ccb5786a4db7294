"""``heatmaploc train``: train a model from a YAML config."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from heatmaploc.cli.common import parse_overrides


def add(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("--config", help="YAML config (default: the dataclass defaults of heatmaploc.config)")
    p.add_argument("--out", help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.pt, with the config the run saved (config.yaml; "
                        "--config and --set still override it)")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in an --out folder that already holds a run (its checkpoints are replaced)")
    p.add_argument("--init-from", metavar="CKPT", help="start from these weights ('default' = the shipped model)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=500")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from heatmaploc.api import default_checkpoint_path
    from heatmaploc.config import load_config
    from heatmaploc.training import train

    out = Path(args.out) if args.out else Path("runs") / (Path(args.config).stem if args.config else "default")
    existing = [name for name in ("last.pt", "best.pt", "log.csv") if (out / name).exists()]
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    if existing and not args.resume and not args.overwrite:
        raise ValueError(f"{out} already holds a run ({', '.join(existing)}); continue it with --resume, "
                         "or start afresh with --overwrite")
    source = args.config
    if args.resume and source is None:
        if not (out / "config.yaml").is_file():
            raise FileNotFoundError(f"{out / 'config.yaml'}: no saved run config to resume from; give --config")
        source = str(out / "config.yaml")
    cfg = load_config(source, parse_overrides(args.overrides))
    init = args.init_from or cfg.train.init_from
    init = str(default_checkpoint_path()) if init == "default" else init
    training_log = logging.getLogger("heatmaploc.training")
    training_log.setLevel(min(training_log.getEffectiveLevel(), logging.INFO))  # the per-epoch validation lines
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports
    try:
        with logging_redirect_tqdm():
            result = train(cfg, out, resume=args.resume, init_from=init, progress=not args.quiet)
    except KeyboardInterrupt:
        # the run saved its resolved config (overrides included): resuming reads it back, with
        # any number of processes
        if main_process:
            print(f"heatmaploc train: interrupted; continue with: heatmaploc train --out {out} --resume",
                  file=sys.stderr)
        return 130
    if not main_process:
        return 0
    state = "finished" if result.finished else "stopped at the time budget"
    print(f"{state}: best val F1@{cfg.train.val_radius:g} {result.best_metric:.4f}, decode threshold {result.threshold:g}")
    print(f"best checkpoint: {result.best_checkpoint}\nlog: {out / 'log.csv'}  curves: {out / 'curves.png'}")
    return 0
