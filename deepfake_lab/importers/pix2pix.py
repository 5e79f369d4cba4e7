"""Official pix2pix checkpoints: ``latest_net_G.pth`` and the pretrained ``{name}.pth`` U-Net generators.

The U-Net of :mod:`deepfake_lab.pix2pix` keeps the official recursive layout (``model.model.0.weight``,
``model.model.1.model.1.weight`` ...), so the keys map one to one; the settings (levels, ngf, channels,
norm) are read off the keys. Files are opened with ``torch.load(weights_only=True)``.

* :func:`load_official_generator`: a file (or state dict) -> (U-Net, config);
* :data:`IMPORTER`: what ``deepfake-lab import pix2pix`` and ``translate`` use;
* :func:`translator`: a ``pix2pix`` weights file -> a :class:`~deepfake_lab.translator.Translator`.
"""
from __future__ import annotations

import argparse

import torch

from ..checkpoints import CheckpointError, load_torch_untrusted
from ..device import inference_probe, precision_for
from ..pix2pix import UNET_LEVELS, Pix2PixConfig, UnetGenerator, build_generator, generator_from_weights, translate
from ..train import config_to_dict
from ..translator import Importer, Translator, is_official

__all__ = ["official_generator_config", "load_official_generator", "translator", "IMPORTER"]


def official_generator_config(sd: dict[str, torch.Tensor]) -> Pix2PixConfig:
    """Read the U-Net's shape off an official state dict: levels, ngf, channels, norm."""
    if "model.model.0.weight" not in sd:
        hint = ""
        if "model.1.weight" in sd and any(".conv_block." in k for k in sd):
            hint = " It is a ResNet generator (CycleGAN): import it with `deepfake-lab import cyclegan`."
        elif "model.0.weight" in sd:
            hint = (" It is a PatchGAN discriminator (latest_net_D*.pth), not a generator; pix2pix translation "
                    "needs latest_net_G.pth.")
        raise CheckpointError(f"not an official pix2pix U-Net generator: no 'model.model.0.weight' "
                              f"(first keys: {', '.join(list(sd)[:3])}).{hint}")
    depth, prefix = 1, "model.model.1"
    while f"{prefix}.model.3.model.1.weight" in sd:
        prefix, depth = prefix + ".model.3", depth + 1
    num_downs = depth + 1  # the levels under the outermost, plus the outermost
    ngf, input_nc = sd["model.model.0.weight"].shape[:2]
    output_nc = sd["model.model.3.weight"].shape[1]
    # BatchNorm has an affine (1-D) weight at the norm positions; InstanceNorm has none, though files of
    # PyTorch < 0.4 kept InstanceNorm running statistics, so running_mean says nothing. Convolutions are 4-D.
    norm = "batch" if any(k.endswith(".weight") and v.ndim == 1 for k, v in sd.items()) else "instance"
    names = {v: k for k, v in UNET_LEVELS.items()}
    if num_downs not in names:
        raise CheckpointError(f"an official U-Net with {num_downs} levels; this lesson knows "
                              f"{', '.join(f'{k} ({v})' for k, v in UNET_LEVELS.items())}")
    size = 2 ** num_downs
    return Pix2PixConfig(input_nc=int(input_nc), output_nc=int(output_nc), netG=names[num_downs], ngf=int(ngf),
                         norm=norm, load_size=size, crop_size=size)


def load_official_generator(path_or_state, config: Pix2PixConfig | None = None,
                            name: str | None = None) -> tuple[UnetGenerator, Pix2PixConfig]:
    """Load an official pix2pix ``latest_net_G.pth`` (or its state dict) into a :class:`UnetGenerator`.

    The file is read with ``weights_only`` (no code runs). Its shape (levels, ngf, channels, norm)
    is read from the keys unless ``config`` is given; dropout cannot be seen in a state dict and is
    on, as in every official pix2pix model. As the official loader does, ``num_batches_tracked``
    entries are optional (files from PyTorch < 0.4 lack them), InstanceNorm running statistics (which
    those files kept) are dropped, and a ``module.`` prefix (DataParallel) is removed. ``name`` is
    what to call a state dict in messages (its file name). Returns (G, config); G is in eval mode: use
    :func:`translate` with ``mode="official"`` for the paper's test-time behaviour.
    """
    where = name or (str(path_or_state) if not isinstance(path_or_state, dict) else "state dict")
    sd = path_or_state if isinstance(path_or_state, dict) else load_torch_untrusted(path_or_state)
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise CheckpointError(f"{where}: not a plain state dict of tensors (the official latest_net_G.pth is one)")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    try:
        config = config or official_generator_config(sd)
    except CheckpointError as err:
        raise CheckpointError(f"{where}: {err}") from None
    G = build_generator(config)
    own = G.state_dict()
    stats = ("running_mean", "running_var", "num_batches_tracked")
    sd = {k: v for k, v in sd.items() if not (k.endswith(stats) and k not in own)}  # InstanceNorm: no statistics
    missing, unexpected = G.load_state_dict({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")},
                                            strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: does not match a {config.netG} U-Net with ngf={config.ngf}, norm={config.norm}: "
            f"{len(missing)} missing key(s) (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})")
    return G.eval(), config


def translator(nets: dict, meta: dict, direction: str, device: torch.device, precision_mode: str):
    """A :class:`deepfake_lab.translate.Translator` for a ``pix2pix`` weights file (or an imported official one).

    The U-Net was trained on ``crop_size`` squares, so each image is resized to that (bicubic), translated,
    and resized back to its own size, as the official ``test.py`` does with its ``--load_size``. Files
    imported from the official code run in the paper's test-time mode (batch statistics + dropout, seed 0);
    this package's own weights in eval mode.
    """
    if direction == "BtoA":
        raise CheckpointError("a pix2pix generator maps one way only (A -> B as trained); leave --direction at auto")
    G, config = generator_from_weights(nets, meta)
    G = G.to(device)
    mode = str(meta.get("test_mode", "eval"))
    example = torch.zeros(1, config.input_nc, config.crop_size, config.crop_size, device=device)
    precision = precision_for(device, config.bf16_ok, precision_mode, official=is_official(meta),
                              key=f"pix2pix inference {config.netG} ngf {config.ngf} {config.crop_size}",
                              probe=inference_probe(G, example))
    size = config.crop_size

    def run(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = torch.nn.functional.interpolate(x.to(device), size=(size, size), mode="bicubic", antialias=True)
        with torch.random.fork_rng(devices=[]), precision.autocast():
            torch.manual_seed(0)  # the dropout noise of the official mode: the same output every run
            y = translate(G, x.clamp(-1, 1), mode).to(device)
        return torch.nn.functional.interpolate(y.float(), size=(h, w), mode="bicubic", antialias=True).clamp(-1, 1)

    return Translator(run, "pix2pix", "AtoB", {"network": f"G ({config.netG}, {size}x{size})",
                                               "test_mode": mode, "precision": precision.name,
                                               "precision_reason": precision.reason, "official": is_official(meta)},
                      # official mode: one picture per batch, its BatchNorm statistics and dropout noise its own;
                      # eval mode: 8 stacked are 1.9-4x faster each on a CPU at any input size (G sees size x size)
                      max_batch=1 if mode == "official" else 8)


def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--test-mode", choices=("official", "eval"), default="official",
                   help="official (default): BatchNorm batch statistics and dropout at test time, as the paper "
                        "and the released models; eval: running statistics, no dropout")


def _import_convert(state: dict, name: str, args: argparse.Namespace) -> tuple[dict, dict, dict]:
    G, config = load_official_generator(state, name=name)
    return {"G": G}, config_to_dict(config), {"test_mode": getattr(args, "test_mode", None) or "official"}


def _claims(state: dict) -> bool:
    w = state.get("model.model.0.weight")
    return w is not None and w.ndim == 4 and tuple(w.shape[2:]) == (4, 4)


def _describe(state: dict, name: str) -> str:
    """Load the file (as ``translate`` would) and say what it is; ``CheckpointError`` if it is not one."""
    _, config = load_official_generator(state, name=name)
    return f"U-Net generator {config.netG}, ngf {config.ngf}, {config.norm} norm"


def _explain(state: dict, name: str) -> str | None:
    """A pix2pix PatchGAN discriminator (``latest_net_D.pth``: 6 channels in, input and output stacked)."""
    w = state.get("model.0.weight")
    if not torch.is_tensor(w) or w.ndim != 4 or tuple(w.shape[2:]) != (4, 4) or w.shape[1] != 6:
        return None
    return (f"{name}: a pix2pix PatchGAN discriminator (latest_net_D.pth: 6 channels in, the input and output "
            "stacked), not a generator; translation needs a generator: latest_net_G.pth")


IMPORTER = Importer("pix2pix", "an official pix2pix U-Net generator (latest_net_G.pth, edges2shoes.pth, "
                               "facades_label2photo.pth)", _claims, _import_arguments, _import_convert,
                    describe=_describe, explain=_explain)
