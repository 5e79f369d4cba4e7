"""The lesson 2-4 tabs of the demo app (Image-to-image, Animation, Compare checkpoints), called through gradio_client.

The same in-process server as ``test_app.py`` (the ``demo_server`` fixture): the real demo weights, on the CPU.
Every picture that comes back must be a labelled PNG with provenance; every bad upload must come back as one
clear message, with the app still answering afterwards.
"""
from __future__ import annotations

import functools
import http.server
import json
import resource
import shutil
import struct
import threading
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from test_app import component, open_labelled_png, open_strip_png  # noqa: E402

from deepfake_lab.animation import read_video_metadata  # noqa: E402
from deepfake_lab.app import examples, models, tab_animation, tab_compare, tab_translate  # noqa: E402
from deepfake_lab.app import build_app, launch_options  # noqa: E402
from deepfake_lab.app.common import open_image  # noqa: E402
from deepfake_lab.cyclegan import ResnetGenerator  # noqa: E402

GREY = (70, 70, 70)  # deepfake_lab.provenance.REFERENCE_COLOUR
#: the demo models' names on the page (deepfake_lab.app.models.VIEWS)
CYCLEGAN_G, CYCLEGAN_F, PIX2PIX_NAME = models.demo_view_names()


def open_reference_png(path) -> tuple[Image.Image, dict]:
    """A real picture shown beside the outputs (input, ground truth): grey strip, ``synthetic=false``."""
    rgb, text, details = open_strip_png(path, GREY)
    assert text.get("synthetic") == "false" and "DigitalSourceType" not in text
    return rgb, details


EXAMPLES = "deepfake_lab/assets/examples"
SOURCE = f"{EXAMPLES}/grace_hopper.jpg"
DRIVING = f"{EXAMPLES}/carphone_driving.mp4"


@pytest.fixture(scope="module")
def client(demo_server):
    _, url = demo_server
    return Client(url, verbose=False)


def example(task: str) -> examples.Example:
    return next(e for e in examples.examples() if e.task == task)


def translate(client, path, checkpoint="", show="auto"):
    """One /image_to_image call: (gallery items, (before, after), truth, table rows, summary)."""
    gallery, pair, truth, table, summary = client.predict(handle_file(str(path)), checkpoint, show,
                                                          api_name="/image_to_image")
    return gallery, pair, truth, table["data"], summary


def labelled_gallery(gallery) -> dict[str, tuple[Image.Image, dict]]:
    """Each gallery image opened as a labelled PNG, by the model name of its provenance."""
    out = {}
    for item in gallery:
        image, details = open_labelled_png(item["image"])
        assert details["name"] in item["caption"] and "ms" in item["caption"]
        out[details["name"]] = (image, details)
    return out


def png_header_only(path, width: int, height: int) -> None:
    """A PNG that declares ``width`` x ``height`` pixels in its header but holds no pixel data (a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def photo(size=(96, 80)) -> Image.Image:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:size[1], :size[0]]
    rgb = np.stack([x * 255 // size[0], y * 255 // size[1], (x + y) % 256], axis=-1)
    rgb = rgb + rng.integers(0, 20, (*x.shape, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


# ------------------------------------------------------------------------------------------------ image-to-image

def test_an_example_goes_through_every_model_with_its_ground_truth(client):
    ex = example("face2cartoon")
    gallery, (before, after), truth, rows, summary = translate(client, ex.input)
    outputs = labelled_gallery(gallery)
    assert set(outputs) == {CYCLEGAN_G, CYCLEGAN_F, PIX2PIX_NAME}
    with Image.open(ex.input) as original:
        size = original.size
    for image, details in outputs.values():
        assert image.width == size[0] and image.height > size[1]  # same picture size, strip below
        assert details["input"] == ex.input.name and details["latency_ms"] >= 0
    assert outputs[CYCLEGAN_G][1]["network"].startswith("G")
    assert outputs[CYCLEGAN_F][1]["network"].startswith("F")

    # the slider: the input and the output of the model made for this example (auto: G for a photo)
    b, b_details = open_reference_png(before)
    a, a_details = open_labelled_png(after)
    assert b.size == a.size and b_details["what"] == "input"  # strips of one height: the slider lines up
    assert a_details["name"] == CYCLEGAN_G
    assert np.array_equal(np.asarray(a), np.asarray(outputs[CYCLEGAN_G][0]))
    with Image.open(ex.input) as original:
        assert np.array_equal(np.asarray(b)[:size[1]], np.asarray(original.convert("RGB")))

    # the ground truth is the exact cartoon rendering, and the table scores G and the do-nothing baseline
    t, t_details = open_reference_png(truth)
    with Image.open(ex.truth) as expected:
        assert np.array_equal(np.asarray(t)[:size[1]], np.asarray(expected.convert("RGB")))
    assert t_details["what"] == "ground truth"
    table = {row[0]: row for row in rows}
    assert float(table[CYCLEGAN_G][3]) > 5 and 0 < float(table[CYCLEGAN_G][4]) <= 1
    assert table[CYCLEGAN_F][3] == "—"  # made for the other direction: not scored
    assert "input unchanged (baseline)" in table
    assert all(float(row[2]) >= 0 for row in rows if row[2] != "—")
    assert "held out" in summary


def test_pix2pix_example_beats_doing_nothing_and_the_slider_follows_the_choice(client):
    ex = example("edges2face")
    gallery, (_, after), truth, rows, _ = translate(client, ex.input)
    table = {row[0]: row for row in rows}
    assert float(table[PIX2PIX_NAME][3]) > float(table["input unchanged (baseline)"][3]) + 10
    assert open_labelled_png(after)[1]["name"] == PIX2PIX_NAME
    _, (_, after), _, _, _ = translate(client, ex.input, show=CYCLEGAN_F)
    assert open_labelled_png(after)[1]["name"] == CYCLEGAN_F


def test_an_upload_without_ground_truth_and_a_large_one_scaled_down(client, tmp_path):
    small = tmp_path / "mine.png"
    photo().save(small)
    gallery, _, truth, rows, summary = translate(client, small)
    assert truth is None and len(gallery) == 3
    assert all(row[3] == "—" for row in rows) and "No ground truth" in summary

    large = tmp_path / "wide.jpg"
    photo((1200, 400)).save(large, quality=90)
    gallery, _, _, _, summary = translate(client, large)
    image, _ = open_labelled_png(gallery[0]["image"])
    assert image.width == models.MODEL_SIDE
    assert "1200x400 pixels, scaled down to 512x171" in summary


def test_an_official_checkpoint_runs_beside_the_demo_models(client, tmp_path):
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, 8, 2, "instance", False)  # official layout: model.1.weight is the 7x7 stem
    official = tmp_path / "latest_net_G_A.pth"
    torch.save(net.state_dict(), official)
    gallery, (_, after), _, rows, _ = translate(client, example("face2cartoon").input, str(official),
                                                tab_translate.YOURS)
    outputs = labelled_gallery(gallery)
    mine = [name for name in outputs if name.startswith(tab_translate.YOURS)]
    assert mine == [f"{tab_translate.YOURS}: latest_net_G_A.pth"]
    assert outputs[mine[0]][1]["kind"] == "cyclegan"
    assert open_labelled_png(after)[1]["name"] == mine[0]
    assert any(row[0] == mine[0] and row[1] == "unknown (your file)" for row in rows)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("name, make, message", [
    ("missing.pth", None, "checkpoint {tmp}/missing.pth: no such file or folder"),
    ("evil.pth", lambda p: torch.save({"model.1.weight": _Evil()}, p), "refused: it holds pickled Python objects"),
    ("digits.safetensors", lambda p: shutil.copy(models.spec("gan-digits").embedded(),
                                                 p), "digits.safetensors: a 'gan' model; translate works with"),
])
def test_a_bad_checkpoint_is_a_clear_error(client, tmp_path, name, make, message):
    path = tmp_path / name
    if make:
        make(path)
    with pytest.raises(AppError) as caught:
        translate(client, example("face2cartoon").input, str(path))
    assert message.format(tmp=tmp_path) in str(caught.value) and "Traceback" not in str(caught.value)
    assert len(translate(client, example("face2cartoon").input)[0]) == 3  # still serving


def test_twenty_concurrent_image_to_image_requests_are_all_answered(client):
    inputs = [e.input for e in examples.examples()]
    jobs = [client.submit(handle_file(str(inputs[i % len(inputs)])), "", "auto", api_name="/image_to_image")
            for i in range(20)]
    results, errors = [], []
    for job in jobs:
        try:
            results.append(job.result(timeout=180))
        except Exception as err:  # noqa: BLE001 - report every failed request, not only the first
            errors.append(f"{type(err).__name__}: {err}")
    assert not errors, f"{len(errors)} of 20 requests failed: {errors[:3]}"
    assert len(results) == 20
    for gallery, pair, *_ in results:
        assert len(gallery) == 3
        open_labelled_png(pair[1])


# ------------------------------------------------------------------------------------------------ bad uploads

def _truncated(path):
    photo((200, 200)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_IMAGES = {
    "truncated.png": (_truncated, "truncated.png: the image data is corrupt or truncated"),
    "notes.png": (lambda p: p.write_text("this is a text file, not a picture\n" * 20),
                  "notes.png: not an image format Pillow can read"),
    "dot.png": (lambda p: Image.new("RGB", (1, 1)).save(p), "dot.png: 1x1 pixels; need at least 32x32"),
    "huge.png": (lambda p: png_header_only(p, 10_000, 10_000),
                 "huge.png: 10000x10000 pixels = 100.0 megapixels, over the limit of 40 megapixels"),
    "bomb.png": (lambda p: png_header_only(p, 30_000, 30_000), "bomb.png: too large to open safely"),
    "empty.png": (lambda p: p.write_bytes(b""), "empty.png: not an image format Pillow can read"),
}


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_bad_uploads_get_a_clear_error_and_the_app_keeps_serving(client, tmp_path, name):
    make, message = BAD_IMAGES[name]
    path = tmp_path / name
    make(path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    for api, args in (("/image_to_image", ("", "auto")),
                      ("/compare", (tab_compare.DEMO_CHOICES[0], tab_compare.DEMO_CHOICES[1], "G (X → Y)"))):
        with pytest.raises(AppError) as caught:
            client.predict(handle_file(str(path)), *args, api_name=api)
        assert message in str(caught.value), str(caught.value)
        assert "Traceback" not in str(caught.value) and str(tmp_path) not in str(caught.value)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown < 150_000, f"memory peak grew by {grown / 1000:.0f} MB on {name}: it was decoded"
    gallery, *_ = translate(client, example("face2cartoon").input)  # still serving
    assert len(gallery) == 3


def _cmyk(path):
    photo().convert("CMYK").save(path, "JPEG", quality=95)


def _sixteen_bit(path):
    ramp = (np.arange(96 * 80, dtype=np.uint16).reshape(80, 96) * 8)
    Image.fromarray(ramp, "I;16").save(path)


@pytest.mark.parametrize("name, make, note", [
    ("gray.png", lambda p: photo().convert("L").save(p), "gray.png: is grayscale"),
    ("alpha.png", lambda p: photo().convert("RGBA").save(p), "alpha.png: has transparency (RGBA)"),
    ("print.jpg", _cmyk, "print.jpg: is CMYK; converted to RGB"),
    ("depth.png", _sixteen_bit, "depth.png: is a 16-bit image"),
])
def test_other_picture_modes_are_converted_with_a_note(client, tmp_path, name, make, note):
    path = tmp_path / name
    make(path)
    gallery, _, _, _, summary = translate(client, path)
    assert note in summary
    image, _ = open_labelled_png(gallery[0]["image"])
    assert image.width == 96


def test_no_image_is_a_clear_error(client):
    with pytest.raises(AppError, match="no input image: upload a picture"):
        client.predict(None, "", "auto", api_name="/image_to_image")
    with pytest.raises(ValueError, match="no source photo"):
        open_image(None, "source photo")


# ------------------------------------------------------------------------------------------------ animation

def test_animation_returns_a_labelled_playable_mp4(client):
    import av

    video, summary = client.predict(handle_file(SOURCE), handle_file(DRIVING), "relative", True, True, 24,
                                    api_name="/animate")
    path = video["video"] if isinstance(video, dict) else video
    with av.open(path) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 24
    height, width = frames[0].shape[:2]
    assert width == 3 * tab_animation.PANEL and height > tab_animation.PANEL  # source | driving | result, strip
    strip = frames[0][-6:, :40].reshape(-1, 3).mean(0)
    assert strip[0] > 150 and strip[1] < 90, f"no red SYNTHETIC strip at the bottom: {strip}"
    tags = read_video_metadata(path)
    assert "SYNTHETIC" in tags["comment"]
    about = json.loads(tags["description"][tags["description"].index("{"):])
    assert about["synthetic"] is True and about["mode"] == "relative" and about["frames"] == 24
    assert "used the first 24 of 60 frames" in summary


def video_path(value) -> str:
    return value["video"] if isinstance(value, dict) else value


def test_animation_switches_reach_the_model(client):
    relative, told = client.predict(handle_file(SOURCE), handle_file(DRIVING), "relative", True, True, 8,
                                    api_name="/animate")
    absolute, _ = client.predict(handle_file(SOURCE), handle_file(DRIVING), "absolute", False, False, 8,
                                 api_name="/animate")
    about = read_video_metadata(video_path(absolute))["description"]
    assert '"mode": "absolute"' in about and '"crop": false' in about and '"adapt_scale": false' in about
    assert '"reference_frame": null' in about  # absolute keypoints have no reference frame
    description = read_video_metadata(video_path(relative))["description"]
    assert '"mode": "relative"' in description
    told_about = json.loads(description[description.index("{"):])
    assert told_about["find_best_frame"] is True and told_about["reference_frame"] > 0  # the default: not his first
    first, summary = client.predict(handle_file(SOURCE), handle_file(DRIVING), "relative", False, True, 8,
                                    tab_animation.DEMO_CHOICE, "", False, api_name="/animate")
    about = read_video_metadata(video_path(first))["description"]
    assert '"find_best_frame": false' in about and '"reference_frame": 0' in about
    assert "motion from driving frame" in told and "motion from driving frame" not in summary


def _gray_wall(path):
    Image.new("RGB", (200, 200), (128, 128, 128)).save(path)


@pytest.mark.parametrize("source, make_source, make_driving, message", [
    (None, None, lambda p: p.write_bytes(b""), "driving.mp4: empty file (0 bytes)"),
    (None, None, lambda p: p.write_bytes(bytes(range(256)) * 64), "driving.mp4: not a readable video"),
    ("wall.png", _gray_wall, None, "source photo wall.png: no face found (frontal faces of 30 pixels or more); "
                                   "turn off 'Crop to the face' or pick another photo"),
    ("notes.png", lambda p: p.write_text("not a picture"), None, "notes.png: not an image format Pillow can read"),
])
def test_animation_bad_input_is_a_clear_error(client, tmp_path, source, make_source, make_driving, message):
    driving = tmp_path / "driving.mp4"
    (make_driving or (lambda p: shutil.copy(DRIVING, p)))(driving)
    photo_path = tmp_path / source if source else SOURCE
    if make_source:
        make_source(photo_path)
    with pytest.raises(AppError) as caught:
        client.predict(handle_file(str(photo_path)), handle_file(str(driving)), "relative", True, True, 5,
                       api_name="/animate")
    assert message in str(caught.value) and "Traceback" not in str(caught.value)
    # the app still serves; a photo without a face animates with face crop off (its centre square)
    usable = photo_path if source == "wall.png" else SOURCE
    video, _ = client.predict(handle_file(str(usable)), handle_file(DRIVING), "relative", True, False, 3,
                              api_name="/animate")
    assert video_path(video).endswith(".mp4")


def test_animation_frame_limit_is_enforced(client):
    with pytest.raises(AppError, match="driving frames 151: out of range; use a whole number from 1 to 150"):
        client.predict(handle_file(SOURCE), handle_file(DRIVING), "relative", True, True, 151, api_name="/animate")
    with pytest.raises(AppError, match="motion 'sideways': use one of relative, absolute"):
        client.predict(handle_file(SOURCE), handle_file(DRIVING), "sideways", True, True, 5, api_name="/animate")


def test_read_driving_scales_large_frames_while_decoding(tmp_path):
    from deepfake_lab.data.video import write_video

    big = tmp_path / "big.mp4"
    write_video(big, np.zeros((3, 720, 1280, 3), np.uint8), 25)
    frames, fps, notes = tab_animation.read_driving(big, 2)
    assert frames.shape == (2, 360, 640, 3) and fps == 25
    assert "1280x720 frames scaled down to 640x360" in notes[0] and "used the first 2 of 3 frames" in notes[1]


# ------------------------------------------------------------------------------------------------ compare

def test_compare_two_demo_models_on_an_example(client):
    ex = example("cartoon2face")
    a, b, pair, table, summary = client.predict(handle_file(str(ex.input)), tab_compare.DEMO_CHOICES[0],
                                                tab_compare.DEMO_CHOICES[1], "G (X → Y)", api_name="/compare")
    image_a, details_a = open_labelled_png(a)
    image_b, details_b = open_labelled_png(b)
    assert details_a["what"] == "checkpoint A" and details_a["name"] == CYCLEGAN_G
    assert details_b["name"] == CYCLEGAN_F and image_a.size == image_b.size
    assert [open_labelled_png(p)[1]["what"] for p in pair] == ["checkpoint A", "checkpoint B"]
    rows = table["data"]
    assert [r[0] for r in rows] == ["A", "B", ""] and all(float(r[3]) > 0 for r in rows)
    assert "ground truth" in summary


def test_compare_two_steps_of_a_run_folder(client, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for step in (100, 2000):
        shutil.copy(models.spec("cyclegan-face2cartoon").embedded(), run / f"step-{step:07d}.safetensors")
    (run / "notes.safetensors").write_text("not weights")
    menu_a, menu_b, summary = client.predict(str(run), api_name="/list_checkpoints")  # dropdown updates
    a, b = menu_a["value"], menu_b["value"]
    assert a.endswith("step-0000100.safetensors") and b.endswith("step-0002000.safetensors")
    labels = [label for label, _ in menu_a["choices"]]
    assert labels == [*tab_compare.menu_choices(), "cyclegan step 100", "cyclegan step 2,000"]  # notes.* left out
    assert "2 checkpoint(s)" in summary
    ex = example("cartoon2face")
    out_a, out_b, _, table, _ = client.predict(handle_file(str(ex.input)), a, b, "F (Y → X)", api_name="/compare")
    (image_a, details_a), (image_b, _) = open_labelled_png(out_a), open_labelled_png(out_b)
    assert details_a["name"].startswith("step 100 (F")
    assert np.array_equal(np.asarray(image_a), np.asarray(image_b)), "the same weights gave different outputs"
    assert table["data"][0][1].startswith("step 100") and table["data"][1][1].startswith("step 2,000")

    with pytest.raises(AppError, match="no CycleGAN or pix2pix checkpoint in it"):
        client.predict(str(tmp_path), api_name="/list_checkpoints")
    with pytest.raises(AppError, match="no such folder or file"):
        client.predict(str(tmp_path / "nope"), api_name="/list_checkpoints")


# ------------------------------------------------------------------------------------------------ page

def test_about_tab_lists_the_lesson_models(demo_server):
    demo, _ = demo_server
    for spec in (*tab_translate.MODELS, *tab_animation.MODELS):
        text = component(demo, f"about-{spec.key}").value
        assert spec.title in text and "Data and licence" in text
        assert spec.embedded().with_suffix(".md").exists()
    assert component(demo, "translate-outputs") is not None and component(demo, "animation-result") is not None


# ------------------------------------------------------------------------------------------------ the user's models

def _fomm_checkpoint(path) -> None:
    """A tiny First Order Motion Model saved in the official ``vox-cpk.pth.tar`` layout."""
    from deepfake_lab.animation import AnimationConfig, FirstOrderModel

    torch.manual_seed(0)
    config = AnimationConfig(image_size=32, num_kp=4, kp_block_expansion=8, kp_max_features=32, kp_num_blocks=2,
                             kp_scale_factor=0.5, kp_pad=0, block_expansion=8, max_features=32,
                             num_bottleneck_blocks=1, dm_block_expansion=8, dm_max_features=32, dm_num_blocks=2,
                             dm_scale_factor=0.5)
    model = FirstOrderModel(config).eval()
    torch.save({"generator": {"module." + k: v for k, v in model.generator.state_dict().items()},
                "kp_detector": model.kp_detector.state_dict(), "discriminator": {}, "epoch": 1}, path)


def _choices(demo, elem_id) -> list[str]:
    return [value for _, value in component(demo, elem_id).choices]


@pytest.fixture(scope="module")
def cache_app(tmp_path_factory):
    """The app with a cache of its own: a CycleGAN generator fetched from a local server, a FOMM file put in by hand.

    Returns (demo, client, models folder). The page's menus are those of the files there when the app was built.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        tmp_path = tmp_path_factory.mktemp("user-models")
        monkeypatch.setenv("DEEPFAKE_LAB_CACHE", str(tmp_path / "cache"))
        yield from _serve_with_user_models(tmp_path)


def _serve_with_user_models(tmp_path):
    from conftest import find_free_port

    from deepfake_lab.data.fetch import fetch_pretrained, model_path

    www = tmp_path / "www" / "pretrained_models"
    www.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(ResnetGenerator(3, 3, 8, 2, "instance", False).state_dict(), www / "horse2zebra.pth")  # official
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www.parent)))
    httpd.RequestHandlerClass.log_message = lambda *args: None
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        fetched = fetch_pretrained("cyclegan", "horse2zebra", base_url=f"http://127.0.0.1:{httpd.server_address[1]}",
                                   progress=False, log=lambda m: None)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert fetched == model_path("cyclegan", "horse2zebra") and fetched.parent.parent == models.models_dir()
    _fomm_checkpoint(models.models_dir() / "vox-tiny.pth.tar")
    (models.models_dir() / "notes.pth").write_text("not a checkpoint")

    demo = build_app(device="cpu")
    port = find_free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, **launch_options())
    try:
        yield demo, Client(f"http://127.0.0.1:{port}/", verbose=False), models.models_dir()
    finally:
        demo.close()


def test_models_of_the_cache_appear_by_name_and_run(cache_app):
    demo, client, folder = cache_app
    assert _choices(demo, "translate-model") == [tab_translate.NONE, "cyclegan/horse2zebra.pth", "notes.pth"]
    for menu in ("compare-a", "compare-b"):
        assert _choices(demo, menu) == [*tab_compare.DEMO_CHOICES, "cyclegan/horse2zebra.pth", "notes.pth"]
    assert _choices(demo, "animation-model") == [tab_animation.DEMO_CHOICE, "vox-tiny.pth.tar"]

    # chosen by name, no path typed: it runs beside the demo models, labelled
    ex = example("face2cartoon")
    gallery, pair, _, table, _ = client.predict(handle_file(str(ex.input)), "", tab_translate.YOURS,
                                                "cyclegan/horse2zebra.pth", api_name="/image_to_image")
    outputs = labelled_gallery(gallery)
    name = f"{tab_translate.YOURS}: cyclegan/horse2zebra.pth"
    assert set(outputs) == {CYCLEGAN_G, CYCLEGAN_F, PIX2PIX_NAME, name}
    assert outputs[name][1]["kind"] == "cyclegan" and outputs[name][1]["model"] == "horse2zebra.pth"
    assert outputs[name][0].size == outputs[CYCLEGAN_G][0].size
    assert open_labelled_png(pair[1])[1]["name"] == name
    assert any(row[0] == name and row[1] == "unknown (your file)" for row in table["data"])

    a, _, _, rows, _ = client.predict(handle_file(str(ex.input)), "cyclegan/horse2zebra.pth", CYCLEGAN_G,
                                      "G (X → Y)", api_name="/compare")
    assert open_labelled_png(a)[1]["name"].startswith("cyclegan/horse2zebra.pth (")
    assert rows["data"][0][1].startswith("cyclegan/horse2zebra.pth")

    # the hand-placed First Order Motion Model file animates, read through the official importer
    video, summary = client.predict(handle_file(SOURCE), handle_file(DRIVING), "relative", True, False, 3,
                                    "vox-tiny.pth.tar", "", api_name="/animate")
    description = read_video_metadata(video_path(video))["description"]
    about = json.loads(description[description.index("{"):])
    assert about["model"] == "official checkpoint vox-tiny.pth.tar" and about["frames"] == 3
    assert "3 frames" in summary

    # a file that is no model: one clear line, and the app goes on
    with pytest.raises(AppError) as caught:
        client.predict(handle_file(str(ex.input)), "", "auto", "notes.pth", api_name="/image_to_image")
    assert "checkpoint notes.pth:" in str(caught.value) and "Traceback" not in str(caught.value)
    assert str(folder) not in str(caught.value)
    with pytest.raises(AppError, match="model 'gone.pth': not in"):
        client.predict(handle_file(str(ex.input)), "", "auto", "gone.pth", api_name="/image_to_image")
    assert len(client.predict(handle_file(str(ex.input)), "", "auto", api_name="/image_to_image")[0]) == 3


def test_a_model_added_after_start_appears_after_refresh(cache_app):
    demo, client, folder = cache_app
    shutil.copy(folder / "cyclegan" / "horse2zebra.pth", folder / "mine.pth")
    shutil.copy(folder / "vox-tiny.pth.tar", folder / "vox-second.pth.tar")
    assert "mine.pth" not in _choices(demo, "translate-model")  # not scanned again until asked

    menu = client.predict("cyclegan/horse2zebra.pth", api_name="/refresh_translate_models")
    assert [value for _, value in menu["choices"]] == [tab_translate.NONE, "cyclegan/horse2zebra.pth", "mine.pth",
                                                       "notes.pth"]
    assert menu["value"] == "cyclegan/horse2zebra.pth"  # the choice is kept
    menu_a, menu_b = client.predict(CYCLEGAN_F, "/no/such.pth", api_name="/refresh_compare_models")
    assert "mine.pth" in [value for _, value in menu_a["choices"]]
    assert (menu_a["value"], menu_b["value"]) == (CYCLEGAN_F, CYCLEGAN_F)
    menu = client.predict(tab_animation.DEMO_CHOICE, api_name="/refresh_animation_models")
    assert [value for _, value in menu["choices"]] == [tab_animation.DEMO_CHOICE, "vox-second.pth.tar",
                                                       "vox-tiny.pth.tar"]

    gallery, *_ = client.predict(handle_file(str(example("face2cartoon").input)), "", "auto", "mine.pth",
                                 api_name="/image_to_image")
    assert f"{tab_translate.YOURS}: mine.pth" in labelled_gallery(gallery)
    endpoints = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert not any("refresh" in e for e in endpoints)  # helpers of the page, not part of the documented API
