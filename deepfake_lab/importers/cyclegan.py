"""Official CycleGAN checkpoints: ``latest_net_G_A.pth`` / ``latest_net_G_B.pth`` / pretrained ``{name}.pth``.

The official code (junyanz/pytorch-CycleGAN-and-pix2pix) saves each network as a plain ``state_dict``.
The ResNet generator of :mod:`deepfake_lab.cyclegan` has the same ``nn.Sequential`` layout, so the keys
map one to one (``model.1.weight`` ... ``model.26.bias``); this module reads the settings off the keys,
checks them against the flags a user gave, and loads strictly. Files are opened with
``torch.load(weights_only=True)``: no code inside them runs.

* :func:`import_official_generator`: a file (or state dict) -> (generator, config);
* :data:`IMPORTER`: what ``deepfake-lab import cyclegan`` and ``translate`` use;
* :func:`translator`: a ``cyclegan`` weights file of this package -> a :class:`~deepfake_lab.translator.Translator`.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..cyclegan import CycleGANConfig, ResnetGenerator, generator_from_weights
from ..device import inference_probe, precision_for
from ..train import config_to_dict
from ..translator import Importer, Translator, is_official, network_runner

__all__ = ["infer_official_config", "official_key_problems", "import_official_generator", "translator", "IMPORTER"]


def _unwrap_state_dict(obj: Any, name: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{name}: not a state dict of tensors (a plain `net.state_dict()` as the official code "
                         "saves); re-save the generator's state_dict")
    if all(k.startswith("module.") for k in obj):  # saved from DataParallel
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def infer_official_config(state_dict: dict[str, torch.Tensor], name: str = "checkpoint") -> dict[str, Any]:
    """Read a ResNet generator's settings off its official keys: ngf, n_blocks, dropout, norm, channels.

    Raises ``ValueError`` naming the file when it is not a CycleGAN ResNet generator (a pix2pix U-Net,
    a discriminator), with the command that fits it.
    """
    keys = set(state_dict)
    if any(k.startswith("model.model.") for k in keys):
        raise ValueError(f"{name}: a pix2pix U-Net generator (keys model.model.*), not a CycleGAN ResNet generator; "
                         f"import it with `deepfake-lab import pix2pix {name}` (CycleGAN's --netG is resnet_9blocks)")
    first = state_dict.get("model.1.weight")
    if first is None or first.ndim != 4 or tuple(first.shape[2:]) != (7, 7):
        raise ValueError(_explain(state_dict, name) or
                         f"{name}: not an official CycleGAN ResNet generator (no 7x7 convolution model.1.weight; "
                         f"first keys: {', '.join(sorted(keys)[:4])})")
    blocks = sorted({int(k.split(".")[1]) for k in keys if ".conv_block." in k})
    # the second convolution of a block is conv_block.6 with dropout; without dropout, index 6 is its norm,
    # which has a (1-D) weight of its own under --norm batch: only a 4-D tensor there is a convolution
    dropout = any(k.endswith(".conv_block.6.weight") and v.ndim == 4 for k, v in state_dict.items())
    norm = "batch" if "model.2.weight" in keys else "instance"  # BatchNorm's affine weight; InstanceNorm has none
    last = max(int(k.split(".")[1]) for k in keys if k.endswith(".weight") and k.count(".") == 2)
    return {"ngf": int(first.shape[0]), "input_nc": int(first.shape[1]), "n_blocks": len(blocks),
            "use_dropout": dropout, "norm": norm, "output_nc": int(state_dict[f"model.{last}.weight"].shape[0])}


def official_key_problems(state_dict: dict[str, torch.Tensor], net: nn.Module) -> list[str]:
    """What stops ``state_dict`` from loading strictly into ``net``: missing, unexpected and mis-shaped keys."""
    own = net.state_dict()
    problems = [f"missing {k}" for k in own if k not in state_dict]
    problems += [f"unexpected {k}" for k in state_dict if k not in own]
    problems += [f"{k}: shape {tuple(v.shape)} in the file, {tuple(own[k].shape)} here"
                 for k, v in state_dict.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    return problems


def import_official_generator(source: str | Path | dict[str, torch.Tensor], *, ngf: int | None = None,
                              n_blocks: int | None = None, use_dropout: bool | None = None,
                              norm: str | None = None, name: str | None = None) -> tuple[ResnetGenerator, CycleGANConfig]:
    """Load an official CycleGAN generator (``latest_net_G_A.pth``, a pretrained ``horse2zebra.pth``...).

    ``source`` is a ``.pth`` path (opened with ``weights_only=True``: no code in it runs) or a state dict
    (``name`` then says what to call it in messages).
    The settings are read off the keys (:func:`infer_official_config`); any that you pass must agree, and
    a disagreement is an error that names the flag to change (the official options in brackets):
    ``--n-blocks`` (``--netG resnet_6blocks``), ``--ngf``, ``--dropout`` (models trained without
    ``--no_dropout`` have ``conv_block.6`` keys), ``--norm``.

    The key map: the official keys *are* this module's keys (same ``nn.Sequential`` indices), except
    that InstanceNorm ``running_mean``/``running_var`` (written by PyTorch < 0.4, which tracked them)
    and every ``num_batches_tracked`` are dropped, as the official ``__patch_instance_norm_state_dict``
    does. Then the load is strict. Returns ``(G, config)`` with G in eval mode.
    """
    from ..checkpoints import load_torch_untrusted

    name = name or (str(source) if not isinstance(source, dict) else "state dict")
    obj = load_torch_untrusted(source) if not isinstance(source, dict) else source
    sd = _unwrap_state_dict(obj, name)
    found = infer_official_config(sd, name)
    wanted = {"n_blocks": n_blocks, "ngf": ngf, "use_dropout": use_dropout, "norm": norm}
    for key, value in wanted.items():
        if value is None or value == found[key]:
            continue
        if key == "n_blocks":
            raise ValueError(f"{name}: has {found['n_blocks']} residual blocks, not {value}; use "
                             f"--n-blocks {found['n_blocks']} (official --netG resnet_{found['n_blocks']}blocks)")
        if key == "ngf":
            raise ValueError(f"{name}: its first layer has {found['ngf']} filters, not {value}; use --ngf {found['ngf']}")
        if key == "use_dropout":
            raise ValueError(
                f"{name}: " + ("has dropout in its residual blocks (keys conv_block.6.*): add --dropout "
                               "(it was trained without --no_dropout)" if found["use_dropout"] else
                               "has no dropout in its residual blocks (keys conv_block.5.*): remove --dropout"))
        raise ValueError(f"{name}: uses {found['norm']} normalisation, not {value}; use --norm {found['norm']}")
    config = CycleGANConfig(input_nc=found["input_nc"], output_nc=found["output_nc"], ngf=found["ngf"],
                            n_blocks=found["n_blocks"], norm=found["norm"], use_dropout=found["use_dropout"])
    G = ResnetGenerator(config.input_nc, config.output_nc, config.ngf, config.n_blocks, config.norm, config.use_dropout)
    own = G.state_dict()
    stats = ("running_mean", "running_var", "num_batches_tracked")
    sd = {k: v for k, v in sd.items() if not (k.endswith(stats) and k not in own)}  # InstanceNorm: no statistics
    problems = [p for p in official_key_problems(sd, G) if not p.endswith("num_batches_tracked")]
    if problems:
        raise ValueError(f"{name}: does not fit the ResNet generator ({'; '.join(problems[:4])}"
                         f"{'; ...' if len(problems) > 4 else ''})")
    G.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}, strict=False)
    return G.eval(), config


def _official_file_role(path: str | Path) -> str:
    """Which paper network an official file name holds: ``F`` for ``*G_B*`` (Y -> X), else ``G``."""
    return "F" if "G_B" in Path(path).name else "G"


def translator(nets: dict, meta: dict, direction: str, device: torch.device, precision_mode: str):
    """Build a :class:`deepfake_lab.translate.Translator` from a ``cyclegan`` weights file."""
    if direction == "auto":
        direction = "AtoB" if "G" in nets else "BtoA"
    net, config = generator_from_weights(nets, meta, direction)
    name = "G" if direction == "AtoB" else "F"
    net = net.to(device)
    example = torch.zeros(1, net.model[1].in_channels, 256, 256, device=device)
    precision = precision_for(device, config.bf16_ok, precision_mode, official=is_official(meta),
                              key=f"cyclegan {name} inference 256, {config.ngf}/{config.n_blocks}/{config.norm}",
                              probe=inference_probe(net, example))
    return Translator(network_runner(net, 4, precision), "cyclegan", direction,
                      {"network": f"{name} ({'X -> Y' if name == 'G' else 'Y -> X'})", "precision": precision.name,
                       "precision_reason": precision.reason, "official": is_official(meta)},
                      max_batch=4, batch_side=128)  # stacked on a CPU: 1.2-1.5x faster at 72-128 px, none from 192


def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-blocks", type=int, help="residual blocks the file must have (default: read off the keys)")
    p.add_argument("--ngf", type=int, help="filters of the first layer (default: read off the keys)")
    p.add_argument("--dropout", action="store_true", default=None,
                   help="the file has dropout in its blocks (trained without --no_dropout)")
    p.add_argument("--norm", choices=("instance", "batch"), help="normalisation (default: read off the keys)")
    p.add_argument("--as", dest="role", choices=("G", "F"),
                   help="store it as G (X -> Y) or F (Y -> X); default: F for *G_B* files, else G")


def _import_convert(state: dict, name: str, args: argparse.Namespace) -> tuple[dict, dict, dict]:
    G, config = import_official_generator(state, ngf=args.ngf, n_blocks=args.n_blocks, use_dropout=args.dropout,
                                          norm=args.norm, name=name)
    role = args.role or _official_file_role(name)
    return {role: G}, config_to_dict(config), {"role": role}


def _claims(state: dict) -> bool:
    w = state.get("model.1.weight")
    return w is not None and w.ndim == 4 and tuple(w.shape[2:]) == (7, 7)


def _describe(state: dict, name: str) -> str:
    """Import the file (strictly, as ``translate`` would) and say what it is; ``ValueError`` if it is not one."""
    _, config = import_official_generator(state, name=name)
    return (f"ResNet generator, {config.n_blocks} blocks, ngf {config.ngf}, {config.norm} norm"
            + (", dropout" if config.use_dropout else ""))


def _explain(state: dict, name: str) -> str | None:
    """A CycleGAN PatchGAN discriminator (``latest_net_D_A.pth``: 3 channels in, 4x4 convolutions): what to
    give instead. A 6-channel one is pix2pix's (:mod:`.pix2pix` explains it)."""
    w = state.get("model.0.weight")
    if not torch.is_tensor(w) or w.ndim != 4 or tuple(w.shape[2:]) != (4, 4) or w.shape[1] == 6:
        return None
    return (f"{name}: a PatchGAN discriminator (latest_net_D_A.pth / latest_net_D_B.pth), not a generator; "
            "translation needs a generator: latest_net_G_A.pth (X -> Y) or latest_net_G_B.pth (Y -> X)")


IMPORTER = Importer("cyclegan", "an official CycleGAN ResNet generator (latest_net_G_A.pth, horse2zebra.pth)",
                    _claims, _import_arguments, _import_convert, describe=_describe, explain=_explain)
