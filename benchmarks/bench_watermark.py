"""How much of the invisible mark survives what people do to pictures: the table of the README.

    .venv/bin/python benchmarks/bench_watermark.py            # the three demo outputs, every attack
    .venv/bin/python benchmarks/bench_watermark.py --clean    # also: the score of unmarked photos

It makes three outputs the way a user does, with the command line and the demo weights shipped in the
package: ``deepfake-lab translate --model cyclegan-face2cartoon`` on the embedded photo *chelsea* enlarged
to 768x510, ``deepfake-lab sample --model demo:digits`` and ``deepfake-lab animate --example --max-frames 8``
(a 256x256 MP4). Then it changes each one as a re-post would and reads the mark of
:mod:`deepfake_lab.watermark` back:

* PNG re-save (drops the text chunks and the C2PA manifest, as a screenshot does);
* JPEG quality 75 and 50; a 0.5x resize (bicubic); a 10 % crop (5 % off every side, so the visible strip
  goes too), saved as PNG; the crop then JPEG 75; a 2x enlargement;
* what the reader does not search, to show the limits: a 0.75x resize, a 2 degree rotation, a mirror image;
* for the video: an H.264 re-encode at CRF 23 (FFmpeg's default) and 28, through
  :func:`deepfake_lab.data.video.write_video`, read with :func:`~deepfake_lab.data.video.read_video`;
  and one frame alone, saved as JPEG 75 (a screenshot of the player).

*bit accuracy*: the fraction of the 48 payload bits read as written; *z*: the score of the fixed code
(about N(0, 1) without a mark; detected at ``Z_THRESHOLD``). ~1 minute on two CPU cores, most of it
the three commands.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepfake_lab import cli, watermark  # noqa: E402
from deepfake_lab.data.embedded import source_photo  # noqa: E402
from deepfake_lab.data.video import read_video, write_video  # noqa: E402


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _png(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")  # no text chunks, no manifest
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _crop(image: Image.Image, fraction: float = 0.10) -> Image.Image:
    w, h = image.size
    dx, dy = round(w * fraction / 2), round(h * fraction / 2)
    return image.crop((dx, dy, w - dx, h - dy))


IMAGE_ATTACKS = {
    "none (the PNG as written)": lambda im: im,
    "PNG re-save": _png,
    "JPEG quality 75": lambda im: _jpeg(im, 75),
    "JPEG quality 50": lambda im: _jpeg(im, 50),
    "resize 0.5x": lambda im: im.resize((im.width // 2, im.height // 2), Image.BICUBIC),
    "crop 10 %": lambda im: _png(_crop(im)),
    "crop 10 % + JPEG 75": lambda im: _jpeg(_crop(im), 75),
    "enlarge 2x": lambda im: im.resize((im.width * 2, im.height * 2), Image.BICUBIC),
    # what the reader does not search: the mark is lost
    "resize 0.75x": lambda im: im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.BICUBIC),
    "rotate 2 degrees": lambda im: im.rotate(2, Image.BICUBIC),
    "mirror": lambda im: im.transpose(Image.FLIP_LEFT_RIGHT),
}


def _row(output: str, attack: str, mark: watermark.Mark, media: int) -> tuple:
    accuracy = float((mark.bits == watermark.payload_bits(media)).mean())
    return output, attack, accuracy, mark.z, mark.found


def _run(*argv) -> None:
    if cli.main([str(a) for a in argv]) != 0:
        raise SystemExit(f"deepfake-lab {' '.join(map(str, argv))} failed")


def measure(work: Path) -> list[tuple]:
    rows = []
    photo = work / "chelsea.png"
    source_photo("chelsea").resize((768, 510), Image.BICUBIC).save(photo)
    _run("translate", "--model", "cyclegan-face2cartoon", photo, "-o", work / "cartoon", "--device", "cpu")
    _run("sample", "--model", "demo:digits", "-n", 16, "-o", work / "digits.png", "--device", "cpu")
    for name, path in (("translate (768x510)", work / "cartoon" / "chelsea.png"),
                       ("sample digits (276x276)", work / "digits.png")):
        with Image.open(path) as im:
            image = im.convert("RGB")
        for attack, change in IMAGE_ATTACKS.items():
            rows.append(_row(name, attack, watermark.detect(change(image)), 1))

    video = work / "animated.mp4"
    _run("animate", "--example", "--max-frames", 8, "-o", video, "--no-progress", "--device", "cpu")
    clip = read_video(video)
    name = "animate video (256x256, 8 frames)"
    rows.append(_row(name, "none (the MP4 as written)", watermark.detect_frames(clip.frames), 2))
    for crf in (23, 28):
        again = write_video(work / f"again-{crf}.mp4", clip.frames, clip.fps, crf=crf)
        rows.append(_row(name, f"H.264 re-encode, CRF {crf}", watermark.detect_frames(read_video(again).frames), 2))
    rows.append(_row(name, "one frame, JPEG 75", watermark.detect(_jpeg(Image.fromarray(clip.frames[3]), 75)), 2))
    return rows


def clean_scores() -> list[tuple[str, float]]:
    """The score of real photos (no mark), at their size and at 256x256: how close chance comes."""
    from skimage import data

    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry", "retina", "coins"):
        a = getattr(data, name)()
        a = np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3]
        for image in (Image.fromarray(a), Image.fromarray(a).resize((256, 256))):
            out.append((f"{name} {image.width}x{image.height}", watermark.detect(image).z))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="also score unmarked photos (false-positive check)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(Path(tmp))
    print(f"\nwatermark: strength {watermark.STRENGTH:g}, detected at z >= {watermark.Z_THRESHOLD:g}\n")
    print("| output | attack | bit accuracy | z | detected |")
    print("|---|---|---|---|---|")
    for output, attack, accuracy, z, found in rows:
        print(f"| {output} | {attack} | {accuracy:.0%} | {z:.1f} | {'yes' if found else 'no'} |")
    if args.clean:
        scores = clean_scores()
        print("\nunmarked photos (z; no mark below the threshold):")
        for name, z in scores:
            print(f"  {name:32s} z = {z:.2f}")
        print(f"  highest: {max(z for _, z in scores):.2f}")


if __name__ == "__main__":
    main()
