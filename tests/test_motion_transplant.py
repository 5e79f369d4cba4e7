"""Lesson 4: transplanted motion (a portrait moved as the driver moves) and the relative-transfer training items."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from deepfake_lab import cli
from deepfake_lab.animation.keypoints import relative_keypoints
from deepfake_lab.animation.model import PRESETS, AnimationModel, reconstruct, reconstruct_relative
from deepfake_lab.data import DataError
from deepfake_lab.data.animation_data import PORTRAIT_MOUTHS, TransplantPairs, VideoPairDataset, demo_training_set
from deepfake_lab.data.face_motion import face_box
from deepfake_lab.data.motion_transplant import HEAD, JAW_DROP, head_affines, head_alpha, head_background
from deepfake_lab.data.motion_transplant import mouth_openness, transplant_motion
from deepfake_lab.data.portraits import portrait_stills
from deepfake_lab.data.pseudo_video import darken_mouth, moved_jaw

SIZE = 128


@pytest.fixture(scope="module")
def stills():
    return portrait_stills(SIZE)


def _known_affines(n: int) -> np.ndarray:
    """A head that turns by up to 6 degrees, zooms by up to 8 % and drifts 6 px, smoothly: (n, 2, 3)."""
    t = np.linspace(0, 1, n)
    out = [cv2.getRotationMatrix2D((64.0, 70.0), 6 * np.sin(2 * np.pi * s), 1 + 0.08 * s) for s in t]
    for m, s in zip(out, t):
        m[:, 2] += (6 * s, -3 * s)
    return np.stack(out)


def _moved(still: np.ndarray, affines: np.ndarray) -> np.ndarray:
    return np.stack([cv2.warpAffine(still, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                     for m in affines])


def test_head_affines_recover_a_known_head_motion(stills):
    known = _known_affines(12)
    clip = _moved(stills["grace_hopper"], known)
    fitted = head_affines(clip, PORTRAIT_MOUTHS["grace_hopper"])
    assert np.allclose(fitted[0], np.eye(2, 3))
    # where the fitted maps put the face's corners, against the known maps: within half a pixel
    corners = np.array([[40.0, 40.0, 1.0], [90.0, 40.0, 1.0], [40.0, 90.0, 1.0], [90.0, 90.0, 1.0]])
    error = np.abs(np.einsum("tij,nj->tni", fitted, corners) - np.einsum("tij,nj->tni", known, corners))
    assert error.max() < 0.5, error.max(axis=(1, 2))


def test_mouth_openness_follows_a_known_jaw_drop(stills):
    still, mouth = stills["grace_hopper"], PORTRAIT_MOUTHS["grace_hopper"]
    known = (1 + np.sin(np.linspace(0, 4 * np.pi, 24))) / 2                   # opens and shuts twice
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    frames = []
    for o in known:
        dx, dy, dark = moved_jaw(xs, ys, np.eye(2, 3), mouth, SIZE, o * JAW_DROP * mouth[2] * SIZE)
        frame = cv2.remap(still, (xs + dx).astype(np.float32), (ys + dy).astype(np.float32), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        frames.append(np.clip(darken_mouth(frame.astype(np.float32), dark), 0, 255).round().astype(np.uint8))
    frames = np.stack(frames)
    openness = mouth_openness(frames, mouth, np.tile(np.eye(2, 3), (len(frames), 1, 1)))
    assert openness.min() == 0 and openness.max() == 1
    assert np.corrcoef(openness, known)[0, 1] > 0.9
    # a silent face moving its head does not read as talking
    silent = _moved(still, _known_affines(12))
    assert mouth_openness(silent, mouth, head_affines(silent, mouth)).max() <= 0.3      # without SILENT: 1


def test_a_transplanted_portrait_moves_as_the_driver_and_keeps_its_face(stills):
    known = _known_affines(10)
    driver = _moved(stills["grace_hopper"], known)                           # the driver: a moving, silent face
    her = transplant_motion(stills["astronaut"], PORTRAIT_MOUTHS["astronaut"], driver, PORTRAIT_MOUTHS["grace_hopper"])
    assert her.shape == driver.shape and her.dtype == np.uint8
    # her head follows his: the driver's maps carried over by the similarity between the faces, exactly where the
    # head does not fade out (the eyes to the nose), up to interpolation (one bilinear remap against OpenCV's
    # warpAffine: 1.2 grey levels on average)
    his, hers = (np.array(PORTRAIT_MOUTHS[n][:2]) * SIZE for n in ("grace_hopper", "astronaut"))
    scale = PORTRAIT_MOUTHS["astronaut"][2] / PORTRAIT_MOUTHS["grace_hopper"][2]
    s = np.array([[scale, 0, hers[0] - scale * his[0]], [0, scale, hers[1] - scale * his[1]], [0, 0, 1]])
    expected = np.stack([(s @ np.vstack([a, [0, 0, 1]]) @ np.linalg.inv(s))[:2] for a in known])
    moved = _moved(stills["astronaut"], expected)
    rows, cols = face_box((SIZE, SIZE), PORTRAIT_MOUTHS["astronaut"], (-0.3, 0.3, -0.7, -0.15))
    assert np.abs(her[:, rows, cols].astype(float) - moved[:, rows, cols]).mean() < 2.0
    # it is her, not him: her frames are far closer to her photo moved the same way than to the driver's
    assert np.abs(her.astype(float) - driver).mean() > 3 * np.abs(her.astype(float) - moved).mean()


def test_only_the_head_moves_over_a_still_background_and_never_folds(stills):
    mouth = PORTRAIT_MOUTHS["astronaut"]
    # a head that slides 20 px sideways, as far as the carphone man's lips move from frame 0 (21 px)
    slide = np.stack([np.array([[1.0, 0, 20 * s], [0, 1.0, 0]]) for s in np.linspace(0, 1, 8)])
    driver = _moved(stills["grace_hopper"], slide)
    her = transplant_motion(stills["astronaut"], mouth, driver, PORTRAIT_MOUTHS["grace_hopper"])
    # the frame's corners lie outside the head's faded edge: there the photo shows, unmoved, in every frame
    for rows, cols in ((slice(0, 12), slice(0, 12)), (slice(0, 12), slice(-12, None)), (slice(40, 60), slice(0, 8))):
        assert np.abs(her[:, rows, cols].astype(int) - stills["astronaut"][rows, cols]).max() <= 1
    # the face slides rigidly, not stretched or folded: the last frame's eyes to nose are the photo's, 20 px on
    # (the similarity between the faces scales the slide by her face width over the driver's)
    slid = _moved(stills["astronaut"], [np.array([[1.0, 0, 20 * mouth[2] / PORTRAIT_MOUTHS["grace_hopper"][2]],
                                                  [0, 1.0, 0]])])[0]
    rows, cols = face_box((SIZE, SIZE), mouth, (-0.3, 0.3, -0.7, -0.15))
    shifted = slice(cols.start + 21, cols.stop + 21)
    assert np.abs(her[-1][rows, shifted].astype(float) - slid[rows, shifted]).mean() < 2.0
    assert np.abs(her[-1][rows, cols].astype(float) - stills["astronaut"][rows, cols]).mean() > 10
    # the layers: all head at the ellipse's centre, none beyond its faded edge; the background is the photo
    # outside the ellipse, and head over background at rest gives the photo back
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    alpha, background = head_alpha(xs, ys, mouth, SIZE), head_background(stills["astronaut"], mouth)
    width = mouth[2] * SIZE
    cx, cy = round(mouth[0] * SIZE), round(mouth[1] * SIZE - HEAD["above"] * width)
    assert alpha[cy, cx] == 1 and alpha[0, 0] == 0 and alpha[-1, 0] == 0
    outside = alpha < 1
    assert np.abs(background[outside] - stills["astronaut"][outside]).max() < 1e-3
    assert np.abs(background[cy, cx] - stills["astronaut"][cy, cx]).max() > 0  # filled in behind the face
    at_rest = alpha[..., None] * stills["astronaut"] + (1 - alpha[..., None]) * background
    assert np.abs(at_rest - stills["astronaut"]).max() < 1e-3


def test_transplanted_clips_move_as_the_driver_by_the_flow_measure(stills):
    """The transplant's faithfulness, by the measure lesson 4 scores the model with: the carphone man's motion over
    30-frame windows of frames 0-89 (its training part), transplanted onto his own frame 0, reproduces 0.381 of
    his optical-flow motion on average (moving the whole crop instead: -0.18); onto Grace Hopper 0.174, onto
    Eileen Collins, whose hair reaches far beyond the head's ellipse and stays put, 0.025."""
    from deepfake_lab.animation.evaluate import motion_transfer
    from deepfake_lab.data.animation_data import carphone_split
    from deepfake_lab.data.face_motion import find_mouth

    train, _ = carphone_split(SIZE)
    his = find_mouth(train)
    faces = {"himself": (train[0], his), **{n: (stills[n], PORTRAIT_MOUTHS[n]) for n in stills}}
    means = {}
    for name, (still, mouth) in faces.items():
        clip = transplant_motion(still, mouth, train, his)
        means[name] = np.mean([motion_transfer(train[s:s + 30], clip[s:s + 30]) for s in range(0, 61, 15)])
    assert means["himself"] > 0.3 and means["grace_hopper"] > 0.1 and means["astronaut"] > 0, means


def test_transplant_motion_names_what_is_wrong(stills):
    driver = np.zeros((4, 64, 64, 3), np.uint8)
    with pytest.raises(DataError, match="need frames of the portrait's size"):
        transplant_motion(stills["astronaut"], PORTRAIT_MOUTHS["astronaut"], driver, (0.5, 0.6, 0.5))
    with pytest.raises(DataError, match=r"driver_mouth=\(0.5, 1.6, 0.5\): give \(x, y, face width\)"):
        transplant_motion(stills["astronaut"], PORTRAIT_MOUTHS["astronaut"], np.zeros((4, SIZE, SIZE, 3), np.uint8),
                          (0.5, 1.6, 0.5))
    with pytest.raises(DataError, match="need \\(T >= 2, S, S, 3\\) uint8"):
        head_affines(np.zeros((1, SIZE, SIZE, 3), np.uint8), (0.5, 0.6, 0.5))
    with pytest.raises(DataError, match=r"\(100, 128, 3\) \(uint8\); need a square .*crop it first"):
        transplant_motion(stills["astronaut"][:100], PORTRAIT_MOUTHS["astronaut"],
                          np.zeros((4, 100, 128, 3), np.uint8), (0.5, 0.6, 0.5))
    with pytest.raises(DataError, match=r"affines \(3, 2, 3\): need .* one 2x3 map each"):
        mouth_openness(np.zeros((4, SIZE, SIZE, 3), np.uint8), (0.5, 0.6, 0.5), np.zeros((3, 2, 3)))


def test_transplant_pairs_pose_the_relative_task_with_its_ground_truth():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    driver, clip, other = (rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8) for _ in range(3))
    pairs = VideoPairDataset([other], 16, weights=[2])
    data = TransplantPairs(pairs, driver, [clip], weight=3, repeats=2, flip=False)
    assert len(data) == 2 + 6
    plain = data[0]
    assert not plain["transplant"] and torch.equal(plain["reference"], plain["source"])
    assert torch.equal(plain["target"], plain["driving"])
    as_tensor = [torch.from_numpy(v.astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1 for v in (driver, clip)]
    for i in range(2, len(data)):
        item = data[i]
        assert item["transplant"]
        r = next(k for k in range(6) if torch.equal(item["reference"], as_tensor[0][k]))
        t = next(k for k in range(6) if torch.equal(item["driving"], as_tensor[0][k]))
        assert r != t and torch.equal(item["source"], as_tensor[1][r]) and torch.equal(item["target"], as_tensor[1][t])
    with pytest.raises(DataError, match="need clips of the driver's shape"):
        TransplantPairs(pairs, driver, [clip[:4]], weight=1)


def test_relative_items_move_the_source_by_the_drivers_change_and_plain_ones_are_the_papers_task():
    torch.manual_seed(0)
    config = PRESETS["demo"]
    model = AnimationModel(config, total_steps=10, perceptual=None)
    kp, gen = model.nets["kp_detector"].eval(), model.nets["generator"].eval()
    source, driving = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        paper = reconstruct(kp, gen, source, driving)["prediction"]
        plain = reconstruct_relative(kp, gen, source, driving, torch.rand(2, 3, 64, 64), torch.tensor([False, False]))
        # a driver that has not moved since its reference leaves the source where it is
        still = reconstruct_relative(kp, gen, source, driving, driving, torch.tensor([True, False]))["prediction"]
        at_rest = gen(source, kp_driving=kp(source), kp_source=kp(source))["prediction"]
    assert torch.allclose(plain["prediction"], paper)
    assert torch.allclose(still[0], at_rest[0], atol=1e-5) and torch.allclose(still[1], paper[1])
    # another reference: the source's keypoints move by the driver's change since it, in that order
    reference = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        moved = reconstruct_relative(kp, gen, source, driving, reference, torch.tensor([True, True]))["prediction"]
        wanted = gen(source, kp_driving=relative_keypoints(kp(source), kp(driving), kp(reference)),
                     kp_source=kp(source))["prediction"]
        swapped = gen(source, kp_driving=relative_keypoints(kp(source), kp(reference), kp(driving)),
                      kp_source=kp(source))["prediction"]
    # (an untrained generator hardly depends on the keypoints: differences of ~1e-3, far above float noise, 1e-6)
    assert torch.allclose(moved, wanted, atol=1e-6)
    assert (moved - swapped).abs().max() > 1e-4 and (moved - paper).abs().max() > 1e-4


def test_a_training_step_on_transplanted_items():
    torch.manual_seed(0)
    config = PRESETS["demo"]
    model = AnimationModel(config, total_steps=10)
    batch = {k: torch.rand(2, 3, 64, 64) * 2 - 1 for k in ("source", "driving", "reference", "target")}
    batch["transplant"] = torch.tensor([True, False])
    model.set_input(batch)
    assert torch.equal(model.target, (batch["target"] + 1) / 2)
    # the reconstruction losses compare the prediction with the target, not with the driving frame
    torch.manual_seed(1)
    terms = model.compute_losses()
    prediction = model.generated["prediction"].detach()
    target, driving = model.target, model.driving
    assert torch.isclose(terms["l1"], config.l1_weight * (prediction - target).abs().mean())
    assert not torch.isclose(terms["l1"], config.l1_weight * (prediction - driving).abs().mean())
    losses = model.optimize_parameters()
    assert all(np.isfinite(v) for v in losses.values()) and losses["total"] > 0
    with pytest.raises(ValueError, match="come together"):
        model.set_input({"source": batch["source"], "driving": batch["driving"], "reference": batch["reference"]})


def test_the_demo_training_set_with_transplanted_pairs_and_its_flag(capsys):
    data = demo_training_set(64, portrait_weight=2, transplant=3)
    assert isinstance(data, TransplantPairs) and len(data) == 8 + 2 * 2 + 2 * 3
    assert sum(bool(data[i]["transplant"]) for i in range(len(data))) == 6
    with pytest.raises(DataError, match="--portrait-transplant 65: give a whole number from 0 to 64"):
        demo_training_set(64, transplant=65)
    assert cli.main(["train", "animation", "--data", str(Path(__file__).parent), "--portrait-transplant", "2"]) == 2
    assert "--portrait-transplant: only for --data demo" in capsys.readouterr().err


def test_the_sample_grid_shows_one_item_a_row_with_the_target_of_relative_items():
    torch.manual_seed(0)
    model = AnimationModel(PRESETS["demo"], total_steps=10, perceptual=None)
    frames = {k: torch.rand(2, 3, 64, 64) * 2 - 1 for k in ("source", "driving", "reference", "target")}
    model.set_input({"source": frames["source"], "driving": frames["driving"]})
    model.forward()
    plain = model.sample_images()
    model.set_input({**frames, "transplant": torch.tensor([True, False])})
    model.forward()
    relative = model.sample_images()
    # columns of 64 px plus 2 px of padding: 5 without a target, 6 with; one row per item
    assert plain.size == (2 + 5 * 66, 2 + 2 * 66) and relative.size == (2 + 6 * 66, 2 + 2 * 66)
