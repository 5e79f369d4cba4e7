"""Lesson 5: the face-swap autoencoder, its augmentation, the swap pipeline and its command line."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from deepfake_lab import compositing
from deepfake_lab import faceswap as fs
from deepfake_lab.cli import main
from deepfake_lab.data import faces
from deepfake_lab.data.portraits import portrait
from deepfake_lab.evaluation import evaluate_reconstruction
from deepfake_lab.provenance import read_provenance

#: a narrow model with the 2017 layout, fast enough for tests
TINY = fs.FaceSwapConfig(enc_channels=(8, 16, 16, 16), encoder_dim=16, dec_channels=(16, 16, 8, 8), lr=1e-3)


def _smooth_faces(n: int, size: int = 128, seed: int = 0) -> np.ndarray:
    """(n, size, size, 3) uint8 smooth blobs: stand-ins for face crops where real ones are not needed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        cx, cy, r = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65), rng.uniform(0.15, 0.3)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r ** 2))
        colour = rng.uniform(40, 220, 3)
        out.append(np.clip(blob[..., None] * colour + (1 - blob[..., None]) * 30 + 20 * x[..., None], 0, 255))
    return np.stack(out).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# networks
# ---------------------------------------------------------------------------------------------
def test_shapes_through_encoder_and_decoders():
    enc, dec = fs.Encoder(TINY), fs.Decoder(TINY)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    code = enc(x)
    assert enc.convs(x).shape == (2, 16, 4, 4)          # 64 -> 4 after four stride-2 convolutions
    assert code.shape == (2, 16, 8, 8)                  # the encoder ends with one upscale
    y = dec(code)
    assert y.shape == (2, 3, 64, 64)
    assert y.abs().max() <= 1                           # tanh output
    up = fs.UpscaleBlock(16, 8)
    assert up(torch.zeros(1, 16, 5, 7)).shape == (1, 8, 10, 14)


def test_parameter_counts_match_the_2017_layer_list():
    """Counted layer by layer from the 2017 model.py: conv 5x5 128/256/512/1024, Dense 1024, Dense 4*4*1024,
    upscale 512 (conv 3x3 to 2048); decoder upscales 256/128/64 and a 5x5 conv to 3."""
    conv = lambda i, o, k: i * o * k * k + o  # noqa: E731
    dense = lambda i, o: i * o + o  # noqa: E731
    encoder = (conv(3, 128, 5) + conv(128, 256, 5) + conv(256, 512, 5) + conv(512, 1024, 5)
               + dense(4 * 4 * 1024, 1024) + dense(1024, 4 * 4 * 1024) + conv(1024, 512 * 4, 3))
    decoder = conv(512, 256 * 4, 3) + conv(256, 128 * 4, 3) + conv(128, 64 * 4, 3) + conv(64, 3, 5)
    with torch.device("meta"):
        config = fs.FaceSwapConfig()
        assert fs.count_parameters(fs.Encoder(config)) == encoder == 69_662_976
        assert fs.count_parameters(fs.Decoder(config)) == decoder == 6_199_747


def test_config_refuses_mismatched_depths_and_unknown_loss():
    with pytest.raises(ValueError, match="dec_channels"):
        fs.FaceSwapConfig(dec_channels=(64, 32))
    with pytest.raises(ValueError, match="loss"):
        fs.FaceSwapConfig(loss="huber")


# ---------------------------------------------------------------------------------------------
# random-warp augmentation
# ---------------------------------------------------------------------------------------------
def test_warp_moves_the_input_and_keeps_the_target_unwarped():
    config = fs.FaceSwapConfig()
    context = fs._to_tensor(_smooth_faces(1))[0]
    g = torch.Generator().manual_seed(3)
    theta = fs.random_affine(config, g)
    field = fs.random_warp_field(config, 64, g)
    warped, target = fs.warp_pair(context, theta, field)
    _, target_alone = fs.warp_pair(context, theta, None)
    assert warped.shape == target.shape == (3, 64, 64)
    torch.testing.assert_close(target, target_alone)            # the target ignores the warp field
    assert (warped - target).abs().mean() > 1e-3                  # the input does not
    same, same_target = fs.warp_pair(context, theta, torch.zeros(64, 64, 2))
    torch.testing.assert_close(same, same_target)                 # a zero field leaves the input unwarped


def test_warp_field_is_smooth_and_non_rigid():
    config = fs.FaceSwapConfig()
    field = fs.random_warp_field(config, 64, torch.Generator().manual_seed(0))
    assert field.shape == (64, 64, 2)
    # smooth: neighbouring pixels move almost alike (control points are 16 pixels apart)
    step = (field[1:] - field[:-1]).abs().max()
    assert step < 0.25 * field.abs().max()
    # non-rigid: at the control points (a field of warp_points x warp_points pixels is exactly them, the
    # interpolation uses align_corners) no translation, rotation or zoom is left
    k = config.warp_points
    points_field = fs.random_warp_field(config, k, torch.Generator().manual_seed(0)).reshape(-1, 2).double()
    lin = torch.linspace(-1, 1, k, dtype=torch.float64)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    points = torch.stack([gx.flatten(), gy.flatten()], 1)
    torch.testing.assert_close(fs.remove_similarity(points_field, points), points_field, atol=1e-6, rtol=0)
    assert points_field.abs().mean() > 0.01                       # and it is not zero


def test_identity_affine_cuts_the_central_coverage():
    config = fs.FaceSwapConfig(rotation=0, zoom=0, shift=0, flip=0)
    context = fs._to_tensor(_smooth_faces(1))[0]
    theta = fs.random_affine(config)
    _, target = fs.warp_pair(context, theta, None)
    torch.testing.assert_close(target, fs.center_faces(context[None], config)[0])


def test_dataset_items():
    ds = fs.FaceSwapDataset(_smooth_faces(5), _smooth_faces(3, seed=1), TINY)
    assert len(ds) == 5
    item = ds[4]
    assert set(item) == {"A", "A_target", "B", "B_target"}
    assert all(v.shape == (3, 64, 64) for v in item.values())
    with pytest.raises(ValueError, match="identity B"):
        fs.FaceSwapDataset(_smooth_faces(2), np.zeros((0, 128, 128, 3), np.uint8), TINY)


# ---------------------------------------------------------------------------------------------
# loss and training
# ---------------------------------------------------------------------------------------------
def test_reconstruction_loss_values():
    x, y = torch.zeros(1, 3, 16, 16), torch.full((1, 3, 16, 16), 0.5)
    assert fs.reconstruction_loss(x, y, TINY).item() == pytest.approx(0.5)
    l2 = fs.FaceSwapConfig(enc_channels=TINY.enc_channels, encoder_dim=16, dec_channels=TINY.dec_channels, loss="l2")
    assert fs.reconstruction_loss(x, y, l2).item() == pytest.approx(0.25)
    with_ssim = fs.FaceSwapConfig(enc_channels=TINY.enc_channels, encoder_dim=16, dec_channels=TINY.dec_channels,
                                  ssim_weight=1.0)
    assert fs.reconstruction_loss(y, y, with_ssim).item() == pytest.approx(0.0, abs=1e-6)


def test_loss_falls_in_a_short_run():
    torch.manual_seed(0)
    model = fs.FaceSwapModel(TINY)
    ds = fs.FaceSwapDataset(_smooth_faces(8), _smooth_faces(8, seed=1), TINY)
    items = [ds[i] for i in range(8)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    model.set_input(batch)
    first = model.optimize_parameters()
    for _ in range(40):
        last = model.optimize_parameters()
    assert last["loss_A"] < 0.6 * first["loss_A"]
    assert last["loss_B"] < 0.6 * first["loss_B"]
    out = model.forward()
    assert set(out) == {"A", "B", "AtoB", "BtoA"}
    assert model.sample_images().shape == (18, 3, 64, 64)


def test_fit_trains_and_exports(tmp_path):
    from deepfake_lab.train import LoopConfig, fit

    ds = fs.FaceSwapDataset(_smooth_faces(4), _smooth_faces(4, seed=1), TINY)
    model = fs.FaceSwapModel(TINY)
    result = fit(model, ds, LoopConfig(steps=3, batch_size=2, out_dir=str(tmp_path / "run"), progress=False,
                                       tensorboard=False, sample_every=0, checkpoint_every=0))
    assert result.step == 3 and set(result.losses) == {"loss_A", "loss_B"}
    path = fs.export_weights(model, tmp_path / "fs.safetensors")
    nets, config = fs.load_faceswap(path)
    assert config == TINY
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    model.eval()
    with torch.no_grad():
        expected = model.nets["decoder_B"](model.nets["encoder"](x))
    torch.testing.assert_close(fs.swap_faces(nets, x, "B"), expected, atol=2e-2, rtol=0)  # fp16 storage


def test_load_refuses_other_kinds(tmp_path):
    from deepfake_lab.checkpoints import CheckpointError, save_weights

    path = save_weights(tmp_path / "g.safetensors", {"G": torch.nn.Linear(2, 2)}, "gan")
    with pytest.raises(CheckpointError, match="not faceswap"):
        fs.load_faceswap(path)


# ---------------------------------------------------------------------------------------------
# mask, colour matching, alignment, swapping
# ---------------------------------------------------------------------------------------------
def test_mask_is_feathered_ellipse():
    m = compositing.face_mask(64)
    assert m.shape == (64, 64) and m.dtype == np.float32
    assert m[35, 32] > 0.99 and m[0, 0] == 0 and m[63, 63] == 0
    assert np.any((m > 0.05) & (m < 0.95))                     # a soft edge, not a hard cut
    assert m.min() >= 0 and m.max() <= 1


def test_colour_match_moves_mean_and_std_to_the_reference():
    rng = np.random.default_rng(0)
    face = rng.integers(60, 120, (32, 32, 3)).astype(np.uint8)
    ref = rng.integers(100, 250, (32, 32, 3)).astype(np.uint8)
    out = compositing.colour_match(face, ref, None, "rgb").astype(np.float64)
    np.testing.assert_allclose(out.mean((0, 1)), ref.mean((0, 1)), atol=0.6)
    np.testing.assert_allclose(out.std((0, 1)), ref.std((0, 1)), atol=0.6)
    lab = compositing.colour_match(face, ref, None, "lab").astype(np.float64)
    assert abs(lab.mean() - ref.mean()) < 6
    np.testing.assert_array_equal(compositing.colour_match(face, ref, None, "none"), face)


def test_align_face_on_the_portrait():
    image = portrait("grace_hopper")
    al = faces.align_face(image, "haar")
    x, y, w, h = al.box
    assert 100 < w < 300 and abs(al.roll) < 10
    face = faces.extract_face(image, al, 64)
    assert face.shape == (64, 64, 3) and face.dtype == np.uint8
    with pytest.raises(faces.NoFaceError, match="no frontal face"):
        faces.align_face(np.full((120, 160, 3), 128, np.uint8), "auto", what="grey.png")


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    return fs.export_weights(fs.FaceSwapModel(TINY), tmp_path_factory.mktemp("w") / "tiny.safetensors")


def test_swap_cli_writes_a_labelled_png(tmp_path, tiny_weights):
    from PIL import Image

    src = tmp_path / "portrait.png"
    Image.fromarray(portrait("grace_hopper")).save(src)
    out = tmp_path / "swapped.png"
    assert main(["swap", "--model", str(tiny_weights), "--source", str(src), "-o", str(out), "--to", "A"]) == 0
    image = Image.open(out)
    assert image.width == 512 and image.height > 600          # the frame plus the SYNTHETIC strip
    info = read_provenance(out)
    assert info["synthetic"] == "true"
    details = json.loads(info["deepfake_lab"])
    assert details["to"] == "A" and details["source"] == "portrait.png" and len(details["face_box"]) == 4
    # outside the face the swap leaves the frame untouched (exactly, before labelling) ...
    nets, config = fs.load_faceswap(tiny_weights)
    swapped = compositing.swap_frame(portrait("grace_hopper"), nets, config, "A").result
    np.testing.assert_array_equal(swapped[:40, :40], portrait("grace_hopper")[:40, :40])
    # ... and the written file differs there only by the invisible watermark: a few levels, PSNR above 35 dB
    result = np.asarray(image.convert("RGB"))[:600].astype(np.float64)
    error = np.mean((result[:40, :40] - portrait("grace_hopper")[:40, :40]) ** 2)
    assert 10 * np.log10(255 ** 2 / max(error, 1e-12)) > 35


def test_swap_cli_without_a_face_says_so(tmp_path, tiny_weights, capsys):
    from PIL import Image

    src = tmp_path / "wall.png"
    y, x = np.mgrid[0:120, 0:160]
    Image.fromarray(np.stack([x, y, x + y], -1).astype(np.uint8)).save(src)
    assert main(["swap", "--model", str(tiny_weights), "--source", str(src), "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "wall.png" in err and "no frontal face" in err
    assert not (tmp_path / "o.png").exists()
    assert main(["swap", "--model", str(tiny_weights), "--source", str(tmp_path / "missing.png"),
                 "-o", str(tmp_path / "o.png")]) == 2
    assert "no such image file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the demo weights still do what their card says
# ---------------------------------------------------------------------------------------------
def test_demo_weights_meet_their_card():
    if not fs.DEMO_WEIGHTS.exists():
        pytest.skip("no face-swap demo weights in this checkout")
    from deepfake_lab.checkpoints import read_metadata

    card = json.loads(read_metadata(fs.DEMO_WEIGHTS)["held_out"])
    card_md = fs.DEMO_WEIGHTS.with_suffix(".md").read_text()
    nets, config = fs.load_faceswap()
    _, _, held, train = fs.build_training_faces(config)
    scores = evaluate_reconstruction(nets, held, train)
    for who in ("A", "B"):
        assert f"{card[who]['l1']:.4f}" in card_md                      # the card states the same figure
        assert scores[who]["l1"] <= card[who]["l1"] + 0.002               # still as good as stated
        assert scores[who]["l1"] < 0.75 * scores[who]["mean_face_l1"]      # clearly better than the mean face
        assert math.isfinite(scores[who]["psnr"])
