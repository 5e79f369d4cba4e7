"""Reading and writing video frames (PyAV, the Python binding of FFmpeg).

Lessons that work on talking heads (pix2pix's face task, image animation, face swap) read a clip as
an array of RGB frames plus its frame rate, and write their results back as a video:

    clip = read_video("talk.mp4")           # clip.frames: (T, H, W, 3) uint8, clip.fps: 29.97
    write_video("out.mp4", clip.frames, clip.fps)

A file that is missing, empty, damaged, holds no video stream, or is not a video at all (a text file,
which FFmpeg would otherwise draw as ANSI-art frames) is a :class:`DataError` whose message names the
file and says what to do, never an FFmpeg traceback. :func:`check_frame_size` applies the images' size
policy (:data:`~deepfake_lab.data.images.MIN_SIDE`, :data:`~deepfake_lab.data.images.MAX_PIXELS`) to frames.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from . import DataError
from .images import check_size

__all__ = ["VideoClip", "read_video", "write_video", "video_info", "check_frame_size"]

#: what to do with a video whose frames are over the size limit
DOWNSCALE_VIDEO = "scale it down first (e.g. `ffmpeg -i in.mp4 -vf scale=1280:-2 out.mp4`)"


@dataclass
class VideoClip:
    """Decoded frames of one video and its timing."""

    #: (T, H, W, 3) uint8 RGB
    frames: np.ndarray
    #: frames per second (e.g. 29.97 for NTSC-rate clips)
    fps: float
    path: str = ""

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


def _open_input(path: Path):
    import av

    if not path.exists():
        raise DataError(f"{path}: no such video file; check the path")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give a video file (e.g. .mp4)")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes); the download or copy did not finish: get the video again")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:  # InvalidDataError, unknown format, permission ...
        raise DataError(f"{path}: not a readable video ({err.strerror or err}); the file is damaged or not a video. "
                        "Re-encode it, e.g. `ffmpeg -i in -c:v libx264 out.mp4`") from err
    if container.format.name == "tty":  # FFmpeg's text demuxer: any text file "plays" as ANSI art
        container.close()
        raise DataError(f"{path}: not a video PyAV can decode (it holds text, which FFmpeg would only draw as "
                        "characters); give a video file (.mp4, .mov, .webm ...)")
    if not container.streams.video:
        container.close()
        raise DataError(f"{path}: has no video stream (audio or data only); give a file with video")
    return container


def check_frame_size(width: int, height: int, name: str = "video") -> None:
    """Raise :class:`DataError` for frames smaller or larger than images may be (one size policy)."""
    check_size(width, height, name, fix=DOWNSCALE_VIDEO)


def video_info(path: str | os.PathLike) -> dict:
    """Width, height, frame rate and (where the container says) frame count, without decoding.

    A header that states no frame size costs one decoded frame; if none decodes, the file is refused.
    """
    import av

    path = Path(path)
    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        width, height = stream.codec_context.width, stream.codec_context.height
        if not (width and height):
            try:
                frame = next(iter(container.decode(stream)), None)
            except av.error.FFmpegError as err:
                frame, why = None, err.strerror or str(err)
            else:
                why = "no frame decodes"
            if frame is None:
                raise DataError(f"{path}: not a video PyAV can decode (its header states no frame size and {why}); "
                                "the file is damaged or not a video. Re-encode it, e.g. "
                                "`ffmpeg -i in -c:v libx264 out.mp4`")
            width, height = frame.width, frame.height
        return {"width": width, "height": height, "fps": float(rate) if rate else None,
                "frames": int(stream.frames) or None, "codec": stream.codec_context.name}
    finally:
        container.close()


def read_video(path: str | os.PathLike, max_frames: int | None = None, start: int = 0) -> VideoClip:
    """Decode frames ``start .. start + max_frames`` of a video as RGB.

    Returns a :class:`VideoClip` with ``frames`` (T, H, W, 3) uint8 and ``fps``.
    Raises :class:`DataError` for a missing, empty, damaged or frameless file.
    """
    import av

    path = Path(path)
    if start < 0 or (max_frames is not None and max_frames < 1):
        raise DataError(f"{path}: start={start}, max_frames={max_frames}; need start >= 0 and max_frames >= 1")
    container = _open_input(path)
    frames: list[np.ndarray] = []
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 25.0
        for i, frame in enumerate(container.decode(stream)):
            if i < start:
                continue
            frames.append(frame.to_ndarray(format="rgb24"))  # (H, W, 3) uint8
            if max_frames is not None and len(frames) >= max_frames:
                break
    except av.error.FFmpegError as err:
        if not frames:
            raise DataError(f"{path}: could not decode any frame ({err.strerror or err}); the file is damaged") from err
        # a damaged tail: keep the frames decoded so far (players do the same)
    finally:
        container.close()
    if not frames:
        what = f"no frames after frame {start}" if start else "no frames"
        raise DataError(f"{path}: {what}; give a video with at least {start + 1} frame(s)")
    return VideoClip(np.stack(frames), fps, str(path))


def write_video(path: str | os.PathLike, frames, fps: float = 25.0, codec: str = "libx264",
                crf: int = 18, metadata: dict[str, str] | None = None) -> Path:
    """Encode ``frames`` ((T, H, W, 3) uint8 RGB, or a list of such arrays) to ``path``.

    H.264 with yuv420p (plays everywhere) needs even sizes: odd widths/heights are padded by one
    pixel (edge colour). ``crf`` 18 is visually lossless; 0 is lossless (``codec="libx264"`` only).
    ``metadata``: container tags (e.g. ``comment``), written before the frames.
    """
    import av

    path = Path(path)
    frames = [np.asarray(f) for f in frames]
    if not frames:
        raise DataError(f"{path}: no frames to write")
    h, w = frames[0].shape[:2]
    for i, f in enumerate(frames):
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise DataError(f"{path}: frame {i} is {f.dtype} {f.shape}; need (H, W, 3) uint8 RGB")
        if f.shape[:2] != (h, w):
            raise DataError(f"{path}: frame {i} is {f.shape[1]}x{f.shape[0]}, frame 0 is {w}x{h}; "
                            "all frames of a video must have one size")
    if fps <= 0:
        raise DataError(f"{path}: fps={fps}; need a positive frame rate")
    pad_h, pad_w = h % 2, w % 2
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        for key, value in (metadata or {}).items():
            container.metadata[key] = value
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = w + pad_w, h + pad_h
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf)}
        for f in frames:
            if pad_h or pad_w:
                f = np.pad(f, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush
            container.mux(packet)
    return path
