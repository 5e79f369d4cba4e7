"""Every row of the lesson table trains through the one train command: ``--seed`` fixes the initial
weights, and under torchrun two processes on different data shards end with the same weights.

Each lesson runs at the smallest sizes its flags allow (a step takes well under a second). The
``record`` wrapper below stands in for :func:`deepfake_lab.train.fit` while the command runs and
writes down, for each network, a digest of its parameters before and after training, and a digest of
every batch the model was given. Run as a script (``python tests/test_lessons.py RECORD_DIR -- train
...``), it does the same around ``deepfake-lab train ...``: that is what torchrun starts below.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
#: what every run below shares: one process thread, the CPU in fp32 (no precision probe), nothing but checkpoints
COMMON = ["--device", "cpu", "--precision", "fp32", "--no-progress", "--sample-every", "0", "--log-every", "1"]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: these networks are tiny, and on a shared CPU a second thread only waits for a core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------
# Recording what training did
# --------------------------------------------------------------------------------------------
def _digest(value) -> str:
    """A digest of every tensor in ``value`` (a tensor, or dicts, lists and tuples of them)."""
    h = hashlib.sha256()

    def feed(v):
        if torch.is_tensor(v):
            h.update(str(tuple(v.shape)).encode())
            h.update(v.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
        elif isinstance(v, dict):
            for k in sorted(v):
                h.update(str(k).encode())
                feed(v[k])
        elif isinstance(v, (list, tuple)):
            for x in v:
                feed(x)
        else:
            h.update(repr(v).encode())

    feed(value)
    return h.hexdigest()[:16]


def weight_digests(model) -> dict[str, str]:
    """{network: digest of its trainable parameters} (DDP wrappers see the same parameters)."""
    return {name: _digest([p for p in net.parameters() if p.requires_grad])
            for name, net in model.nets.items() if any(p.requires_grad for p in net.parameters())}


@contextmanager
def record(record: dict, ddp: bool = True):
    """While inside, :func:`deepfake_lab.train.fit` fills ``record`` with ``initial`` and ``final``
    weight digests and the digest of each batch (``batches``). ``ddp=False`` (a control run) turns
    off the gradient averaging, and the loop's own check that the ranks agree, to show that the
    comparison below would catch a model whose networks bypass DDP."""
    import deepfake_lab.train as loop

    real_fit = loop.fit  # what the train command calls
    home = real_fit.__globals__  # where fit finds the DDP functions it calls
    real_wrap, real_check = home["wrap_distributed"], home["assert_in_sync"]

    def fit(model, dataset, cfg):
        record["initial"] = weight_digests(model)
        record["batches"] = batches = []
        set_input = model.set_input

        def recording_set_input(batch):
            batches.append(_digest(batch))
            return set_input(batch)

        model.set_input = recording_set_input
        try:
            return real_fit(model, dataset, cfg)
        finally:
            record["final"] = weight_digests(model)
            del model.set_input

    loop.fit = fit
    if not ddp:
        home["wrap_distributed"] = home["assert_in_sync"] = lambda model: None
    try:
        yield record
    finally:
        loop.fit, home["wrap_distributed"], home["assert_in_sync"] = real_fit, real_wrap, real_check


# --------------------------------------------------------------------------------------------
# The smallest run of each lesson
# --------------------------------------------------------------------------------------------
def _unpaired_folder(root: Path) -> Path:
    """trainA/ and trainB/ of 6 small smooth images each, no test part (so no held-out evaluation)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for part in ("trainA", "trainB"):
        (root / part).mkdir(parents=True)
        for i in range(6):
            small = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
            Image.fromarray(small).resize((40, 40), Image.BILINEAR).save(root / part / f"{i}.png")
    return root


def _paired_folder(root: Path) -> Path:
    """train/ of 4 side-by-side A|B images of 128x128 each, no val/test part."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "train").mkdir(parents=True)
    for i in range(4):
        a = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], 1)).save(root / "train" / f"{i}.png")
    return root


#: lesson -> (flags of its smallest run, batch size per process, the data it needs made)
SMALL = {
    "gan": (["--preset", "demo", "--data", "ring8"], 8, None),
    "cyclegan": (["--preset", "demo", "--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--crop-size", "32",
                  "--load-size", "36"], 2, _unpaired_folder),
    "pix2pix": (["--preset", "demo", "--ngf", "4", "--ndf", "4", "--n-layers-D", "2"], 2, _paired_folder),
    "animation": (["--preset", "demo", "--image-size", "32", "--repeats", "1"], 2, None),
    "faceswap": (["--preset", "demo"], 2, None),
}


def small_run(name: str, data_root: Path, out: Path, steps: int, seed: int, export: Path | None = None) -> list[str]:
    """The arguments of ``deepfake-lab`` for lesson ``name``'s smallest run."""
    flags, batch, make_data = SMALL[name]
    data = []
    if make_data is not None:
        if not data_root.exists():
            make_data(data_root)
        data = ["--data", str(data_root)]
    return ["train", name, *flags, *data, "--steps", str(steps), "--batch-size", str(batch), "--seed", str(seed),
            "--checkpoint-every", str(steps), "--out", str(out), *COMMON,
            *(["--export", str(export)] if export else [])]


def test_every_lesson_has_a_small_run():
    from deepfake_lab.lessons import LESSONS

    assert [row.name for row in LESSONS] == list(SMALL), "a lesson was added or renamed: give it a small run here"


def test_the_readme_example_row_adds_a_lesson(tmp_path, monkeypatch):
    """README.md shows how to add a lesson with one row for tests/tiny_model.py: that row trains."""
    import re

    import deepfake_lab.cli.train as train_command
    from deepfake_lab import cli, lessons
    from deepfake_lab.checkpoints import load_weights
    from deepfake_lab.train import latest_checkpoint

    readme = (HERE.parent / "README.md").read_text()
    code = re.search(r"For the tiny model it would read:\n\n```python\n(.*?)```", readme, re.S)
    assert code, "README.md: the example Lesson(...) row for tests/tiny_model.py is missing"
    names = dict(vars(lessons))  # the row is written inside lessons.py
    exec(code.group(1), names)
    monkeypatch.setattr(train_command, "LESSONS", names["LESSONS"])
    out = tmp_path / "run"
    assert cli.main(["train", "tiny", "--width", "8", "--steps", "3", "--batch-size", "8", "--out", str(out),
                     *COMMON, "--export", str(tmp_path / "tiny.safetensors")]) == 0
    nets, meta = load_weights(latest_checkpoint(out)[0])
    assert meta["kind"] == "tiny" and nets["net"]["0.weight"].shape == (8, 4)
    assert names["TINY"].load(tmp_path / "tiny.safetensors")[1]["config"]["width"] == 8


# --------------------------------------------------------------------------------------------
# (a) --seed fixes the initial weights
# --------------------------------------------------------------------------------------------
def _checkpoint(out: Path) -> dict[str, dict[str, torch.Tensor]]:
    from deepfake_lab.checkpoints import load_weights
    from deepfake_lab.train import latest_checkpoint

    return load_weights(latest_checkpoint(out)[0])[0]


def _train_in_process(args: list[str]) -> dict:
    from deepfake_lab import cli

    with warnings.catch_warnings(), record({}) as done:
        warnings.simplefilter("ignore")
        code = cli.main(args)
    assert code == 0, args
    return done


@pytest.mark.parametrize("name", list(SMALL))
def test_seed_fixes_the_initial_weights(name, tmp_path):
    runs = {}
    for run, seed in (("a", 3), ("b", 3), ("c", 4)):
        runs[run] = _train_in_process(small_run(name, tmp_path / "data", tmp_path / run, steps=1, seed=seed))
        runs[run]["checkpoint"] = _checkpoint(tmp_path / run)
    a, b, c = runs["a"], runs["b"], runs["c"]
    assert a["initial"] and a["initial"] == b["initial"], "the same --seed gave other initial weights"
    assert a["batches"] == b["batches"], "the same --seed gave other data"
    for net, tensors in a["checkpoint"].items():  # and the saved weights after the step, tensor by tensor
        for key, value in tensors.items():
            assert torch.equal(value, b["checkpoint"][net][key]), f"{name}: {net}.{key} differs with one seed"
    assert all(a["initial"][net] != c["initial"][net] for net in a["initial"]), "another --seed, same weights"
    assert any(not torch.equal(value, c["checkpoint"][net][key])
               for net, tensors in a["checkpoint"].items() for key, value in tensors.items())


# --------------------------------------------------------------------------------------------
# (b) under torchrun the ranks train on different shards and stay identical
# --------------------------------------------------------------------------------------------
def _torchrun(tmp_path: Path, args: list[str], ddp: bool = True) -> list[dict]:
    records = tmp_path / "records"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get(
        "PYTHONPATH", "")])}
    command = [*TORCHRUN, str(HERE / "test_lessons.py"), str(records), *([] if ddp else ["--no-ddp"]), "--", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return [json.loads((records / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMALL))
def test_two_processes_train_in_sync(name, tmp_path):
    from deepfake_lab.checkpoints import load_weights
    from deepfake_lab.lessons import lesson

    export = tmp_path / "export.safetensors"
    rank0, rank1 = _torchrun(tmp_path, small_run(name, tmp_path / "data", tmp_path / "run", steps=2, seed=0,
                                                 export=export))
    assert len(rank0["batches"]) == len(rank1["batches"]) == 2
    # each rank had its own shard of the data: different batches at every step ...
    assert all(x != y for x, y in zip(rank0["batches"], rank1["batches"])), "the ranks saw the same batches"
    # ... from the same start, and both moved, to the same weights: the gradients were averaged
    assert rank0["initial"] == rank1["initial"]
    assert all(rank0["final"][net] != rank0["initial"][net] for net in rank0["final"]), "a network did not train"
    assert rank0["final"] == rank1["final"], f"{name}: the ranks ended with different weights"
    # rank 0 exported plain networks (no DDP ``module.`` prefixes) that the lesson loads back
    nets, meta = load_weights(export)
    assert meta["kind"] == name and not any(k.startswith("module.") for t in nets.values() for k in t)
    lesson(name).load(export)


@pytest.mark.slow
def test_the_sync_check_catches_networks_that_bypass_ddp(tmp_path):
    """The control of the test above: without gradient averaging the same run ends with different weights."""
    rank0, rank1 = _torchrun(tmp_path, small_run("gan", tmp_path / "data", tmp_path / "run", steps=2, seed=0),
                             ddp=False)
    assert rank0["initial"] == rank1["initial"]
    assert rank0["final"] != rank1["final"]


if __name__ == "__main__":  # under torchrun: python tests/test_lessons.py RECORD_DIR [--no-ddp] -- train ...
    from deepfake_lab import cli

    split = sys.argv.index("--")
    target, options, argv = Path(sys.argv[1]), sys.argv[2:split], sys.argv[split + 1:]
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    done: dict = {}
    try:
        with record(done, ddp="--no-ddp" not in options):
            code = cli.main(argv)
    finally:
        target.mkdir(parents=True, exist_ok=True)
        (target / f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(done))
    sys.exit(code)
