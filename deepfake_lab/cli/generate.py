"""The commands that generate media from a trained model: ``sample``, ``translate``, ``import``, ``swap``.

    deepfake-lab sample --model demo:digits -o digits.png
    deepfake-lab translate --model cyclegan-face2cartoon face.jpg -o cartoon.png
    deepfake-lab import cyclegan latest_net_G_A.pth -o G.safetensors
    deepfake-lab swap --source frame.png -o swapped.png

Every picture they write carries the visible SYNTHETIC strip and provenance metadata
(:mod:`deepfake_lab.provenance`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from .. import faceswap, gan
from ..errors import UserError
from ..translate import DOC as TRANSLATE_DOC, importers, load_translator, read_state_dict, translate_files

__all__ = ["add_commands"]


def add_commands(sub) -> None:
    _add_sample(sub)
    _add_translate(sub)
    _add_swap(sub)


# --------------------------------------------------------------------------------------------
# sample: lesson 1
# --------------------------------------------------------------------------------------------
def _add_sample(top_sub) -> None:
    """``deepfake-lab sample --model PATH -n 64 -o out.png [--seed S]``."""
    p = top_sub.add_parser("sample", help="draw samples from a trained GAN generator into a labelled PNG")
    p.add_argument("--model", required=True,
                   help="weights file, training checkpoint or run folder of `train gan`; or demo:ring8 / demo:digits")
    p.add_argument("-n", type=int, default=None, help="number of samples (default 64 images or 2000 points)")
    p.add_argument("-o", "--out", default="samples.png", help="output PNG (labelled synthetic)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise z")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, mps")
    p.set_defaults(func=_sample_command)


def _sample_command(args: argparse.Namespace) -> int:
    from ..device import pick_device
    from ..provenance import save_labelled_png
    from ..viz import to_grid_image

    model = args.model
    if model.startswith("demo:"):
        model = gan.demo_weights_path(model.removeprefix("demo:"))
    G, config = gan.load_generator(model, pick_device(args.device))
    n = args.n if args.n is not None else (2000 if config.is_points else 64)
    if not 1 <= n <= 100_000:
        raise UserError(f"-n {n}: need between 1 and 100000 samples")
    if not str(args.out).lower().endswith(".png"):
        raise UserError(f"-o {args.out}: the output is a PNG; give a file name ending in .png")
    z = torch.randn(n, config.latent_dim, generator=torch.Generator().manual_seed(args.seed))
    out = gan.sample(G, z).cpu()
    if config.is_points:
        from ..data.toy import mixture

        image = gan.scatter_plot(out, mixture(config.data, n=max(n, 500), seed=1).points,
                             title=f"{n} generated points ({config.data})")
    else:
        image = to_grid_image(out, scale=2)
    details = {"model": str(model), "kind": "gan", "arch": config.arch, "data": config.data, "n": n, "seed": args.seed}
    save_labelled_png(image, args.out, details)
    print(f"wrote {args.out}")
    return 0


# --------------------------------------------------------------------------------------------
# translate and import: lessons 2 and 3
# --------------------------------------------------------------------------------------------
def _translate_command(args: argparse.Namespace) -> int:
    from ..device import pick_device

    if args.max_side < 0:
        raise ValueError(f"--max-side {args.max_side}: use 0 (no limit) or a positive number of pixels")
    device = pick_device(args.device)
    translator = load_translator(args.model, args.direction, device, args.precision)
    details = translator.details
    print(f"{translator.kind} model {details.get('model')} ({translator.direction}); precision "
          f"{details.get('precision')} ({details.get('precision_reason')})", file=sys.stderr)
    if details.get("official") and details.get("precision") != "fp32":
        _report_official_deviation(translator, load_translator(args.model, args.direction, device, "fp32"),
                                   args.inputs)
    translate_files(translator, args.inputs, args.out, args.max_side, log=lambda m: print(m, file=sys.stderr))
    return 0


def _report_official_deviation(fast, exact, inputs: list[str]) -> None:
    """An official checkpoint forced to bf16: say how far its output moves from the fp32 (official) one."""
    from ..data.images import load_image
    from ..translate import expand_inputs

    first = expand_inputs(inputs)[0]
    image = load_image(first)
    a = np.asarray(fast(image), dtype=np.int16)
    b = np.asarray(exact(image), dtype=np.int16)
    diff = np.abs(a - b)
    print(f"note: bf16 moves this official model's output on {first.name} by up to {int(diff.max())} levels of 255 "
          f"(mean {diff.mean():.2f}; {100 * (diff > 1).mean():.1f} % of values by more than 1) from the fp32 output, "
          "which reproduces the official code; leave out --precision bf16 for that", file=sys.stderr)


def _import_command(args: argparse.Namespace) -> int:
    from ..checkpoints import save_weights

    importer = importers()[args.kind]
    path, out = Path(args.file), Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"-o {out}: the output is a safetensors file; name it {out.with_suffix('.safetensors').name}")
    nets, config, extra = importer.convert(read_state_dict(path), str(path), args)
    save_weights(out, nets, importer.kind, config, extra={"imported_from": path.name, **extra})
    print(f"{path} -> {out} ({importer.kind}: {', '.join(sorted(nets))})")
    return 0


def _add_translate(sub) -> None:
    """``deepfake-lab translate`` and ``deepfake-lab import``."""
    p = sub.add_parser("translate", help="translate images with a CycleGAN/pix2pix model (outputs labelled synthetic)",
                       description=TRANSLATE_DOC,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("--model", required=True, help="weights file, run folder, official .pth, or demo name "
                                                  "(e.g. cyclegan-face2cartoon)")
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


# --------------------------------------------------------------------------------------------
# swap: lesson 5
# --------------------------------------------------------------------------------------------
def _add_swap(subparsers) -> None:
    """``deepfake-lab swap``."""
    p = subparsers.add_parser(
        "swap", help="swap the face in an image with a trained face-swap model (output labelled synthetic)",
        description="Detect the largest frontal face in --source, encode it and decode it with the other "
                    "identity's decoder, colour-match it and blend it back with a feathered mask. The output PNG "
                    "carries a visible SYNTHETIC label and provenance text chunks.")
    p.add_argument("--model", help="faceswap weights (.safetensors); default: the demo weights in the package")
    p.add_argument("--source", required=True, help="image with a frontal face (PNG/JPEG)")
    p.add_argument("-o", "--output", required=True, help="output PNG")
    p.add_argument("--to", choices=("A", "B"), default="B",
                   help="whose decoder paints the face (demo: A = carphone man, B = Grace Hopper; default B)")
    p.add_argument("--colour", choices=("lab", "rgb", "none"), default="lab", help="colour matching (default lab)")
    p.add_argument("--detector", choices=("auto", "haar", "lbp"), default="auto",
                   help="face detector cascade (auto: Haar, then LBP)")
    p.set_defaults(func=_swap_command)


def _swap_command(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..compositing import BlendConfig, swap_frame
    from ..data.images import load_image
    from ..provenance import save_labelled_png

    if not Path(args.source).exists():
        raise UserError(f"--source {args.source}: no such image file; check the path")
    frame = np.asarray(load_image(args.source))
    nets, config = faceswap.load_faceswap(args.model)
    res = swap_frame(frame, nets, config, args.to, BlendConfig(colour=args.colour), args.detector,
                     what=str(args.source))
    details = {**res.details, "model": str(args.model or faceswap.DEMO_WEIGHTS.name), "source": Path(args.source).name}
    out = save_labelled_png(Image.fromarray(res.result), args.output, details)
    print(f"wrote {out} (face at {res.alignment.box}, swapped to {args.to})", file=sys.stderr)
    return 0
