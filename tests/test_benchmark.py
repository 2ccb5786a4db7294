"""Benchmark smoke test on tiny data: the report is complete and well-formed."""
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from heatmaploc.bench.config import bench_from_dict, builtin_config_path, load_bench_config
from heatmaploc.cli import main

SMALL = {"height": 40, "width": 40, "count_range": [0, 2]}


def md_tables(md: str) -> dict[str, list[list[str]]]:
    """The Markdown tables of a report by section heading (text after ``## ``): rows of
    cells, the header row first, the ``|---|`` rule dropped.  Every row of a table must
    have the header's number of cells."""
    tables: dict[str, list[list[str]]] = {}
    heading = None
    for line in md.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
        elif line.startswith("|") and heading is not None and not set(line) <= set("|-"):
            row = [c.strip() for c in line.strip().strip("|").split("|")]
            rows = tables.setdefault(heading, [])
            assert not rows or len(row) == len(rows[0]), (heading, line)
            rows.append(row)
    return tables


def table(md: str, prefix: str) -> list[list[str]]:
    """The one table whose section heading starts with ``prefix``."""
    found = [rows for heading, rows in md_tables(md).items() if heading.startswith(prefix)]
    assert len(found) == 1, (prefix, list(md_tables(md)))
    return found[0]


def tiny_bench(checkpoint) -> dict:
    return {
        "suites": [
            {"name": "default", "group": "main", "n": 3, "overrides": SMALL},
            {"name": "counts", "group": "stress", "n": 2, "overrides": {**SMALL, "count_range": [0, 4]}},
            {"name": "SNR 20 dB", "group": "snr", "n": 2, "overrides": {**SMALL, "snr_db_range": [20, 20]}},
            {"name": "pair 1", "group": "pairs", "n": 2, "generator": "close_pairs", "overrides": SMALL},
            {"name": "isolated 20 dB", "group": "crlb", "n": 2, "generator": "isolated",
             "overrides": {**SMALL, "kernels": ["free"], "observables": ["snapshot"], "renderings": ["raw"],
                           "snr_db_range": [20, 20], "border_margin_px": 10}},
            {"name": "seed000 test", "group": "seed", "preset": "seed000", "seed": 5, "n": 1},
        ],
        "models": [
            {"label": "tiny checkpoint", "checkpoint": str(checkpoint), "tta": "flip"},
            {"label": "heatmapnet small", "model": {"name": "heatmapnet", "aspp_channels": 32, "decoder_channels": 16,
                                                     "refine_channels": 16}, "reference": True},
            {"label": "cascade small", "model": {"name": "cascade", "blocks": 3, "hidden": 16}},
        ],
        "train_minutes": 0.5,
        "train_defaults": {"steps": 4, "steps_per_epoch": 2, "batch_size": 2},
        "train_data": {"simulate": "default", "simulate_overrides": SMALL, "val_size": 2, "workers": 0,
                       "augment": {"crop_size": [32, 32]}},
        "classical_train": {"seed": 1, "n": 3},
        "lsq_images": 1,
        "physical_radius": 0.2,
        "seed_crlb_images": 1,
        "speed_sizes": [40],
        "speed_batch": 2,
        "speed_rounds": 1,
        "examples": 2,
        "physics_groups": ["main", "crlb"],
    }


def test_benchmark_smoke_report_complete(tmp_path, tiny_checkpoint, capsys):
    cfg_path = tmp_path / "bench.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_bench(tiny_checkpoint)))
    out = tmp_path / "out"
    assert main(["benchmark", "--config", str(cfg_path), "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    labels = ["tiny checkpoint", "heatmapnet small", "cascade small"]
    assert list(report["models"]) == labels
    for label in labels:
        suites = report["models"][label]["suites"]
        assert set(suites) == {"default", "counts", "SNR 20 dB", "pair 1", "isolated 20 dB", "seed000 test"}
        for metrics in suites.values():
            assert {"r1", "r2", "r3", "pixel"} <= set(metrics)
            r2 = metrics["r2"]
            p, r = r2["precision"], r2["recall"]
            assert r2["f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
            counts = np.array(metrics["counts"]).reshape(-1, 2)  # (true, predicted) per image
            assert r2["count_accuracy"] == pytest.approx(np.mean(counts[:, 0] == counts[:, 1]))
            assert r2["count_mae"] == pytest.approx(np.mean(np.abs(counts[:, 0] - counts[:, 1])))
        assert suites["isolated 20 dB"]["crlb_rms"] > 0
        assert set(suites["seed000 test"]["coord_eps"]) == {"0.5", "0.4", "0.3", "0.2", "0.1"}
        assert 0.0 <= suites["pair 1"]["both_found"] <= 1.0
        assert suites["seed000 test"]["physical"]["radius_px"] == pytest.approx(0.2 / 0.05 * (399 / 400), rel=0.01)
        assert "physical" not in suites["default"]  # no physical frame
    assert report["models"]["heatmapnet small"]["history"] and report["models"]["heatmapnet small"]["trained_here"]
    run = out / "runs" / "heatmapnet_small"
    assert (run / "best.pt").is_file() and (run / "log.csv").is_file() and not (run / "last.pt").exists()
    assert set(report["decode_ablation"]) == {"softargmax", "argmax", "parabola", "offset"}  # the tiny model has offsets
    for label in labels:
        for metrics in report["models"][label]["suites"].values():
            cal = metrics["calibration"]
            assert cal["radius"] == 2.0 and cal["n_coordinates"] % 2 == 0 and len(cal["levels"]) == len(cal["observed"])
            if label != "tiny checkpoint":  # no regression head: every matched sigma is unknown
                assert cal["n_coordinates"] == 0 and cal["within_1sigma"] is None
    assert [report["models"][label]["tta"] for label in labels] == ["flip", "none", "none"]
    tta = report["tta_ablation"]
    assert [tta[m]["passes"] for m in ("none", "flip", "d4")] == [1, 4, 8] and tta["none"]["time_ratio"] == 1.0
    assert all(0.0 <= tta[m]["r2"]["f1"] <= 1.0 for m in tta)
    assert report["speed_reference"] == "heatmapnet small"
    speed = report["speed"]["cpu"]
    assert set(speed) == set(labels) and all(v > 0 for s in speed.values() for v in s.values())
    assert "isolated 20 dB" in report["baselines"]["least_squares_fit"]
    assert set(report["physics"]) == {"default", "isolated 20 dB"}  # physics_groups: main and crlb
    fit = report["physics"]["isolated 20 dB"]["known"]
    assert set(fit) >= {"r1", "r2", "crlb_rms", "rmse_over_crlb", "seconds_per_image"} and fit["seconds_per_image"] >= 0
    assert fit["r2"]["fp"] + fit["r2"]["tp"] == sum(c[1] for c in report["models"]["tiny checkpoint"]["suites"]["isolated 20 dB"]["counts"])
    blind = report["physics"]["isolated 20 dB"]["blind"]
    assert 0.0 <= blind["accepted"] <= 1.0 and blind["seconds"]["max"] > 0 and "rmse_over_crlb" in blind
    assert blind["calibration"]["radius"] == 2.0
    assert "rmse_over_crlb" not in report["physics"]["default"]["blind"]  # no bound off the crlb suites
    assert set(report["baselines"]["trackpy"]["suites"]) == set(report["baselines"]["classical"]["suites"])
    ceiling = report["seed_ceiling"]["seed000 test"]
    assert ceiling["n_images"] == 1 and all(0.0 <= v <= 1.0 for v in ceiling["coord_eps"].values())
    assert ceiling["nms_kernel"] == 3 and 0.0 <= ceiling["merged_peak_share"] <= 1.0
    md = (out / "report.md").read_text()
    for heading in ("Main suite", "Stress suites", "SNR sweep", "Close pairs", "Physical limit", "Physics refinement",
                    "Seed blog protocol",
                    "Decoding ablation", "Test-time augmentation", "Speed (CPU)"):
        table(md, heading)  # present, once, well-formed
    main_rows = [r[0] for r in table(md, "Main suite")[1:]]
    assert main_rows == labels + ["classical (filter + peak_local_max)", "trackpy.locate"]
    limit_rows = [r[0] for r in table(md, "Physical limit")]
    assert "tiny checkpoint + field fit (known kernel and wavelength)" in limit_rows
    assert "tiny checkpoint + blind physics refinement (nothing known)" in limit_rows
    physics_rows = table(md, "Physics refinement")
    assert [r[1] for r in physics_rows[1:]] == ["network", "+ known physics", "+ blind physics"] * 2
    seed = table(md, "Seed blog protocol")
    assert seed[0][-1] == "F1 within 0.2 units (3.99 px)"
    assert [r[0] for r in seed[1:4]] == ["seed blog, 7 blocks / 256", "ceiling: efficient estimator (CRLB, 1 evenly spaced images)",
                                         "ceiling: one peak per source pixel, 3x3 peak test (all test images)"]
    assert [r[0] for r in table(md, "Decoding ablation")[1:]] == ["softargmax", "argmax", "parabola", "offset"]
    assert "Test-time augmentation (heatmaps averaged over flips/quarter turns, also in the speed tables): tiny checkpoint: flip" in md
    for plot in ("f1_vs_radius.png", "precision_recall_vs_threshold.png", "error_histogram.png", "count_confusion.png",
                 "examples.png", "training_heatmapnet_small.png"):
        assert (out / "plots" / plot).stat().st_size > 1000, plot
    assert "benchmark done" in capsys.readouterr().out
    # the calibration table and reliability plot, from this report with one suite's calibration known
    from heatmaploc.bench.plots import plot_reliability
    from heatmaploc.bench.report import markdown
    from heatmaploc.metrics import sigma_calibration

    known = sigma_calibration([np.array([[10.5, 9.0], [20.0, 5.0]])], [np.array([1.0, 0.25])],
                              [np.array([[10.0, 10.0], [20.0, 5.5]])])
    known = dataclasses.asdict(known)
    report["models"]["heatmapnet small"]["suites"]["default"]["calibration"] = known
    rows = table(markdown(report), "Calibration of the per-point sigma")
    assert rows[0][:5] == ["model", "suite", "coordinates", "within 1 sigma", "within 2 sigma"]
    assert ["heatmapnet small", "default", "4", "75.0 %", "100.0 %", "0.625", "0.612"] in rows
    assert plot_reliability(report, out / "reliability.png").stat().st_size > 1000


def test_benchmark_without_main_suite_trains_with_model_data_overrides(tmp_path, tiny_checkpoint):
    """A seed-protocol-only benchmark: the first suite stands in for the main one, and a
    model's own ``data`` section (another preset, point-centred crops) is merged over
    the benchmark's ``train_data`` and recorded."""
    cfg = tiny_bench(tiny_checkpoint)
    cfg["suites"] = [s for s in cfg["suites"] if s["group"] == "seed"]
    cfg["models"] = [cfg["models"][0], {"label": "heatmapnet on seed000", "reference": True,
                                        "model": cfg["models"][1]["model"],
                                        "data": {"simulate": "seed000", "simulate_overrides": {},
                                                 "augment": {"point_crop": 1.0}}}]
    cfg["tta_modes"] = ["none"]
    cfg_path = tmp_path / "bench.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    assert main(["benchmark", "--config", str(cfg_path), "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    entry = report["models"]["heatmapnet on seed000"]
    assert entry["train_data"]["simulate"] == "seed000" and entry["train_data"]["val_size"] == 2
    assert entry["train_data"]["augment"] == {"crop_size": [32, 32], "point_crop": 1.0}
    run_cfg = yaml.safe_load((out / "runs" / "heatmapnet_on_seed000" / "config.yaml").read_text())
    assert run_cfg["data"]["simulate"] == "seed000" and run_cfg["data"]["augment"]["point_crop"] == 1.0
    assert report["models"]["tiny checkpoint"]["train_data"] is None
    assert list(report["tta_ablation"]) == ["none"]
    md = (out / "report.md").read_text()
    assert "Main suite: `seed000 test` (1 images, 1 sources)" in md_tables(md) and "Stress suites" not in md_tables(md)
    trained_on = {r[0]: r[1] for r in table(md, "Seed blog protocol")[1:]}
    assert trained_on["heatmapnet on seed000"] == "`seed000`, 1 point crops"
    assert trained_on["tiny checkpoint"] == "its checkpoint's data"


def test_builtin_configs_parse():
    full, quick = load_bench_config(None), load_bench_config(None, quick=True)
    assert full == load_bench_config(builtin_config_path()) and quick == load_bench_config(builtin_config_path(True))
    assert len(full.models) > len(quick.models) and any(m.reference for m in full.models)
    groups = {s.group for s in full.suites}
    assert groups == {"main", "stress", "snr", "pairs", "crlb", "seed"}
    assert quick.train_minutes < full.train_minutes
    assert full.decode_modes == ("softargmax", "argmax", "parabola", "offset") and full.radii == (1.0, 2.0, 3.0)
    crlb_seeds = [s.seed for s in full.suites if s.group == "crlb"]
    heads = load_bench_config(Path(__file__).resolve().parents[1] / "configs" / "bench" / "heads.yaml")
    assert [s.seed for s in heads.suites if s.group == "crlb"] == crlb_seeds  # the same isolated-source suites


def test_seed_protocol_bench_config_trains_both_learned_models_on_seed000():
    cfg = load_bench_config(Path(__file__).resolve().parents[1] / "configs" / "bench" / "seed000.yaml")
    assert [s.preset for s in cfg.suites] == ["seed000"] and cfg.train_data["simulate"] == "seed000"
    learned = [m for m in cfg.models if not m.checkpoint]
    assert {m.model["name"] for m in learned} == {"heatmapnet", "cascade"}
    assert len({m.train.get("max_minutes", cfg.train_minutes) for m in learned}) == 1  # one equal budget


def test_bad_bench_config_entries_are_named():
    suite = {"name": "a", "seed": 1, "n": 2}
    with pytest.raises(ValueError, match=r"models\[0\]: unknown key\(s\) \['colour'\]"):
        bench_from_dict({"suites": [suite], "models": [{"label": "x", "colour": "red"}]})
    with pytest.raises(ValueError, match=r"models\[1\]: unknown test-time augmentation 'spin'"):
        bench_from_dict({"suites": [suite], "models": [{"label": "x", "checkpoint": "default"},
                                                      {"label": "y", "checkpoint": "default", "tta": "spin"}]})


def test_the_seed_table_reports_the_refined_points_beside_the_networks():
    from heatmaploc.bench.report import _seed_table

    network = {"r2": {"count_accuracy": 0.5}, "coord_eps": {"0.5": 1.0, "0.1": 0.25},
               "physical": {"radius_units": 0.2, "radius_px": 4.0, "f1": 0.5}}
    refined = {"r2": {"count_accuracy": 0.75}, "coord_eps": {"0.5": 1.0, "0.1": 0.5},
               "physical": {"radius_units": 0.2, "radius_px": 4.0, "f1": 0.8}}
    report = {"suites": {"seed000 test": {"group": "seed"}},
              "models": {"shipped": {"suites": {"seed000 test": network}}},
              "physics": {"seed000 test": {"known": {}, "blind": refined}}}
    rows = table("\n".join(_seed_table(report)), "Seed blog protocol")
    assert rows[-2][:5] == ["shipped", "its checkpoint's data", "50.00 %", "100.00 %", "25.00 %"]
    assert rows[-1] == ["shipped + blind physics refinement", "its checkpoint's data", "75.00 %", "100.00 %", "50.00 %",
                        "0.8000"]
    del report["physics"]  # no refinement ran on the suite: the networks' rows only
    assert table("\n".join(_seed_table(report)), "Seed blog protocol")[-1][0] == "shipped"


def test_coord_eps_on_a_hand_computed_case():
    from heatmaploc.bench.measures import coord_eps

    truths = [np.array([[0.0, 0.0], [10.0, 0.0]]), np.zeros((0, 2)), np.array([[5.0, 5.0]])]
    preds = [np.array([[10.0, 3.0], [0.5, 0.0]]), np.array([[1.0, 1.0]]), np.array([[5.0, 25.0], [5.0, 9.0]])]
    # optimal pairs, no radius: 0.5 px and 3 px in image 0; 4 px in image 2 (image 1 has no truth)
    got = coord_eps(preds, truths, pixel_size=0.1, eps=(0.1, 0.3, 0.35, 0.5))
    assert got == {"0.1": pytest.approx(1 / 3), "0.3": pytest.approx(1 / 3), "0.35": pytest.approx(2 / 3), "0.5": 1.0}
    assert math.isnan(coord_eps([np.zeros((0, 2))], [np.array([[1.0, 1.0]])], 0.1, (0.1,))["0.1"])


def test_merged_peak_share_on_a_hand_computed_case():
    from heatmaploc.bench.measures import merged_peak_share

    truths = [
        np.array([[10.2, 10.0], [11.4, 11.3]]),  # pixels (10, 10) and (11, 11): adjacent -> merged
        np.array([[10.0, 10.0], [12.0, 10.4]]),  # pixels two apart -> separate peaks under 3x3
        np.array([[3.0, 3.0]]),  # one source: nothing to merge
        np.array([[5.0, 5.0], [30.0, 5.0], [5.45, 5.3]]),  # the first and last share pixel (5, 5)
    ]
    assert merged_peak_share(truths, nms_kernel=3) == pytest.approx(2 / 4)
    assert merged_peak_share(truths, nms_kernel=5) == pytest.approx(3 / 4)  # reach 2 merges image 1 too
    assert merged_peak_share(truths, nms_kernel=1) == pytest.approx(1 / 4)  # only a shared pixel merges
    assert math.isnan(merged_peak_share([], nms_kernel=3))


@pytest.mark.slow
def test_quick_builtin_benchmark_end_to_end(tmp_path, capsys):
    """``heatmaploc benchmark --quick`` as a user runs it (a few minutes: kept out of CI)."""
    out = tmp_path / "quick"
    assert main(["benchmark", "--quick", "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    quick = load_bench_config(None, quick=True)
    assert list(report["models"]) == [m.label for m in quick.models]
    assert set(report["suites"]) == {s.name for s in quick.suites}
    shipped = report["models"][quick.models[0].label]["suites"]
    assert all(0.0 <= s["r2"]["f1"] <= 1.0 for s in shipped.values())
    assert (out / "report.md").stat().st_size > 1000 and "benchmark done" in capsys.readouterr().out
