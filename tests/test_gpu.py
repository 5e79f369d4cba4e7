"""CUDA paths: run by benchmarks/gpu_check.sh on a GPU machine; skipped cleanly everywhere else."""
from __future__ import annotations

import pytest
import torch

from deepfake_lab import checkpoints as ckpt
from deepfake_lab.device import pick_device, precision_for, seed_everything
from deepfake_lab.lessons import LESSONS
from deepfake_lab.train import LoopConfig, fit
from tiny_model import NoisyPoints, TinyModel

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")]


def test_auto_device_is_cuda_and_policy_is_bf16():
    device = pick_device("auto")
    assert device.type == "cuda"
    assert precision_for(device).dtype is torch.bfloat16


def test_loop_trains_on_cuda_with_autocast_and_checkpoint_loads_on_cpu(tmp_path):
    seed_everything(0)
    device = pick_device("cuda")
    model = TinyModel(device=device, precision=precision_for(device))
    model.nets["net"].to(device)
    result = fit(model, NoisyPoints(), LoopConfig(steps=20, batch_size=8, out_dir=str(tmp_path), sample_every=0,
                                                  progress=False))
    nets, meta = ckpt.load_weights(result.weights, device="cpu")
    assert nets["net"]["0.weight"].device.type == "cpu" and meta["kind"] == "tiny"


@pytest.mark.parametrize("row", [row for row in LESSONS if row.gpu_check is not None], ids=lambda row: row.name)
def test_bf16_autocast_output_is_close_to_fp32(row):
    net, example = row.gpu_check()  # (the lesson's generator, an example input)
    net, example = net.cuda().eval(), example.cuda()
    with torch.no_grad():
        ref = net(example).float()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            amp = net(example).float()
    assert torch.isfinite(amp).all()
    # bf16 keeps ~3 significant digits: outputs in [-1, 1] agree to a few hundredths, and the error is small
    # next to the output's own spread (an untrained network's outputs can all be close to 0)
    error = (amp - ref).abs().mean()
    assert error < 0.03, error
    assert error < 0.05 * ref.std(), (error, ref.std())
