"""``deepfake-lab translate`` and ``deepfake-lab import``: run an image-to-image model on your own pictures.

    deepfake-lab translate --model runs/cyclegan-demo photo.jpg -o winter.png
    deepfake-lab translate --model cyclegan-photo2winter --direction BtoA folder/ -o out/
    deepfake-lab translate --model latest_net_G_A.pth photo.jpg -o zebra.png     # official file, as is
    deepfake-lab import cyclegan latest_net_G_A.pth -o G.safetensors            # or convert it once

``--model`` is a weights file of this package (its ``kind`` metadata says which lesson made it), a
run folder (its latest checkpoint), the name of demo weights shipped in the package
(``cyclegan-photo2winter``), or an official ``.pth`` checkpoint, opened with ``weights_only=True``
(no code in it can run) and converted in memory; ``deepfake-lab import`` writes that conversion to a
safetensors file once, so later runs skip it. Every image written is labelled synthetic
(:mod:`deepfake_lab.provenance`).

Lessons plug in through two small registries, filled when their module is imported:

* :func:`register_translator` (``kind`` -> a function that builds a :class:`Translator` from the
  weights and metadata of a file of that kind);
* :func:`register_importer` (an :class:`Importer`: which official state dicts it recognises, its
  flags, and how it converts one).

The modules in :data:`PROVIDERS` are imported on demand, so ``translate`` knows every lesson
without the lessons knowing each other.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["Translator", "Importer", "register_translator", "register_importer", "translators", "importers",
           "network_runner", "resolve_model", "load_translator", "translate_files", "add_commands", "PROVIDERS"]

#: modules that register translators/importers when imported (a missing one is skipped)
PROVIDERS = ("deepfake_lab.cyclegan", "deepfake_lab.pix2pix")
#: where the demo weights shipped with the package live
ASSETS = Path(__file__).resolve().parent / "assets" / "weights"


@dataclass
class Translator:
    """A loaded image-to-image model: ``run`` maps (1, 3, H, W) in [-1, 1] to the same shape.

    ``details`` (model file, kind, direction...) go into the provenance chunks of every output.
    """

    run: Callable[[torch.Tensor], torch.Tensor]
    kind: str
    direction: str
    details: dict[str, Any] = field(default_factory=dict)

    def __call__(self, image):
        """A PIL RGB image -> the translated PIL RGB image of the same size."""
        from .data.images import pil_to_tensor
        from .viz import to_pil

        x = pil_to_tensor(image)[None]         # (1, 3, H, W)
        with torch.no_grad():
            y = self.run(x)
        return to_pil(y[0].float().cpu())


def network_runner(net: nn.Module, multiple: int = 4, precision=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap a fully convolutional ``net`` so it runs on any size: reflection-pad to ``multiple``, run, crop back."""
    from .data.images import pad_to_multiple, unpad

    device = next(net.parameters()).device

    def run(x: torch.Tensor) -> torch.Tensor:
        padded, size = pad_to_multiple(x.to(device), multiple)
        with torch.no_grad(), (precision.autocast() if precision is not None else contextlib.nullcontext()):
            y = net(padded)
        return unpad(y.float(), size)

    return run


#: kind -> loader(nets, meta, direction, device, precision_mode) -> Translator
_TRANSLATORS: dict[str, Callable[..., Translator]] = {}


@dataclass
class Importer:
    """How one lesson imports official checkpoints.

    * ``claims(state_dict)``: True when the state dict is this lesson's kind of network;
    * ``add_arguments(parser)``: the flags of ``deepfake-lab import <kind>`` (e.g. ``--n-blocks``);
    * ``convert(state_dict, name, args)`` -> ``(networks, config, extra)``: networks as
      ``{name: state_dict or module}`` and the config dict, ready for :func:`checkpoints.save_weights`.
    """

    kind: str
    help: str
    claims: Callable[[dict], bool]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    convert: Callable[[dict, str, argparse.Namespace], tuple[dict, dict, dict]]


_IMPORTERS: dict[str, Importer] = {}


def register_translator(kind: str, loader: Callable[..., Translator]) -> None:
    """Make files whose metadata says ``kind`` usable by ``translate``: ``loader(nets, meta, direction, device,
    precision_mode)`` returns a :class:`Translator`."""
    _TRANSLATORS[kind] = loader


def register_importer(importer: Importer) -> None:
    """Add ``deepfake-lab import <importer.kind>`` and let ``translate`` open that kind of ``.pth`` directly."""
    _IMPORTERS[importer.kind] = importer


def _load_providers() -> None:
    for name in PROVIDERS:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and (err.name == name or name.startswith(err.name + ".")):
                continue  # that lesson is not part of this install
            raise


def translators() -> dict[str, Callable[..., Translator]]:
    _load_providers()
    return dict(_TRANSLATORS)


def importers() -> dict[str, Importer]:
    _load_providers()
    return dict(_IMPORTERS)


# --------------------------------------------------------------------------------------------
# Finding and loading a model
# --------------------------------------------------------------------------------------------
def _demo_names() -> list[str]:
    return sorted(p.stem for p in ASSETS.glob("*.safetensors")) if ASSETS.is_dir() else []


def resolve_model(spec: str | os.PathLike) -> Path:
    """``--model``: a file, a run folder (-> its latest checkpoint) or the name of shipped demo weights."""
    from .checkpoints import CheckpointError
    from .train import latest_checkpoint

    path = Path(spec).expanduser()
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"{path}: a folder without a checkpoint (no latest.json); give a weights file "
                                  "or a run folder of `deepfake-lab train`")
        return found[0]
    if path.exists():
        return path
    name = str(spec).removeprefix("demo:")
    if (ASSETS / f"{name}.safetensors").exists():
        return ASSETS / f"{name}.safetensors"
    demos = _demo_names()
    raise CheckpointError(f"--model {spec}: no such file or folder; give a .safetensors or official .pth file, a run "
                          f"folder" + (f", or a demo model: {', '.join(demos)}" if demos else ""))


def _read_state_dict(path: Path) -> dict:
    """An official checkpoint's state dict, opened with ``weights_only`` (``module.`` prefixes removed)."""
    from .checkpoints import CheckpointError, load_torch_untrusted

    obj = load_torch_untrusted(path)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a state dict; official checkpoints are plain `net.state_dict()` files")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _import_official(path: Path, args: argparse.Namespace | None = None) -> tuple[str, dict, dict]:
    """Open an official ``.pth`` and convert it with the importer that recognises it: (kind, nets, meta)."""
    from .checkpoints import CheckpointError

    state = _read_state_dict(path)
    known = importers()
    for importer in known.values():
        if importer.claims(state):
            if args is None:  # translate: the importer's defaults (settings inferred from the keys)
                p = argparse.ArgumentParser()
                importer.add_arguments(p)
                args = p.parse_args([])
            nets, config, extra = importer.convert(state, str(path), args)
            return importer.kind, nets, {"kind": importer.kind, "config": config, **extra}
    raise CheckpointError(f"{path}: not an official checkpoint this package recognises (first keys: "
                          f"{', '.join(list(state)[:3])}); known kinds: {', '.join(sorted(known)) or 'none'}")


def load_translator(model: str | os.PathLike, direction: str = "auto", device: str | torch.device = "cpu",
                    precision: str = "auto") -> Translator:
    """Load ``--model`` (see :func:`resolve_model`) and dispatch on its ``kind`` to the lesson that made it."""
    from .checkpoints import CheckpointError, load_weights

    path = resolve_model(model)
    device = torch.device(device)
    if path.suffix in (".pth", ".pt", ".tar", ".ckpt"):
        kind, nets, meta = _import_official(path)
        nets = {k: (v.state_dict() if isinstance(v, nn.Module) else v) for k, v in nets.items()}
    else:
        nets, meta = load_weights(path)
        kind = meta.get("kind")
    loader = translators().get(kind)
    if loader is None:
        raise CheckpointError(f"{path}: a {kind!r} model; translate works with "
                              f"{', '.join(sorted(translators())) or 'no lesson'} models")
    translator = loader(nets, meta, direction, device, precision)
    translator.details = {"model": path.name, "kind": kind, "direction": translator.direction, **translator.details}
    return translator


# --------------------------------------------------------------------------------------------
# Files in, labelled files out
# --------------------------------------------------------------------------------------------
def _expand_inputs(inputs: list[str]) -> list[Path]:
    from .data import DataError
    from .data.images import list_images

    files: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = list_images(path, recursive=False)
            if not found:
                raise DataError(f"{path}: a folder with no images in it")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    return files


def _output_paths(files: list[Path], out: Path) -> list[Path]:
    from .data import DataError

    if len(files) == 1 and out.suffix:
        if out.suffix.lower() != ".png":
            raise DataError(f"-o {out}: outputs are PNG (they carry provenance text chunks); name it "
                            f"{out.with_suffix('.png').name}")
        return [out]
    if out.suffix and not out.is_dir():
        raise DataError(f"-o {out}: {len(files)} inputs need an output folder, not a file name")
    used: set[str] = set()
    paths = []
    for f in files:
        stem, n = f.stem, 1
        while stem in used:
            n += 1
            stem = f"{f.stem}-{n}"
        used.add(stem)
        paths.append(out / f"{stem}.png")
    return paths


def translate_files(translator: Translator, inputs: list[str], out: str | os.PathLike, max_side: int = 1024,
                    log=print) -> list[Path]:
    """Translate image files (or every image of folders) into labelled PNGs; returns the files written."""
    from PIL import Image

    from .data.images import load_image
    from .provenance import save_labelled_png

    files = _expand_inputs(inputs)
    targets = _output_paths(files, Path(out))
    written = []
    for src, dst in zip(files, targets):
        image = load_image(src)
        if max_side and max(image.size) > max_side:
            scale = max_side / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            log(f"{src}: {image.width}x{image.height} scaled to {size[0]}x{size[1]} (--max-side {max_side}; "
                "0 keeps the full size)")
            image = image.resize(size, Image.LANCZOS)
        result = translator(image)
        save_labelled_png(result, dst, {**translator.details, "source": src.name, "what": "image translation"})
        log(f"{src} -> {dst}")
        written.append(dst)
    return written


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def _translate_command(args: argparse.Namespace) -> int:
    from .device import pick_device

    if args.max_side < 0:
        raise ValueError(f"--max-side {args.max_side}: use 0 (no limit) or a positive number of pixels")
    translator = load_translator(args.model, args.direction, pick_device(args.device), args.precision)
    print(f"{translator.kind} model {translator.details.get('model')} ({translator.direction})", file=sys.stderr)
    translate_files(translator, args.inputs, args.out, args.max_side, log=lambda m: print(m, file=sys.stderr))
    return 0


def _import_command(args: argparse.Namespace) -> int:
    from .checkpoints import save_weights

    importer = importers()[args.kind]
    path, out = Path(args.file), Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"-o {out}: the output is a safetensors file; name it {out.with_suffix('.safetensors').name}")
    nets, config, extra = importer.convert(_read_state_dict(path), str(path), args)
    save_weights(out, nets, importer.kind, config, extra={"imported_from": path.name, **extra})
    print(f"{path} -> {out} ({importer.kind}: {', '.join(sorted(nets))})")
    return 0


def add_commands(sub) -> None:
    """Add ``translate`` and ``import`` to the top-level sub-commands (once, whoever calls it first)."""
    if "translate" in getattr(sub, "choices", {}):
        return
    p = sub.add_parser("translate", help="translate images with a CycleGAN/pix2pix model (outputs labelled synthetic)",
                       description=__doc__.split("\n\n")[1] if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("--model", required=True, help="weights file, run folder, official .pth, or demo name "
                                                  "(e.g. cyclegan-photo2winter)")
    p.add_argument("-o", "--out", required=True, help="output .png (one input) or folder")
    p.add_argument("--direction", default="auto", choices=("auto", "AtoB", "BtoA"),
                   help="CycleGAN: AtoB uses G (X -> Y), BtoA uses F (Y -> X); auto: the file's first generator")
    p.add_argument("--max-side", type=int, default=1024, help="downscale larger inputs to this long side (0: never)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.set_defaults(func=_translate_command)

    known = importers()
    imp = sub.add_parser("import", help="convert an official .pth checkpoint to a safetensors weights file")
    imp_sub = imp.add_subparsers(dest="kind", metavar="KIND")
    for kind, importer in sorted(known.items()):
        q = imp_sub.add_parser(kind, help=importer.help)
        q.add_argument("file", help="official checkpoint (.pth), opened without running any code in it")
        q.add_argument("-o", "--out", required=True, help="output .safetensors file")
        importer.add_arguments(q)
        q.set_defaults(func=_import_command)
