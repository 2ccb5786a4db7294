"""Model budgets of issue 3: parameters, FLOPs, CPU inference throughput and training
step time of each model, as ratios to plain smp DeepLabV3+ measured in the same run.

Models are timed in interleaved rounds (A, B, A, B, ...) and each figure is the median
over rounds, so load on the machine hits both alike.

Usage: python tools/model_budget.py [--threads 2] [--rounds 7] [--channels-last] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from heatmaploc.models import build_model, model_complexity

MODELS = {
    "heatmapnet": {},
    "heatmapnet (conv ASPP, no fusion)": {"aspp": "conv", "fusion": "none"},
    "deeplabv3plus": None,
    "unet": None,
}


def _build(label: str, overrides: dict | None):
    torch.manual_seed(0)
    name = label.split(" ")[0]
    return build_model(name, **(overrides or {}))


MEMORY_FORMAT = torch.contiguous_format


def time_inference(model, size: int, iters: int) -> float:
    x = torch.randn(1, 3, size, size).to(memory_format=MEMORY_FORMAT)
    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(iters):
            model(x)
        return iters / (time.perf_counter() - t0)


def time_train_step(model, opt, batch: int, size: int, iters: int) -> float:
    x = torch.randn(batch, 3, size, size).to(memory_format=MEMORY_FORMAT)
    t = torch.rand(batch, 1, size, size)
    t0 = time.perf_counter()
    for _ in range(iters):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), t)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / iters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--channels-last", action="store_true", help="time every model in channels_last memory format")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    global MEMORY_FORMAT
    MEMORY_FORMAT = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.set_num_threads(args.threads)
    models = {label: _build(label, o).eval().to(memory_format=MEMORY_FORMAT) for label, o in MODELS.items()}
    results: dict[str, dict] = {label: {} for label in models}
    for label, model in models.items():
        for size in (256, 512):
            c = model_complexity(model, (size, size))
            results[label]["params_m"] = c["params_m"]
            results[label][f"gflops_{size}"] = c["gflops"]
    for size, iters in ((256, 5), (512, 2)):
        samples = {label: [] for label in models}
        for label, model in models.items():  # warm-up
            time_inference(model, size, 2)
        for _ in range(args.rounds):
            for label, model in models.items():
                samples[label].append(time_inference(model, size, iters))
        for label in models:
            results[label][f"fps_{size}"] = statistics.median(samples[label])
    opts = {label: torch.optim.AdamW(m.parameters(), 1e-4) for label, m in models.items()}
    steps = {label: [] for label in models}
    for label, m in models.items():
        m.train()
        time_train_step(m, opts[label], 8, 128, 1)
    for _ in range(max(3, args.rounds // 2)):
        for label, m in models.items():
            steps[label].append(time_train_step(m, opts[label], 8, 128, 2))
    for label in models:
        results[label]["train_step_s"] = statistics.median(steps[label])
    ref = results["deeplabv3plus"]
    print(f"CPU, {args.threads} threads, {'channels_last' if args.channels_last else 'contiguous'}, batch 1 eval (fps) and batch-8 128x128 train step; ratios vs deeplabv3plus, "
          f"median of {args.rounds} interleaved rounds")
    print("| model | params (M) | GFLOPs 256 | GFLOPs 512 | fps 256 | ratio | fps 512 | ratio | train step (s) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, r in results.items():
        r["fps_ratio_256"] = r["fps_256"] / ref["fps_256"]
        r["fps_ratio_512"] = r["fps_512"] / ref["fps_512"]
        r["train_ratio"] = r["train_step_s"] / ref["train_step_s"]
        print(f"| {label} | {r['params_m']:.3f} | {r['gflops_256']:.2f} | {r['gflops_512']:.2f} | {r['fps_256']:.2f} | "
              f"{r['fps_ratio_256']:.2f} | {r['fps_512']:.2f} | {r['fps_ratio_512']:.2f} | {r['train_step_s']:.3f} | "
              f"{r['train_ratio']:.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
