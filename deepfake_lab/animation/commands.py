"""``deepfake-lab train animation``, ``deepfake-lab animate`` and ``deepfake-lab animate-eval``.

    deepfake-lab train animation --preset demo --out runs/animation          # ~25 CPU minutes
    deepfake-lab animate --source face.jpg --driving talk.mp4 -o out.mp4       # demo weights, face crops
    deepfake-lab animate --example -o out.gif --side-by-side                   # the embedded example
    deepfake-lab animate-eval --model runs/animation                           # held-out carphone scores
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..train import LoopConfig
from .model import PRESETS

__all__ = ["add_train_command", "add_commands", "LOOP_PRESETS", "MAX_SIDE", "MAX_FRAMES"]

#: loop settings of each preset (the paper: batch 40, 100 epochs of 75 repeats of VoxCeleb)
LOOP_PRESETS = {
    "default": LoopConfig(steps=100_000, batch_size=40, out_dir="runs/animation", sample_every=1000,
                          checkpoint_every=2000, log_every=50),
    "demo": LoopConfig(steps=1300, batch_size=8, out_dir="runs/animation", sample_every=200, checkpoint_every=200,
                       log_every=10),
}
#: largest frame side accepted by ``animate`` (the model works on small crops; bigger inputs only cost memory)
MAX_SIDE = 4096
#: most driving frames accepted by default (``--max-frames`` changes it)
MAX_FRAMES = 3000


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def add_train_command(train_subparsers) -> None:
    """``deepfake-lab train animation``: the First Order Motion Model on the shared loop."""
    from ..cli import add_loop_arguments

    p = train_subparsers.add_parser(
        "animation", help="image animation (First Order Motion Model, Siarohin et al. 2019) on talking-head videos",
        description="Train the First Order Motion Model self-supervised on videos (pairs of frames of one video). "
                    "--preset default is the official vox-256 setup (256x256, batch 40); --preset demo trains small "
                    "networks at 64x64 on the offline carphone clip plus two portrait pseudo-videos on a CPU.")
    p.add_argument("--data", help="'demo' (carphone frames 0-89 + portrait pseudo-videos; default) or a folder in "
                                  "the official layout: root/train/<video> (frame folders, .mp4/.gif files or "
                                  "image strips)")
    p.add_argument("--image-size", type=int, help="frame size (256 official, 64 demo)")
    p.add_argument("--num-kp", type=int, help="number of keypoints (10)")
    p.add_argument("--lr", type=float, help="Adam learning rate (2e-4)")
    p.add_argument("--repeats", type=int, default=None, help="items per video per epoch (official num_repeats)")
    p.add_argument("--export", help="also write the inference networks as fp16 safetensors here (demo weights)")
    add_loop_arguments(p, LOOP_PRESETS)
    p.set_defaults(func=_train_command)


def build_dataset(data: str, size: int, repeats: int | None):
    """The training set named by ``--data``."""
    from ..cli import UserError
    from ..data.animation_data import FramesDataset, demo_training_set

    if data in ("demo", "carphone"):
        return demo_training_set(size, repeats=repeats or 8)
    if not Path(data).exists():
        raise UserError(f"--data {data}: no such folder; use 'demo' or a folder of videos (root/train/<video>)")
    return FramesDataset(data, size, split="train", repeats=repeats or 1)


def _train_command(args: argparse.Namespace) -> int:
    import torch

    from ..cli import loop_config_from_args
    from ..device import pick_device, precision_for
    from ..train import fit
    from .evaluate import evaluate_carphone
    from .importer import save_animation_model
    from .model import AnimationModel

    config = PRESETS[args.preset]
    changes = {k: v for k, v in (("image_size", args.image_size), ("num_kp", args.num_kp), ("lr", args.lr))
               if v is not None}
    config = replace(config, **changes)
    data = args.data or "demo"
    dataset = build_dataset(data, config.image_size, args.repeats)
    loop = loop_config_from_args(args, LOOP_PRESETS[args.preset])
    device = pick_device(args.device)
    precision = precision_for(device, config.cpu_bf16, args.precision)
    model = AnimationModel(config, device, precision, total_steps=loop.steps)
    counts = model.parameter_counts()
    print(f"animation {args.preset} at {config.image_size}x{config.image_size} on {data}: {len(dataset)} pairs per "
          f"epoch, {loop.steps} steps of batch {loop.batch_size}; kp_detector {counts['kp_detector']:,} + generator "
          f"{counts['generator']:,} parameters; {device.type}, {precision.name}", file=sys.stderr)
    result = fit(model, dataset, loop)
    print(f"done: step {result.step} in {result.seconds:.0f} s; weights {result.weights}", file=sys.stderr)
    scores = None
    if data in ("demo", "carphone"):
        scores = evaluate_carphone(model.inference_model())
        print("held-out carphone frames 90-119:\n" + scores.table(), file=sys.stderr)
    if args.export:
        extra = {"steps": str(result.step), "data": data, "seconds": f"{result.seconds:.0f}",
                 "batch_size": str(loop.batch_size)}
        if scores is not None:
            extra["carphone_heldout"] = scores.as_dict()
        path = save_animation_model(model.inference_model(), args.export, dtype=torch.float16, extra=extra)
        print(f"exported kp_detector + generator (fp16) to {path}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------------
# Animation
# --------------------------------------------------------------------------------------------
def add_commands(subparsers) -> None:
    """``deepfake-lab animate`` and ``deepfake-lab animate-eval``."""
    from ..cli import add_device_arguments

    p = subparsers.add_parser(
        "animate", help="animate a face photo with the motion of a driving video (First Order Motion Model)",
        description="Animate --source (a photo) with the motion of --driving (a video). Faces are cropped from "
                    "both by default. Every frame is labelled SYNTHETIC and the file carries a metadata comment.")
    p.add_argument("--source", help="source image (a frontal face photo)")
    p.add_argument("--driving", help="driving video (.mp4, .gif, .mov ...) or a folder of frames")
    p.add_argument("--example", action="store_true", help="use the embedded example: Grace Hopper driven by carphone")
    p.add_argument("-o", "--output", required=True, help="output video: .mp4 or .gif")
    p.add_argument("--model", help="weights: .safetensors from `train animation`, a run folder, or an official "
                                   "first-order-model .pth.tar (default: the demo weights)")
    p.add_argument("--absolute", action="store_true", help="absolute keypoint transfer (default: relative)")
    p.add_argument("--no-adapt-scale", action="store_true", help="do not scale the motion by the face sizes")
    p.add_argument("--find-best-frame", action="store_true",
                   help="use the driving frame whose pose is closest to the source as the reference")
    p.add_argument("--no-crop", action="store_true", help="use the whole images, no face detection")
    p.add_argument("--side-by-side", action="store_true", help="write source | driving | result")
    p.add_argument("--size", type=int, default=256, help="output frame size in pixels (default 256)")
    p.add_argument("--max-frames", type=int, default=MAX_FRAMES, help=f"driving frames to use (default {MAX_FRAMES})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_arguments(p)
    p.set_defaults(func=_animate_command)

    e = subparsers.add_parser(
        "animate-eval", help="self-reconstruction L1 and keypoint distance on held-out carphone frames",
        description="The paper's metric on the held-out carphone frames 90-119: the first frame is the source, "
                    "every frame a driver; compared with the no-motion baseline (the source repeated).")
    e.add_argument("--model", help="weights (default: the demo weights)")
    e.add_argument("--video", help="evaluate on this video instead (already cropped to the face, or use --crop)")
    e.add_argument("--crop", action="store_true", help="crop --video to the face first")
    add_device_arguments(e)
    e.set_defaults(func=_eval_command)


def _check_size(what: str, width: int, height: int) -> None:
    from ..cli import UserError

    if max(width, height) > MAX_SIDE:
        raise UserError(f"{what}: {width}x{height} pixels is larger than the {MAX_SIDE}x{MAX_SIDE} this command "
                        f"accepts; scale it down first (e.g. `ffmpeg -i in.mp4 -vf scale=1280:-2 out.mp4`)")
    if min(width, height) < 16:
        raise UserError(f"{what}: {width}x{height} pixels is too small; need at least 16x16")


def load_source_image(path: str) -> np.ndarray:
    """Read the source photo as (H, W, 3) uint8, with clear errors (missing, not an image, corrupt, huge)."""
    from PIL import Image, UnidentifiedImageError

    from ..data.images import load_image

    p = Path(path)
    if p.is_file():
        try:
            with Image.open(p) as im:  # the header only: refuse huge images before decoding them
                _check_size(f"--source {path}", *im.size)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
            pass  # load_image says what is wrong with it
    return np.asarray(load_image(p))


def load_driving_video(path: str, max_frames: int) -> tuple[np.ndarray, float]:
    """Read the driving video (file or folder of frames) as ((T, H, W, 3) uint8, fps), with clear errors."""
    from ..cli import UserError
    from ..data.animation_data import read_frames
    from ..data.video import read_video, video_info

    p = Path(path)
    if p.is_dir():
        frames = read_frames(p, max_frames)
        _check_size(f"--driving {path}", frames.shape[2], frames.shape[1])
        return frames, 25.0
    info = video_info(p)  # missing / empty / damaged file: a DataError naming it
    if info["width"] and info["height"]:
        _check_size(f"--driving {path}", info["width"], info["height"])
    if max_frames < 1:
        raise UserError(f"--max-frames {max_frames}: need at least 1")
    clip = read_video(p, max_frames=max_frames)
    return clip.frames, clip.fps


def _animate_command(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..cli import UserError
    from ..data.animation_data import example_driving_path, example_source_path
    from .importer import load_animation_model
    from .media import write_labelled_video
    from .transfer import animate, resize_square, side_by_side

    out = Path(args.output)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise UserError(f"-o {args.output}: use a .mp4 or .gif file name")
    if args.example:
        args.source = args.source or str(example_source_path())
        args.driving = args.driving or str(example_driving_path())
    if not args.source or not args.driving:
        raise UserError("give --source IMAGE and --driving VIDEO (or --example)")
    if args.size < 16 or args.size > 1024:
        raise UserError(f"--size {args.size}: use 16 to 1024 pixels")
    source = load_source_image(args.source)
    driving, fps = load_driving_video(args.driving, args.max_frames)
    model = load_animation_model(args.model, args.device, args.precision)
    bar = tqdm(total=len(driving), desc="animate", unit="frame", disable=args.no_progress)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    frames, details = animate(model, source, driving, relative=not args.absolute, adapt_scale=not args.no_adapt_scale,
                              find_best_frame=args.find_best_frame, progress=progress, crop=not args.no_crop,
                              return_details=True)
    bar.close()
    frames = [resize_square(f, args.size) for f in frames]
    if args.side_by_side:
        src = resize_square(details["source"], args.size)
        frames = [side_by_side(src, resize_square(d, args.size), f) for d, f in zip(details["driving"], frames)]
    about = {"model": model.source, "source": Path(args.source).name, "driving": Path(args.driving).name,
             "mode": "absolute" if args.absolute else "relative", "adapt_scale": not args.no_adapt_scale,
             "reference_frame": details["reference"]}
    write_labelled_video(out, frames, fps, about)
    print(f"wrote {len(frames)} frames at {fps:.2f} fps to {out} (labelled synthetic; model: {model.source}"
          + (f"; reference driving frame {details['reference']}" if args.find_best_frame else "") + ")",
          file=sys.stderr)
    return 0


def _eval_command(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_carphone, reconstruction_scores
    from .importer import load_animation_model
    from .transfer import crop_driving

    model = load_animation_model(args.model, args.device, args.precision)
    if args.video:
        frames, _ = load_driving_video(args.video, MAX_FRAMES)
        if args.crop:
            frames = crop_driving(frames)
        scores = reconstruction_scores(model, frames)
        where = args.video
    else:
        scores = evaluate_carphone(model)
        where = "held-out carphone frames 90-119"
    print(f"{model.source} on {where}:\n{scores.table()}")
    return 0
