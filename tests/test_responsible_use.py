"""Responsible use, end to end: every command that makes an image or a video labels it, visibly and in metadata.

Each generating command of the command line runs here, as a user types it, with the demo weights shipped in
the package, and its output is opened again: a PNG must show the red SYNTHETIC strip, carry the provenance
text chunks (IPTC ``trainedAlgorithmicMedia``, the model, the command) and the invisible watermark; a video
must carry the label in its container metadata and in its pixels, and the watermark in its frames. The app's
outputs are checked the same way in ``tests/test_app*.py``.
The course material must say what consent means, what the law asks, and how fakes are detected.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepfake_lab import cli, watermark
from deepfake_lab.provenance import (IPTC_TRAINED_ALGORITHMIC_MEDIA, LABEL_TEXT, credential_actions,
                                     read_content_credentials, read_provenance)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "deepfake_lab" / "assets" / "examples"
WEIGHTS = ROOT / "deepfake_lab" / "assets" / "weights"
STRIP_RED = (200, 20, 20)  # deepfake_lab.provenance.label_image


def assert_content_credentials(path: Path) -> None:
    """A signed C2PA manifest that says "created by a trained model", whose signature checks out (the
    local signing certificate is reported untrusted, which is expected: no public authority issued it)."""
    store = read_content_credentials(path)
    assert store, f"{path}: no C2PA manifest"
    sources = [action.get("digitalSourceType") for action in credential_actions(path)]
    assert IPTC_TRAINED_ALGORITHMIC_MEDIA in sources, f"{path}: C2PA actions {sources}"
    success = {item["code"] for item in store["validation_results"]["activeManifest"]["success"]}
    assert "claimSignature.validated" in success, f"{path}: signature not validated: {store['validation_results']}"
    problems = {item["code"] for item in store.get("validation_status", [])}
    assert problems <= {"signingCredential.untrusted"}, f"{path}: C2PA validation problems {problems}"


def assert_labelled_png(path: Path, model_name: str) -> dict:
    image = Image.open(path)
    assert image.format == "PNG", f"{path}: {image.format}, not PNG"
    pixels = np.asarray(image.convert("RGB"))
    red_rows = 0
    while red_rows < len(pixels) and tuple(pixels[-1 - red_rows, 0]) == STRIP_RED:
        red_rows += 1
    assert red_rows >= 8, f"{path}: no visible SYNTHETIC strip at the bottom"
    assert (pixels[-red_rows:, :, 1] > 120).any(), f"{path}: the strip has no text in it"
    info = read_provenance(path)
    assert info["synthetic"] == "true"
    assert "trainedAlgorithmicMedia" in info["DigitalSourceType"]
    details = json.loads(info["deepfake_lab"])
    assert model_name in json.dumps(details), f"{path}: provenance does not name the model {model_name}: {details}"
    assert_content_credentials(path)
    assert_watermarked(pixels, path, "image")
    return details


def assert_watermarked(pixels, what, media: str) -> None:
    """The invisible mark of :mod:`deepfake_lab.watermark` (one picture, or the frames of a video), all bits."""
    mark = watermark.detect(pixels) if np.asarray(pixels).ndim == 3 else watermark.detect_frames(pixels)
    assert mark.found and mark.payload_ok, f"{what}: no invisible mark ({mark.describe()})"
    assert mark.media == media and mark.bit_accuracy == 1.0, f"{what}: {mark}"


def run(*argv: str) -> None:
    assert cli.main([str(a) for a in argv]) == 0, f"deepfake-lab {' '.join(map(str, argv))} failed"


@pytest.fixture(scope="module")
def face_photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "face.png"
    Image.open(EXAMPLES / "grace_hopper.jpg").convert("RGB").resize((256, 300)).save(path)
    return path


def test_sample_labels_its_png(tmp_path):
    out = tmp_path / "digits.png"
    run("sample", "--model", WEIGHTS / "gan-digits.safetensors", "-n", 16, "-o", out, "--device", "cpu")
    assert_labelled_png(out, "gan-digits")


@pytest.mark.parametrize("weights", ["cyclegan-face2cartoon", "pix2pix-carphone-edges"])
def test_translate_labels_every_output(tmp_path, face_photo, weights):
    out = tmp_path / "out"
    run("translate", "--model", WEIGHTS / f"{weights}.safetensors", face_photo, "-o", out, "--device", "cpu")
    outputs = sorted(out.glob("*.png"))
    assert outputs, f"translate wrote nothing in {out}"
    for path in outputs:
        assert_labelled_png(path, weights)


def test_swap_labels_its_png(tmp_path, face_photo):
    out = tmp_path / "swapped.png"
    run("swap", "--source", face_photo, "-o", out)
    assert_labelled_png(out, "faceswap")


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_animate_labels_the_video_file_and_its_frames(tmp_path, suffix):
    from deepfake_lab.animation import read_video_metadata
    from deepfake_lab.data.video import read_video

    out = tmp_path / f"animated{suffix}"
    run("animate", "--example", "-o", out, "--max-frames", 6, "--no-progress", "--device", "cpu")
    meta = read_video_metadata(out)
    assert LABEL_TEXT.split()[0] in meta.get("comment", ""), f"{out}: no synthetic label in the metadata: {meta}"
    assert_content_credentials(out)
    frames = read_video(out).frames
    assert len(frames) == 6
    bottom = frames[0][-3:, :, :].reshape(-1, 3).astype(int)
    assert (np.abs(bottom - STRIP_RED).sum(axis=1) < 60).mean() > 0.5, "no visible label strip in the frames"
    assert_watermarked(frames, out, "video frame")


def test_content_credentials_reveal_a_changed_image(tmp_path):
    """The C2PA signature covers the pixels: change one and every reader reports the mismatch."""
    from deepfake_lab.provenance import save_labelled_png

    path = save_labelled_png(Image.new("RGB", (64, 64), (40, 90, 160)), tmp_path / "signed.png", {"model": "test"})
    assert_content_credentials(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 8  # inside the compressed pixel data
    data[start] ^= 0xFF
    tampered = tmp_path / "tampered.png"
    tampered.write_bytes(bytes(data))
    store = read_content_credentials(tampered)
    problems = {item["code"] for item in store.get("validation_status", [])}
    assert problems - {"signingCredential.untrusted"}, f"a changed file still validated: {problems}"


@pytest.mark.parametrize("document", ["README.md", "tutorial/deepfake-generation.md",
                                      "notebooks/05_face_swap.ipynb"])
def test_the_material_covers_consent_law_and_detection(document):
    text = (ROOT / document).read_text(encoding="utf-8").lower()
    for topic in ("consent", "detect", "label"):
        assert topic in text, f"{document} never mentions {topic}"
    assert any(word in text for word in ("law", "legal", "regulation", "ai act")), f"{document}: nothing on the law"
