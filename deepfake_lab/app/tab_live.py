"""Tab "Live" (lesson 4 in real time): the browser's camera drives a portrait, frame by frame, on the CPU.

The same First Order Motion Model as the Animation tab (its 128x128 demo weights), one camera frame at a
time instead of a whole video (:func:`live_frame`):

1. **the face box** is followed, not searched for in every frame: the face cascade
   (:func:`deepfake_lab.data.faces.detect_faces`, ~20-40 ms a frame here) runs on the first frame, then on
   every :data:`DETECT_EVERY`-th one (on a copy at most :data:`DETECT_SIDE` pixels wide); the box moves only
   when the face has moved out of it noticeably, and is kept while the face is briefly lost (dropped after
   :data:`LOST` searches in a row find nothing: the viewer is told to face the camera);
2. the square around it is cut out (:func:`~deepfake_lab.data.faces.crop_box`, the same twice-the-face square
   as the Animation tab's crop) and the keypoint detector finds K keypoints with their Jacobians;
3. **relative motion** (§3.5, :func:`deepfake_lab.animation.transfer.normalize_kp`): the portrait's keypoints
   move by how the camera's keypoints moved since the **reference frame**, the first frame of the stream or
   the first one after *Reset pose*:  :math:`p^{S_t} = p^S + \\alpha (p^{D_t} - p^{D_0})`, with
   :math:`\\alpha = 1` unless *Adapt scale* is ticked. When the box has
   moved since the reference frame, the keypoints are first carried into the reference box's coordinates
   (:func:`in_box`), so following the face does not count as motion of the face;
4. the generator warps the portrait; the frame shown is **portrait | camera | result**, the keypoints drawn
   on all three, with the invisible watermark and the SYNTHETIC strip of every generated frame
   (:func:`deepfake_lab.animation.media.label_frames`).

Nothing is stored on the server: the camera frames reach the handler as JPEG data in memory
(``gr.Image(streaming=True, type="numpy")``) and the result goes back inline, as a data URL inside a
``gr.HTML``: a ``gr.Image`` output writes every array it is given to gradio's cache folder as a file
(``gradio.image_utils.save_image``), one file per frame. The frame rate shown is the running average of
the last :data:`FPS_WINDOW` frames, as the server finished them.

Cost (``benchmarks/bench_live.py``, one torch thread) with the 128x128 demo model on a 2-core Intel Xeon with
AMX (bf16): a median 32 ms a frame, 31 frames/s; the watermark and the strip ~5 ms together (cheap enough to keep
both on every frame), the cascade ~8 ms on one frame in :data:`DETECT_EVERY`. The earlier 64x64 model took
45-65 ms (15-22 frames/s) on a busy AMD EPYC without native bf16. In the browser the page shows fewer: the camera,
the page and the server share the CPU.
"""
from __future__ import annotations

import base64
import io
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..animation import crop_source, draw_keypoints
from ..animation.media import label_frames
from ..animation.transfer import (ADAPT_SCALE_DEFAULT, detect_keypoints, keypoints_to_pixels, normalize_kp,
                                  resize_square, side_by_side, to_model_input)
from ..data import DataError
from ..data.faces import Box, crop_box, detect_faces, square_box
from ..data.portraits import portrait_head
from .common import AppContext, fit_side, image_input, open_image, upload_path, user_errors
from .models import spec

__all__ = ["TITLE", "MODELS", "Source", "LiveSession", "LiveFrame", "portrait_source", "photo_source", "in_box",
           "follow_face", "live_frame", "status", "inline_image", "build"]

TITLE = "Live"

#: none of its own: the Animation tab's demo model (lesson 4's demo weights), loaded once for both tabs
MODELS = ()
ANIMATION = spec("animation-demo")

#: each of the three panels (portrait | camera | result), in pixels; the demo model itself works at 128x128
PANEL = 128
#: the face cascade runs on every this many frames (and on every frame while no face has been found)
DETECT_EVERY = 10
#: frames are scaled down to at most this many pixels on the long side for the face cascade
DETECT_SIDE = 240
#: after this many searches in a row without a face (LOST x DETECT_EVERY frames) the box is dropped
LOST = 3
#: the box around the face moves when the detected one is this far from it (fraction of its side)
MOVE = 0.12
#: the face square is this many times the detected face (as the Animation tab's crop)
FACE_SCALE = 2.0
#: the frame rate is averaged over this many frames; a pause longer than PAUSE_S starts the average again
FPS_WINDOW = 30
PAUSE_S = 2.0
#: the browser sends a camera frame this often (s) while the previous one is not being computed
STREAM_EVERY = 1 / 30
#: one stream lasts at most this long (s); the camera's button starts another
TIME_LIMIT = 120
#: uploaded portraits are scaled down to this long side before the face is searched (as the Animation tab)
SOURCE_SIDE = 1024
JPEG_QUALITY = 90
#: the portraits the menu offers: name in the menu -> name in deepfake_lab.data.portraits
PORTRAIT_CHOICES = {"Grace Hopper (1984, public domain)": "grace_hopper",
                    "Eileen Collins (NASA, public domain)": "astronaut"}
DEFAULT_PORTRAIT = next(iter(PORTRAIT_CHOICES))

NO_FACE = ("No face in the camera picture yet: look straight into the camera, the whole face in the picture "
           "and lit from the front (the face finder needs a frontal face at least 30 pixels wide).")


@dataclass
class Source:
    """The portrait that is moved, prepared once: its tensor, its keypoints, its panel with them drawn."""

    name: str
    image: torch.Tensor  # (1, 3, S, S) in [0, 1]
    keypoints: dict[str, torch.Tensor]  # value (1, K, 2), jacobian (1, K, 2, 2)
    panel: np.ndarray  # (PANEL, PANEL, 3) uint8


def _source(model, head: np.ndarray, name: str) -> Source:
    size = model.config.image_size
    image = to_model_input(head, size, model.device)  # (S', S', 3) uint8 -> (1, 3, S, S)
    keypoints = detect_keypoints(model, image)
    panel = np.asarray(draw_keypoints(resize_square(head, PANEL), keypoints_to_pixels(keypoints["value"][0], PANEL)))
    return Source(name, image, keypoints, panel)


def portrait_source(model, choice: str = DEFAULT_PORTRAIT) -> Source:
    """One of the portraits that ship with the package (a menu name of :data:`PORTRAIT_CHOICES`), its head cut out."""
    if choice not in PORTRAIT_CHOICES:
        raise ValueError(f"portrait {choice!r}: not one of the menu's ({', '.join(PORTRAIT_CHOICES)}); pick one, "
                         "or upload a photo")
    return _source(model, portrait_head(PORTRAIT_CHOICES[choice], PANEL), choice)


def photo_source(model, path) -> Source:
    """An uploaded portrait (checked like every upload, :func:`~deepfake_lab.app.common.open_image`), its head cut
    out; a photo without a frontal face is a ValueError that says so."""
    image, _ = open_image(path, "portrait")
    name = Path(path).name
    image, _ = fit_side(image, SOURCE_SIDE, name)
    try:
        head = crop_source(np.asarray(image), what=f"portrait {name}")
    except DataError:
        raise ValueError(f"portrait {name}: no face found (a frontal face of 30 pixels or more); upload a "
                         "portrait that looks into the camera, or pick one of the menu's") from None
    return _source(model, head, name)


@dataclass
class LiveSession:
    """What one viewer's stream remembers from frame to frame (kept in a ``gr.State``: one per browser tab)."""

    source: Source | None = None  # None: the menu's first portrait, prepared on the first frame
    box: Box | None = None  # the face square followed in the camera frames (frame pixels)
    reference: dict[str, torch.Tensor] | None = None  # the keypoints of the reference frame, in its box
    reference_box: Box | None = None
    since_detection: int = 0  # frames since the face cascade last ran
    misses: int = 0  # face searches in a row that found nothing
    finished: deque = field(default_factory=lambda: deque(maxlen=FPS_WINDOW))  # when each frame was done (s)
    compute: deque = field(default_factory=lambda: deque(maxlen=FPS_WINDOW))  # what each frame cost (s)

    def reset_pose(self) -> None:
        """The next camera frame becomes the reference pose (and the face is searched for again)."""
        self.reference = self.reference_box = None
        self.since_detection = DETECT_EVERY

    def frame_rate(self) -> float | None:
        """Frames finished per second over the last :data:`FPS_WINDOW` frames (None before the second one)."""
        if len(self.finished) < 2 or self.finished[-1] <= self.finished[0]:
            return None
        return (len(self.finished) - 1) / (self.finished[-1] - self.finished[0])


@dataclass
class LiveFrame:
    """What one camera frame gave: the labelled picture (None: no face yet) and the status line."""

    image: np.ndarray | None  # (PANEL + strip, 3 * PANEL, 3) uint8: portrait | camera | result, labelled
    message: str
    seconds: float  # what computing it cost


def _detect(frame: np.ndarray) -> Box | None:
    """The face square of the largest frontal face in ``frame``, found on a copy at most DETECT_SIDE wide."""
    import cv2

    h, w = frame.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(h, w))
    small = frame if scale == 1 else cv2.resize(frame, (round(w * scale), round(h * scale)),
                                                interpolation=cv2.INTER_AREA)
    boxes = detect_faces(small)
    if not boxes:
        return None
    b = boxes[0]
    face = Box(round(b.x / scale), round(b.y / scale), round(b.w / scale), round(b.h / scale))
    return square_box(face, FACE_SCALE, (w, h))


def follow_face(session: LiveSession, frame: np.ndarray) -> Box | None:
    """The face square for this frame: the one followed so far, moved when a new detection is far from it."""
    if session.box is None or session.since_detection >= DETECT_EVERY:
        session.since_detection = 0
        found = _detect(frame)
        session.misses = 0 if found is not None else session.misses + 1
        if session.misses >= LOST:  # gone for a while (left the picture): say so instead of moving a stale box
            session.box = None
        old = session.box
        if found is not None and (old is None or max(abs(found.x - old.x), abs(found.y - old.y),
                                                     abs(found.w - old.w)) > MOVE * old.w):
            session.box = found
    session.since_detection += 1
    return session.box


def in_box(keypoints: dict[str, torch.Tensor], box: Box, reference: Box) -> dict[str, torch.Tensor]:
    """Keypoints found in the crop ``box`` (``value`` in [-1, 1] of that crop), in the coordinates of the crop
    ``reference``: :math:`p_R = s\\,p + c` with :math:`s = w_B / w_R`, and Jacobians times :math:`s`."""
    if box == reference:
        return keypoints
    s = box.w / reference.w
    shift = torch.tensor([(2 * (box.x - reference.x) + box.w) / reference.w - 1,
                          (2 * (box.y - reference.y) + box.h) / reference.h - 1], device=keypoints["value"].device)
    moved = {"value": keypoints["value"] * s + shift}
    if "jacobian" in keypoints:
        moved["jacobian"] = keypoints["jacobian"] * s
    return moved


@torch.no_grad()
def live_frame(model, session: LiveSession, frame, adapt_scale: bool = ADAPT_SCALE_DEFAULT,
               now: float | None = None) -> LiveFrame:
    """Move the session's portrait like the face in one camera frame ((H, W, 3) uint8 RGB); see the module text.

    Never raises for a frame without a face: the returned :class:`LiveFrame` has no image and says what to do.
    """
    start = time.perf_counter()
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8 or min(frame.shape[:2]) < 32:
        raise ValueError(f"camera frame: array {frame.shape} of {frame.dtype}; need an RGB picture (H, W, 3) of "
                         "uint8, at least 32x32")
    model.eval()
    if session.source is None:
        session.source = portrait_source(model)
    source = session.source
    box = follow_face(session, frame)
    if box is None:
        return LiveFrame(None, NO_FACE, time.perf_counter() - start)
    camera = crop_box(frame, box, PANEL)  # (PANEL, PANEL, 3)
    size = model.config.image_size
    kp_camera = detect_keypoints(model, to_model_input(camera, size, model.device))
    if session.reference is None:
        session.reference, session.reference_box = kp_camera, box
    kp_driving = in_box(kp_camera, box, session.reference_box)
    with model.precision.autocast():
        kp_new = normalize_kp(source.keypoints, kp_driving, session.reference, adapt_movement_scale=adapt_scale,
                              use_relative_movement=True, use_relative_jacobian=True)
        out = model.generator(source.image, kp_driving=kp_new, kp_source=source.keypoints)
    result = out["prediction"][0].float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    panels = side_by_side(source.panel,
                          np.asarray(draw_keypoints(camera, keypoints_to_pixels(kp_camera["value"][0], PANEL))),
                          np.asarray(draw_keypoints(resize_square(result, PANEL),
                                                    keypoints_to_pixels(kp_new["value"][0], PANEL))))
    labelled = label_frames([panels])[0]
    done = time.perf_counter()
    now = done if now is None else now
    if session.finished and now - session.finished[-1] > PAUSE_S:  # the stream was stopped: a new average
        session.finished.clear()
        session.compute.clear()
    session.finished.append(now)
    session.compute.append(done - start)
    return LiveFrame(labelled, status(session), done - start)


def status(session: LiveSession) -> str:
    """The line under the result: the frame rate (running average), the cost of a frame, the reference pose."""
    fps = session.frame_rate()
    rate = f"**{fps:.1f} frames/s**" if fps is not None else "**- frames/s** (measured from the second frame)"
    cost = sum(session.compute) / max(1, len(session.compute)) * 1000
    return (f"{rate} over the last {len(session.finished)} frames · {cost:.0f} ms of computing a frame · "
            f"portrait: {session.source.name if session.source else DEFAULT_PORTRAIT} · reference pose: the first "
            "frame of the stream (*Reset pose* takes the next one)")


def inline_image(frame: np.ndarray, alt: str = "portrait | camera | result (synthetic)") -> str:
    """An ``<img>`` that carries ``frame`` as a JPEG data URL: shown by the browser, never written to a file."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=JPEG_QUALITY)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img src="data:image/jpeg;base64,{data}" alt="{alt}" width="{frame.shape[1] * 2}" '
            f'height="{frame.shape[0] * 2}" style="image-rendering: pixelated; max-width: 100%; height: auto">')


def build(ctx: AppContext, demo) -> None:
    """Lay out the tab inside the current ``gr.Tab`` and wire its events."""
    import gradio as gr

    gr.Markdown(
        "### Your face moves a portrait, live\nStart the camera: the first frame is the reference pose, and the "
        "portrait moves as your face moves away from it (relative motion, as in the Animation tab from its first "
        "frame). The 128x128 demo model runs on this computer's processor, one frame at a time; nothing is "
        "recorded or kept.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera", elem_id="live-camera",
                              height=300, webcam_options=gr.WebcamOptions(
                                  constraints={"video": {"width": {"ideal": 320}, "height": {"ideal": 240}}}))
            with gr.Row():
                reset = gr.Button("Reset pose", elem_id="live-reset")
                adapt = gr.Checkbox(value=ADAPT_SCALE_DEFAULT, label="Adapt scale", elem_id="live-adapt")
            portrait = gr.Radio(list(PORTRAIT_CHOICES), value=DEFAULT_PORTRAIT, label="Portrait",
                                elem_id="live-portrait")
            photo = image_input(label="...or your own portrait", elem_id="live-photo", height=180,
                                sources=["upload", "clipboard"])
        with gr.Column(scale=2):
            result = gr.HTML(elem_id="live-result", label="Portrait | camera | result (synthetic)", min_height=300)
            rate = gr.Markdown("Start the camera (the button under its picture) to begin.", elem_id="live-fps")
    session = gr.State(LiveSession())

    def on_frame(frame, live: LiveSession, adapt_scale: bool):
        if frame is None:
            return gr.skip(), gr.skip()
        out = live_frame(ctx.models.get(ANIMATION), live, frame, bool(adapt_scale))
        return (gr.skip() if out.image is None else inline_image(out.image)), out.message

    def on_reset(live: LiveSession):
        live.reset_pose()
        return "The next camera frame is the new reference pose."

    def on_portrait(choice: str, live: LiveSession):
        live.source = portrait_source(ctx.models.get(ANIMATION), choice)
        return f"Portrait: {choice}."

    def on_photo(value, live: LiveSession, choice: str):
        path = upload_path(value, "portrait")
        if path is None:  # the upload was cleared: back to the menu's portrait
            return on_portrait(choice, live)
        live.source = photo_source(ctx.models.get(ANIMATION), path)
        return f"Portrait: {live.source.name}."

    # its own queue slot: one stream at a time, which does not hold up the other tabs' requests
    camera.stream(user_errors(on_frame), inputs=[camera, session, adapt], outputs=[result, rate],
                  stream_every=STREAM_EVERY, time_limit=TIME_LIMIT, concurrency_limit=1, concurrency_id="live",
                  show_progress="hidden", api_visibility="private")
    reset.click(user_errors(on_reset), inputs=session, outputs=rate, api_visibility="private")
    portrait.change(user_errors(on_portrait), inputs=[portrait, session], outputs=rate, api_visibility="private")
    # preprocess=False: the upload reaches the handler unopened (see common.image_input); photo_source checks it
    photo.change(user_errors(on_photo), inputs=[photo, session, portrait], outputs=rate, preprocess=False,
                 api_visibility="private")
