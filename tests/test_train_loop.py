"""The shared training loop: logs, samples, atomic checkpoints and exact resume."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from deepfake_lab import checkpoints as ckpt
from deepfake_lab.device import Precision, pick_device, precision_for, seed_everything
from deepfake_lab.provenance import read_provenance
from deepfake_lab.train import LessonModel, LoopConfig, ResumableBatchSampler, fit, latest_checkpoint, linear_decay


from tiny_model import NoisyPoints, TinyConfig, TinyModel


def _train(out: Path, steps=40, stop_after=None, **kw) -> TinyModel:
    seed_everything(0)
    model = TinyModel(total_steps=steps)
    cfg = LoopConfig(steps=steps, batch_size=8, out_dir=str(out), checkpoint_every=kw.pop("checkpoint_every", 7),
                     sample_every=kw.pop("sample_every", 10), log_every=1, progress=False, stop_after=stop_after, **kw)
    fit(model, NoisyPoints(), cfg)
    return model


def _weights(model: LessonModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.nets["net"].state_dict().items()}


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    full = _weights(_train(tmp_path / "full"))
    _train(tmp_path / "split", stop_after=17)  # stops mid-epoch (8 steps per epoch), between checkpoints
    assert latest_checkpoint(tmp_path / "split")[2] == 17
    resumed = _train(tmp_path / "split")
    for key, value in _weights(resumed).items():
        assert torch.equal(value, full[key]), key
    # the log of the resumed run is the log of the uninterrupted one
    rows_full = list(csv.DictReader(open(tmp_path / "full" / "losses.csv")))
    rows_split = list(csv.DictReader(open(tmp_path / "split" / "losses.csv")))
    assert [r["loss"] for r in rows_full] == [r["loss"] for r in rows_split]


def test_resume_restores_optimizer_scheduler_and_step(tmp_path):
    _train(tmp_path / "run", stop_after=20)
    weights, state_path, step = latest_checkpoint(tmp_path / "run")
    state = ckpt.load_state(state_path)
    assert step == state["step"] == 20
    assert state["optimizers"]["net"]["state"][0]["step"].item() == 20
    assert state["schedulers"]["net"]["last_epoch"] == 20
    assert len(state["extra"]["pool"]) == 3
    nets, meta = ckpt.load_weights(weights)
    assert meta["kind"] == "tiny" and meta["config"] == {"width": 16, "lr": 0.01}


def test_loop_writes_logs_samples_and_keeps_last_checkpoints(tmp_path):
    _train(tmp_path / "run", steps=30, checkpoint_every=5, keep_last=2)
    run = tmp_path / "run"
    rows = list(csv.DictReader(open(run / "losses.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])  # the tiny regression learns
    assert list((run / "tb").glob("events.out.tfevents.*")), "TensorBoard event file missing"
    samples = sorted((run / "samples").glob("*.png"))
    assert [p.name for p in samples] == ["step-0000010.png", "step-0000020.png", "step-0000030.png"]
    assert read_provenance(samples[0])["synthetic"] == "true"
    assert len(list(run.glob("step-*.safetensors"))) == 2
    assert latest_checkpoint(run)[2] == 30


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "w.safetensors"
    ckpt.save_weights(target, {"a": {"x": torch.ones(3)}}, kind="tiny")

    def broken(tmp):
        Path(tmp).write_bytes(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError):
        ckpt.atomic_write(target, broken)
    nets, _ = ckpt.load_weights(target)
    assert torch.equal(nets["a"]["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_untrusted_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state": Evil()}, path)
    with pytest.raises(ckpt.CheckpointError, match="refused"):
        ckpt.load_torch_untrusted(path)
    with pytest.raises(ckpt.CheckpointError, match="PyTorch pickle"):
        ckpt.load_weights(path)


def test_wrong_files_give_clear_errors(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="no such file"):
        ckpt.load_weights(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 10)
    with pytest.raises(ckpt.CheckpointError, match="not a readable safetensors"):
        ckpt.load_weights(garbage)


def test_checkpoint_of_another_lesson_is_refused(tmp_path):
    _train(tmp_path / "run", steps=8)
    weights, state, _ = latest_checkpoint(tmp_path / "run")

    class Other(TinyModel):
        kind = "other"

    with pytest.raises(ckpt.CheckpointError, match="'tiny' checkpoint"):
        from deepfake_lab.train import load_checkpoint
        load_checkpoint(Other(), weights, state)


def test_sampler_is_resumable_and_splits_ranks():
    s = ResumableBatchSampler(20, batch_size=3, seed=5)
    assert s.batches_per_epoch == 6
    s.set_position(epoch=2)
    whole = list(s)
    s.set_position(epoch=2, start_batch=4)
    assert list(s) == whole[4:]
    ranks = [ResumableBatchSampler(20, 3, seed=5, rank=r, world_size=2) for r in (0, 1)]
    seen = [{i for batch in r for i, _ in batch} for r in ranks]
    assert not seen[0] & seen[1]
    with pytest.raises(ValueError, match="fewer than one batch"):
        ResumableBatchSampler(2, batch_size=4)


def test_device_and_precision_policy():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="not a device name"):
        pick_device("tpu7")
    cpu = torch.device("cpu")
    assert precision_for(cpu, bf16_ok=False).dtype is None
    assert precision_for(cpu, bf16_ok=True, mode="fp32").dtype is None
    assert precision_for(cpu, mode="bf16").dtype is torch.bfloat16
    with Precision("cpu", torch.bfloat16).autocast():
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype is torch.bfloat16


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "deepfake_lab.cli", *args]


def _final_gan_weights(run: Path) -> dict[str, torch.Tensor]:
    weights, _, _ = latest_checkpoint(run)
    return ckpt.load_weights(weights)[0]["G"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_training_process_resumes_exactly(tmp_path, sig):
    """A real `deepfake-lab train` process, killed mid-run, resumes to the same weights."""
    pytest.importorskip("deepfake_lab.gan")
    common = ["train", "gan", "--data", "ring8", "--steps", "150", "--batch-size", "64", "--checkpoint-every", "10",
              "--sample-every", "0", "--no-progress", "--seed", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_cli(*common, "--out", str(tmp_path / "full")), check=True, env=env, capture_output=True)

    run = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*common, "--out", str(run)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        found = latest_checkpoint(run) if (run / "latest.json").exists() else None
        if found and found[2] >= 30:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be interrupted; make it longer"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    stopped_at = latest_checkpoint(run)[2]
    assert 30 <= stopped_at < 150
    if sig == signal.SIGINT:  # Ctrl-C finishes the step, saves, and says how to resume
        assert b"resume" in proc.stderr.read()
    done = subprocess.run(_cli(*common, "--out", str(run)), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"resuming {run} from step {stopped_at}" in done.stderr
    full, resumed = _final_gan_weights(tmp_path / "full"), _final_gan_weights(run)
    for key in full:
        assert torch.equal(full[key], resumed[key]), key


# ---- a corrupt latest checkpoint: resume falls back to the intact one before it ---------------------------
@pytest.fixture(scope="module")
def resumed_at_14(tmp_path_factory):
    """A run that stopped at the checkpoint of step 14 and resumed from it: (final weights, losses). Resume is
    exact, so these are also the numbers of a run never interrupted, or resumed from step 21."""
    run = tmp_path_factory.mktemp("reference")
    _train(run, stop_after=14)
    final = _weights(_train(run))
    return final, [r["loss"] for r in csv.DictReader(open(run / "losses.csv"))]


def _break_weights_truncated(run: Path) -> Path:
    path = run / "step-0000021.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _break_state_truncated(run: Path) -> Path:
    path = run / "step-0000021.state.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _break_weights_empty(run: Path) -> Path:
    (run / "step-0000021.safetensors").write_bytes(b"")
    return run / "step-0000021.safetensors"


def _break_state_empty(run: Path) -> Path:
    (run / "step-0000021.state.pt").write_bytes(b"")
    return run / "step-0000021.state.pt"


def _break_pointer_empty(run: Path) -> Path:
    (run / "latest.json").write_text("")
    return run / "latest.json"


def _break_pointer_garbage(run: Path) -> Path:
    (run / "latest.json").write_bytes(b"\x00\x13{garbage")
    return run / "latest.json"


def _break_pointer_to_missing_file(run: Path) -> Path:
    (run / "step-0000021.safetensors").unlink()  # latest.json still names step 21
    return run / "latest.json"


@pytest.mark.parametrize("break_it, problem, resumes_at", [
    (_break_weights_truncated, "truncated or damaged (", 14),
    (_break_state_truncated, "truncated or damaged (", 14),
    (_break_weights_empty, "empty (0 bytes)", 14),
    (_break_state_empty, "empty (0 bytes)", 14),
    (_break_pointer_empty, "empty (0 bytes)", 21),  # the step-21 files are intact: nothing is lost
    (_break_pointer_garbage, "not a checkpoint pointer", 21),
    (_break_pointer_to_missing_file, "names step 21, but step-0000021.safetensors is missing", 14),
], ids=["truncated-weights", "truncated-state", "empty-weights", "empty-state", "empty-latest.json",
        "garbage-latest.json", "latest.json-names-a-missing-file"])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys, resumed_at_14, break_it,
                                                                   problem, resumes_at):
    run = tmp_path / "run"
    _train(run, stop_after=21)  # checkpoints at steps 7, 14, 21
    broken = break_it(run)
    broken_bytes = broken.read_bytes()
    capsys.readouterr()
    resumed = _train(run)
    err = capsys.readouterr().err
    # one line says which file and what is wrong with it, then where the run resumes
    line = next(x for x in err.splitlines() if x.startswith(f"{broken}: "))
    assert problem in line, err
    assert f"resuming {run} from step {resumes_at}" in err
    # the broken file is kept, renamed aside, byte for byte; the new checkpoints did not land on it
    assert (run / f"{broken.name}.broken").read_bytes() == broken_bytes
    assert latest_checkpoint(run)[2] == 40
    # and the run ends exactly where an uninterrupted run resumed from step 14 ends
    final, losses = resumed_at_14
    for key, value in _weights(resumed).items():
        assert torch.equal(value, final[key]), key
    assert [r["loss"] for r in csv.DictReader(open(run / "losses.csv"))] == losses


def test_a_broken_step_goes_aside_whole_and_loaders_skip_a_garbage_pointer(tmp_path, capsys):
    run = tmp_path / "run"
    _train(run, stop_after=21)
    _break_state_truncated(run)
    (run / "latest.json").write_text("{not json")
    # readers of a run folder (translate, the app) take the newest complete pair instead of raising
    assert latest_checkpoint(run)[2] == 21
    capsys.readouterr()
    _train(run, stop_after=1)  # resumes at 14, saves 15
    err = capsys.readouterr().err
    assert f"resuming {run} from step 14" in err
    assert sorted(p.name for p in run.glob("*.broken")) == [
        "latest.json.broken", "step-0000021.safetensors.broken", "step-0000021.state.pt.broken"]
    # one line for each problem, each naming its file
    assert [x.split(": ")[0] for x in err.splitlines() if "moved aside" in x] == [
        str(run / "latest.json"), str(run / "step-0000021.state.pt")]

    # the same step breaks again later: what was kept aside the first time stays as it was
    first = (run / "step-0000021.state.pt.broken").read_bytes()
    _train(run, stop_after=6)  # 15 -> 21, a new step-21 checkpoint
    pointer = (run / "latest.json").read_text()
    (run / "step-0000021.safetensors").write_bytes(b"")
    _train(run, stop_after=1)
    assert (run / "step-0000021.safetensors.broken2").read_bytes() == b""
    assert (run / "latest.json.broken2").read_text() == pointer
    assert (run / "step-0000021.state.pt.broken").read_bytes() == first


def test_no_intact_checkpoint_says_so_and_how_to_start_over(tmp_path, resumed_at_14):
    run = tmp_path / "run"
    _train(run, stop_after=14, keep_last=1)  # only the checkpoint of step 14 is kept
    (run / "step-0000014.safetensors").write_bytes(b"")
    with pytest.raises(ckpt.CheckpointError, match=r"no intact checkpoint to resume from "
                                                   r"\(step-0000014.safetensors: empty \(0 bytes\)\).*--no-resume"):
        _train(run)
    assert (run / "step-0000014.safetensors.broken").read_bytes() == b""
    # --no-resume starts over and trains to the same numbers
    final, _ = resumed_at_14
    for key, value in _weights(_train(run, resume=False)).items():
        assert torch.equal(value, final[key]), key
