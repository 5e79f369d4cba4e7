"""Lesson 1: the GAN networks, one training step, the data, the metrics, the CLI and the demo weights."""
import json
import math

import pytest
import torch

from deepfake_lab import cli
from deepfake_lab.checkpoints import CheckpointError, read_metadata
from deepfake_lab.data import DataError
from deepfake_lab.data.digits import digit_dataset, mnist_subset, sklearn_digits
from deepfake_lab.data.toy import grid25, mixture, modes, ring8
from deepfake_lab.gan import (DCGANDiscriminator, DCGANGenerator, GANConfig, GANModel, MLPDiscriminator, MLPGenerator,
                              demo_weights_path, export_generator, interpolate_latents, load_generator, preset, sample,
                              scatter_plot)
from deepfake_lab.gan_metrics import classifier_accuracy, digit_metrics, load_digit_classifier, mixture_metrics
from deepfake_lab.provenance import read_provenance
from deepfake_lab.train import LoopConfig, fit


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------------------------------------
# networks
# ---------------------------------------------------------------------------------------------
def test_dcgan_shapes_and_parameter_counts():
    G = DCGANGenerator(latent_dim=100, channels=1, image_size=32, ngf=64)
    # ConvT 100->256 (4x4, no bias) + BN, ConvT 256->128 + BN, ConvT 128->64 + BN, ConvT 64->1 with bias
    want_G = 100 * 256 * 16 + 2 * 256 + 256 * 128 * 16 + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 1 * 16 + 1
    assert n_params(G) == want_G == 1_066_881
    x = G(torch.randn(5, 100))
    assert x.shape == (5, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    D = DCGANDiscriminator(channels=1, image_size=32, ndf=64)
    # Conv 1->64 with bias (no BN on D's first layer), 64->128 + BN, 128->256 + BN, 256->1 with bias
    want_D = 1 * 64 * 16 + 64 + 64 * 128 * 16 + 2 * 128 + 128 * 256 * 16 + 2 * 256 + 256 * 16 + 1
    assert n_params(D) == want_D == 661_313
    assert D(x).shape == (5,)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.net[0].modules())
    # 3 channels at 64x64: one more doubling
    G64 = DCGANGenerator(latent_dim=100, channels=3, image_size=64, ngf=64)
    assert G64(torch.randn(2, 100)).shape == (2, 3, 64, 64)
    assert DCGANDiscriminator(3, 64, 64)(torch.randn(2, 3, 64, 64)).shape == (2,)


def test_mlp_shapes_and_parameter_counts():
    G = MLPGenerator(2, (2,), hidden=(128, 128))
    assert n_params(G) == (2 * 128 + 128) + (128 * 128 + 128) + (128 * 2 + 2)
    assert G(torch.randn(7, 2)).shape == (7, 2)
    D = MLPDiscriminator((2,), hidden=(128, 128))
    assert n_params(D) == (2 * 128 + 128) + (128 * 128 + 128) + (128 + 1)
    assert D(torch.randn(7, 2)).shape == (7,)
    # the Goodfellow-style MLP on images, batch-normalised with eps 1e-5 (not PyTorch-GAN's 0.8)
    Gi = MLPGenerator(100, (1, 32, 32), hidden=(128, 256), norm="batch", tanh=True)
    assert Gi(torch.randn(3, 100)).shape == (3, 1, 32, 32)
    assert all(m.eps == 1e-5 for m in Gi.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert MLPDiscriminator((1, 32, 32), (64,))(torch.randn(3, 1, 32, 32)).shape == (3,)


def test_config_validation_and_presets():
    with pytest.raises(ValueError, match="batch-normalised critic"):
        GANConfig(loss="wgan-gp").validate()
    assert GANConfig().with_loss("wgan-gp").validate().d_norm == "layer"
    with pytest.raises(ValueError, match="need --arch mlp"):
        GANConfig(data="ring8", arch="dcgan").validate()
    with pytest.raises(ValueError, match="--loss 'bce'"):
        GANConfig(loss="bce").validate()
    cfg, loop = preset("default", "ring8")
    assert cfg.arch == "mlp" and cfg.loss == "nonsaturating" and loop.steps >= 1000
    cfg, loop = preset("default", "digits")  # DCGAN as published
    assert (cfg.arch, cfg.lr, cfg.betas, cfg.latent_dim, loop.batch_size) == ("dcgan", 2e-4, (0.5, 0.999), 100, 128)
    assert preset("collapse", "ring8")[0].latent_dim == 16
    with pytest.raises(ValueError, match="not defined for --data digits"):
        preset("collapse", "digits")


def test_step_order_and_wgan_gp_critic_steps():
    torch.manual_seed(0)
    cfg = GANConfig(arch="mlp", data="ring8", latent_dim=2, g_hidden=(16,), d_hidden=(16,), g_norm="none",
                    d_norm="none", loss="wgan-gp", d_steps=3, init="default")
    model = GANModel(cfg)
    G0 = [p.clone() for p in model.nets["G"].parameters()]
    D0 = {k: p.clone() for k, p in model.nets["D"].named_parameters()}
    for i in range(1, 4):
        model.set_input(torch.randn(8, 2))
        out = model.optimize_parameters()
        assert set(out) == {"loss_D", "loss_G", "D_real", "D_fake"}
        changed_G = any(not torch.equal(a, b) for a, b in zip(G0, model.nets["G"].parameters()))
        assert changed_G == (i == 3)  # G moves only on every third step
    # D moves every step (its last bias excepted: it cancels in mean(fake) - mean(real) and the penalty)
    assert all(not torch.equal(D0[k], p) for k, p in model.nets["D"].named_parameters() if k.endswith("weight"))
    assert math.isfinite(out["loss_G"]) and model.extra_state()["d_updates"] == 3
    # BCE losses report D's probabilities
    model = GANModel(preset("default", "ring8")[0], total_steps=100)
    model.set_input(torch.randn(16, 2))
    out = model.optimize_parameters()
    assert 0 < out["D_real"] < 1 and 0 < out["D_fake"] < 1


# ---------------------------------------------------------------------------------------------
# data and metrics
# ---------------------------------------------------------------------------------------------
def test_toy_mixtures():
    centres, std = modes("ring8")
    assert centres.shape == (8, 2) and std == 0.02
    assert torch.allclose(centres.norm(dim=1), torch.full((8,), 2.0))
    ds = ring8(n=4000, seed=3)
    assert len(ds) == 4000 and ds[0].shape == (2,)
    assert torch.equal(ds.points, ring8(n=4000, seed=3).points)  # fixed by the seed
    offsets = ds.points - centres[ds.labels]
    assert abs(float(offsets.std()) - 0.02) < 0.002
    g_centres, g_std = modes("grid25")
    assert g_centres.shape == (25, 2) and g_std == 0.05 and float(g_centres.abs().max()) == 4.0
    assert len(grid25(n=100)) == 100
    with pytest.raises(DataError, match="'ring9'"):
        mixture("ring9")


def test_mixture_metrics_rule():
    centres, std = modes("ring8")
    perfect = ring8(n=2000, seed=1).points
    m = mixture_metrics(perfect, "ring8")
    assert m.modes_covered == 8 and m.hq_share > 0.98
    collapsed = centres[3] + 0.02 * torch.randn(1000, 2)  # one mode only
    m = mixture_metrics(collapsed, "ring8")
    assert m.modes_covered == 1 and m.counts[3] > 980
    # 3 % of samples at mode 0, 1 % at mode 1, the rest far away: mode 0 passes 0.2/8 = 2.5 %, mode 1 does not
    pts = torch.cat([centres[0].expand(30, 2), centres[1].expand(10, 2), torch.zeros(960, 2)])
    m = mixture_metrics(pts, "ring8")
    assert m.modes_covered == 1 and m.hq_share == pytest.approx(0.04)


def test_digit_data_splits():
    train, held = mnist_subset("train"), mnist_subset("heldout")
    assert (len(train), len(held)) == (4000, 1000)
    x, y = train[0]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32 and 0 <= int(y) <= 9
    assert float(train.images.min()) == -1.0 and float(train.images.max()) == 1.0
    assert torch.equal(torch.bincount(held.labels), torch.full((10,), 100))
    assert float(train.images[:, :, :2].max()) == -1.0  # the 2-pixel padding is background
    # train and held-out are disjoint: no held-out image equals a train image
    flat_t, flat_h = train.images.flatten(1), held.images.flatten(1)
    assert torch.cdist(flat_h[:200], flat_t).min() > 0
    sk_train, sk_held = sklearn_digits("train"), sklearn_digits("heldout")
    assert len(sk_train) + len(sk_held) == 1797 and len(sk_held) == 359
    assert sk_train.images.shape[1:] == (1, 32, 32)
    with pytest.raises(DataError, match="'cifar'"):
        digit_dataset("cifar")
    with pytest.raises(DataError, match="split 'test'"):
        mnist_subset("test")


def test_digit_classifier_asset():
    net = load_digit_classifier()
    unseen = torch.utils.data.Subset(mnist_subset("train"), range(0, 4000, 4))  # 1,000 images it never saw
    assert classifier_accuracy(net, unseen) > 0.97  # the card: 97.75 % on all 4,000
    # real digits pass the bar a digit GAN is held to (>= 95 % classified with confidence >= 0.9): card 96.25 %
    assert digit_metrics(mnist_subset("train").images, net).confident_share >= 0.95
    real = digit_metrics(sklearn_digits("train").images[:500], net)
    assert real.classes_covered == 10 and real.mean_confidence > 0.9
    blank = digit_metrics(torch.full((100, 1, 32, 32), -1.0), net)  # one blank image 100 times
    assert blank.classes_covered <= 1


def test_fid_in_the_classifier_features_ranks_real_over_blurred_over_blank_digits():
    from deepfake_lab.gan_metrics import digit_fid

    train = mnist_subset("train").images
    real = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:1000]]
    floor = digit_fid(real)
    assert floor == pytest.approx(0.197, abs=0.01)  # the card's floor: real digits the classifier never saw
    blurred = torch.nn.functional.avg_pool2d(real, 3, stride=1, padding=1, count_include_pad=False)
    assert floor < digit_fid(blurred) < digit_fid(torch.full((1000, 1, 32, 32), -1.0))


# ---------------------------------------------------------------------------------------------
# training, loading, sampling
# ---------------------------------------------------------------------------------------------
def _mean_distance_to_modes(points: torch.Tensor) -> float:
    centres, _ = modes("ring8")
    return float(torch.cdist(points, centres).min(dim=1).values.mean())


def test_short_run_moves_samples_onto_the_ring_and_reloads(tmp_path):
    torch.manual_seed(0)
    cfg = GANConfig(arch="mlp", data="ring8", latent_dim=2, g_hidden=(64, 64), d_hidden=(64, 64), g_norm="none",
                    d_norm="none", lr=1e-3, init="default", n_points=4096)
    model = GANModel(cfg)
    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(5))
    before = _mean_distance_to_modes(sample(model.nets["G"].eval(), z))
    loop = LoopConfig(steps=150, batch_size=128, out_dir=str(tmp_path / "run"), sample_every=150,
                      checkpoint_every=0, progress=False, tensorboard=False)
    result = fit(model, ring8(n=4096), loop)
    after = _mean_distance_to_modes(sample(model.nets["G"].eval(), z))
    assert after < 0.6 * before, (before, after)  # samples moved from the centre towards the modes
    assert (tmp_path / "run" / "samples" / "step-0000150.png").exists()

    G_run, cfg_run = load_generator(tmp_path / "run")  # a run folder -> its latest checkpoint
    assert cfg_run == cfg and not G_run.training
    assert torch.allclose(sample(G_run, z), sample(model.nets["G"], z))
    G_ckpt, _ = load_generator(result.weights)
    assert torch.allclose(sample(G_ckpt, z), sample(model.nets["G"], z))
    half = export_generator(model.nets["G"], cfg, tmp_path / "g16.safetensors")
    G_half, _ = load_generator(half)
    assert next(G_half.parameters()).dtype == torch.float32
    assert torch.allclose(sample(G_half, z), sample(model.nets["G"], z), atol=2e-2)
    with pytest.raises(CheckpointError, match="no latest.json"):
        load_generator(tmp_path)


def test_interpolate_latents():
    z0, z1 = torch.randn(16), torch.randn(16)
    for mode in ("slerp", "linear"):
        path = interpolate_latents(z0, z1, 5, mode)
        assert path.shape == (5, 16)
        assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = interpolate_latents(a, b, 3, "slerp")[1]
    assert torch.allclose(mid, torch.tensor([1.0, 1.0]) / math.sqrt(2))  # on the unit circle
    assert torch.allclose(interpolate_latents(a, b, 3, "linear")[1], torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="steps=1"):
        interpolate_latents(a, b, 1)
    with pytest.raises(ValueError, match="mode 'cubic'"):
        interpolate_latents(a, b, 3, "cubic")


def test_scatter_plot_is_an_image():
    image = scatter_plot(torch.randn(50, 2), ring8(n=50).points, title="t", size=200)
    assert image.size == (200, 200) and image.mode == "RGB"


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def test_cli_train_errors(capsys, tmp_path):
    assert cli.main(["train", "gan", "--data", "cifar10", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--data 'cifar10': unknown; use one of ring8, grid25, digits" in err
    assert "Traceback" not in err
    assert cli.main(["train", "gan", "--data", "ring8", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "--steps 0: need at least 1" in capsys.readouterr().err
    assert cli.main(["train", "gan", "--data", "digits", "--preset", "collapse", "--out", str(tmp_path)]) == 2
    assert "not defined for --data digits" in capsys.readouterr().err
    assert cli.main(["sample", "--model", str(tmp_path / "none.safetensors"), "-o", str(tmp_path / "x.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_train_then_sample_writes_labelled_png(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "gan", "--data", "ring8", "--steps", "20", "--batch-size", "64", "--out", str(out),
                     "--no-progress", "--sample-every", "0", "--export", str(tmp_path / "g.safetensors")])
    assert code == 0
    assert "metrics: " in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["step"] == 20
    assert read_metadata(tmp_path / "g.safetensors")["kind"] == "gan"
    png = tmp_path / "points.png"
    assert cli.main(["sample", "--model", str(out), "-n", "300", "-o", str(png), "--seed", "3"]) == 0
    info = read_provenance(png)
    assert info["synthetic"] == "true"
    details = json.loads(info["deepfake_lab"])
    assert details["kind"] == "gan" and details["n"] == 300 and details["seed"] == 3
    assert cli.main(["sample", "--model", str(out), "-o", str(tmp_path / "x.jpg")]) == 2


# ---------------------------------------------------------------------------------------------
# the demo weights still meet the figures on their cards
# ---------------------------------------------------------------------------------------------
def test_demo_ring8_weights_cover_all_modes():
    path = demo_weights_path("ring8")
    assert path.stat().st_size < 2_000_000
    G, cfg = load_generator(path)
    z = torch.randn(2500, cfg.latent_dim, generator=torch.Generator().manual_seed(2024))  # fresh noise
    m = mixture_metrics(sample(G, z), "ring8")
    assert m.modes_covered == 8 and m.hq_share >= 0.8, m


def test_demo_digits_weights_cover_the_classes(tmp_path):
    from deepfake_lab.gan import evaluate_generator

    path = demo_weights_path("digits")
    assert path.stat().st_size < 2_500_000
    G, cfg = load_generator(path)
    assert cfg.data == "mnist-subset"
    z = torch.randn(1000, cfg.latent_dim, generator=torch.Generator().manual_seed(2024))
    images = sample(G, z)
    assert images.shape == (1000, 1, 32, 32) and images.min() >= -1 and images.max() <= 1
    assert cfg.code == 10 and cfg.code_labels  # AC-GAN: code k draws digit k
    m = evaluate_generator(G, cfg, seed=2024)  # the card's row for noise seed 2024
    assert m["classes_covered"] == 10, m
    assert m["confident_share"] >= 0.95, m  # the course's bar for lesson 1
    assert m["confident_share"] == pytest.approx(0.967, abs=0.01), m
    assert m["code_agreement"] >= 0.95, m
    assert m["fid_heldout"] == pytest.approx(0.300, abs=0.03), m
    assert m["fid_heldout"] < 2 * 0.197  # within 2x the floor of real digits the judge never saw
    png = tmp_path / "digits.png"
    assert cli.main(["sample", "--model", "demo:digits", "-n", "16", "-o", str(png)]) == 0
    assert read_provenance(png)["synthetic"] == "true"


def test_the_averaged_generator_follows_g_is_saved_with_the_run_and_is_what_is_exported():
    from deepfake_lab.gan import GANConfig, GANModel

    config = GANConfig(data="digits", ngf=8, ndf=8, ema=0.5)
    model = GANModel(config)
    start = [p.detach().clone() for p in model.nets["G"].parameters()]
    model.set_input(torch.rand(4, 1, 32, 32) * 2 - 1)
    model.optimize_parameters()
    for averaged, before, now in zip(model.G_ema.parameters(), start, model.nets["G"].parameters()):
        assert torch.allclose(averaged, 0.5 * before + 0.5 * now.detach())  # decay 0.5: halfway
    assert model.inference_generator() is model.G_ema and not model.G_ema.training
    # its BatchNorm statistics are its own (measured on noise), not G's, which belong to other weights
    first = next(m for m in model.G_ema.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.equal(first.running_mean, next(m for m in model.nets["G"].modules()
                                                    if isinstance(m, torch.nn.BatchNorm2d)).running_mean)
    assert int(first.num_batches_tracked) == 16
    again = GANModel(config)
    again.load_extra_state(model.extra_state())
    assert all(torch.equal(a, b) for a, b in zip(again.G_ema.state_dict().values(), model.G_ema.state_dict().values()))
    with pytest.raises(ValueError, match="without --ema"):
        again.load_extra_state({"d_updates": 1})
    assert GANModel(GANConfig(data="digits", ngf=8, ndf=8)).inference_generator().training  # no average: G itself
    with pytest.raises(ValueError, match="--ema 1.0"):
        GANConfig(data="digits", ema=1.0).validate()


def test_the_checkpoint_scores_give_g_and_the_average_with_its_own_statistics(tmp_path, capsys):
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "run"
    assert cli.main(["train", "gan", "--data", "digits", "--preset", "demo", "--steps", "2", "--ema", "0.5",
                     "--checkpoint-every", "2", "--sample-every", "0", "--out", str(out), "--no-progress"]) == 0
    script = Path(__file__).parents[1] / "benchmarks" / "gan_checkpoints.py"
    run = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("step-0000002  G:") and "average:" in run.stdout and "confident" in run.stdout
    empty = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "no step-*.safetensors checkpoints" in empty.stderr
    (tmp_path / "step-0000001.safetensors").write_bytes(b"not weights")
    broken = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert broken.returncode == 2 and "step-0000001.safetensors" in broken.stderr and "Traceback" not in broken.stderr
