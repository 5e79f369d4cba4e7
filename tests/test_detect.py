"""The small real-vs-generated detector of the responsible-use part of lesson 5."""
from __future__ import annotations

import pytest
import torch

from deepfake_lab import detect
from deepfake_lab.faceswap import DEMO_WEIGHTS


def test_detector_shapes():
    net = detect.RealFakeDetector(8)
    assert net(torch.zeros(5, 3, 64, 64)).shape == (5,)
    assert net.features(torch.zeros(1, 3, 64, 64)).shape == (1, 32, 4, 4)


def test_training_is_deterministic_and_separates_an_easy_case():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(64, 3, 64, 64, generator=g) * 2 - 1                   # noisy "photos"
    fake = torch.nn.functional.avg_pool2d(real, 5, 1, 2)                    # the same, blurred
    cfg = detect.DetectorConfig(width=8, steps=40, batch_size=16)
    a = detect.train_detector(real[:48], fake[:48], cfg)
    b = detect.train_detector(real[:48], fake[:48], cfg)
    torch.testing.assert_close(detect.predict(a, real[48:]), detect.predict(b, real[48:]))
    scores = detect.evaluate(a, real[48:], fake[48:])
    assert scores["accuracy"] > 0.9
    with pytest.raises(ValueError, match="need both"):
        detect.train_detector(real[:0], fake, cfg)


@pytest.mark.slow
def test_detector_beats_chance_on_held_out_face_swaps():
    if not DEMO_WEIGHTS.exists():
        pytest.skip("no face-swap demo weights in this checkout")
    report = detect.detection_report(("faceswap",), detect.DetectorConfig(steps=100))
    seen = report["seen"]["faceswap"]
    assert seen["n_real"] == 50 and seen["n_fake"] == 80      # 20 + 20 + 10 real; 4 x 20 generated
    assert seen["accuracy"] > 0.8                                          # chance is 0.5
    assert "splice" in report["unseen"]                                    # always available offline
    assert report["train_loss"][-1] < report["train_loss"][0]


def test_pix2pix_outputs_are_cut_like_the_other_faces(tmp_path):
    """The unseen pix2pix method works with any pix2pix weights file (here an untrained, narrow U-Net)."""
    from deepfake_lab.pix2pix import Pix2PixConfig, build_generator, export_weights

    config = Pix2PixConfig(netG="unet_128", ngf=8, crop_size=128, load_size=128, objective="l1")
    path = export_weights(build_generator(config), config, tmp_path / "p2p.safetensors")
    faces = detect.pix2pix_fakes(path)
    assert faces["train"].shape == (100, 3, 64, 64) and faces["test"].shape == (20, 3, 64, 64)
    assert faces["test"].abs().max() <= 1
