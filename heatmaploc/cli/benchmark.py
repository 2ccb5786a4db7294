"""``heatmaploc benchmark``: every model on the same suites."""
from __future__ import annotations

from pathlib import Path


def add(sub) -> None:
    p = sub.add_parser("benchmark", help="every model on the same suites: report.json, report.md, plots")
    p.add_argument("--config", help="benchmark YAML (default: the built-in benchmark)")
    p.add_argument("--out", default="benchmark", help="output folder (default: ./benchmark)")
    p.add_argument("--quick", action="store_true", help="the built-in quick benchmark (a few minutes)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from heatmaploc.bench.config import load_bench_config
    from heatmaploc.bench.runner import run_benchmark

    if args.config and args.quick:
        raise ValueError("--quick selects the built-in quick benchmark; it cannot be combined with --config")
    cfg = load_bench_config(args.config, quick=args.quick)
    report = run_benchmark(cfg, args.out, progress=not args.quiet)
    print(f"benchmark done in {report['minutes']:.1f} min: {Path(args.out) / 'report.md'}, "
          f"{Path(args.out) / 'report.json'}, plots in {Path(args.out) / 'plots'}/")
    return 0
