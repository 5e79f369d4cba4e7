"""Image loading (deepfake_lab.data.images): clear errors for bad files, conversions to RGB with a note,
EXIF orientation, and padding for networks that need sizes divisible by 4."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from deepfake_lab.data import DataError
from deepfake_lab.data.images import (ImageConversionWarning, crop_to_multiple, list_images, load_image,
                                      pad_to_multiple, pil_to_tensor, unpad)


def _gradient(w: int = 48, h: int = 40) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 128)], -1).astype(np.uint8)


def test_rgb_png_loads_unchanged_without_warnings(tmp_path, recwarn):
    arr = _gradient()
    Image.fromarray(arr).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.mode == "RGB" and image.size == (48, 40)
    np.testing.assert_array_equal(np.asarray(image), arr)
    assert not [w for w in recwarn if issubclass(w.category, ImageConversionWarning)]


@pytest.mark.parametrize("problem, make, message", [
    ("missing", None, "no such file"),
    ("not an image", lambda p: p.write_text("hello"), "not an image format"),
    ("cut header", lambda p: p.write_bytes(_jpeg_bytes()[:400]), "corrupt or truncated"),
    ("cut pixels", lambda p: p.write_bytes(_jpeg_bytes()[:-2000]), "corrupt or truncated"),
    ("too small", lambda p: Image.new("RGB", (20, 64)).save(p), "20x64 pixels; need at least 32x32"),
])
def test_bad_files_give_one_clear_error_naming_the_file(tmp_path, problem, make, message):
    path = tmp_path / "in.jpg"
    if make:
        make(path)
    with pytest.raises(DataError, match=message) as err:
        load_image(path)
    assert str(path) in str(err.value)


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_folder_given_as_image_is_refused(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        load_image(tmp_path)


def test_too_large_is_refused_from_the_header_with_the_limit_named(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (9000, 5000)).save(path)  # 45 megapixels, a few kB compressed
    with pytest.raises(DataError, match=r"45\.0 megapixels, over the limit of 40 megapixels; downscale"):
        load_image(path)


@pytest.mark.parametrize("mode, expect", [("L", "grayscale"), ("RGBA", "transparency"), ("CMYK", "CMYK"),
                                          ("P", "mode P"), ("I;16", "16-bit")])
def test_other_modes_become_rgb_with_a_note(tmp_path, mode, expect):
    arr = _gradient()
    base = Image.fromarray(arr)
    if mode == "L":
        image, suffix = base.convert("L"), "png"
    elif mode == "RGBA":
        rgba = np.dstack([arr, np.full(arr.shape[:2], 255, np.uint8)])
        rgba[:, :10, 3] = 0  # a transparent stripe
        image, suffix = Image.fromarray(rgba, "RGBA"), "png"
    elif mode == "CMYK":
        image, suffix = base.convert("CMYK"), "jpg"
    elif mode == "P":
        image, suffix = base.convert("P"), "gif"
    else:
        image, suffix = Image.fromarray((arr[..., 0].astype(np.uint16) * 257)), "png"  # 16-bit gray
    path = tmp_path / f"x.{suffix}"
    image.save(path)
    with pytest.warns(ImageConversionWarning, match=expect):
        out = load_image(path)
    assert out.mode == "RGB" and out.size == (48, 40)
    got = np.asarray(out).astype(int)
    if mode == "RGBA":
        assert (got[:, :10] == 255).all()  # transparent pixels composited over white
        np.testing.assert_array_equal(got[:, 10:], arr[:, 10:])
    if mode == "I;16":
        np.testing.assert_array_equal(got[..., 0], arr[..., 0])  # 16-bit scaled back to the 8-bit values
        np.testing.assert_array_equal(got[..., 0], got[..., 2])
    if mode == "L":
        assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((40, 64, 3), np.uint8)
    arr[:, :8] = (255, 0, 0)  # red band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    image = load_image(path)
    assert image.size == (40, 64)  # width and height swapped
    top = np.asarray(image)[:6].astype(int)
    assert top[..., 0].mean() > 200 and top[..., 1].mean() < 60  # the left band is now at the top


def test_list_images_finds_images_only_sorted(tmp_path):
    for name in ("b.png", "a.JPG", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.webp").write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.webp"]
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.JPG", "b.png"]
    with pytest.raises(DataError, match="no such folder"):
        list_images(tmp_path / "nope")


def test_tensor_range_padding_and_cropping_to_multiples():
    image = Image.fromarray(_gradient(50, 37))
    x = pil_to_tensor(image)
    assert x.shape == (3, 37, 50) and x.min() == -1 and x.max() == 1
    padded, size = pad_to_multiple(x[None], 4)
    assert padded.shape == (1, 3, 40, 52) and size == (37, 50)
    torch.testing.assert_close(unpad(padded, size), x[None])
    assert crop_to_multiple(image, 4).size == (48, 36)
