"""Tab "Animation" (lesson 4): a still photo moved by the face in a driving video (First Order Motion Model).

The model (Siarohin et al. 2019) finds keypoints with local affine motions in the source photo and in each
driving frame, turns their differences into a dense flow and an occlusion map, and warps the photo's
features (:mod:`deepfake_lab.animation`). The result is one MP4: **source | driving | result**, every frame
labelled synthetic, the file tagged so (:meth:`~deepfake_lab.app.common.OutputWriter.video`).

Switches, as in the paper's demo:

* **relative** motion moves the source by how the driving face moved since a reference driving frame
  (keeps the source's face shape); **absolute** copies the driving keypoints (needs aligned faces);
* **best reference frame** takes as that reference the driving frame whose pose is closest to the source's
  (the paper's ``find_best_frame``; on by default); off: the first driving frame;
* **adapt scale** rescales the motion by the ratio of the two faces' keypoint spreads (relative mode only; off
  by default: the demo model's spreads differ by identity more than by face size, see its model card);
* **crop to the face**: a square around the largest face (Haar cascade) of the photo and one fixed box for
  the whole video; off, the centre square is used.

The model is the demo one (128x128, trained for this course) or an official First Order Motion Model
checkpoint (``vox-cpk.pth.tar``, 256x256) from the cache's models folder, chosen by name (*Refresh* lists
files added since; :mod:`~deepfake_lab.app.models`), or any other file by its path (an official
``.pth.tar``, a ``.safetensors`` of ``deepfake-lab train animation`` or its run folder). It is read by
:func:`deepfake_lab.animation.load_animation_model` (official files through
:func:`~deepfake_lab.animation.load_official_checkpoint`, ``weights_only``) when it is first used.

Limits: at most :data:`MAX_FRAMES` (150) driving frames (the first ones, with a warning), frames scaled down
to :data:`FRAME_SIDE` (640) pixels on the long side while they are decoded (memory stays bounded), frames
over 40 megapixels or under 32 pixels a side refused (the size policy of every image); the source photo as in every tab
(:func:`~deepfake_lab.app.common.open_image`), scaled down to :data:`SOURCE_SIDE` (1024).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..animation import animate, crop_driving, crop_source, load_animation_model
from ..animation.transfer import ADAPT_SCALE_DEFAULT, BEST_FRAME_DEFAULT, resize_square, side_by_side
from ..data import DataError
from ..data.animation_data import example_driving_path, example_source_path
from .common import AppContext, check_int, fit_side, image_input, open_image, show_notes, upload_path, user_errors
from .models import ANIMATE, find_user_model, models_dir, open_user_model, spec, specs_of, user_models

TITLE = "Animation"

#: driving frames used at most (the first ones)
MAX_FRAMES = 150
#: driving frames are scaled down to this many pixels on the long side while decoded
FRAME_SIDE = 640
#: the source photo is scaled down to this long side (face detection time grows with the pixels)
SOURCE_SIDE = 1024
#: each of the three panels of the output video, in pixels
PANEL = 256
MODES = ("relative", "absolute")

#: this tab's demo models (lesson 4's demo weights in the lesson table)
MODELS = specs_of("animation")
ANIMATION = spec("animation-demo")
#: the models menu's first choice: the demo model
DEMO_CHOICE = ANIMATION.key


def model_choices() -> list[str]:
    """The models menu: the demo model, then the animation files of the cache's models folder by name."""
    return [DEMO_CHOICE, *(m.name for m in user_models(ANIMATE))]


def animation_model(ctx: AppContext, choice: str | None = DEMO_CHOICE, other: str | None = ""):
    """The model that animates: the file at path ``other`` when given, else the menu's ``choice`` (loaded once)."""
    if other and str(other).strip():
        path = Path(str(other).strip()).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"animation model {str(other).strip()}: no such file or folder on the computer "
                                    "that runs the app; give the full path of a .pth.tar or .safetensors file")
    elif not choice or choice == DEMO_CHOICE:
        return ctx.models.get(ANIMATION)
    else:
        found = find_user_model(choice, ANIMATE)
        if found is None:
            raise ValueError(f"model {choice!r}: not in {models_dir()} (any more); click Refresh for the current "
                             "list, or put the official vox-cpk.pth.tar there")
        path = found.path
    model, _ = open_user_model(ctx, path, ("animation",), lambda p: load_animation_model(p, ctx.device),
                               "a First Order Motion Model")
    return model


def read_driving(path, max_frames: int) -> tuple[np.ndarray, float, list[str]]:
    """Decode the first ``max_frames`` frames of a video, scaled to :data:`FRAME_SIDE` as they are decoded.

    Returns ((T, H, W, 3) uint8, fps, notes). A missing, empty, damaged or frameless file, or one over
    one whose frames break the size policy (:func:`deepfake_lab.data.video.check_frame_size`: at least 32 pixels
    a side, at most 40 megapixels), is a ValueError naming the file and what to do.
    """
    import av

    from ..data.video import check_frame_size, video_info

    if path is None or str(path) == "":
        raise ValueError("no driving video: upload one (.mp4, .webm, .mov...) or click the example")
    path = Path(path)
    name = path.name
    try:
        info = video_info(path)  # the header only: missing, empty, damaged or not a video -> DataError
    except DataError as err:
        raise ValueError(str(err).replace(str(path), name)) from None
    width, height = info["width"] or 0, info["height"] or 0
    try:
        check_frame_size(width, height, name)  # the one size policy of every image and video frame
    except DataError as err:
        raise ValueError(str(err)) from None
    notes = []
    scale = min(1.0, FRAME_SIDE / max(width, height))
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    if scale < 1:
        notes.append(f"{name}: {width}x{height} frames scaled down to {size[0]}x{size[1]} (the app works on "
                     f"frames of at most {FRAME_SIDE} pixels)")
    frames: list[np.ndarray] = []
    more = False
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.video[0]):
                if len(frames) == max_frames:
                    more = True
                    break
                frames.append(frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray())
    except av.error.FFmpegError as err:
        if not frames:
            raise ValueError(f"{name}: could not decode any frame ({err.strerror or err}); the file is damaged. "
                             "Re-encode it, e.g. `ffmpeg -i in -c:v libx264 out.mp4`") from None
        notes.append(f"{name}: damaged after frame {len(frames)}; used the frames before it")
    if not frames:
        raise ValueError(f"{name}: holds no video frames; give a video with at least one frame")
    if more:
        total = f" of {info['frames']}" if info.get("frames") else ""
        notes.append(f"{name}: used the first {max_frames}{total} frames (the 'Driving frames' setting; "
                     f"at most {MAX_FRAMES})")
    fps = info["fps"] if info["fps"] and 1 <= info["fps"] <= 120 else 25.0
    return np.stack(frames), float(fps), notes


def _centre_square(image: np.ndarray) -> np.ndarray:
    """The centre square of an (H, W, 3) image or of every frame of (T, H, W, 3)."""
    h, w = image.shape[-3:-1]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[..., top:top + side, left:left + side, :]  # (..., H, W, 3) -> (..., S, S, 3)


def animate_video(ctx: AppContext, source_path, driving_path, mode: str = "relative",
                  adapt_scale: bool = ADAPT_SCALE_DEFAULT,
                  crop: bool = True, max_frames=MAX_FRAMES, progress: Callable[[int, int], None] | None = None,
                  model: str | None = DEMO_CHOICE, other: str | None = "",
                  best_frame: bool = BEST_FRAME_DEFAULT) -> tuple[Path, str, list[str]]:
    """Animate the photo with the video's motion; returns (labelled MP4 source | driving | result, summary, notes).

    ``progress(done, total)`` is called as frames are made. ``model``: a choice of :func:`model_choices`;
    ``other``: the path of another model file, used instead when given (see :func:`animation_model`).
    ``best_frame``: relative motion from the driving frame closest to the photo's pose instead of the first.
    """
    if mode not in MODES:
        raise ValueError(f"motion {mode!r}: use one of {', '.join(MODES)}")
    for flag, label in ((adapt_scale, "adapt scale"), (crop, "crop to the face"), (best_frame, "best reference frame")):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"{label} {flag!r}: use true or false")
    max_frames = check_int(max_frames, "driving frames", 1, MAX_FRAMES)
    network = animation_model(ctx, model, other)  # first: a wrong model file fails before any decoding
    source_image, notes = open_image(source_path, "source photo")
    source_image, scaled = fit_side(source_image, SOURCE_SIDE, Path(source_path).name)
    notes += [scaled] if scaled else []
    driving, fps, more_notes = read_driving(driving_path, max_frames)
    notes += more_notes
    source = np.asarray(source_image)
    if crop:
        try:
            source = crop_source(source)
        except DataError:
            raise ValueError(f"source photo {Path(source_path).name}: no face found (frontal faces of 30 pixels or "
                             "more); turn off 'Crop to the face' or pick another photo") from None
        try:
            driving = crop_driving(driving)
        except DataError:
            raise ValueError(f"driving video {Path(driving_path).name}: no face found in its frames; turn off "
                             "'Crop to the face' or use a video of a frontal face") from None
    else:
        source, driving = _centre_square(source), _centre_square(driving)
    start = time.perf_counter()
    best_frame = bool(best_frame) and mode == "relative"  # absolute keypoints have no reference frame
    frames, details = animate(network, source, driving, relative=mode == "relative", adapt_scale=bool(adapt_scale),
                              find_best_frame=best_frame, progress=progress, crop=False, return_details=True)
    seconds = time.perf_counter() - start
    src = resize_square(details["source"], PANEL)
    video = [side_by_side(src, resize_square(d, PANEL), resize_square(f, PANEL))
             for d, f in zip(details["driving"], frames)]
    about = {"what": "animation", "tab": TITLE, "model": network.source, "source": Path(source_path).name,
             "driving": Path(driving_path).name, "mode": mode, "adapt_scale": bool(adapt_scale), "crop": bool(crop),
             "find_best_frame": best_frame, "reference_frame": details["reference"] if mode == "relative" else None,
             "frames": len(frames)}
    path = ctx.outputs.video(video, fps, about)
    per_frame = seconds / len(frames) * 1000
    size = network.config.image_size
    summary = (f"**{len(frames)} frames** at {fps:.2f} fps, made in {seconds:.1f} s ({per_frame:.0f} ms a frame) · "
               f"{mode} motion · adapt scale {'on' if adapt_scale else 'off'} · "
               + (f"motion from driving frame {details['reference']} (counted from 0; the closest to the photo's "
                  "pose) · " if best_frame else "") +
               f"face crop {'on' if crop else 'off'} · "
               f"the model works at {size}x{size}, shown at {PANEL}x{PANEL}")
    if notes:
        summary += "\n\n" + "\n".join(f"* {n}" for n in notes)
    return path, summary, notes


def build(ctx: AppContext, demo) -> None:
    """Lay out the tab inside the current ``gr.Tab`` and wire its events."""
    import gradio as gr

    gr.Markdown(
        "### A still photo, moved by a video\nThe First Order Motion Model tracks keypoints in the driving video "
        f"and moves the photo's keypoints the same way. At most {MAX_FRAMES} driving frames are used; frames "
        f"larger than {FRAME_SIDE} pixels are scaled down.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            with gr.Row():
                source = image_input(label="Source photo", elem_id="animation-source", height=260,
                                     sources=["upload", "webcam", "clipboard"])
                driving = gr.Video(label="Driving video", sources=["upload"], elem_id="animation-driving", height=260)
            mode = gr.Radio(list(MODES), value="relative", label="Motion", elem_id="animation-mode",
                            info="relative: from the reference driving frame (the first, or with 'Best reference "
                                 "frame' the one closest to the photo's pose); absolute: the driver's keypoints")
            with gr.Row():
                adapt = gr.Checkbox(value=ADAPT_SCALE_DEFAULT, label="Adapt scale", elem_id="animation-adapt")
                crop = gr.Checkbox(value=True, label="Crop to the face", elem_id="animation-crop")
                best = gr.Checkbox(value=BEST_FRAME_DEFAULT, label="Best reference frame", elem_id="animation-best")
            frames = gr.Slider(1, MAX_FRAMES, value=MAX_FRAMES, step=1, label="Driving frames (at most)",
                               elem_id="animation-frames")
            with gr.Row(equal_height=True):
                model = gr.Dropdown(model_choices(), value=DEMO_CHOICE, label="Model", scale=4,
                                    elem_id="animation-model",
                                    info=f"The demo model, or an official First Order Motion Model (vox-cpk.pth.tar) "
                                         f"copied into {models_dir()}.")
                refresh = gr.Button("Refresh", elem_id="animation-refresh", size="sm", scale=1, min_width=80)
            other = gr.Textbox(label="Other model file (optional)", elem_id="animation-other",
                               placeholder="/path/to/vox-cpk.pth.tar or runs/animation",
                               info="Used instead of the menu's model when given (opened without running code).")
            run = gr.Button("Animate", variant="primary", elem_id="animation-run")
            if example_source_path().exists() and example_driving_path().exists():
                gr.Examples([[str(example_source_path()), str(example_driving_path())]], inputs=[source, driving],
                            label="Example: Grace Hopper (public domain) driven by the carphone clip",
                            elem_id="animation-examples", cache_examples=False, api_visibility="private")
        with gr.Column(scale=2):
            result = gr.Video(label="Source | driving | result (synthetic)", elem_id="animation-result",
                              interactive=False, autoplay=True, loop=True, height=360)
            summary = gr.Markdown(elem_id="animation-summary")

    # chosen and other_file default to None: scripts that call /animate without them get the demo model
    def on_animate(source_photo, driving_video, how, adapt_scale, face_crop, most, chosen=None, other_file=None,
                   best_frame=BEST_FRAME_DEFAULT, progress=gr.Progress()):
        progress(0, desc="Reading the video")

        def report(done: int, total: int) -> None:
            progress((done, total), desc="Animating", unit="frames")

        path, text, notes = animate_video(ctx, upload_path(source_photo, "source photo"),
                                          upload_path(driving_video, "driving video"), how, adapt_scale, face_crop,
                                          most, report, chosen, other_file, best_frame)
        show_notes(notes)
        return str(path), text

    def on_refresh(chosen):
        choices = model_choices()
        return gr.Dropdown(choices=choices, value=chosen if chosen in choices else DEMO_CHOICE)

    # preprocess=False: the uploads reach the handler unopened (see common.image_input); animate_video checks them
    run.click(user_errors(on_animate), inputs=[source, driving, mode, adapt, crop, frames, model, other, best],
              outputs=[result, summary], api_name="animate", preprocess=False)
    refresh.click(user_errors(on_refresh), inputs=model, outputs=model, api_name="refresh_animation_models",
                  api_visibility="undocumented")
