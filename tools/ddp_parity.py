"""Two-process CPU training (torchrun, gloo) against one process with the same global
batch, and the tolerance that float summation order alone gives.

    python tools/ddp_parity.py --out docs/benchmark/deploy

On ``configs/tiny.yaml`` with dropout off (dropout masks are drawn per process):

* one step at lr 0: the first loss and the batch-norm running statistics of 2
  processes against 1 (how the global batch is shared, its loss normalized, its
  statistics synchronized);
* the full run (12 steps): the per-epoch loss curve and the final weights (relative L2
  distance) of 2 processes against 1, next to a control: 1 process with 2 threads
  against 1 process with 1 thread, which differ only in float summation order.

Writes ``ddp_parity.json`` and ``ddp_parity.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
NO_DROPOUT = ["model.aspp_dropout=0", "model.fusion_dropout=0"]


def run(out: Path, sets: list[str], nproc: int = 1) -> dict:
    from heatmaploc.checkpoint import load_checkpoint

    args = ["-m", "heatmaploc", "train", "--config", str(TINY), "--out", str(out), "--quiet"]
    args += [a for s in sets for a in ("--set", s)]
    if nproc > 1:
        torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
        cmd = [torchrun, "--nproc_per_node", str(nproc), "--master_port", "29731", *args]
    else:
        cmd = [sys.executable, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return load_checkpoint(out / "last.pt")["train_state"]


def weights(state: dict, running: bool):
    return {k: v.double() for k, v in state["raw_model_state"].items()
            if v.is_floating_point() and (("running" in k) == running)}


def distance(a: dict, b: dict) -> float:
    wa, wb = weights(a, False), weights(b, False)
    return float(sum(((wa[k] - wb[k]) ** 2).sum() for k in wa) ** 0.5 / sum((wa[k] ** 2).sum() for k in wa) ** 0.5)


def loss_gap(a: dict, b: dict) -> float:
    return max(abs(x["train_loss"] - y["train_loss"]) / abs(y["train_loss"]) for x, y in zip(a["history"], b["history"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="report folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        step0 = NO_DROPOUT + ["train.threads=1", "train.steps=1", "train.steps_per_epoch=1", "train.lr=0"]
        one0, two0 = run(tmp / "one0", step0), run(tmp / "two0", step0, nproc=2)
        ra, rb = weights(one0, True), weights(two0, True)
        running_abs = max(float((ra[k] - rb[k]).abs().max()) for k in ra)
        running_var_min = min(float(ra[k].min()) for k in ra if k.endswith("running_var"))
        full = NO_DROPOUT + ["train.threads=1"]
        one, two, ctl = run(tmp / "one", full), run(tmp / "two", full, nproc=2), \
            run(tmp / "ctl", NO_DROPOUT + ["train.threads=2"])
    result = {
        "first_loss_one": one0["history"][0]["train_loss"], "first_loss_two": two0["history"][0]["train_loss"],
        "first_loss_rel_diff": abs(one0["history"][0]["train_loss"] - two0["history"][0]["train_loss"])
        / one0["history"][0]["train_loss"],
        "running_stats_max_abs_diff": running_abs, "smallest_running_var": running_var_min,
        "loss_one": [h["train_loss"] for h in one["history"]], "loss_two": [h["train_loss"] for h in two["history"]],
        "loss_control": [h["train_loss"] for h in ctl["history"]],
        "loss_gap_two_vs_one": loss_gap(two, one), "loss_gap_control_vs_one": loss_gap(ctl, one),
        "weights_rel_l2_two_vs_one": distance(two, one), "weights_rel_l2_control_vs_one": distance(ctl, one),
        "steps": [one["step"], two["step"]],
    }
    print(json.dumps(result, indent=1))
    if args.out:
        from heatmaploc.data.io import write_json

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "ddp_parity.json", result)
        lines = [
            "# Two processes (torchrun, gloo, CPU) against one, same global batch",
            "",
            "`python tools/ddp_parity.py`: `configs/tiny.yaml`, dropout off, one thread per process.",
            "",
            "| measure | 2 processes vs 1 | control: 1 process, 2 threads vs 1 thread |",
            "|---|---|---|",
            f"| first loss (1 step, lr 0), relative difference | {result['first_loss_rel_diff']:.1e} | |",
            f"| batch-norm running statistics after that step, max abs difference (smallest running variance "
            f"{result['smallest_running_var']:.2f}) | {result['running_stats_max_abs_diff']:.1e} | |",
            f"| per-epoch loss over 12 steps, max relative difference | {result['loss_gap_two_vs_one']:.2e} | "
            f"{result['loss_gap_control_vs_one']:.2e} |",
            f"| final weights, relative L2 distance | {result['weights_rel_l2_two_vs_one']:.3f} | "
            f"{result['weights_rel_l2_control_vs_one']:.3f} |",
            "",
            "Before any update the two set-ups agree to float precision. After 12 AdamW steps they drift apart by as "
            "much as one process does from itself when only the summation order changes: AdamW normalizes each "
            "gradient component, so rounding noise in near-zero components (e.g. biases before a batch norm) becomes "
            "a full-size step, and the tiny config's batch norms see 2 x 2 maps. The tolerance stated for the "
            "multi-step comparison is therefore the control's, measured in the same run.",
            "",
        ]
        (out / "ddp_parity.md").write_text("\n".join(lines))
        print(f"report: {out}/ddp_parity.md")


if __name__ == "__main__":
    main()
