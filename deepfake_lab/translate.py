"""``deepfake-lab translate`` and ``deepfake-lab import``: run an image-to-image model on your own pictures.

    deepfake-lab translate --model runs/cyclegan-demo face.jpg -o cartoon.png
    deepfake-lab translate --model cyclegan-face2cartoon --direction BtoA folder/ -o out/
    deepfake-lab translate --model latest_net_G_A.pth photo.jpg -o zebra.png     # official file, as is
    deepfake-lab import cyclegan latest_net_G_A.pth -o G.safetensors            # or convert it once

``--model`` is a weights file of this package (its ``kind`` metadata says which lesson made it), a
run folder (its latest checkpoint), the name of demo weights shipped in the package
(``cyclegan-face2cartoon``), or an official ``.pth`` checkpoint, opened with ``weights_only=True``
(no code in it can run) and converted in memory; ``deepfake-lab import`` writes that conversion to a
safetensors file once, so later runs skip it. Every image written is labelled synthetic
(:mod:`deepfake_lab.provenance`).

Which lessons translate, and which official checkpoints they import, is read off the lesson table
(:data:`deepfake_lab.lessons.LESSONS`: each row's ``translator`` and ``importer``).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from torch import nn

from .lessons import LESSONS
from .settings import WEIGHTS_DIR
from .translator import Importer, Translator, network_runner

#: the usage paragraph of ``deepfake-lab translate --help``
DOC = __doc__.split("\n\n")[1]

__all__ = ["Translator", "Importer", "network_runner", "translators", "importers", "resolve_model",
           "read_state_dict", "import_official", "load_translator", "translate_files", "expand_inputs"]


def translators() -> dict:
    """kind -> the function that builds a :class:`Translator` from a weights file of that kind."""
    return {row.name: row.translator for row in LESSONS if row.translator is not None}


def importers() -> dict[str, Importer]:
    """kind -> the :class:`Importer` of that lesson's official checkpoints."""
    return {row.name: row.importer for row in LESSONS if row.importer is not None}


# --------------------------------------------------------------------------------------------
# Finding and loading a model
# --------------------------------------------------------------------------------------------
def _demo_names() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors")) if WEIGHTS_DIR.is_dir() else []


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
    if (WEIGHTS_DIR / f"{name}.safetensors").exists():
        return WEIGHTS_DIR / f"{name}.safetensors"
    demos = _demo_names()
    raise CheckpointError(f"--model {spec}: no such file or folder; give a .safetensors or official .pth file, a run "
                          f"folder" + (f", or a demo model: {', '.join(demos)}" if demos else ""))


def read_state_dict(path: Path) -> dict:
    """An official checkpoint's state dict, opened with ``weights_only`` (``module.`` prefixes removed)."""
    from .checkpoints import CheckpointError, load_torch_untrusted

    obj = load_torch_untrusted(path)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a state dict; official checkpoints are plain `net.state_dict()` files")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _is_first_order_motion(state: dict) -> bool:
    """An official first-order-model file (``vox-cpk.pth.tar``: a dict of ``generator`` and ``kp_detector``
    state dicts, as :func:`deepfake_lab.animation.importer.load_official_checkpoint` reads it), or its
    networks' keys flattened into one dict (``kp_detector.*``)."""
    nested = isinstance(state.get("generator"), dict) and isinstance(state.get("kp_detector"), dict)
    return nested or any(str(k).startswith("kp_detector.") for k in state)


def import_official(path: Path, args: argparse.Namespace | None = None) -> tuple[str, dict, dict]:
    """Open an official ``.pth`` and convert it with the importer that recognises it: (kind, nets, meta)."""
    from .checkpoints import CheckpointError

    state = read_state_dict(path)
    known = importers()
    for importer in known.values():
        if importer.claims(state):
            if args is None:  # translate: the importer's defaults (settings inferred from the keys)
                p = argparse.ArgumentParser()
                importer.add_arguments(p)
                args = p.parse_args([])
            nets, config, extra = importer.convert(state, str(path), args)
            return importer.kind, nets, {"kind": importer.kind, "config": config, "official": True, **extra}
    for importer in known.values():  # a file a lesson knows but cannot translate with (a discriminator)
        reason = importer.explain(state, str(path)) if importer.explain is not None else None
        if reason:
            raise CheckpointError(reason)
    if _is_first_order_motion(state):
        raise CheckpointError(f"{path}: a First Order Motion checkpoint (generator and kp_detector networks): use "
                              f"`deepfake-lab animate --model {path}`; translate takes CycleGAN and pix2pix generators")
    raise CheckpointError(f"{path}: not an official checkpoint this package recognises (first keys: "
                          f"{', '.join(list(state)[:3])}); known kinds: {', '.join(sorted(known)) or 'none'}")


def load_translator(model: str | os.PathLike, direction: str = "auto", device: str | torch.device = "cpu",
                    precision: str = "auto") -> Translator:
    """Load ``--model`` (see :func:`resolve_model`) and dispatch on its ``kind`` to the lesson that made it."""
    from .checkpoints import CheckpointError, load_weights

    path = resolve_model(model)
    device = torch.device(device)
    if path.suffix in (".pth", ".pt", ".tar", ".ckpt"):
        kind, nets, meta = import_official(path)
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
def expand_inputs(inputs: list[str]) -> list[Path]:
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

    files = expand_inputs(inputs)
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
