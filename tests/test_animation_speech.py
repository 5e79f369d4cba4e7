"""Lesson 4's mouth: speaking pseudo-videos, the mouth measure, and fine-tuning with ``train --init``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deepfake_lab import cli
from deepfake_lab.animation.evaluate import find_mouth, mouth_signals, mouth_transfer
from deepfake_lab.animation.importer import DEMO_WEIGHTS, load_animation_model
from deepfake_lab.data import DataError
from deepfake_lab.data.animation_data import PORTRAIT_MOTION, PORTRAIT_MOUTHS, carphone_split, demo_training_set
from deepfake_lab.data.faces import detect_faces
from deepfake_lab.data.portraits import PORTRAITS, portrait_stills
from deepfake_lab.data.pseudo_video import jaw_drop, mouth_from_box, pseudo_video



@pytest.fixture(scope="module")
def grace():
    return portrait_stills(128)["grace_hopper"]


def _openings(n_frames: int, talk: float, size: int, seed: int) -> np.ndarray:
    """The jaw drops :func:`pseudo_video` draws for ``seed``, in pixels (its recipe: the speech draws come last)."""
    rng = np.random.default_rng(seed)
    for shape in [()] * 4 + [(2, 4, 4)] + [()] * 3:  # roll, zoom, dx, dy, the warp grid, gain, contrast, tint
        rng.uniform(0.5, 2.5, size=(2,) + shape)
        rng.uniform(0, 2 * np.pi, size=(2,) + shape)
    cycles, phase = rng.uniform(3.0, 6.0), rng.uniform(0, 2 * np.pi)
    t = np.arange(n_frames) / (n_frames - 1)
    return talk * size * ((1 + np.sin(2 * np.pi * cycles * t + phase)) / 2) ** 1.5


def test_jaw_drop_moves_the_chin_down_keeps_the_eyes_and_darkens_only_the_lips():
    ys, xs = np.mgrid[0:128, 0:128].astype(np.float32)
    dx, dy, dark = jaw_drop(xs, ys, (64.0, 64.0), (1.0, 0.0), (0.0, 1.0), 66.0, 6.0)
    assert np.allclose(dx, 0) and dy[80, 64] == pytest.approx(-6.0, abs=0.01)  # the chin shows what was 6 px up
    assert dy[40, 64] == 0 and dy[120, 64] == 0  # the eyes and, far below, the neck stay
    assert dark[65, 64] > 0.5 and dark[80, 64] == 0 and dark[65, 20] < 0.01  # between the lips only
    sampled = ys[:, 64] + dy[:, 64]
    assert np.all(np.diff(sampled) > 0)  # the map does not fold over at the shipped recipe's largest drop
    face = PORTRAIT_MOUTHS["grace_hopper"][2] * 128  # the narrower portrait face
    for zoom in (0.92, 1.08):  # the recipe's zoom scales the drop and the face alike
        _, dy, _ = jaw_drop(xs, ys, (64.0, 64.0), (1.0, 0.0), (0.0, 1.0), face * zoom, 0.05 * 128 * zoom)
        assert np.all(np.diff(ys[:, 64] + dy[:, 64]) > 0)


def test_every_portrait_has_its_lips_marked():
    assert set(PORTRAIT_MOUTHS) == set(PORTRAITS)


def test_speaking_pseudo_videos_are_reproducible_and_leave_the_silent_recipe_unchanged(grace):
    mouth = PORTRAIT_MOUTHS["grace_hopper"]
    silent = pseudo_video(grace, 12, 128, seed=0, **PORTRAIT_MOTION)
    speaking = pseudo_video(grace, 12, 128, seed=0, talk=0.05, mouth=mouth, **PORTRAIT_MOTION)
    assert np.array_equal(speaking, pseudo_video(grace, 12, 128, seed=0, talk=0.05, mouth=mouth, **PORTRAIT_MOTION))
    assert np.array_equal(silent, pseudo_video(grace, 12, 128, seed=0, talk=0.0, mouth=mouth, **PORTRAIT_MOTION))
    # the speech draws come after the head's: the same head motion, so above the lips the two clips are the same
    assert np.array_equal(silent[:, :60], speaking[:, :60])
    diff = np.abs(speaking.astype(int) - silent.astype(int)).mean(axis=(1, 2, 3))
    assert diff.max() > 1.5 and diff.min() < diff.max() / 3  # it opens and closes
    with pytest.raises(DataError, match="give mouth="):
        pseudo_video(grace, 4, 64, talk=0.05)
    with pytest.raises(DataError, match="--portrait-talk 0.2"):
        demo_training_set(32, talk=0.2)


def test_more_clips_give_each_portrait_new_paths_and_keep_the_first_clips(capsys):
    one = demo_training_set(32, portrait_weight=2, talk=0.05)
    two = demo_training_set(32, portrait_weight=2, talk=0.05, clips=2)
    assert two.index == [0] * 8 + [1, 1, 2, 2, 3, 3, 4, 4]  # every clip weighs as much as a portrait's one clip
    assert all(np.array_equal(a, b) for a, b in zip(one.videos, two.videos[:3]))  # clip 0: the clips=1 videos
    for first, second in zip(two.videos[1:3], two.videos[3:5]):  # the same portrait on another path
        assert np.abs(first.astype(int) - second.astype(int)).mean() > 5
    with pytest.raises(DataError, match="--portrait-clips 0: give a whole number from 1 to 16"):
        demo_training_set(32, clips=0)
    assert cli.main(["train", "animation", "--data", str(Path(__file__).parent), "--portrait-clips", "2"]) == 2
    assert "--portrait-clips: only for --data demo" in capsys.readouterr().err
    assert cli.main(["train", "animation", "--portrait-clips", "0", "--steps", "1"]) == 2  # refused, not taken as 1
    assert "--portrait-clips 0: give a whole number from 1 to 16" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(PORTRAIT_MOUTHS))
def test_the_mouth_measure_recovers_the_jaw_drop_of_a_speaking_pseudo_video(name):
    """Where the opening is known (the speaking pseudo-video's own), the lips' darkening follows it, with the head
    moving too; a head that only moves scores near 0 against it."""
    still = portrait_stills(128)[name]
    mouth, seed = PORTRAIT_MOUTHS[name], list(PORTRAITS).index(name)  # the seed of its clip in the training set
    speaking = pseudo_video(still, 24, 128, seed=seed, talk=0.05, mouth=mouth, **PORTRAIT_MOTION)
    opening = _openings(24, 0.05, 128, seed)
    jaw, darkening = mouth_signals(speaking, mouth)
    assert np.corrcoef(darkening[1:], opening[1:] - opening[0])[0, 1] > 0.9
    assert np.corrcoef(jaw[1:], opening[1:] - opening[0])[0, 1] > 0.4  # the jaw's flow is the noisier signal
    head_only = pseudo_video(still, 24, 128, seed=seed, **PORTRAIT_MOTION)
    scores = mouth_transfer(speaking, mouth, head_only, mouth)
    assert abs(scores["dark_corr"]) < 0.5 and scores["dark_share"] < 0.05
    assert mouth_transfer(speaking, mouth, speaking, mouth) == {"jaw_share": 1.0, "jaw_corr": pytest.approx(1.0),
                                                               "dark_share": 1.0, "dark_corr": pytest.approx(1.0)}
    silent = np.repeat(speaking[:1], 24, axis=0)
    assert mouth_transfer(speaking, mouth, silent, mouth)["dark_corr"] == 0.0  # a still portrait: 0
    with pytest.raises(ValueError, match="does not move"):
        mouth_transfer(silent, mouth, speaking, mouth)


def test_the_lips_sit_where_the_face_box_says_on_the_carphone_man():
    """The carphone man's lips (0.77 of his face box down) open on frames 60-65: the darkening is there."""
    train, _ = carphone_split(128)
    mouth = find_mouth(train[45:75])
    assert mouth == mouth_from_box(detect_faces(train[45])[0], 128)
    _, darkening = mouth_signals(train[45:75], mouth)
    assert darkening[15:21].max() > 0.05 > abs(darkening[1:5]).max()
    with pytest.raises(ValueError, match="outside"):
        mouth_signals(train[:3], (0.5, 0.98, 0.5))


@pytest.mark.skipif(not DEMO_WEIGHTS.exists(), reason="demo weights not trained yet")
def test_init_starts_training_from_a_weights_file_and_refuses_files_that_do_not_fit(tmp_path, capsys):
    out, export = tmp_path / "run", tmp_path / "tuned.safetensors"
    code = cli.main(["train", "animation", "--preset", "demo-128", "--init", str(DEMO_WEIGHTS), "--steps", "1",
                     "--batch-size", "2", "--lr", "1e-9", "--portrait-talk", "0.05", "--out", str(out),
                     "--no-progress", "--sample-every", "0", "--export", str(export), "--device", "cpu",
                     "--precision", "fp32"])
    assert code == 0
    capsys.readouterr()
    tuned, demo = load_animation_model(export, precision="fp32"), load_animation_model(precision="fp32")
    a, b = tuned.kp_detector.state_dict(), demo.kp_detector.state_dict()
    conv = next(k for k, v in a.items() if v.ndim == 4)
    assert torch.allclose(a[conv], b[conv], atol=1e-3)  # started from the demo weights (lr 1e-9: hardly moved)
    from deepfake_lab.checkpoints import read_metadata
    from deepfake_lab.weights import sha256_file
    assert read_metadata(export)["init_sha256"] == sha256_file(DEMO_WEIGHTS)

    assert cli.main(["train", "animation", "--init", str(DEMO_WEIGHTS), "--preset", "demo-128", "--num-kp", "5",
                     "--steps", "1",
                     "--out", str(tmp_path / "r2"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "--init" in err and "does not fit" in err and "kp_detector" in err
    pix2pix = DEMO_WEIGHTS.with_name("pix2pix-carphone-edges.safetensors")
    assert cli.main(["train", "animation", "--preset", "demo-128", "--init", str(pix2pix), "--steps", "1",
                     "--out", str(tmp_path / "r3"), "--device", "cpu"]) == 2
    assert "holds 'pix2pix' weights, not 'animation'" in capsys.readouterr().err
    assert cli.main(["train", "animation", "--preset", "demo-128", "--init", str(tmp_path / "none.safetensors"),
                     "--steps", "1", "--out", str(tmp_path / "r4"), "--device", "cpu"]) == 2
    assert "no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(DEMO_WEIGHTS.read_bytes()[:1000])  # a download cut short
    assert cli.main(["train", "animation", "--preset", "demo-128", "--init", str(broken), "--steps", "1",
                     "--out", str(tmp_path / "r5"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"--init {broken}: not a readable safetensors" in err and "train animation --export" in err
