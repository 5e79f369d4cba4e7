"""``deepfake-lab verify FILE``: does an image or a video say it was made by this package, and how?

    deepfake-lab verify cartoon.png
    deepfake-lab verify screenshot.jpg
    deepfake-lab verify animated.mp4 --json

It looks for each mark :mod:`deepfake_lab.provenance` puts on an output, independently, and reports each:

* **visible strip**: the red SYNTHETIC strip, at the bottom (or top) of the pixels;
* **C2PA**: the signed manifest is *valid* (it covers the file as it is), *changed* (the file or the manifest
  was edited after signing) or *absent* (never there, or removed by a re-save, a screenshot, an upload);
* **metadata**: the PNG text chunks or the video container tags saying ``synthetic``;
* **invisible mark**: the watermark of :mod:`deepfake_lab.watermark`, with its bits and its score.

Exit status 0 when at least one of them marks the file synthetic, 1 when none does, 2 when the file
cannot be read. Absence of every mark proves nothing: marks can be removed, and other tools leave none.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import watermark
from ..data.animation_data import VIDEO_EXTENSIONS
from ..errors import UserError
from ..provenance import content_credentials_state, find_label_strip, read_provenance

__all__ = ["add_commands", "Verdict", "verify_file", "VIDEO_SUFFIXES"]

#: read as videos (every other file is read as an image)
VIDEO_SUFFIXES = VIDEO_EXTENSIONS  # the one list of video file endings (deepfake_lab.data.animation_data)


def add_commands(sub) -> None:
    p = sub.add_parser("verify", help="check an image or video for the marks of deepfake_lab (strip, C2PA, watermark)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="an image (PNG, JPEG, WebP ...) or a video (.mp4, .gif ...)")
    p.add_argument("--json", action="store_true", help="print the findings as one JSON object")
    p.set_defaults(func=_verify_command)


@dataclass
class Verdict:
    """What :func:`verify_file` found; ``synthetic``: at least one mark says so."""

    path: str
    kind: str  # "image" or "video"
    strip: str | None  # "bottom" / "top": where the visible strip is; None: not seen
    credentials: str  # "valid", "changed" or "absent"
    credential_notes: list[str]
    metadata: bool  # PNG text chunks / container tags say synthetic
    mark: watermark.Mark
    frames_read: int = 1

    @property
    def synthetic(self) -> bool:
        return bool(self.strip or self.credentials != "absent" or self.metadata or self.mark.found)

    def lines(self) -> list[str]:
        signs = sum((bool(self.strip), self.credentials != "absent", self.metadata, self.mark.found))
        head = (f"{self.path}: marked synthetic by deepfake_lab ({signs} of 4 signs)" if self.synthetic else
                f"{self.path}: no mark of deepfake_lab found (this does not show the {self.kind} is real)")
        strip = f"seen ({self.strip} of the picture)" if self.strip else "not seen"
        c2pa = self.credentials + (f" ({'; '.join(self.credential_notes)})" if self.credential_notes else "")
        what = "text chunks" if self.kind == "image" else "container tags"
        frames = f", read on {self.frames_read} frames" if self.kind == "video" else ""
        return [head, f"  visible strip:  {strip}", f"  C2PA manifest:  {c2pa}",
                f"  metadata:       {what} {'say synthetic' if self.metadata else 'say nothing'}",
                f"  invisible mark: {self.mark.describe()}{frames}"]

    def as_dict(self) -> dict:
        m = self.mark
        return {"file": self.path, "kind": self.kind, "synthetic": self.synthetic, "strip": self.strip,
                "c2pa": self.credentials, "c2pa_notes": self.credential_notes, "metadata": self.metadata,
                "watermark": {"found": m.found, "z": round(m.z, 2), "bit_accuracy": round(m.bit_accuracy, 4),
                              "bits": "".join(map(str, m.bits)), "payload_ok": m.payload_ok,
                              "version": m.version, "media": m.media, "scale": m.scale},
                "frames_read": self.frames_read}


def _read_video(path: Path) -> tuple[list[np.ndarray], bool]:
    """The first 300 frames of the video, and whether its tags say synthetic."""
    from ..animation.media import read_video_metadata
    from ..data.video import read_video

    frames = list(read_video(path, max_frames=300).frames)
    try:
        tags = read_video_metadata(path)
    except Exception:  # noqa: BLE001 - unreadable tags are no tags; the pixels decoded above
        tags = {}
    said = any("synthetic" in str(v).lower() for v in tags.values())
    return frames, said


def verify_file(path: str | Path) -> Verdict:
    """Look for every mark on ``path``; raises :class:`~deepfake_lab.data.DataError` for an unreadable file."""
    from ..data.images import load_image

    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        frames, metadata = _read_video(path)
        kind, mark = "video", watermark.detect_sequence(frames)
    else:
        image = load_image(path, min_side=8)
        frames, kind = [np.asarray(image)], "image"
        metadata = read_provenance(path).get("synthetic") == "true"
        mark = watermark.detect(frames[0])
    found = find_label_strip(frames[0])
    state, notes = content_credentials_state(path)
    return Verdict(str(path), kind, found[0] if found else None, state, notes, metadata, mark,
                   min(len(frames), watermark.FRAMES_READ))


def _verify_command(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.exists():
        raise UserError(f"{path}: no such file; give the image or video to check")
    verdict = verify_file(path)
    if args.json:
        print(json.dumps(verdict.as_dict()))
    else:
        print("\n".join(verdict.lines()))
    return 0 if verdict.synthetic else 1
