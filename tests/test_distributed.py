"""DDP through torchrun: 2 CPU processes (gloo) train like one process with the same global batch."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepfake_lab import checkpoints as ckpt
from deepfake_lab.device import seed_everything
from deepfake_lab.train import LoopConfig, fit, latest_checkpoint
from tiny_model import NoisyPoints, TinyModel

HERE = Path(__file__).parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _losses(run: Path) -> list[float]:
    return [float(r["loss"]) for r in csv.DictReader(open(run / "losses.csv"))]


@pytest.mark.slow
def test_two_processes_train_in_sync_and_resume_in_one(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    ddp_run = tmp_path / "ddp"
    done = subprocess.run([*TORCHRUN, str(HERE / "ddp_tiny.py"), str(ddp_run), "30", "4"], env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]  # fit() raises if the ranks' weights differ
    assert latest_checkpoint(ddp_run)[2] == 30
    assert not list(ddp_run.glob("*.tmp")) and len(_losses(ddp_run)) == 30  # rank 0 alone logs

    # the same global batch (2 x 4) in one process: the loss curve has the same shape
    seed_everything(0)
    single = tmp_path / "single"
    fit(TinyModel(total_steps=30), NoisyPoints(), LoopConfig(steps=30, batch_size=8, out_dir=str(single),
                                                             sample_every=0, log_every=1, progress=False))
    d, s = _losses(ddp_run), _losses(single)
    assert d[-1] < 0.7 * d[0] and s[-1] < 0.7 * s[0]
    assert abs(sum(d[-5:]) - sum(s[-5:])) / sum(s[-5:]) < 0.35

    # the DDP checkpoint resumes in a single process (another world size) and trains on
    seed_everything(0)
    model = TinyModel(total_steps=40)
    result = fit(model, NoisyPoints(), LoopConfig(steps=40, batch_size=8, out_dir=str(ddp_run), sample_every=0,
                                                  log_every=1, progress=False))
    assert result.step == 40
    nets, meta = ckpt.load_weights(result.weights)
    assert meta["kind"] == "tiny" and not any(k.startswith("module.") for k in nets["net"])
    assert torch.isfinite(nets["net"]["0.weight"]).all()


@pytest.mark.slow
def test_single_process_checkpoint_resumes_under_torchrun(tmp_path):
    seed_everything(0)
    run = tmp_path / "run"
    fit(TinyModel(total_steps=20), NoisyPoints(), LoopConfig(steps=20, batch_size=8, out_dir=str(run),
                                                             sample_every=0, progress=False, stop_after=10))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*TORCHRUN, str(HERE / "ddp_tiny.py"), str(run), "20", "4"], env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stderr and latest_checkpoint(run)[2] == 20
