"""The lesson table: one record per lesson, read by the command line, ``translate``, the app and the tutorial.

A lesson is a paper module (blocks, networks, losses, one training step) plus one :class:`Lesson` row
in :data:`LESSONS`. The row says, in data, what the rest of the package may do with it:

=================  =====================================================================================
``presets``        named (model config, loop config) pairs; ``--preset demo`` is a second instance
``flags``          the lesson's own ``deepfake-lab train`` flags, each mapped onto a config field
``model``          builds the :class:`~deepfake_lab.train.LessonModel` (after the run's seed is set)
``dataset``        the training data named by ``--data``
``evaluate``       the held-out evaluation printed and stored after training (``metrics.json``)
``metrics_key``    the metadata key of those metrics in the exported file (default ``metrics``)
``export``/``load``  the demo-weights file pair (fp16 safetensors whose ``kind`` is the lesson's name)
``demo_weights``   the files in :data:`~deepfake_lab.settings.WEIGHTS_DIR` that the app shows
``translator``     for image-to-image lessons: builds the ``translate`` runner from a weights file
``importer``       for lessons with official checkpoints: recognises and converts them
=================  =====================================================================================

Where is the cycle-loss weight? In the CycleGAN row's presets: ``CycleGANConfig.lambda_cycle`` (10, the
paper's), overridden by ``deepfake-lab train cyclegan --lambda-cycle``.

To add a lesson: write ``deepfake_lab/<lesson>.py`` (its model subclasses ``LessonModel``; see
``tests/tiny_model.py`` for the smallest complete one) and append one ``Lesson(...)`` here. Nothing is
registered at import time and nothing is found by module name: this table is the only list.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from . import animation, cyclegan, faceswap, gan, pix2pix
from .data.unpaired import PREPROCESS
from .errors import UserError
from .importers import cyclegan as cyclegan_import
from .importers import pix2pix as pix2pix_import
from .train import LoopConfig

__all__ = ["Flag", "Lesson", "LESSONS", "lesson", "lesson_for_kind"]


@dataclass(frozen=True)
class Flag:
    """One ``deepfake-lab train <lesson>`` flag: ``--name`` sets config field ``field`` (or, with
    ``field=None``, is handed to the lesson's ``dataset`` as an option of that name)."""

    name: str
    help: str
    type: Callable | None = None
    field: str | None = None
    choices: tuple | None = None
    #: ``store_true``: a switch; its value is ``value`` (e.g. ``--no-flip`` sets ``flip=False``)
    switch: bool = False
    value: Any = True

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Lesson:
    """What one lesson offers the rest of the package (see the module docstring for each field)."""

    number: int
    name: str
    title: str
    paper: str
    module: str
    notebook: str
    preset: Callable[[str, str], tuple[Any, LoopConfig]]
    preset_names: tuple[str, ...]
    model: Callable[..., Any]
    dataset: Callable[[Any, str, dict], Any]
    export: Callable[..., Path]
    load: Callable[..., Any]
    default_data: str | None = None
    data_help: str = ""
    flags: tuple[Flag, ...] = ()
    #: a config with the flags applied -> the config to train (checks, derived fields); may raise UserError
    configure: Callable[[Any, dict], Any] | None = None
    #: steps of the paper's schedule when a preset has ``steps=0``: epochs x batches per epoch
    epochs: int | None = None
    #: the loop settings under DEEPFAKE_LAB_QUICK=1 when ``--steps`` is not given
    quick: Callable[[LoopConfig, Any], LoopConfig] | None = None
    #: run after training, before evaluation (e.g. recomputing BatchNorm statistics); returns a note or None
    after_training: Callable[[Any, Any, LoopConfig], str | None] | None = None
    #: (model, config, data) -> held-out metrics dict, or None when the data has no held-out part
    evaluate: Callable[[Any, Any, str], dict | None] | None = None
    #: the key of those metrics in the exported file's metadata (the demo weights' cards and notebooks read it)
    metrics_key: str = "metrics"
    demo_weights: tuple[str, ...] = ()
    translator: Callable[..., Any] | None = None
    importer: Any = None
    gpu_check: Callable[[], tuple] | None = None
    describe: Callable[[Any, Any, Any], str] | None = None


def _counts(model) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in model.parameter_counts().items())


# --------------------------------------------------------------------------------------------
# Lesson 1: GAN basics
# --------------------------------------------------------------------------------------------
def _gan_preset(name: str, data: str):
    if data not in gan.POINT_DATA + gan.IMAGE_DATA:
        raise UserError(f"--data {data!r}: unknown; use one of {', '.join(gan.POINT_DATA + gan.IMAGE_DATA)}")
    return gan.preset(name, data)


def _gan_configure(config, options):
    if options.get("loss"):
        config = config.with_loss(options["loss"])
    return config.validate()


def _gan_quick(loop: LoopConfig, config) -> LoopConfig:
    return replace(loop, steps=min(loop.steps, gan.QUICK_STEPS["points" if config.is_points else "images"]))


GAN = Lesson(
    1, "gan", "GAN basics", "Goodfellow et al. 2014; Radford et al. 2015 (DCGAN)", "deepfake_lab/gan.py",
    "01_gan_basics.ipynb",
    preset=_gan_preset, preset_names=("default", "demo", "collapse"),
    model=lambda config, device, precision, steps: gan.GANModel(config, device, precision, total_steps=steps),
    dataset=lambda config, data, options: gan.make_dataset(config, "train", download=bool(options.get("download"))),
    export=lambda model, config, path, extra: gan.export_generator(model.inference_generator(), config, path, extra),
    load=gan.load_generator,
    default_data="ring8",
    data_help=f"training data: {', '.join(gan.POINT_DATA + gan.IMAGE_DATA)} (mnist, fashion-mnist need --download)",
    flags=(Flag("--loss", "adversarial loss (default: the preset's, nonsaturating)", choices=gan.LOSSES),
           Flag("--arch", "network family (default: mlp for points, dcgan for images)", field="arch",
                choices=("mlp", "dcgan")),
           Flag("--latent-dim", "size of the noise z", int, "latent_dim"),
           Flag("--ngf", "DCGAN generator width (channels of its last hidden layer)", int, "ngf"),
           Flag("--ndf", "DCGAN discriminator width (channels of its first layer)", int, "ndf"),
           Flag("--lr", "Adam learning rate of G and D", float, "lr"),
           Flag("--d-steps", "D updates per G update", int, "d_steps"),
           Flag("--ema", "average G's weights with this decay per step and export the average (e.g. 0.999)", float,
                "ema"),
           Flag("--diffaugment", "DiffAugment policy for D's inputs, e.g. color,translation,cutout (default: none)",
                field="diffaugment"),
           Flag("--code", "a categorical code of this many classes in z, read back by a head on D (InfoGAN)", int,
                "code"),
           Flag("--code-weight", "weight of the code head's loss (InfoGAN's lambda, default 1)", float, "code_weight"),
           Flag("--code-labels", "the code head also learns the real digits' labels, so code k draws digit k (AC-GAN)",
                field="code_labels", switch=True),
           Flag("--download", "allow downloading mnist / fashion-mnist via torchvision", switch=True)),
    configure=_gan_configure,
    quick=_gan_quick,
    evaluate=lambda model, config, data: gan.evaluate_generator(model.inference_generator(), config) or None,
    demo_weights=("gan-ring8", "gan-digits"),
    gpu_check=gan.gpu_check_generator,
    describe=lambda model, config, dataset: (f"GAN ({config.arch}, loss {config.loss}) on {config.data}: "
                                             f"{len(dataset):,} training samples; parameters {_counts(model)}"),
)


# --------------------------------------------------------------------------------------------
# Lesson 2: CycleGAN
# --------------------------------------------------------------------------------------------
def _cyclegan_configure(config, options):
    for name in ("ngf", "ndf", "crop_size", "load_size"):
        if getattr(config, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} {getattr(config, name)}: must be positive")
    return config


def _cyclegan_dataset(config, data: str, options):
    from .data.unpaired import UnpairedImageFolder, resolve_data_root

    return UnpairedImageFolder(resolve_data_root(data), "train", config.preprocess, config.load_size,
                               config.crop_size, config.flip, options.get("max_items"), options.get("train_images"))


def _cyclegan_after_training(model, dataset, loop: LoopConfig) -> str | None:
    if model.config.norm != "batch":
        return None
    used = cyclegan.recompute_batchnorm_statistics(model, dataset, batch_size=loop.batch_size, seed=loop.seed)
    return f"BatchNorm statistics of G and F recomputed on {used} training images (weights unchanged)"


def _cyclegan_evaluate(model, config, data: str):
    from .data.unpaired import resolve_data_root
    from .evaluation import cyclegan_held_out

    return cyclegan_held_out(model, resolve_data_root(data))


CYCLEGAN = Lesson(
    2, "cyclegan", "CycleGAN: unpaired translation", "Zhu et al. 2017", "deepfake_lab/cyclegan.py",
    "02_cyclegan.ipynb",
    preset=lambda name, data: cyclegan.PRESETS[name], preset_names=tuple(cyclegan.PRESETS),
    model=lambda config, device, precision, steps: cyclegan.CycleGANModel(config, device, precision, steps),
    dataset=_cyclegan_dataset,
    export=lambda model, config, path, extra: cyclegan.export_generators(model, path, extra),
    load=cyclegan.load_generator,
    default_data="face2cartoon",
    data_help="embedded set (face2cartoon, photo2winter) or a folder with trainA/ and trainB/ (e.g. from "
              "`deepfake-lab fetch cyclegan horse2zebra`)",
    flags=(Flag("--ngf", "generator filters in the first layer (paper 64)", int, "ngf"),
           Flag("--ndf", "discriminator filters in the first layer (paper 64)", int, "ndf"),
           Flag("--n-blocks", "residual blocks of the generators (paper 9 at 256 px, 6 at 128 px)", int, "n_blocks"),
           Flag("--norm", "normalisation (paper: instance)", field="norm", choices=("instance", "batch")),
           Flag("--dropout", "dropout 0.5 in the residual blocks", field="use_dropout", switch=True),
           Flag("--crop-size", "training crop (paper 256)", int, "crop_size"),
           Flag("--load-size", "resize before cropping (paper 286)", int, "load_size"),
           Flag("--preprocess", "resizing and cropping, as the official --preprocess", field="preprocess",
                choices=PREPROCESS),
           Flag("--no-flip", "no random horizontal flips", field="flip", switch=True, value=False),
           Flag("--lambda-cycle", "cycle-consistency weight (paper 10)", float, "lambda_cycle"),
           Flag("--lambda-identity", "identity weight relative to lambda (paper 0.5; 0: off)", float,
                "lambda_identity"),
           Flag("--pool-size", "image history pool (paper 50; 0: off)", int, "pool_size"),
           Flag("--lr", "Adam learning rate (paper 0.0002)", float, "lr"),
           Flag("--max-items", "use at most this many images per epoch (official --max_dataset_size)", int),
           Flag("--train-images", "train on only this many images of each domain, evenly spaced (data-size curves)",
                int),
           Flag("--diffaugment", "DiffAugment policy for D's inputs, e.g. color,translation,cutout (default: none)",
                field="diffaugment")),
    configure=_cyclegan_configure,
    epochs=cyclegan.DEFAULT_EPOCHS,
    quick=lambda loop, config: replace(loop, steps=min(loop.steps, cyclegan.QUICK_STEPS)),
    after_training=_cyclegan_after_training,
    evaluate=_cyclegan_evaluate,
    demo_weights=("cyclegan-face2cartoon",),
    translator=cyclegan_import.translator,
    importer=cyclegan_import.IMPORTER,
    gpu_check=cyclegan.gpu_check_generator,
    describe=lambda model, config, dataset: (f"CycleGAN ({len(dataset.paths_a):,} A / {len(dataset.paths_b):,} B "
                                             f"images): parameters {_counts(model)}; {config.crop_size} px"),
)


# --------------------------------------------------------------------------------------------
# Lesson 3: pix2pix
# --------------------------------------------------------------------------------------------
def _pix2pix_configure(config, options):
    import torch

    if options.get("crop_size") is not None and options.get("load_size") is None:
        # a bigger crop keeps the preset's jitter ratio (e.g. 286 / 256)
        base = pix2pix.PRESETS[options["preset"]][0]
        config = replace(config, load_size=max(config.crop_size, base.load_size * config.crop_size // base.crop_size))
    if options.get("direction") is None and Path(options["data"]).name == "facades":
        # stored photo | labels: labels -> photo is BtoA
        config = replace(config, direction="BtoA")
        print("facades: training labels -> photo (--direction BtoA; give --direction AtoB for photo -> labels)",
              file=sys.stderr)
    if config.crop_size > config.load_size:
        raise UserError(f"--crop-size {config.crop_size} > --load-size {config.load_size}; the crop must fit")
    with torch.device("meta"):  # shapes only: check the crop size before loading any data
        pix2pix.build_generator(config).check_size(config.crop_size, config.crop_size)
    return config


def _pix2pix_dataset(config, data: str, options):
    from torch.utils.data import Subset

    from .data import evenly_spaced
    from .data.paired import open_paired

    pairs = open_paired(data, config.direction, config.load_size, config.crop_size)
    if options.get("train_images") is None:
        return pairs
    return Subset(pairs, evenly_spaced(len(pairs), options["train_images"], "training pairs (--train-images)"))


def _pix2pix_evaluate(model, config, data: str):
    from .evaluation import pix2pix_held_out

    return pix2pix_held_out(model.nets["G"], config, data)


PIX2PIX = Lesson(
    3, "pix2pix", "pix2pix: paired translation", "Isola et al. 2017", "deepfake_lab/pix2pix.py", "03_pix2pix.ipynb",
    preset=lambda name, data: pix2pix.PRESETS[name][:2], preset_names=tuple(pix2pix.PRESETS),
    model=lambda config, device, precision, steps: pix2pix.Pix2Pix(config, device, precision, total_steps=steps),
    dataset=_pix2pix_dataset,
    export=lambda model, config, path, extra: pix2pix.export_weights(model, config, path, extra),
    load=pix2pix.load_generator,
    default_data="carphone-edges",
    data_help="embedded task (carphone-edges, carphone-sketch, colorization) or a data set folder: train/ val/ "
              "test/ of side-by-side AB images, or A/ and B/ folders",
    flags=(Flag("--direction", "AtoB (default) or BtoA (facades labels -> photo)", field="direction",
                choices=("AtoB", "BtoA")),
           Flag("--netG", "U-Net depth (default unet_256; demo unet_128)", field="netG",
                choices=tuple(sorted(pix2pix.UNET_LEVELS))),
           Flag("--ngf", "generator width (64 official)", int, "ngf"),
           Flag("--ndf", "discriminator width (64 official)", int, "ndf"),
           Flag("--n-layers-D", "PatchGAN depth 1-5: patches of 16, 34, 70 (3, the paper's), 142 or 286 pixels", int,
                "n_layers_D", choices=(1, 2, 3, 4, 5)),
           Flag("--objective", "the paper's ablation (default l1+cgan)", field="objective",
                choices=("l1+cgan", "l1", "cgan")),
           Flag("--lambda-l1", "weight of the L1 term (100)", float, "lambda_L1"),
           Flag("--lambda-vgg", "weight of pix2pixHD's VGG feature loss on G (0: off, the paper's; pix2pixHD 10)",
                float, "lambda_vgg"),
           Flag("--diffaugment", "DiffAugment policy for D's input pairs (one draw per pair), e.g. "
                "color,translation,cutout (default: none)", field="diffaugment"),
           Flag("--train-images", "train on only this many pairs, evenly spaced (data-size curves)", int),
           Flag("--lr", "Adam learning rate (2e-4)", float, "lr"),
           Flag("--load-size", "resize to this before the random crop (286)", int, "load_size"),
           Flag("--crop-size", "training crop size (256)", int, "crop_size")),
    configure=_pix2pix_configure,
    epochs=200,
    evaluate=_pix2pix_evaluate,
    demo_weights=("pix2pix-carphone-edges",),
    translator=pix2pix_import.translator,
    importer=pix2pix_import.IMPORTER,
    gpu_check=pix2pix.gpu_check_generator,
    describe=lambda model, config, dataset: (f"pix2pix {config.netG} ngf={config.ngf} ({config.objective}): "
                                             f"{len(dataset)} pairs; parameters {_counts(model)}"),
)


# --------------------------------------------------------------------------------------------
# Lesson 4: image animation (First Order Motion Model)
# --------------------------------------------------------------------------------------------
def _animation_dataset(config, data: str, options):
    from .data.animation_data import FramesDataset, demo_training_set

    repeats, weight, talk = options.get("repeats"), options.get("portrait_weight"), options.get("portrait_talk")
    clips, transplant = options.get("portrait_clips"), options.get("portrait_transplant")
    if data in ("demo", "carphone"):
        weight = 1 if weight is None else weight
        return demo_training_set(config.image_size, repeats=repeats or 8, portrait_weight=weight, talk=talk or 0.0,
                                 clips=1 if clips is None else clips, transplant=transplant or 0)
    for flag, value in (("--portrait-weight", weight), ("--portrait-talk", talk), ("--portrait-clips", clips),
                        ("--portrait-transplant", transplant)):
        if value is not None:
            raise UserError(f"{flag}: only for --data demo or carphone (their portrait pseudo-videos), not {data}")
    if not Path(data).exists():
        raise UserError(f"--data {data}: no such folder; use 'demo' or a folder of videos (root/train/<video>)")
    return FramesDataset(data, config.image_size, split="train", repeats=repeats or 1)


def _animation_evaluate(model, config, data: str):
    if data not in ("demo", "carphone"):
        return None
    scores = animation.evaluate_carphone(model.inference_model())
    print("held-out carphone frames 90-119:\n" + scores.table(), file=sys.stderr)
    return scores.as_dict()


ANIMATION = Lesson(
    4, "animation", "Image animation: First Order Motion", "Siarohin et al. 2019", "deepfake_lab/animation/",
    "04_image_animation.ipynb",
    preset=lambda name, data: (animation.PRESETS[name], animation.LOOP_PRESETS[name]),
    preset_names=tuple(animation.PRESETS),
    model=lambda config, device, precision, steps: animation.AnimationModel(config, device, precision,
                                                                            total_steps=steps),
    dataset=_animation_dataset,
    export=lambda model, config, path, extra: animation.save_animation_model(model.inference_model(), path,
                                                                             dtype=torch.float16, extra=extra),
    load=animation.load_animation_model,
    default_data="demo",
    data_help="'demo' (carphone frames 0-89 + portrait pseudo-videos; default) or a folder in the official layout: "
              "root/train/<video> (frame folders, .mp4/.gif files or image strips)",
    flags=(Flag("--image-size", "frame size (256 official, 64 demo, 128 demo-128)", int, "image_size"),
           Flag("--num-kp", "number of keypoints (10)", int, "num_kp"),
           Flag("--lr", "Adam learning rate (2e-4)", float, "lr"),
           Flag("--repeats", "items per video per epoch (official num_repeats)", int),
           Flag("--portrait-weight", "--data demo: pairs from each portrait pseudo-video for every 8 carphone pairs "
                "(default 1)", int),
           Flag("--portrait-talk", "--data demo: the portraits open their mouths in their pseudo-videos, the jaw "
                "dropping by up to this fraction of the frame (0 to 0.05; default 0: shut)", float),
           Flag("--portrait-clips", "--data demo: pseudo-videos of each portrait, each its own random motion and "
                "speech (default 1)", int),
           Flag("--portrait-transplant", "--data demo: relative-transfer pairs of each portrait moved as the carphone "
                "man moves, for every 8 carphone pairs (default 0: none)", int)),
    evaluate=_animation_evaluate,
    metrics_key="carphone_heldout",
    demo_weights=("animation-demo",),
    gpu_check=animation.gpu_check_generator,
    describe=lambda model, config, dataset: (f"animation at {config.image_size}x{config.image_size}: {len(dataset)} "
                                             f"pairs per epoch; parameters {_counts(model)}"),
)


# --------------------------------------------------------------------------------------------
# Lesson 5: face swap
# --------------------------------------------------------------------------------------------
def _faceswap_dataset(config, data: str, options):
    if data != "demo":
        raise UserError(f"--data {data}: faceswap trains on its offline demo pair only; leave --data out (or give "
                        "--data demo)")
    tr_A, tr_B, _, _ = faceswap.build_training_faces(config)
    return faceswap.FaceSwapDataset(tr_A, tr_B, config, length=max(len(tr_A), len(tr_B)))


def _faceswap_evaluate(model, config, data: str):
    from .evaluation import faceswap_held_out

    return faceswap_held_out(model.nets, config)


FACESWAP = Lesson(
    5, "faceswap", "Face swap: the 2017 autoencoder", "deepfakes/faceswap (2017)", "deepfake_lab/faceswap.py",
    "05_face_swap.ipynb",
    preset=lambda name, data: faceswap.PRESETS[name], preset_names=tuple(faceswap.PRESETS),
    model=lambda config, device, precision, steps: faceswap.FaceSwapModel(config, device, precision),
    dataset=_faceswap_dataset,
    export=lambda model, config, path, extra: faceswap.export_weights(model, path, extra),
    load=faceswap.load_faceswap,
    default_data="demo",
    data_help="'demo' (only choice: A, the man in the carphone clip; B, a pseudo-video of the Grace Hopper "
              "portrait; every 6th frame held out)",
    flags=(Flag("--lr", "Adam learning rate (2017: 5e-5; demo 5e-4)", float, "lr"),
           Flag("--ssim-weight", "add w * (1 - SSIM) to the L1 loss (default 0, as 2017)", float, "ssim_weight")),
    quick=lambda loop, config: replace(loop, steps=min(loop.steps, 20), sample_every=0, checkpoint_every=0),
    evaluate=_faceswap_evaluate,
    metrics_key="held_out",
    demo_weights=("faceswap-demo",),
    gpu_check=faceswap.gpu_check_generator,
    describe=lambda model, config, dataset: (f"faceswap: {len(dataset)} face pairs per epoch (A carphone, B Grace "
                                             f"Hopper pseudo-frames); parameters {_counts(model)}"),
)


#: every lesson, in course order: the one list the command line, ``translate``, the app and the tutorial read
LESSONS: tuple[Lesson, ...] = (GAN, CYCLEGAN, PIX2PIX, ANIMATION, FACESWAP)


def lesson(name: str) -> Lesson:
    """The lesson called ``name`` (``"cyclegan"``); a clear error for an unknown one."""
    for row in LESSONS:
        if row.name == name:
            return row
    raise UserError(f"{name!r}: not a lesson; lessons are {', '.join(row.name for row in LESSONS)}")


def lesson_for_kind(kind: str | None) -> Lesson | None:
    """The lesson whose weights files say ``kind`` in their metadata, or None."""
    return next((row for row in LESSONS if row.name == kind), None)
