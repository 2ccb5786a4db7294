"""Fine-tuning recipes compared on one kind of field the start model was not trained on.

    python tools/finetune_recipes.py --out docs/benchmark/finetune --work /tmp/ftwork

Simulates a labelled training folder (``--n-train`` images, as a user would label) and
a test folder (``--n-test``, another seed) of the held-out kind (``KINDS``), scores the
start model on the test folder (zero-shot), then fine-tunes it with each recipe of
``RECIPES`` (``heatmaploc.finetune``: the same call as ``heatmaploc finetune``, the
recipe's values as overrides, ``--minutes`` each, 20 % of the training folder held out
for validation and calibration) and scores each result on the test folder, all at the
start model's default test-time augmentation.  Writes ``finetune.json`` and
``finetune.md`` after every run; runs whose ``best.pt`` exists are scored, not
trained again (so an interrupted comparison resumes).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

KINDS = {  # each kind: the simulator preset ("preset", default "default") and its overrides
    # wave physics the shipped model's simulator never drew: wave speed varying by up to
    # +-20 % across the view, disc sources 1-3 px in radius, a reflecting wall beyond the
    # left edge, rendered through colormaps outside its training mix
    "mismatch": {"speed_variation": 0.2, "source_radius_range": [1.0, 3.0], "reflection": 0.6,
                 "renderings": ["colormap"], "colormaps": ["viridis", "magma", "cividis"]},
    # wavelengths below the training range (8-24 px)
    "short-waves": {"wavelength_range": [4.0, 8.0]},
    # point-spread maps: the acoustic preset's beamforming maps (linear power and dB, raw or
    # colormapped), a field the shipped model's training mix never held
    "acoustic": {"preset": "acoustic"},
}
RECIPES = {
    "lr 2e-4, EMA 0.998": {"train.lr": 2e-4},
    "lr 1e-3, EMA 0.998": {"train.lr": 1e-3},
    "lr 5e-4, EMA 0.99": {"train.lr": 5e-4, "train.ema_decay": 0.99},
}


def scores(metrics: dict) -> dict:
    return {"f1_1px": metrics["r1"]["f1"], "f1_2px": metrics["r2"]["f1"], "rmse_2px": metrics["r2"]["rmse"],
            "count_accuracy": metrics["r2"]["count_accuracy"]}


def markdown(report: dict) -> str:
    lines = ["# Fine-tuning recipes", "",
             f"Start model: {report['checkpoint']}, scored at its default test-time augmentation "
             f"({report['tta']}). Per kind: {report['n_train']} labelled training images (20 % of them held out "
             f"for validation and calibration), {report['n_test']} test images of another seed; "
             f"{report['minutes']:g} min of training per recipe on this machine's CPU "
             f"({report['threads']} threads).", "",
             "| kind | model | F1@1 | F1@2 | RMSE@2 (px) | count acc | steps | wall min |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, rows in report["kinds"].items():
        for label, row in rows.items():
            lines.append(f"| {kind} | {label} | {row['f1_1px']:.4f} | {row['f1_2px']:.4f} | {row['rmse_2px']:.3f} | "
                         f"{row['count_accuracy']:.4f} | {row.get('steps', '')} | {row.get('wall_minutes', '')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--work", required=True, help="folder for the datasets and runs")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--n-test", type=int, default=200)
    args = parser.parse_args()

    import torch

    from heatmaploc import Localizer
    from heatmaploc.checkpoint import checkpoint_path
    from heatmaploc.data.io import write_json
    from heatmaploc.evaluation import evaluate_dataset
    from heatmaploc.finetune import finetune_config
    from heatmaploc.simulate import get_preset
    from heatmaploc.simulate.generate import write_dataset
    from heatmaploc.training import train

    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    start = Localizer.from_checkpoint(checkpoint_path(args.checkpoint), device="cpu")
    report = {"checkpoint": args.checkpoint, "tta": start.tta, "minutes": args.minutes, "n_train": args.n_train,
              "n_test": args.n_test, "threads": torch.get_num_threads(), "kinds": {}}
    for k, kind in enumerate(args.kinds):
        settings = dict(KINDS[kind])
        sim = get_preset(settings.pop("preset", "default"), **settings)
        data, test = work / kind / "train", work / kind / "test"
        for folder, n, seed in ((data, args.n_train, 8100 + k), (test, args.n_test, 8200 + k)):
            if not (folder / "points.csv").is_file():
                write_dataset(sim, n, folder, seed=seed, workers=2)
        rows = report["kinds"].setdefault(kind, {})
        rows["zero-shot"] = scores(evaluate_dataset(start, test))
        for label in args.recipes:
            run = work / kind / label.replace(" ", "_").replace(",", "")
            began = time.perf_counter()
            if not (run / "best.pt").is_file():
                overrides = {key: value for key, value in RECIPES[label].items()}
                cfg = finetune_config(data, checkpoint=args.checkpoint, minutes=args.minutes, overrides=overrides)
                train(cfg, run, progress=False)
            steps = int(torch.load(run / "last.pt", weights_only=True)["train_state"]["step"])
            tuned = Localizer.from_checkpoint(run / "best.pt", device="cpu")
            rows[label] = {**scores(evaluate_dataset(tuned, test)), "steps": steps,
                           "wall_minutes": round((time.perf_counter() - began) / 60, 2)}
            write_json(out / "finetune.json", report)
            (out / "finetune.md").write_text(markdown(report))
            print(kind, label, rows[label], flush=True)
        write_json(out / "finetune.json", report)
        (out / "finetune.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
