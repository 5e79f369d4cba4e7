"""``deepfake-lab animate`` and ``deepfake-lab animate-eval``: lesson 4's First Order Motion Model at work.

    deepfake-lab animate --source face.jpg --driving talk.mp4 -o out.mp4       # demo weights, face crops
    deepfake-lab animate --example -o out.gif --side-by-side                   # the embedded example
    deepfake-lab animate-eval --model runs/animation                           # held-out carphone scores
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..data.images import MIN_SIDE
from ..errors import UserError

__all__ = ["add_commands", "MAX_FRAMES"]

#: with fewer driving frames than this, the face box is searched on this many frames of the clip
FACE_SEARCH_FRAMES = 30
#: most driving frames accepted by default (``--max-frames`` changes it)
MAX_FRAMES = 3000


# --------------------------------------------------------------------------------------------
# Animation
# --------------------------------------------------------------------------------------------
def add_commands(subparsers) -> None:
    """``deepfake-lab animate`` and ``deepfake-lab animate-eval``."""
    from .common import add_device_arguments

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
    # default None: resolved to animation.transfer.ADAPT_SCALE_DEFAULT when the command runs (no torch at start-up)
    p.add_argument("--adapt-scale", action=argparse.BooleanOptionalAction, default=None,
                   help="scale the motion by the ratio of the two faces' keypoint spreads (the paper's demo; off by "
                        "default: with the demo model the spreads differ by identity more than by face size, and the "
                        "portraits follow the driver better without it, see its model card)")
    # default None: resolved to animation.transfer.BEST_FRAME_DEFAULT when the command runs
    p.add_argument("--find-best-frame", action=argparse.BooleanOptionalAction, default=None,
                   help="take the relative motion from the driving frame whose pose is closest to the source's, not "
                        "from the first (on by default: a clip that starts with the mouth open otherwise makes that "
                        "open mouth the rest pose, and the portrait's mouth moves against the driver's; see the demo "
                        "model's card)")
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
                    "every frame a driver; compared with the no-motion baseline (the source repeated). Then, "
                    "without --video, each offline portrait driven by the same frames: the share of the driver's "
                    "motion it reproduces (a still portrait scores 0) and its distance to the source and driver.")
    e.add_argument("--model", help="weights (default: the demo weights)")
    e.add_argument("--video", help="evaluate on this video instead (already cropped to the face, or use --crop)")
    e.add_argument("--crop", action="store_true", help="crop --video to the face first")
    add_device_arguments(e)
    e.set_defaults(func=_eval_command)


def load_source_image(path: str) -> np.ndarray:
    """Read the source photo as (H, W, 3) uint8 with the checked loader (:func:`~deepfake_lab.data.images.load_image`).

    Missing, empty, not an image, corrupt, under ``MIN_SIDE`` a side or over ``MAX_PIXELS``: a
    :class:`UserError` that names ``--source`` and the file; other modes are converted with a note.
    """
    from ..data import DataError
    from ..data.images import load_image

    try:
        return np.asarray(load_image(path))
    except DataError as err:
        raise UserError(f"--source {err}") from None


def load_driving_video(path: str, max_frames: int) -> tuple[np.ndarray, float]:
    """Read the driving video (file or folder of frames) as ((T, H, W, 3) uint8, fps), with clear errors.

    Frames must fit the images' size policy (:func:`~deepfake_lab.data.video.check_frame_size`), checked
    from the header before any frame is decoded.
    """
    from ..data import DataError
    from ..data.animation_data import read_frames
    from ..data.video import check_frame_size, read_video, video_info

    if max_frames < 1:
        raise UserError(f"--max-frames {max_frames}: need at least 1")
    p = Path(path)
    try:
        if p.is_dir():
            frames = read_frames(p, max_frames)
            check_frame_size(frames.shape[2], frames.shape[1], str(path))
            return frames, 25.0
        info = video_info(p)  # missing / empty / damaged / not a video: a DataError naming it
        check_frame_size(info["width"], info["height"], str(path))
        clip = read_video(p, max_frames=max_frames)
    except DataError as err:
        raise UserError(f"--driving {err}") from None
    return clip.frames, clip.fps


def _animate_command(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..data.animation_data import example_driving_path, example_source_path
    from ..animation.importer import load_animation_model
    from ..animation.media import write_labelled_video
    from ..animation.transfer import ADAPT_SCALE_DEFAULT, BEST_FRAME_DEFAULT, animate, resize_square, side_by_side

    out = Path(args.output)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise UserError(f"-o {args.output}: use a .mp4 or .gif file name")
    if args.example:
        args.source = args.source or str(example_source_path())
        args.driving = args.driving or str(example_driving_path())
    if not args.source or not args.driving:
        raise UserError("give --source IMAGE and --driving VIDEO (or --example)")
    if args.size < MIN_SIDE or args.size > 1024:
        raise UserError(f"--size {args.size}: use {MIN_SIDE} to 1024 pixels")
    source = load_source_image(args.source)
    # a short excerpt: the face box is found on more of the clip, read in the same pass
    wanted = args.max_frames if args.no_crop or args.max_frames < 1 else max(args.max_frames, FACE_SEARCH_FRAMES)
    read, fps = load_driving_video(args.driving, wanted)
    driving = read[:args.max_frames]
    search = read if len(read) > len(driving) else None
    model = load_animation_model(args.model, args.device, args.precision)
    print(f"animation model {model.source}; precision {model.precision.describe()}", file=sys.stderr)
    bar = tqdm(total=len(driving), desc="animate", unit="frame", disable=args.no_progress)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    adapt_scale = ADAPT_SCALE_DEFAULT if args.adapt_scale is None else args.adapt_scale
    best_frame = (BEST_FRAME_DEFAULT if args.find_best_frame is None else args.find_best_frame) and not args.absolute
    frames, details = animate(model, source, driving, relative=not args.absolute, adapt_scale=adapt_scale,
                              find_best_frame=best_frame, progress=progress, crop=not args.no_crop,
                              return_details=True, search_frames=search)
    bar.close()
    frames = [resize_square(f, args.size) for f in frames]
    if args.side_by_side:
        src = resize_square(details["source"], args.size)
        frames = [side_by_side(src, resize_square(d, args.size), f) for d, f in zip(details["driving"], frames)]
    about = {"model": model.source, "source": Path(args.source).name, "driving": Path(args.driving).name,
             "mode": "absolute" if args.absolute else "relative", "adapt_scale": adapt_scale,
             "find_best_frame": best_frame, "reference_frame": None if args.absolute else details["reference"]}
    write_labelled_video(out, frames, fps, about)
    print(f"wrote {len(frames)} frames at {fps:.2f} fps to {out} (labelled synthetic; model: {model.source}"
          + (f"; motion from driving frame {details['reference']} (counted from 0), the closest to the source's "
             "pose" if best_frame else "") + ")",
          file=sys.stderr)
    return 0


def _eval_command(args: argparse.Namespace) -> int:
    from ..animation.evaluate import evaluate_carphone, evaluate_transfer, reconstruction_scores
    from ..animation.importer import load_animation_model
    from ..animation.transfer import crop_driving

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
    if not args.video:
        print("other people driven by the same frames (relative motion, as `animate` makes it):")
        for transfer in evaluate_transfer(model):
            print(transfer.line())
    return 0
