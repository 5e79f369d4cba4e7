"""Lesson 4, image animation (First Order Motion Model): the model, its conventions, data, CLI and demo weights."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepfake_lab import cli
from deepfake_lab.animation import (OFFICIAL_PARAMETER_COUNTS, AnimationConfig, AnimationModel,
                                    FirstOrderModel, animate, load_animation_model, load_official_checkpoint,
                                    motion_details, normalize_kp, read_video_metadata)
from deepfake_lab.animation.dense_motion import sparse_motions
from deepfake_lab.animation.equivariance import (RandomTransform, equivariance_jacobian_loss,
                                                 equivariance_value_loss)
from deepfake_lab.animation.grids import AntiAliasInterpolation2d, make_coordinate_grid, warp
from deepfake_lab.animation.hourglass import UpBlock2d
from deepfake_lab.animation.importer import DEMO_WEIGHTS, config_from_official
from deepfake_lab.animation.keypoints import KPDetector, soft_argmax
from deepfake_lab.animation.transfer import best_frame_index, convex_hull_area
from deepfake_lab.data import DataError

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "fomm_vox256_state_dict_shapes.json"
#: a config small enough to build and run in milliseconds (32x32 frames)
TINY = AnimationConfig(image_size=32, num_kp=4, kp_block_expansion=8, kp_max_features=32, kp_num_blocks=2,
                       kp_scale_factor=0.5, kp_pad=3, block_expansion=8, max_features=32, num_bottleneck_blocks=1,
                       dm_block_expansion=8, dm_max_features=32, dm_num_blocks=2, dm_scale_factor=0.5,
                       perceptual_weights=(0.0,) * 5, l1_weight=10.0, lr=1e-3)
#: what the demo weights' model card (assets/weights/animation-demo.md) reports on held-out carphone frames
DEMO_CARD_L1 = 0.0321
DEMO_MIN_L1_MARGIN = 0.25  # the course's goal; measured 32.4 % below the no-motion baseline


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------------------
# The official vox-256 configuration: sizes and key names
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vox():
    return FirstOrderModel(AnimationConfig())


def test_vox256_parameter_counts_match_the_official_networks(vox):
    assert _count(vox.kp_detector) == OFFICIAL_PARAMETER_COUNTS["kp_detector"] == 14_215_368
    assert _count(vox.generator) == OFFICIAL_PARAMETER_COUNTS["generator"] == 45_575_391
    assert _count(vox.generator.dense_motion_network) == 37_730_268


#: (number of tensors, sha256 of the sorted [key, shape] list) of the official vox-256 state dicts, BatchNorm
#: buffers included, computed from the key/shape listing of the official networks
OFFICIAL_STATE_DICTS = {
    "kp_detector": (75, "0347e8655f4f471257b716b37ae696f0e35d802db61ef844dc563219ed1a4790"),
    "generator": (196, "aba78dc4cda145877656395f3eb7dadf83c8360827c3611d963336cbce45f187"),
}


def _fingerprint(shapes: dict[str, list[int]]) -> tuple[int, str]:
    return len(shapes), hashlib.sha256(json.dumps(sorted(shapes.items())).encode()).hexdigest()


def test_vox256_state_dict_keys_and_shapes_match_the_official_checkpoint(vox):
    for name, net in (("kp_detector", vox.kp_detector), ("generator", vox.generator)):
        ours = {k: list(v.shape) for k, v in net.state_dict().items()}
        if REFERENCE.exists():  # the full listing gives a readable diff
            assert ours == json.loads(REFERENCE.read_text())["state_dict_shapes"][name], name
        assert _fingerprint(ours) == OFFICIAL_STATE_DICTS[name], name
    # spot checks of names users meet in error messages and importers
    keys = vox.generator.state_dict().keys()
    assert {"dense_motion_network.mask.weight", "bottleneck.r0.conv1.weight", "first.conv.weight", "final.weight",
            "dense_motion_network.down.weight"} <= set(keys)
    assert {"kp.weight", "jacobian.weight", "down.weight",
            "predictor.encoder.down_blocks.0.norm.running_mean"} <= set(vox.kp_detector.state_dict())


def test_the_vox256_config_is_read_back_from_official_shapes(vox):
    # the official state dicts have exactly these shapes (previous test), so this is what an import sees
    assert config_from_official(vox.generator.state_dict(), vox.kp_detector.state_dict()) == AnimationConfig()


# ------------------------------------------------------------------------------------------------
# Numerical conventions of the official code (pinned)
# ------------------------------------------------------------------------------------------------
def test_coordinate_grid_spans_minus_one_to_one_x_first():
    grid = make_coordinate_grid((3, 5))  # (H, W, 2)
    assert grid.shape == (3, 5, 2)
    assert torch.allclose(grid[0, :, 0], torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))  # x = 2j/(W-1) - 1
    assert torch.allclose(grid[:, 0, 1], torch.tensor([-1.0, 0.0, 1.0]))  # y = 2i/(H-1) - 1


def test_grid_sample_uses_align_corners_false_with_the_corner_spaced_grid():
    # the identity grid puts the corners at +-1, which align_corners=False reads as the pixels' outer edges:
    # with zero padding a constant image of ones loses half its value at edges and 3/4 at corners
    ones = torch.ones(1, 1, 3, 3)
    out = warp(ones, make_coordinate_grid((3, 3)).unsqueeze(0))
    expected = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    assert torch.allclose(out[0, 0], expected)
    x = torch.rand(2, 3, 6, 6)
    grid = torch.rand(2, 6, 6, 2) * 2 - 1
    assert torch.equal(warp(x, grid), F.grid_sample(x, grid, align_corners=False))


def test_up_blocks_upsample_nearest_with_scale_factor_two():
    block = UpBlock2d(2, 2).eval()
    with torch.no_grad():  # make conv + BN the identity, so only the upsampling is left
        block.conv.weight.zero_()
        block.conv.weight[0, 0, 1, 1] = block.conv.weight[1, 1, 1, 1] = 1.0
        block.conv.bias.zero_()
    x = torch.rand(1, 2, 3, 4)
    out = block(x)
    bn = block.norm
    expected = F.interpolate(x, scale_factor=2, mode="nearest")
    expected = torch.relu((expected - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps))
    assert out.shape == (1, 2, 6, 8)
    assert torch.allclose(out, expected, atol=1e-6)


def test_anti_alias_downsampling_is_a_fixed_gaussian_buffer_named_down_weight():
    down = AntiAliasInterpolation2d(3, 0.25)
    assert "weight" in dict(down.named_buffers()) and not list(down.parameters())
    k = down.weight
    assert k.shape == (3, 1, 13, 13)  # sigma = (4 - 1)/2 = 1.5, size = 2 round(4 sigma) + 1 = 13
    assert torch.allclose(k.sum(dim=(1, 2, 3)), torch.ones(3))
    g = torch.exp(-((torch.arange(13) - 6.0) ** 2) / (2 * 1.5 ** 2))
    assert math.isclose(float(k[0, 0, 6, 6]), float(1 / g.sum() ** 2), rel_tol=1e-5)
    assert down(torch.rand(1, 3, 64, 64)).shape == (1, 3, 16, 16)
    assert "down.weight" in KPDetector(8, 2, max_features=16, num_blocks=2, scale_factor=0.25).state_dict()


def test_every_norm_is_batchnorm_with_running_statistics():
    model = FirstOrderModel(TINY)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._NormBase)]
    assert norms and all(isinstance(m, torch.nn.BatchNorm2d) and m.affine and m.track_running_stats for m in norms)
    # in eval mode an item's output does not depend on the rest of the batch
    model.eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        alone = model(x[:1], x[1:2])["prediction"]
        batched = model(x[:2], x[1:3])["prediction"][:1]
    assert torch.allclose(alone, batched, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Keypoints, sparse motions, dense motion, generator
# ------------------------------------------------------------------------------------------------
def test_soft_argmax_of_a_peaked_heatmap_is_the_peak_in_grid_units():
    heat = torch.zeros(1, 1, 8, 8)
    heat[0, 0, 2, 5] = 1.0
    assert torch.allclose(soft_argmax(heat), torch.tensor([[[2 * 5 / 7 - 1, 2 * 2 / 7 - 1]]]))


def test_keypoint_detector_temperature_and_identity_jacobians():
    kp = KPDetector(block_expansion=8, num_kp=5, max_features=32, num_blocks=2, scale_factor=0.5, pad=3)
    assert kp.temperature == 0.1
    out = kp.eval()(torch.rand(2, 3, 32, 32))
    assert out["value"].shape == (2, 5, 2) and out["value"].abs().max() <= 1
    assert torch.allclose(out["heatmap"].sum(dim=(2, 3)), torch.ones(2, 5), atol=1e-5)
    assert torch.allclose(out["jacobian"], torch.eye(2).expand(2, 5, 2, 2))  # zero weights, bias (1, 0, 0, 1)


def test_sparse_motions_follow_eq4():
    p_d = torch.tensor([[[0.1, -0.2]]])
    p_s = torch.tensor([[[0.3, 0.4]]])
    jac_s = torch.tensor([[[[2.0, 0.0], [0.0, 1.0]]]])
    jac_d = torch.tensor([[[[1.0, 0.0], [0.0, 0.5]]]])
    m = sparse_motions({"value": p_d, "jacobian": jac_d}, {"value": p_s, "jacobian": jac_s}, (5, 5))
    assert m.shape == (1, 2, 5, 5, 2)
    grid = make_coordinate_grid((5, 5))
    assert torch.allclose(m[0, 0], grid)  # background: identity
    z = grid[1, 3]  # one point: x = 0.5, y = -0.5
    expected = p_s[0, 0] + torch.tensor([[2.0, 0.0], [0.0, 2.0]]) @ (z - p_d[0, 0])  # J_s J_d^-1 = diag(2, 2)
    assert torch.allclose(m[0, 1, 1, 3], expected)


def test_dense_motion_masks_sum_to_one_and_occlusion_is_a_probability():
    model = FirstOrderModel(TINY).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    assert out["mask"].shape == (2, TINY.num_kp + 1, 16, 16)
    assert torch.allclose(out["mask"].sum(1), torch.ones(2, 16, 16), atol=1e-5)
    assert out["occlusion_map"].shape == (2, 1, 16, 16)
    assert 0 <= out["occlusion_map"].min() and out["occlusion_map"].max() <= 1
    assert out["deformation"].shape == (2, 16, 16, 2)
    assert out["prediction"].shape == (2, 3, 32, 32) and 0 <= out["prediction"].min() <= out["prediction"].max() <= 1


# ------------------------------------------------------------------------------------------------
# Equivariance and random transforms
# ------------------------------------------------------------------------------------------------
def test_random_affine_transform_and_its_jacobian():
    torch.manual_seed(0)
    t = RandomTransform(2, sigma_affine=0.1, sigma_tps=0.0)
    z = torch.rand(2, 7, 2) * 2 - 1
    expected = torch.einsum("bij,bnj->bni", t.theta[:, :, :2], z) + t.theta[:, None, :, 2]
    assert torch.allclose(t.warp_coordinates(z), expected, atol=1e-6)
    assert torch.allclose(t.jacobian(z), t.theta[:, None, :, :2].expand(2, 7, 2, 2), atol=1e-6)


def test_tps_jacobian_matches_finite_differences():
    torch.manual_seed(1)
    t = RandomTransform(1, sigma_affine=0.05, sigma_tps=0.05)
    z = torch.tensor([[[0.3, -0.2]]], dtype=torch.float64)
    t.theta, t.control_params = t.theta.double(), t.control_params.double()
    t.control_points = t.control_points.double()
    eps = 1e-6
    numeric = torch.stack([(t.warp_coordinates(z + eps * e) - t.warp_coordinates(z - eps * e))[0, 0] / (2 * eps)
                           for e in (torch.tensor([1.0, 0.0]).double(), torch.tensor([0.0, 1.0]).double())], dim=-1)
    assert torch.allclose(t.jacobian(z)[0, 0], numeric, atol=1e-6)


def test_equivariance_losses_vanish_for_consistent_keypoints():
    torch.manual_seed(2)
    t = RandomTransform(3, sigma_affine=0.1, sigma_tps=0.0)
    kp_y = torch.rand(3, 4, 2) - 0.5
    kp_x = t.warp_coordinates(kp_y)  # exactly where the transform sends them
    assert float(equivariance_value_loss(kp_x, kp_y, t)) < 1e-6
    jac_y = torch.eye(2).expand(3, 4, 2, 2)
    jac_x = t.jacobian(kp_y) @ jac_y
    assert float(equivariance_jacobian_loss(jac_x, kp_y, jac_y, t)) < 1e-5
    # and they are hand-checkable when not: shift every x keypoint by 0.1 -> mean |error| = 0.1 / 2
    assert math.isclose(float(equivariance_value_loss(kp_x + torch.tensor([0.1, 0.0]), kp_y, t)), 0.05, rel_tol=1e-4)


# ------------------------------------------------------------------------------------------------
# Keypoint transfer
# ------------------------------------------------------------------------------------------------
def test_convex_hull_area():
    square = [[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [0.5, 1.5]]  # interior points do not count
    assert convex_hull_area(square) == pytest.approx(4.0)
    assert convex_hull_area([[0, 0], [4, 0], [0, 3]]) == pytest.approx(6.0)


def test_relative_transfer_with_adapt_scale_and_absolute_transfer():
    unit = torch.tensor([[[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]])  # area 1/4
    source = {"value": unit * 2, "jacobian": torch.eye(2).expand(1, 4, 2, 2) * 3}  # area 1 -> scale sqrt(1/(1/4)) = 2
    initial = {"value": unit, "jacobian": torch.eye(2).expand(1, 4, 2, 2) * 2}
    moved = {"value": unit + 0.1, "jacobian": torch.eye(2).expand(1, 4, 2, 2) * 4}
    rel = normalize_kp(source, moved, initial, adapt_movement_scale=True, use_relative_movement=True,
                       use_relative_jacobian=True)
    assert torch.allclose(rel["value"], unit * 2 + 0.2)  # p_s + 2 * (p_d - p_d0)
    assert torch.allclose(rel["jacobian"], torch.eye(2) * 6)  # (J_d J_d0^-1) J_s = 2 * 3
    absolute = normalize_kp(source, moved, initial)
    assert torch.equal(absolute["value"], moved["value"])


def test_best_frame_is_the_driving_pose_closest_to_the_source():
    torch.manual_seed(3)
    src = torch.rand(6, 2)
    driving = torch.rand(5, 6, 2)
    driving[3] = src * 0.5 + 0.2  # the same pose, smaller and shifted: normalisation removes both
    assert best_frame_index(src, driving) == 3


# ------------------------------------------------------------------------------------------------
# Training on the shared loop
# ------------------------------------------------------------------------------------------------
def _carphone_batch(size: int, n: int) -> dict[str, torch.Tensor]:
    from deepfake_lab.data.animation_data import carphone_split, frames_to_tensor

    train, _ = carphone_split(size)
    idx = torch.arange(n) * 7
    return {"source": frames_to_tensor(train[idx.numpy()]), "driving": frames_to_tensor(train[(idx + 3).numpy()])}


def test_training_loss_falls_on_real_frames():
    torch.manual_seed(0)
    model = AnimationModel(TINY, total_steps=40)
    model.set_input(_carphone_batch(32, 4))
    first = [model.optimize_parameters()["l1"] for _ in range(3)]
    for _ in range(30):
        last = model.optimize_parameters()
    assert {"l1", "equivariance_value", "equivariance_jacobian", "total", "rec_l1"} <= set(last)
    assert last["l1"] < 0.6 * np.mean(first)


def test_multiscale_perceptual_loss_is_used_when_weighted():
    pytest.importorskip("deepfake_lab.perceptual")
    from deepfake_lab.weights import WeightsMissingError

    cfg = replace(TINY, perceptual_weights=(10.0, 10.0, 10.0, 0.0, 0.0), scales=(1.0, 0.5))
    try:
        model = AnimationModel(cfg, total_steps=2)
    except WeightsMissingError as err:  # pragma: no cover - VGG weights package not installed
        pytest.skip(str(err))
    assert model.perceptual.scales == (1.0, 0.5)
    model.set_input(_carphone_batch(32, 2))
    losses = model.optimize_parameters()
    assert losses["perceptual"] > 0 and math.isfinite(losses["total"])


def test_train_command_runs_exports_and_the_export_loads(tmp_path, capsys):
    out = tmp_path / "run"
    export = tmp_path / "anim.safetensors"
    code = cli.main(["train", "animation", "--preset", "demo", "--image-size", "32", "--steps", "2",
                     "--batch-size", "2", "--out", str(out), "--no-progress", "--sample-every", "2",
                     "--export", str(export), "--device", "cpu"])
    assert code == 0
    err = capsys.readouterr().err
    assert "held-out carphone" in err and "no-motion" in err
    assert (out / "latest.json").exists() and list((out / "samples").glob("*.png"))
    model = load_animation_model(export)
    assert model.config.image_size == 32 and not model.training
    assert load_animation_model(out).config == model.config  # a run folder: its latest checkpoint


# ------------------------------------------------------------------------------------------------
# Official checkpoints
# ------------------------------------------------------------------------------------------------
def test_an_official_layout_checkpoint_loads_and_reproduces_outputs(tmp_path):
    torch.manual_seed(0)
    cfg = replace(TINY, kp_pad=0)
    original = FirstOrderModel(cfg).eval()
    with torch.no_grad():  # non-trivial running statistics, as in a trained file
        for m in original.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    generator = {"module." + k: v for k, v in original.generator.state_dict().items()}  # DataParallel prefix
    kp_detector = {k: v for k, v in original.kp_detector.state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path / "vox-cpk.pth.tar"
    torch.save({"generator": generator, "kp_detector": kp_detector, "discriminator": {},
                "optimizer_generator": {"state": {}, "param_groups": [{"lr": 2e-4}]}, "epoch": 99}, path)
    loaded = load_official_checkpoint(path, image_size=32)
    for field in ("num_kp", "kp_block_expansion", "kp_num_blocks", "kp_scale_factor", "block_expansion",
                  "num_down_blocks", "num_bottleneck_blocks", "dm_block_expansion", "dm_num_blocks", "dm_scale_factor"):
        assert getattr(loaded.config, field) == getattr(cfg, field), field
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x, y)["prediction"], original(x, y)["prediction"])
    assert load_animation_model(path).config.num_kp == cfg.num_kp  # the generic loader takes it too


def test_checkpoints_that_are_not_fomm_are_refused_clearly(tmp_path):
    from deepfake_lab.checkpoints import CheckpointError

    bad = tmp_path / "other.pth"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(CheckpointError, match="need 'generator' and 'kp_detector'"):
        load_official_checkpoint(bad)
    weights = tmp_path / "other.safetensors"
    from deepfake_lab.checkpoints import save_weights

    save_weights(weights, {"G": torch.nn.Linear(2, 2)}, "gan")
    with pytest.raises(CheckpointError, match="not an animation model"):
        load_animation_model(weights)


# ------------------------------------------------------------------------------------------------
# Data: official layouts, pairs, pseudo-videos
# ------------------------------------------------------------------------------------------------
def test_official_layouts_frames_folder_video_file_and_image_strip(tmp_path):
    from PIL import Image

    from deepfake_lab.data.animation_data import FramesDataset, list_videos, read_frames
    from deepfake_lab.data.video import write_video

    train = tmp_path / "data" / "train"
    (train / "clip_a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (5, 20, 20, 3), dtype=np.uint8)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(train / "clip_a" / f"{i:04d}.png")
    write_video(train / "clip_b.mp4", frames, 25.0)
    Image.fromarray(np.concatenate(list(frames[:4]), axis=1)).save(train / "clip_c.png")  # 4 frames side by side
    assert [p.name for p in list_videos(tmp_path / "data")] == ["clip_a", "clip_b.mp4", "clip_c.png"]
    assert np.array_equal(read_frames(train / "clip_a"), frames)
    assert np.array_equal(read_frames(train / "clip_c.png"), frames[:4])
    assert read_frames(train / "clip_b.mp4").shape == (5, 20, 20, 3)
    ds = FramesDataset(tmp_path / "data", size=16, repeats=2)
    assert len(ds) == 6
    item = ds[1]
    assert item["source"].shape == item["driving"].shape == (3, 16, 16)
    assert item["source"].min() >= -1 and item["source"].max() <= 1
    with pytest.raises(DataError, match="no such folder"):
        list_videos(tmp_path / "missing")


def test_pairs_are_two_frames_of_one_video_and_pseudo_videos_move():
    from deepfake_lab.data.animation_data import VideoPairDataset
    from deepfake_lab.data.portraits import portrait_stills
    from deepfake_lab.data.pseudo_video import pseudo_video

    video = np.stack([np.full((8, 8, 3), 10 * i, np.uint8) for i in range(6)])
    ds = VideoPairDataset([video], size=8, repeats=3, flip=False)
    torch.manual_seed(0)
    item = ds[0]
    assert len(ds) == 3 and not torch.equal(item["source"], item["driving"])
    portrait = portrait_stills(64)["grace_hopper"]
    clip = pseudo_video(portrait, n_frames=6, size=32, seed=0)
    assert clip.shape == (6, 32, 32, 3) and clip.dtype == np.uint8
    assert np.abs(clip[0].astype(int) - clip[3].astype(int)).mean() > 2  # it moves
    assert np.array_equal(clip, pseudo_video(portrait, n_frames=6, size=32, seed=0))  # reproducible


def test_the_portrait_weight_sets_the_share_of_portrait_pairs(capsys):
    from deepfake_lab.data import DataError
    from deepfake_lab.data.animation_data import demo_training_set

    assert demo_training_set(32).index == [0] * 8 + [1, 2]  # 8 carphone pairs, 1 from each portrait
    assert demo_training_set(32, repeats=2, portrait_weight=4).index == ([0] * 8 + [1] * 4 + [2] * 4) * 2
    with pytest.raises(DataError, match="--portrait-weight 0"):
        demo_training_set(32, portrait_weight=0)
    assert cli.main(["train", "animation", "--portrait-weight", "0", "--steps", "1"]) == 2  # refused, not taken as 1
    assert "--portrait-weight 0: give a whole number from 1 to 64" in capsys.readouterr().err
    assert cli.main(["train", "animation", "--data", str(Path(__file__).parent), "--portrait-weight", "2"]) == 2
    assert "--portrait-weight: only for --data demo" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# The demo weights, the API and the command line
# ------------------------------------------------------------------------------------------------
needs_demo = pytest.mark.skipif(not DEMO_WEIGHTS.exists(), reason="demo weights not trained yet")


@needs_demo
def test_demo_weights_beat_the_no_motion_baseline_on_held_out_frames():
    from deepfake_lab.animation import evaluate_carphone

    assert DEMO_WEIGHTS.stat().st_size < 10 * 2 ** 20
    model = load_animation_model(None, device="cpu")
    scores = evaluate_carphone(model)
    assert scores.frames == 30 and scores.size == model.config.image_size == 128  # a size a projector can show
    assert abs(scores.l1 - DEMO_CARD_L1) < 0.001, scores.table()
    assert scores.l1 < scores.baseline_l1 * (1 - DEMO_MIN_L1_MARGIN), scores.table()
    assert scores.akd < scores.baseline_akd


@needs_demo
def test_animate_eval_prints_reconstruction_and_transfer(capsys):
    from deepfake_lab import cli

    assert cli.main(["animate-eval"]) == 0
    out = capsys.readouterr().out
    assert "below the no-motion baseline" in out and out.count("motion transfer") == 2 and "grace_hopper" in out


@needs_demo
def test_animate_api_and_motion_details_on_the_example():
    from deepfake_lab.data.animation_data import example_driving_path, example_source_path
    from deepfake_lab.data.video import read_video

    model = load_animation_model()
    from PIL import Image

    source = np.asarray(Image.open(example_source_path()).convert("RGB"))
    driving = read_video(example_driving_path(), max_frames=6).frames
    calls = []
    frames = animate(model, source, driving, find_best_frame=True, progress=lambda d, t: calls.append((d, t)))
    s = model.config.image_size
    assert len(frames) == 6 and frames[0].shape == (s, s, 3) and frames[0].dtype == np.uint8
    assert calls[-1] == (6, 6)
    parts = motion_details(model, source, driving[3], crop=True)
    k = model.config.num_kp
    assert parts["kp_source"].shape == (k, 2) and parts["mask"].shape[0] == k + 1
    assert parts["occlusion"].ndim == 2 and parts["flow"].shape[-1] == 2


@needs_demo
@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_animate_command_writes_a_labelled_playable_video(tmp_path, suffix):
    from deepfake_lab.data.video import read_video

    out = tmp_path / f"result{suffix}"
    code = cli.main(["animate", "--example", "-o", str(out), "--max-frames", "8", "--size", "64", "--side-by-side",
                     "--no-progress", "--device", "cpu"])
    assert code == 0
    clip = read_video(out)
    assert len(clip) == 8 and clip.frames.shape[2] == 3 * 64  # source | driving | result
    if suffix == ".mp4":
        assert abs(clip.fps - 29.97) < 0.01
    else:  # GIF delays are whole hundredths of a second: 30, 40, 30 ... ms keep the average rate
        from PIL import Image

        with Image.open(out) as gif:
            delays = [gif.seek(i) or gif.info["duration"] for i in range(gif.n_frames)]
        assert abs(1000 * len(delays) / sum(delays) - 29.97) < 0.5
    strip = clip.frames[:, -4:, :, :].reshape(-1, 3).mean(0)  # the red SYNTHETIC strip below every frame
    assert strip[0] > 150 and strip[1] < 110 and strip[2] < 110
    assert "SYNTHETIC" in read_video_metadata(out)["comment"]


@needs_demo
def test_animate_command_adapts_the_scale_only_when_asked_and_finds_the_best_frame(tmp_path):
    def about(*flags: str) -> dict:
        out = tmp_path / f"clip{len(flags)}.mp4"
        assert cli.main(["animate", "--example", "-o", str(out), "--max-frames", "4", "--size", "64",
                         "--no-progress", "--device", "cpu", *flags]) == 0
        description = read_video_metadata(out)["description"]
        return json.loads(description[description.index("{"):])

    default = about()
    assert default["adapt_scale"] is False and default["find_best_frame"] is True  # the defaults (the card: why)
    assert default["reference_frame"] > 0  # the example starts with his mouth wide open: not Grace Hopper's pose
    assert about("--no-find-best-frame")["reference_frame"] == 0  # the paper's demo: motion from the first frame
    assert about("--absolute")["reference_frame"] is None  # absolute keypoints have no reference frame
    assert about("--adapt-scale")["adapt_scale"] is True
    assert about("--adapt-scale", "--no-adapt-scale")["adapt_scale"] is False  # the last flag wins, as before


def test_animate_command_gives_clear_errors(tmp_path, capsys):
    from PIL import Image

    from deepfake_lab.data.animation_data import example_driving_path, example_source_path
    from deepfake_lab.data.video import write_video

    def run(*args: str) -> str:
        assert cli.main(["animate", "-o", str(tmp_path / "out.mp4"), "--no-progress", "--device", "cpu", *args]) == 2
        return capsys.readouterr().err

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01 definitely not a video" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (128, 128), (120, 120, 120)).save(blank)
    huge = tmp_path / "huge.png"
    Image.new("L", (9000, 5000)).save(huge)  # 45 megapixels (the limit is 40), a few kB
    tiny_video = tmp_path / "tiny.mp4"
    write_video(tiny_video, np.zeros((1, 16, 64, 3), np.uint8), 25.0)
    src, drv = str(example_source_path()), str(example_driving_path())
    assert "corrupt.mp4" in run("--source", src, "--driving", str(corrupt))
    assert "empty.mp4: empty file" in run("--source", src, "--driving", str(empty))
    assert "9000x5000 pixels = 45.0 megapixels, over the limit of 40" in run("--source", str(huge), "--driving", drv)
    assert "64x16 pixels; need at least 32x32" in run("--source", src, "--driving", str(tiny_video))
    if DEMO_WEIGHTS.exists():
        message = run("--source", str(blank), "--driving", drv, "--max-frames", "2")
        assert "no face found" in message and "--no-crop" in message
        assert cli.main(["animate", "--source", str(blank), "--driving", drv, "--max-frames", "2", "--no-crop",
                         "-o", str(tmp_path / "ok.mp4"), "--no-progress", "--device", "cpu"]) == 0


def test_a_short_excerpt_finds_the_face_on_more_of_the_clip(tmp_path):
    """The example clip's first frames show no face to the detector: 3 frames still animate (the box is found
    on the first 30 frames of the clip), and the output holds exactly the 3 frames asked for."""
    from deepfake_lab import cli
    from deepfake_lab.data.video import read_video

    out = tmp_path / "three.mp4"
    assert cli.main(["animate", "--example", "--max-frames", "3", "-o", str(out), "--no-progress"]) == 0
    assert len(read_video(out).frames) == 3
