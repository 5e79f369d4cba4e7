"""pix2pix (lesson 3): networks against the official code's numbers, the objective, the training
step, official checkpoints, paired data layouts, the command line and the shipped demo weights."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from deepfake_lab import cli
from deepfake_lab.checkpoints import CheckpointError, read_metadata
from deepfake_lab.data import DataError
from deepfake_lab.data.paired import AlignedDataset, PairedFolderDataset, jitter_pair, split_ab
from deepfake_lab.importers.pix2pix import load_official_generator
from deepfake_lab.pix2pix import (Pix2Pix, Pix2PixConfig, UnetGenerator, conditional_discriminator,
                                  discriminator_loss, generator_loss, load_generator, generator_mode, translate)

WEIGHTS = Path(__file__).resolve().parents[1] / "deepfake_lab" / "assets" / "weights"


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --------------------------------------------------------------------------------------------
# Networks: the official parameter counts and key layout
# --------------------------------------------------------------------------------------------
def test_parameter_counts_match_the_official_code():
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        assert n_params(UnetGenerator(num_downs=8)) == 54_413_955  # unet_256
        assert n_params(UnetGenerator(num_downs=7)) == 41_828_995  # unet_128
        assert n_params(conditional_discriminator(Pix2PixConfig())) == 2_768_705  # 6 channels, BatchNorm


def test_unet_keys_are_the_official_nested_layout():
    with torch.device("meta"):
        sd = UnetGenerator(num_downs=8).state_dict()
        sd128 = UnetGenerator(num_downs=7).state_dict()
        d = conditional_discriminator(Pix2PixConfig()).state_dict()
    inner = "model.model.1" + ".model.3" * 6  # the 1x1 bottleneck level
    assert sd["model.model.0.weight"].shape == (64, 3, 4, 4)
    assert "model.model.0.bias" not in sd  # the outermost down-conv has no bias in the official code
    assert sd["model.model.3.weight"].shape == (128, 3, 4, 4) and sd["model.model.3.bias"].shape == (3,)
    assert sd[f"{inner}.model.1.weight"].shape == (512, 512, 4, 4)
    assert sd[f"{inner}.model.3.weight"].shape == (512, 512, 4, 4)  # innermost ConvT: no skip channels in
    assert sd[f"{inner}.model.4.running_var"].shape == (512,)
    assert f"{inner}.model.3.model.1.weight" not in sd  # nothing below the bottleneck
    assert sd["model.model.1.model.5.weight"].shape == (256, 64, 4, 4)  # ConvT: 2*128 channels in (skip + up)
    assert len(sd) == 82 and len(sd128) == 70 and len(d) == 22  # with num_batches_tracked, as saved today
    assert d["model.0.weight"].shape == (64, 6, 4, 4) and d["model.11.weight"].shape == (1, 512, 4, 4)
    assert d["model.3.running_mean"].shape == (128,) and "model.2.bias" not in d


def test_dropout_sits_in_the_three_inner_decoder_levels():
    with torch.device("meta"):
        G = UnetGenerator(num_downs=8)
    names = [n for n, m in G.named_modules() if isinstance(m, torch.nn.Dropout)]
    assert len(names) == 3
    assert all(n.count("model.3") in (3, 4, 5) for n in names)  # levels 4, 5, 6 of 8 (the innermost is 7)


def test_shapes_and_the_size_error_names_the_sizes_it_can_take():
    G = UnetGenerator(num_downs=7, ngf=4).eval()
    assert G(torch.zeros(1, 3, 128, 256)).shape == (1, 3, 128, 256)
    D = conditional_discriminator(Pix2PixConfig(ndf=8))
    assert D(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    with pytest.raises(ValueError, match=r"128x128: unet_256 .* multiples of 256 .*unet_128"):
        UnetGenerator(num_downs=8, ngf=4)(torch.zeros(1, 3, 128, 128))
    with pytest.raises(ValueError, match=r"input 100x128: unet_128 .* multiples of 128"):
        G(torch.zeros(1, 3, 128, 100))


# --------------------------------------------------------------------------------------------
# The objective and the step
# --------------------------------------------------------------------------------------------
def test_losses_match_hand_computed_values():
    zeros = torch.zeros(2, 1, 30, 30)
    assert discriminator_loss(zeros, zeros).item() == pytest.approx(math.log(2))  # 0.5 * (log 2 + log 2)
    real, fake = torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), -1.0)
    expected = 0.5 * (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0)))
    assert discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)
    y = torch.zeros(1, 3, 4, 4)
    y_hat = torch.full((1, 3, 4, 4), 0.25)
    total, parts = generator_loss(zeros, y_hat, y, lambda_L1=100.0)
    assert parts["G_GAN"].item() == pytest.approx(math.log(2))  # -log sigmoid(0)
    assert parts["G_L1"].item() == pytest.approx(0.25)
    assert total.item() == pytest.approx(math.log(2) + 25.0)
    total, parts = generator_loss(None, y_hat, y, lambda_L1=100.0)  # the L1-only ablation
    assert set(parts) == {"G_L1"} and total.item() == pytest.approx(25.0)


def _tiny(objective="l1+cgan", **kw) -> Pix2Pix:
    torch.manual_seed(0)
    return Pix2Pix(Pix2PixConfig(netG="unet_128", ngf=4, ndf=4, objective=objective, crop_size=128, **kw),
                   total_steps=100)


def test_the_ablations_build_the_right_networks():
    assert set(_tiny("l1").nets) == {"G"}
    assert set(_tiny("cgan").nets) == {"G", "D"} and _tiny("cgan").lambda_L1 == 0.0
    assert _tiny().lambda_L1 == 100.0
    with pytest.raises(ValueError, match="objective"):
        Pix2PixConfig(objective="l2")


def test_step_updates_D_then_G_and_D_sees_the_pair():
    model = _tiny()
    torch.manual_seed(1)
    batch = {"A": torch.rand(2, 3, 128, 128) * 2 - 1, "B": torch.rand(2, 3, 128, 128) * 2 - 1}
    seen = []
    model.D.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    g0 = [p.detach().clone() for p in model.G.parameters()]
    d0 = [p.detach().clone() for p in model.D.parameters()]
    model.set_input(batch)
    logs = model.optimize_parameters()
    assert set(logs) == {"D", "G_GAN", "G_L1", "G"}
    assert seen == [6, 6, 6]  # real pair, fake pair (D step), fake pair (G step): always (x, y) stacked
    assert all(not torch.equal(a, b) for a, b in zip(d0, model.D.parameters()) if a.dim() > 1)
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.G.parameters()))
    assert logs["G"] == pytest.approx(logs["G_GAN"] + 100 * logs["G_L1"], rel=1e-5)


def test_the_vgg_feature_term_is_pix2pixhds_weighted_sum_and_trains_only_g():
    from deepfake_lab.perceptual import PIX2PIXHD_WEIGHTS, PerceptualLoss

    torch.manual_seed(0)
    y, y_hat = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1
    vgg = PerceptualLoss.pix2pixhd()
    feats_hat, feats = vgg.vgg(y_hat), vgg.vgg(y)
    by_hand = sum(w * (feats_hat[n] - feats[n]).abs().mean()
                  for n, w in zip(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), PIX2PIXHD_WEIGHTS))
    total, parts = generator_loss(None, y_hat, y, lambda_L1=100.0, perceptual=vgg, lambda_vgg=10.0)
    assert parts["G_VGG"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert total.item() == pytest.approx(100 * parts["G_L1"].item() + 10 * by_hand.item(), rel=1e-5)
    assert PIX2PIXHD_WEIGHTS[-1] == 1.0 and PIX2PIXHD_WEIGHTS[0] == 1 / 32

    model = _tiny(lambda_vgg=10.0)
    assert set(model.nets) == {"G", "D"}  # the VGG is a frozen judge: not a network of the run, not saved
    assert not any(p.requires_grad for p in model.perceptual.parameters())
    vgg_before = [p.detach().clone() for p in model.perceptual.parameters()]
    model.set_input({"A": torch.rand(2, 3, 128, 128) * 2 - 1, "B": torch.rand(2, 3, 128, 128) * 2 - 1})
    logs = model.optimize_parameters()
    assert set(logs) == {"D", "G_GAN", "G_L1", "G_VGG", "G"}
    assert logs["G"] == pytest.approx(logs["G_GAN"] + 100 * logs["G_L1"] + 10 * logs["G_VGG"], rel=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(vgg_before, model.perceptual.parameters()))
    with pytest.raises(ValueError, match="lambda_vgg"):
        Pix2PixConfig(lambda_vgg=-1.0)


def test_diffaugment_shifts_and_cuts_both_images_of_a_pair_alike():
    model = _tiny(diffaugment="translation,cutout")
    seen = []
    model.D.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    torch.manual_seed(1)
    batch = {"A": torch.rand(2, 3, 128, 128) * 0.5 + 0.5, "B": torch.rand(2, 3, 128, 128) * 0.5 + 0.5}
    model.set_input(batch)
    model.optimize_parameters()
    assert len(seen) == 3
    for pair in seen:  # one draw per pair: x's and y's zeroed squares and shifted borders coincide
        x_zero, y_zero = (pair[:, :3] == 0).all(dim=1), (pair[:, 3:] == 0).all(dim=1)
        assert torch.equal(x_zero, y_zero) and x_zero.float().mean() >= 1 / 16  # a clipped square at least
    assert _tiny().augment is None
    with pytest.raises(ValueError, match="DiffAugment policy"):
        Pix2PixConfig(diffaugment="blur")


def test_train_images_trains_on_evenly_spaced_frames(tmp_path, capsys):
    from deepfake_lab.lessons import lesson

    row = lesson("pix2pix")
    config, _ = row.preset("demo", "carphone-edges")
    data = row.dataset(config, "carphone-edges", {"train_images": 5})
    assert [data[i]["frame"] for i in range(len(data))] == [0, 25, 50, 74, 99]  # 24.75 and 74.25 round
    assert cli.main(["train", "pix2pix", "--train-images", "0", "--steps", "1", "--out", str(tmp_path)]) == 2
    assert "0 training pairs (--train-images): there are 100; give 1 .. 100" in capsys.readouterr().err


def test_the_step_calls_the_networks_through_nets_so_ddp_wrappers_are_used():
    class Spy(torch.nn.Module):  # stands for the DistributedDataParallel wrapper the loop puts into nets
        def __init__(self, net):
            super().__init__()
            self.net, self.calls = net, 0

        def forward(self, x):
            self.calls += 1
            return self.net(x)

    model = _tiny()
    bare_G = model.G
    model.nets = {k: Spy(v) for k, v in model.nets.items()}
    model.set_input({"A": torch.rand(1, 3, 128, 128) * 2 - 1, "B": torch.rand(1, 3, 128, 128) * 2 - 1})
    model.optimize_parameters()
    assert model.nets["G"].calls == 1 and model.nets["D"].calls == 3  # G once; D on real, fake, fake
    ddp_like = torch.nn.parallel.DistributedDataParallel.__new__(torch.nn.parallel.DistributedDataParallel)
    torch.nn.Module.__init__(ddp_like)
    ddp_like.module = bare_G
    model.nets["G"] = ddp_like
    assert model.G is bare_G  # reading G gives the network itself, not its wrapper


def test_l1_loss_falls_in_a_short_run():
    torch.manual_seed(0)
    model = Pix2Pix(Pix2PixConfig(netG="unet_128", ngf=8, objective="l1", lr=2e-3, crop_size=128), total_steps=100)
    torch.manual_seed(2)
    a = F.interpolate(torch.rand(2, 3, 16, 16) * 2 - 1, size=128, mode="bilinear")  # smooth inputs
    model.set_input({"A": a, "B": -0.5 * a})  # a mapping the U-Net can learn
    first = model.optimize_parameters()["G_L1"]
    for _ in range(14):
        last = model.optimize_parameters()["G_L1"]
    assert last < 0.6 * first


# --------------------------------------------------------------------------------------------
# Test-time conventions
# --------------------------------------------------------------------------------------------
def test_official_test_mode_uses_batch_statistics_and_dropout_and_restores_the_model():
    model = _tiny()
    G = model.G
    x = torch.rand(3, 3, 128, 128) * 2 - 1
    G.train()
    for _ in range(3):  # give the running statistics something to remember
        G(x)
    state = {k: v.clone() for k, v in G.state_dict().items()}
    torch.manual_seed(0)
    a = translate(G, x, "official")
    torch.manual_seed(0)
    b = translate(G, x, "official")
    torch.manual_seed(1)
    c = translate(G, x, "official")
    assert torch.equal(a, b) and not torch.allclose(a, c)  # dropout noise: random, repeatable with a seed
    e1, e2 = translate(G, x, "eval"), translate(G, x[:1], "eval")
    assert torch.allclose(e1[:1], e2, atol=1e-6)  # eval: an image's output does not depend on its batch
    assert G.training  # mode restored
    assert all(torch.equal(state[k], v) for k, v in G.state_dict().items())  # running statistics untouched
    with pytest.raises(ValueError, match="test-time mode"):
        with generator_mode(G, "train"):
            pass


# --------------------------------------------------------------------------------------------
# Official checkpoints: an independent re-statement of the official forward pass as the reference
# --------------------------------------------------------------------------------------------
def official_unet_reference(sd: dict, x: torch.Tensor, num_downs: int, training: bool,
                            norm: str = "batch") -> torch.Tensor:
    """The official ``UnetGenerator`` forward, written from its key layout with functional ops.

    As in the official code, each inner level's LeakyReLU(0.2) runs *in place* on its input before
    ``torch.cat([x, model(x)])`` reads it. BatchNorm: running statistics (eval) or batch statistics
    (train mode); dropout 0.5 in levels 4 .. num_downs-2 when training. ``norm="instance"``: InstanceNorm
    without parameters (any running statistics in ``sd`` unused), and every convolution has a bias.
    """
    def bn(h, p):
        if norm == "instance":
            return F.instance_norm(h, eps=1e-5)
        return F.batch_norm(h, sd[p + ".running_mean"].clone(), sd[p + ".running_var"].clone(), sd[p + ".weight"],
                            sd[p + ".bias"], training=training, momentum=0.1, eps=1e-5)

    def level(p, x, depth):
        F.leaky_relu_(x, 0.2)  # in place: the skip below carries the activated x
        h = F.conv2d(x, sd[p + ".model.1.weight"], sd.get(p + ".model.1.bias"), stride=2, padding=1)
        if depth == num_downs - 1:  # innermost
            h = F.conv_transpose2d(F.relu(h), sd[p + ".model.3.weight"], sd.get(p + ".model.3.bias"), stride=2,
                                   padding=1)
            h = bn(h, p + ".model.4")
        else:
            h = level(p + ".model.3", bn(h, p + ".model.2"), depth + 1)
            h = F.conv_transpose2d(F.relu(h), sd[p + ".model.5.weight"], sd.get(p + ".model.5.bias"), stride=2,
                                   padding=1)
            h = bn(h, p + ".model.6")
            if depth >= 4:
                h = F.dropout(h, 0.5, training=training)
        return torch.cat([x, h], 1)

    h = F.conv2d(x, sd["model.model.0.weight"], sd.get("model.model.0.bias"), stride=2, padding=1)
    h = level("model.model.1", h, 1)
    h = F.conv_transpose2d(F.relu(h), sd["model.model.3.weight"], sd["model.model.3.bias"], stride=2, padding=1)
    return torch.tanh(h)


def _random_official_state(num_downs: int, ngf: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the official keys (as PyTorch < 0.4 saved them: no num_batches_tracked)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in UnetGenerator(num_downs=num_downs, ngf=ngf).state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        if k.endswith("running_var"):
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith("running_mean"):
            sd[k] = torch.randn(v.shape, generator=g) * 0.1
        elif v.dim() == 1 and k.endswith("weight"):  # BatchNorm scale
            sd[k] = 1 + 0.1 * torch.randn(v.shape, generator=g)
        elif v.dim() == 1:
            sd[k] = 0.05 * torch.randn(v.shape, generator=g)
        else:  # convolutions: roughly variance-preserving
            fan_in = v.shape[1] * 16 if "model.model.0." in k else v.shape[0] * 4
            sd[k] = torch.randn(v.shape, generator=g) / math.sqrt(fan_in)
    return sd


@pytest.mark.parametrize("num_downs,size", [(7, 128), (8, 256)])
def test_official_checkpoint_reproduces_the_reference_output(tmp_path, num_downs, size):
    sd = _random_official_state(num_downs, ngf=4, seed=num_downs)
    path = tmp_path / "latest_net_G.pth"
    torch.save(sd, path)
    G, config = load_official_generator(path)
    assert (config.netG, config.ngf, config.norm) == ({7: "unet_128", 8: "unet_256"}[num_downs], 4, "batch")
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        ref_eval = official_unet_reference(sd, x.clone(), num_downs, training=False)
        torch.manual_seed(5)
        ref_official = official_unet_reference(sd, x.clone(), num_downs, training=True)
    assert 0.05 < ref_eval.std() and (ref_eval.abs() < 0.99).float().mean() > 0.5  # not a saturated tanh
    out_eval = translate(G, x, "eval")
    torch.manual_seed(5)
    with torch.no_grad(), generator_mode(G, "official"):
        out_official = G(x)  # the whole batch at once, as the reference computed it
    assert (out_eval - ref_eval).abs().max().item() < 1e-5
    assert (out_official - ref_official).abs().max().item() < 1e-5


def test_old_instance_norm_unet_with_running_statistics_loads_as_instance_norm(tmp_path):
    # an official --norm instance U-Net saved by PyTorch < 0.4: conv biases, no norm weights, but InstanceNorm
    # running_mean/var at every norm position (where BatchNorm's would be)
    g = torch.Generator().manual_seed(4)
    sd = {k: torch.randn(v.shape, generator=g) / math.sqrt(v[0].numel())
          for k, v in UnetGenerator(num_downs=7, ngf=2, norm="instance").state_dict().items()}
    for k, v in UnetGenerator(num_downs=7, ngf=2, norm="batch").state_dict().items():
        if k.endswith(("running_mean", "running_var")):
            sd[k] = torch.zeros(v.shape) if k.endswith("mean") else torch.ones(v.shape)
    assert any(k.endswith("running_mean") for k in sd) and not any(v.ndim == 1 and k.endswith(".weight")
                                                                     for k, v in sd.items())
    torch.save(sd, tmp_path / "latest_net_G.pth")
    G, config = load_official_generator(tmp_path / "latest_net_G.pth")
    assert (config.norm, config.netG, config.ngf) == ("instance", "unet_128", 2)
    x = torch.rand(1, 3, 128, 128, generator=g) * 2 - 1
    with torch.no_grad():
        ref = official_unet_reference(sd, x.clone(), 7, training=False, norm="instance")
    assert (translate(G, x, "eval") - ref).abs().max().item() < 1e-5


def test_importing_a_wrong_file_names_the_file(tmp_path, capsys):
    torch.save(conditional_discriminator(Pix2PixConfig(ndf=4)).state_dict(), tmp_path / "latest_net_D.pth")
    out = str(tmp_path / "G.safetensors")
    assert cli.main(["import", "pix2pix", str(tmp_path / "latest_net_D.pth"), "-o", out]) == 2
    err = capsys.readouterr().err
    assert "latest_net_D.pth: not an official pix2pix U-Net generator" in err and "state dict:" not in err
    assert "discriminator" in err
    with pytest.raises(CheckpointError, match="latest_net_D.pth: not an official pix2pix"):
        load_official_generator(torch.load(tmp_path / "latest_net_D.pth"), name="latest_net_D.pth")
    # translate names it too, and says which file to give instead
    _save(np.zeros((32, 32, 3), np.uint8), tmp_path / "in.png")
    assert cli.main(["translate", "--model", str(tmp_path / "latest_net_D.pth"), str(tmp_path / "in.png"),
                     "-o", str(tmp_path / "o.png")]) == 2
    assert "translation needs a generator: latest_net_G.pth" in capsys.readouterr().err


def test_load_generator_names_the_importer_for_official_files(tmp_path):
    torch.save(_random_official_state(7, ngf=2), tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointError, match=r"load_official_generator\(path\).*deepfake-lab import pix2pix"):
        load_generator(tmp_path / "latest_net_G.pth")


def test_official_checkpoint_with_a_module_prefix_loads(tmp_path):
    sd = {"module." + k: v for k, v in _random_official_state(7, ngf=2).items()}
    G, config = load_official_generator(sd)
    assert config.netG == "unet_128" and config.ngf == 2


def test_wrong_checkpoints_are_refused_with_a_reason(tmp_path):
    resnet = {"model.1.weight": torch.zeros(64, 3, 7, 7), "model.10.conv_block.1.weight": torch.zeros(256, 256, 3, 3)}
    with pytest.raises(CheckpointError, match="ResNet generator"):
        load_official_generator(resnet)
    D = conditional_discriminator(Pix2PixConfig(ndf=4)).state_dict()
    with pytest.raises(CheckpointError, match="discriminator"):
        load_official_generator(D)
    sd = _random_official_state(7, ngf=2)
    del sd["model.model.1.model.2.weight"]
    with pytest.raises(CheckpointError, match="missing key"):
        load_official_generator(sd)
    path = tmp_path / "bad.pth"
    torch.save({"G": Path("x")}, path)  # a pickled class: never unpickled
    with pytest.raises(CheckpointError, match="refused|not a plain"):
        load_official_generator(path)


# --------------------------------------------------------------------------------------------
# Paired data: the official aligned layout and two folders
# --------------------------------------------------------------------------------------------
def _save(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _ab_image(seed: int, w: int = 64, h: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return a, 255 - a


def test_aligned_layout_splits_ab_and_follows_direction(tmp_path):
    for i in range(3):
        a, b = _ab_image(i)
        _save(np.concatenate([a, b], 1), tmp_path / "train" / f"{i}.png")
    ds = AlignedDataset(tmp_path, "train", "AtoB", load_size=72, crop_size=64)
    item = ds[0]
    assert item["A"].shape == item["B"].shape == (3, 64, 64)
    # B is the negative of A everywhere, so one shared crop and flip keep A + B == 0 (in [-1, 1])
    assert torch.allclose(item["A"] + item["B"], torch.zeros(3, 64, 64), atol=0.02)
    test = AlignedDataset(tmp_path, "train", "BtoA", load_size=64, crop_size=64, jitter=False)
    a, b = _ab_image(0)
    assert torch.allclose(test[0]["A"], torch.from_numpy(b).permute(2, 0, 1).float() / 127.5 - 1)
    with pytest.raises(DataError, match=r"no such folder \(found: train\)"):
        AlignedDataset(tmp_path, "val")


def test_ab_image_of_odd_width_is_a_clear_error(tmp_path):
    _save(np.zeros((32, 65, 3), np.uint8), tmp_path / "train" / "odd.png")
    with pytest.raises(DataError, match=r"odd\.png: 65x32 pixels, an odd width"):
        AlignedDataset(tmp_path, "train", load_size=32, crop_size=32)[0]
    with pytest.raises(DataError, match="odd width"):
        split_ab(Image.new("RGB", (7, 4)), "x.png")


def test_two_folder_layout_pairs_by_name_and_checks_pairs(tmp_path):
    a, b = _ab_image(0, 40, 32)
    _save(a, tmp_path / "A" / "x1.png")
    _save(b, tmp_path / "B" / "x1.jpg")  # the extension may differ
    ds = PairedFolderDataset(tmp_path / "A", tmp_path / "B", load_size=32, crop_size=32, train=False)
    assert len(ds) == 1 and ds[0]["A"].shape == (3, 32, 32)
    _save(a, tmp_path / "A" / "x2.png")
    with pytest.raises(DataError, match=r"x2\.png: has no partner in .*B"):
        PairedFolderDataset(tmp_path / "A", tmp_path / "B")
    _save(np.zeros((30, 40, 3), np.uint8), tmp_path / "B" / "x2.png")
    with pytest.raises(DataError, match=r"x2\.png is 40x32 but its partner .*x2\.png is 40x30"):
        PairedFolderDataset(tmp_path / "A", tmp_path / "B")


def test_jitter_is_shared_by_a_and_b():
    a = torch.rand(3, 40, 40) * 2 - 1
    for seed in range(5):
        torch.manual_seed(seed)
        ja, jb = jitter_pair(a, a.clone(), load_size=48, crop_size=32, flip=True, train=True)
        assert ja.shape == (3, 32, 32) and torch.equal(ja, jb)


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------
def test_train_command_runs_and_exports_loadable_weights(tmp_path, capsys):
    for i in range(2):
        a, b = _ab_image(i, 128, 128)
        _save(np.concatenate([a, b], 1), tmp_path / "data" / "train" / f"{i}.png")
    out, export = tmp_path / "run", tmp_path / "g.safetensors"
    code = cli.main(["train", "pix2pix", "--preset", "demo", "--data", str(tmp_path / "data"), "--steps", "2",
                     "--batch-size", "2", "--ngf", "4", "--ndf", "4", "--n-layers-D", "2", "--out", str(out),
                     "--no-progress", "--sample-every", "2", "--export", str(export), "--device", "cpu"])
    assert code == 0
    assert (out / "losses.csv").exists() and (out / "samples" / "step-0000002.png").exists()
    meta = read_metadata(export)
    assert meta["kind"] == "pix2pix" and meta["config"]["ngf"] == 4 and meta["config"]["n_layers_D"] == 2
    G, config = load_generator(export)
    assert config.netG == "unet_128" and next(G.parameters()).dtype == torch.float32
    assert translate(G, torch.zeros(1, 3, 128, 128)).shape == (1, 3, 128, 128)


def test_train_command_reports_bad_sizes_in_one_line(tmp_path, capsys):
    code = cli.main(["train", "pix2pix", "--preset", "demo", "--crop-size", "100", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "multiples of 128" in err and "Traceback" not in err
    code = cli.main(["train", "pix2pix", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")])
    assert code == 2 and "no such folder" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# The shipped demo weights meet the figures on their model card
# --------------------------------------------------------------------------------------------
def _card_figures(card: Path) -> dict:
    match = re.search(r"<!-- figures (\{.*?\}) -->", card.read_text(), re.S)
    assert match, f"{card}: no machine-readable figures line"
    return json.loads(match.group(1))


def test_demo_weights_meet_their_reported_figures_on_held_out_frames():
    from deepfake_lab.evaluation import face_task_report

    weights, card = WEIGHTS / "pix2pix-carphone-edges.safetensors", WEIGHTS / "pix2pix-carphone-edges.md"
    assert weights.stat().st_size < 8_000_000  # a small share of the 40 MB shared by all demo weights
    reported = _card_figures(card)
    G, config = load_generator(weights)
    report = face_task_report(G, config, mode="eval", use_lpips=True)
    ours, mean, oracle = report["pix2pix"], report["mean_frame"], report["nearest_frame"]
    assert ours["psnr"] == pytest.approx(reported["pix2pix"]["psnr"], abs=0.05)
    assert ours["ssim"] == pytest.approx(reported["pix2pix"]["ssim"], abs=0.002)
    for head in ("lpips_alex", "lpips"):
        assert ours[head] == pytest.approx(reported["pix2pix"][head], abs=0.003)
    assert mean["psnr"] == pytest.approx(reported["mean_frame"]["psnr"], abs=0.01)
    assert oracle["psnr"] == pytest.approx(reported["nearest_frame"]["psnr"], abs=0.01)
    assert ours["psnr"] > mean["psnr"] and ours["ssim"] > mean["ssim"]  # beats the mean training frame
    # the lesson's goal (LPIPS-Alex <= 0.10; the 4,800-step demo without jitter had 0.125), and sharper than the
    # mean frame by far: the sharpness gap of the output's high frequencies against the photos'
    assert ours["lpips_alex"] <= 0.10 and ours["lpips"] < 0.25
    assert ours["sharpness_gap"] == pytest.approx(reported["pix2pix"]["sharpness_gap"], abs=0.003)
    assert ours["sharpness_gap"] < 0.05 < mean["sharpness_gap"]


def test_translate_and_import_official_pix2pix_files(tmp_path):
    from deepfake_lab.provenance import read_provenance

    torch.save(_random_official_state(8, ngf=2), tmp_path / "latest_net_G.pth")
    _save((np.random.default_rng(0).random((90, 120, 3)) * 255).astype(np.uint8), tmp_path / "in.png")
    assert cli.main(["translate", "--model", str(tmp_path / "latest_net_G.pth"), str(tmp_path / "in.png"),
                     "-o", str(tmp_path / "direct.png"), "--device", "cpu"]) == 0
    assert cli.main(["import", "pix2pix", str(tmp_path / "latest_net_G.pth"), "-o", str(tmp_path / "G.safetensors")]) == 0
    meta = read_metadata(tmp_path / "G.safetensors")
    assert meta["kind"] == "pix2pix" and meta["test_mode"] == "official" and meta["config"]["netG"] == "unet_256"
    assert cli.main(["translate", "--model", str(tmp_path / "G.safetensors"), str(tmp_path / "in.png"),
                     "-o", str(tmp_path / "imported.png"), "--device", "cpu"]) == 0
    direct, imported = Image.open(tmp_path / "direct.png"), Image.open(tmp_path / "imported.png")
    assert direct.width == 120 and read_provenance(direct)["synthetic"] == "true"
    assert np.array_equal(np.asarray(direct)[:90], np.asarray(imported)[:90])  # same pixels above the label


def test_fetched_pix2pix_data_sets_are_found_by_name(tmp_path, monkeypatch):
    from deepfake_lab.data.paired import open_paired

    def build_dataset(data, c):  # what the lesson table's pix2pix row does with --data
        return open_paired(data, c.direction, c.load_size, c.crop_size)

    monkeypatch.setenv("DEEPFAKE_LAB_CACHE", str(tmp_path))
    config = Pix2PixConfig(netG="unet_128", direction="BtoA", load_size=64, crop_size=64)
    with pytest.raises(DataError, match="run `deepfake-lab fetch pix2pix facades` first"):
        build_dataset("facades", config)
    a, b = _ab_image(0)
    _save(np.concatenate([a, b], 1), tmp_path / "datasets" / "pix2pix" / "facades" / "train" / "1.jpg")
    ds = build_dataset("facades", config)
    assert isinstance(ds, AlignedDataset) and len(ds) == 1 and ds.direction == "BtoA"
