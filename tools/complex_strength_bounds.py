"""Relative strength bounds of configs/bench/complex.yaml's isolated suites, with the
image's globals (source size, wavelength, damping, offset) known and unknown, on the
same scenes the benchmark builds; with a report.json of that benchmark, the measured
relative strength RMSE over each.

    python tools/complex_strength_bounds.py [docs/benchmark/complex/report.json]
"""
import numpy as np
from heatmaploc.bench.config import load_bench_config
from heatmaploc.bench.measures import amplitude_crlb_of_suite
from heatmaploc.bench.suites import build_suite
cfg = load_bench_config("configs/bench/complex.yaml")
for spec in cfg.suites:
    if spec.group != "crlb":
        continue
    suite = build_suite(spec)
    known = amplitude_crlb_of_suite(suite)
    unknown = amplitude_crlb_of_suite(suite, unknown_globals=True)
    print(f"{spec.name}: relative strength CRLB rms, globals known {np.sqrt(np.mean(known**2)):.4f}, "
          f"globals unknown {np.sqrt(np.mean(unknown**2)):.4f}")
import json, sys
if len(sys.argv) > 1:
    report = json.loads(open(sys.argv[1]).read())
    for spec in cfg.suites:
        if spec.group != "crlb":
            continue
        blind = report["physics"][spec.name]["blind"]
        suite = build_suite(spec)
        unknown = np.sqrt(np.mean(amplitude_crlb_of_suite(suite, unknown_globals=True) ** 2))
        print(f"{spec.name}: measured relative strength RMSE {blind['strength_rel_rmse']:.6f} over {blind['strength_n']} "
              f"sources; / bound (globals known) {blind['strength_rmse_over_crlb']:.2f}; / bound (globals unknown) "
              f"{blind['strength_rel_rmse'] / unknown:.2f}")
