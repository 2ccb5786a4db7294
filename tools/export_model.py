"""Export a training run's best checkpoint as a shippable model: weights only (fp16 by
default), model + codec config (with the chosen threshold), and where it came from.

With --tta MODE the checkpoint is calibrated again on the run's validation set (decode
threshold, and the sigma factor of a model with a regression head) for one pass, for
d4 and for MODE (heatmaploc.tta), and MODE becomes the model's default.

Usage: python tools/export_model.py runs/default/best.pt heatmaploc/assets/default.pt [--fp32] [--tta d4]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from heatmaploc.checkpoint import load_checkpoint, save_checkpoint
from heatmaploc.config import config_from_dict
from heatmaploc.evaluation import calibrate_checkpoint
from heatmaploc.inference import pick_device
from heatmaploc.inference_config import InferenceConfig
from heatmaploc.tta import TTA_MODES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source")
    ap.add_argument("target")
    ap.add_argument("--fp32", action="store_true", help="keep float32 weights")
    ap.add_argument("--tta", choices=TTA_MODES, help="re-choose the threshold under this test-time augmentation")
    args = ap.parse_args()
    ckpt = load_checkpoint(args.source)
    if args.tta:
        run = dict(ckpt["run_config"])
        run["train"] = {**run["train"], "tta": args.tta}
        ckpt = calibrate_checkpoint(ckpt, config_from_dict(run, f"{args.source}: run_config"), pick_device("auto"),
                                    modes=("none", "d4", args.tta))
    history = ckpt.get("train_state", {}).get("history", [])
    payload = {
        "model_config": ckpt["model_config"],
        "codec_config": ckpt["codec_config"],
        "model_state": ckpt["model_state"],
        "run_config": ckpt.get("run_config"),
        "threshold_scores": ckpt.get("threshold_scores"),
        "inference": InferenceConfig.from_dict(ckpt.get("inference"), str(args.source)).to_dict(),
        "provenance": {"source": str(args.source), "steps": history[-1]["step"] if history else None,
                       "val": history[-1] if history else None},
    }
    path = save_checkpoint(args.target, payload, half=not args.fp32)
    inference = payload["inference"]
    print(f"wrote {path} ({Path(path).stat().st_size / 1e6:.2f} MB, tta {inference['tta']}; thresholds "
          f"{inference['thresholds']}, sigma scales {inference['sigma_scales']})")


if __name__ == "__main__":
    main()
