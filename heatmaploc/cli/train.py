"""``heatmaploc train``: train a model from a YAML config."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from heatmaploc.keyvalues import parse_overrides


def add(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("--config", help="YAML config (default: the dataclass defaults of heatmaploc.config)")
    p.add_argument("--out", help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.pt, with the config the run saved (config.yaml; "
                        "--config and --set still override it)")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in an --out folder that already holds a run (its checkpoints are replaced)")
    p.add_argument("--init-from", metavar="CKPT", help="start from these weights ('default' = the shipped model), "
                                                       "adopting their model and codec (a conflicting model setting "
                                                       "is an error)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=500")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to start over a run in ``out`` without ``--resume`` or ``--overwrite``."""
    existing = [name for name in ("last.pt", "best.pt", "log.csv") if (out / name).exists()]
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    if existing and not resume and not overwrite:
        raise ValueError(f"{out} already holds a run ({', '.join(existing)}); continue it with "
                         f"heatmaploc train --out {out} --resume, or start afresh with --overwrite")


def run(args) -> int:
    from heatmaploc.config import load_config

    out = Path(args.out) if args.out else Path("runs") / (Path(args.config).stem if args.config else "default")
    check_run_folder(out, args.resume, args.overwrite)
    source = args.config
    if args.resume and source is None:
        if not (out / "config.yaml").is_file():
            raise FileNotFoundError(f"{out / 'config.yaml'}: no saved run config to resume from; give --config")
        source = str(out / "config.yaml")
    cfg = load_config(source, parse_overrides(args.overrides))
    result = run_training(cfg, out, resume=args.resume, init_from=args.init_from or cfg.train.init_from,
                          quiet=args.quiet)
    if result is None:
        return 130
    if result is not True:
        state = "finished" if result.finished else "stopped at the time budget"
        print(f"{state}: best val F1@{cfg.train.val_radius:g} {result.best_metric:.4f}, "
              f"decode threshold {result.threshold:g}")
        print(f"best checkpoint: {result.best_checkpoint}\nlog: {out / 'log.csv'}  curves: {out / 'curves.png'}")
    return 0


def run_training(cfg, out: Path, *, resume: bool, init_from: str | None, quiet: bool):
    """Train ``cfg`` into ``out`` and return the :class:`~heatmaploc.training.TrainResult`;
    ``True`` on a rank other than 0 of torchrun (which prints nothing); ``None`` after
    Ctrl-C, once the command that resumes the run is printed."""
    from heatmaploc.training import train

    training_log = logging.getLogger("heatmaploc.training")
    training_log.setLevel(min(training_log.getEffectiveLevel(), logging.INFO))  # the per-epoch validation lines
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports
    try:
        with logging_redirect_tqdm():
            result = train(cfg, out, resume=resume, init_from=init_from, progress=not quiet)
    except KeyboardInterrupt:
        # the run saved its resolved config (overrides included): resuming reads it back, with
        # any number of processes
        if main_process:
            print(f"heatmaploc train: interrupted; continue with: heatmaploc train --out {out} --resume",
                  file=sys.stderr)
        return None
    return result if main_process else True
