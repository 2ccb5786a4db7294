"""Multi-process training (heatmaploc.distributed): real gloo process groups on the CPU,
through torch.multiprocessing and through a real torchrun subprocess."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from heatmaploc import distributed
from heatmaploc.checkpoint import load_checkpoint
from heatmaploc.config import load_config
from heatmaploc.training import train

from interrupts import ctrl_c_in_second_epoch

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
NO_DROPOUT = {"model.aspp_dropout": 0.0, "model.fusion_dropout": 0.0}  # dropout masks are drawn per process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _net() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Conv2d(4, 3, 3, padding=1), torch.nn.BatchNorm2d(3))


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 3, 6, 5, generator=g) * 3 + 5, torch.randn(4, 3, 6, 5, generator=g)


def _sync_bn_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    ctx, _ = distributed.setup("cpu")
    net = distributed.sync_batchnorm(_net(), ctx, cuda=False)
    x, w = _data()
    x = x[2 * rank : 2 * rank + 2].clone().requires_grad_()
    # each rank's loss is world x its share of the global mean, as the training losses are
    loss = (net(x) * w[2 * rank : 2 * rank + 2]).sum() / 4 * 2
    loss.backward()
    grads = [p.grad.clone() for p in net.parameters()]
    for g in grads:
        torch.distributed.all_reduce(g)
        g /= 2  # what DDP does
    torch.save({"y": net(x).detach(), "gx": x.grad / 2, "grads": grads,
                "running": [net[1].running_mean, net[1].running_var, net[4].running_var]}, f"{out}/{rank}.pt")
    distributed.teardown(ctx)


def test_cpu_sync_batchnorm_equals_batchnorm_on_the_global_batch(tmp_path):
    x, w = _data()
    x.requires_grad_()
    net = _net()
    loss = (net(x) * w).sum() / 4
    loss.backward()
    y = net(x).detach()  # second pass: running stats updated twice, as in the workers
    mp.spawn(_sync_bn_worker, args=(_free_port(), str(tmp_path)), nprocs=2)
    parts = [torch.load(tmp_path / f"{r}.pt") for r in range(2)]
    np.testing.assert_allclose(torch.cat([p["y"] for p in parts]), y, atol=1e-5)
    np.testing.assert_allclose(torch.cat([p["gx"] for p in parts]), x.grad, atol=1e-6)
    for got, want in zip(parts[0]["grads"], net.parameters()):
        np.testing.assert_allclose(got, want.grad, rtol=1e-5, atol=1e-5)
    for got, want in zip(parts[0]["running"], [net[1].running_mean, net[1].running_var, net[4].running_var]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _torchrun(out: Path, *sets: str, nproc: int = 2) -> subprocess.Popen:
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    args = [a for s in sets for a in ("--set", s)]
    return subprocess.Popen([torchrun, "--nproc_per_node", str(nproc), "--master_port", str(_free_port()), "-m",
                             "heatmaploc", "train", "--config", str(TINY), "--out", str(out), "--quiet", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _state(run: Path) -> dict:
    return load_checkpoint(run / "last.pt")["train_state"]


def _weight_distance(a: dict, b: dict) -> float:
    """Relative L2 distance of the learned weights (not the BN running statistics)."""
    keys = [k for k, v in a["raw_model_state"].items() if v.is_floating_point() and "running" not in k]
    num = sum(((a["raw_model_state"][k].double() - b["raw_model_state"][k].double()) ** 2).sum() for k in keys)
    den = sum((a["raw_model_state"][k].double() ** 2).sum() for k in keys)
    return float((num / den) ** 0.5)


def test_first_step_of_two_processes_is_the_one_process_step(tmp_path):
    """One step at lr 0: the global batch is shared, its loss normalized and its batch
    statistics computed as one process does, to float precision."""
    sets = {**NO_DROPOUT, "train.steps": 1, "train.steps_per_epoch": 1, "train.lr": 0.0, "train.threads": 1}
    proc = _torchrun(tmp_path / "two", *(f"{k}={v}" for k, v in sets.items()))
    single = train(load_config(TINY, sets), tmp_path / "one", progress=False)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    two, one = _state(tmp_path / "two"), _state(single.run_dir)
    assert two["history"][0]["train_loss"] == pytest.approx(one["history"][0]["train_loss"], rel=1e-5)
    for key, value in one["raw_model_state"].items():
        if "running" in key:  # the global batch's statistics, as BatchNorm2d keeps them
            np.testing.assert_allclose(two["raw_model_state"][key], value, rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.slow  # minutes on 2 cores; test_first_step_of_two_processes_is_the_one_process_step runs in CI
def test_two_processes_track_one_process_as_closely_as_float_summation_order_allows(tmp_path):
    """Twelve steps: the 2-process run may differ from the 1-process run only as much as
    two 1-process runs that differ in their thread count (float summation order, which
    AdamW and small batch-norm batches amplify): at most twice that (or 2 % in loss,
    15 % in weights when the control happens to be tighter)."""
    sets = {**NO_DROPOUT, "train.threads": 1}
    proc = _torchrun(tmp_path / "two", *(f"{k}={v}" for k, v in sets.items()))
    one = _state(train(load_config(TINY, sets), tmp_path / "one", progress=False).run_dir)
    control = _state(train(load_config(TINY, {**sets, "train.threads": 2}), tmp_path / "ctl", progress=False).run_dir)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    two = _state(tmp_path / "two")
    assert two["step"] == one["step"] == 12

    def loss_gap(a, b):
        return max(abs(x["train_loss"] - y["train_loss"]) / abs(y["train_loss"])
                   for x, y in zip(a["history"], b["history"]))

    assert loss_gap(two, one) <= max(2 * loss_gap(control, one), 0.02)
    assert _weight_distance(two, one) <= max(2 * _weight_distance(control, one), 0.15)


@pytest.mark.slow  # minutes on 2 cores; test_first_step_of_two_processes_is_the_one_process_step runs in CI
def test_a_torchrun_run_interrupted_resumes_with_one_process_to_the_same_step(tmp_path):
    run = tmp_path / "run"
    proc = _torchrun(run, "train.steps=40", "train.steps_per_epoch=20")
    err = ctrl_c_in_second_epoch(proc, run, "epoch 1 step 20", settle=0.3)  # reaches torchrun and its workers
    proc.wait(timeout=120)
    assert "continue with: heatmaploc train --out" in err
    stopped = _state(run)["step"]
    assert 20 <= stopped <= 40
    result = train(load_config(run / "config.yaml"), run, resume=True, progress=False)
    assert _state(run)["step"] == 40 and [h["step"] for h in result.history] == [20, 40]
