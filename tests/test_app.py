"""The demo app, served in-process and called the way a browser or a script calls it (gradio_client).

The app under test is the real one: the lesson-1 generators with the demo weights shipped in the package.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from deepfake_lab import cli  # noqa: E402
from deepfake_lab.app import build_app, launch_options  # noqa: E402
from deepfake_lab.app import tab_about, tab_gan  # noqa: E402
from deepfake_lab.app.common import ModelUnavailable  # noqa: E402
from deepfake_lab.cli.demo import host_warning, parse_auth  # noqa: E402
from deepfake_lab.device import describe  # noqa: E402
from deepfake_lab.provenance import LABEL_TEXT, credential_actions, save_labelled_png  # noqa: E402

STRIP_RED = (200, 20, 20)  # the colour of the label strip (deepfake_lab.provenance.label_image)
CELL = 34  # a 32x32 digit plus the 2-pixel grid padding (viz.to_grid_image)


@pytest.fixture(scope="module")
def client(demo_server):
    _, url = demo_server
    return Client(url, verbose=False)


def open_strip_png(path, colour) -> tuple[Image.Image, dict, dict]:
    """Open an app picture, check it is a decodable PNG with a strip of ``colour`` at the bottom holding white
    text; return (image, text chunks, its deepfake_lab details)."""
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    image = Image.open(path)
    assert image.format == "PNG"
    image.load()  # decodes every pixel: raises on a truncated or corrupt file
    text = dict(image.text)
    rgb = image.convert("RGB")
    pixels = np.asarray(rgb)
    rows = 0
    while rows < len(pixels) and tuple(pixels[-1 - rows, 0]) == colour:
        rows += 1
    assert rows >= 10, f"{path}: no label strip of colour {colour} at the bottom"
    assert (pixels[-rows:, :, 1] > 120).any(), f"{path}: the label strip has no (white) text"
    return rgb, text, json.loads(text.get("deepfake_lab", "{}"))


def open_labelled_png(path) -> tuple[Image.Image, dict]:
    """An app output: the red SYNTHETIC strip and the provenance chunks; returns (image, details)."""
    rgb, text, details = open_strip_png(path, STRIP_RED)
    assert text.get("synthetic") == "true"
    assert "trainedAlgorithmicMedia" in text.get("DigitalSourceType", "")
    sources = [action.get("digitalSourceType", "") for action in credential_actions(path)]
    assert any("trainedAlgorithmicMedia" in s for s in sources), f"{path}: no C2PA content credentials"
    return rgb, details


def strip_height(image: Image.Image, content_height: int) -> int:
    return image.height - content_height


# ------------------------------------------------------------------------------------------------ endpoints

def test_every_event_has_a_named_endpoint(client):
    endpoints = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert endpoints == {"/digits", "/interpolation", "/interpolation_frame", "/ring8",  # GAN basics
                         "/image_to_image", "/animate", "/compare", "/list_checkpoints"}  # lessons 2-4


def test_digit_grid_is_a_labelled_png_and_depends_only_on_the_seed(client):
    image, details = open_labelled_png(client.predict(3, 64, api_name="/digits"))
    side = (8 * CELL + 2) * 3  # an 8x8 grid of 32x32 digits, enlarged 3x
    assert image.width == side
    assert strip_height(image, side) >= 10  # taller than the grid: the label strip is below it
    assert details["seed"] == 3 and details["model"] == "gan-digits"
    digits = np.asarray(image)[:side]
    assert digits.std() > 10, "the grid is blank"

    again, _ = open_labelled_png(client.predict(3, 64, api_name="/digits"))
    other, _ = open_labelled_png(client.predict(4, 64, api_name="/digits"))
    assert np.array_equal(np.asarray(again), np.asarray(image)), "same seed, different digits"
    assert not np.array_equal(np.asarray(other)[:side], digits), "different seeds, same digits"

    few, _ = open_labelled_png(client.predict(3, 5, api_name="/digits"))
    assert few.width == (5 * CELL + 2) * 3  # 5 digits: one row of 5


def test_a_chosen_digit_draws_only_that_digit(client):
    """The demo generator is an AC-GAN: noise whose code is 7 gives sevens (the digit classifier says so)."""
    import torch

    from deepfake_lab.gan_metrics import load_digit_classifier

    image, details = open_labelled_png(client.predict(3, 16, "7", api_name="/digits"))
    assert details["digit"] == "7" and details["seed"] == 3
    side = (8 * CELL + 2) * 3
    cells = np.asarray(image.convert("L"))[:side // 2].astype(np.float32) / 127.5 - 1  # two rows of 8 digits
    digits = torch.stack([torch.from_numpy(cells[6 + r * 102:6 + r * 102 + 96:3, 6 + c * 102:6 + c * 102 + 96:3])
                          for r in range(2) for c in range(8)]).unsqueeze(1)  # (16, 1, 32, 32)
    named = load_digit_classifier()(digits).argmax(dim=1)
    assert (named == 7).float().mean() >= 0.8, named.tolist()
    anything, _ = open_labelled_png(client.predict(3, 16, "any", api_name="/digits"))
    assert not np.array_equal(np.asarray(anything), np.asarray(image))


def test_interpolation_strip_and_slider_frame_agree(client):
    strip, details = open_labelled_png(client.predict(1, 2, 8, "slerp", api_name="/interpolation"))
    k = tab_gan.STRIP_SCALE
    assert strip.width == (8 * CELL + 2) * k and strip.height > CELL * k + 6
    assert details["seeds"] == [1, 2] and details["steps"] == 8

    start, _ = open_labelled_png(client.predict(1, 2, 0.0, "slerp", api_name="/interpolation_frame"))
    end, _ = open_labelled_png(client.predict(1, 2, 1.0, "slerp", api_name="/interpolation_frame"))
    assert start.width == tab_gan.FRAME_SIDE and start.height > tab_gan.FRAME_SIDE
    # the slider's digit at t=0 is the strip's first digit, and at t=1 its last (both from the same noise)
    cell = lambda i: np.asarray(strip)[2 * k:(2 + 32) * k:k, (2 + i * CELL) * k:(2 + i * CELL + 32) * k:k]  # noqa: E731
    step = tab_gan.FRAME_SIDE // 32
    frame = lambda im: np.asarray(im)[:tab_gan.FRAME_SIDE:step, :tab_gan.FRAME_SIDE:step]  # noqa: E731
    assert np.abs(frame(start).astype(int) - cell(0).astype(int)).max() <= 2
    assert np.abs(frame(end).astype(int) - cell(7).astype(int)).max() <= 2
    assert np.abs(frame(start).astype(int) - frame(end).astype(int)).max() > 50, "seeds 1 and 2 gave the same digit"

    linear, _ = open_labelled_png(client.predict(1, 2, 8, "linear", api_name="/interpolation"))
    assert linear.size == strip.size


def test_ring8_scatter_and_mode_summary(client):
    path, summary = client.predict(0, 1000, api_name="/ring8")
    image, details = open_labelled_png(path)
    assert image.width == 600 and image.height > 600  # 6x6 inches at 100 dpi, plus the strip
    assert details["points"] == 1000
    assert summary.startswith("**Modes covered: ")
    covered = int(summary.split("Modes covered: ")[1].split(" ")[0])
    assert covered == 8, f"the demo ring8 GAN should cover all 8 modes, as its model card says: {summary}"


def test_twenty_concurrent_requests_are_all_answered(client):
    jobs = [client.submit(seed, 16, api_name="/digits") for seed in range(100, 120)]
    results = [job.result(timeout=120) for job in jobs]
    grids = [np.asarray(open_labelled_png(path)[0]) for path in results]
    assert len(grids) == 20
    assert len({g.tobytes() for g in grids}) == 20, "20 different seeds should give 20 different grids"


@pytest.mark.parametrize("args, api_name, message", [
    ((-1, 64), "/digits", "seed -1: out of range; use a whole number from 0 to 2147483647"),
    ((10**12, 64), "/digits", "seed 1000000000000: out of range"),
    ((3, 0), "/digits", "less than minimum value 1"),
    ((3, 4, "11"), "/digits", "not in the list of choices"),
    ((1, 2, 99, "slerp"), "/interpolation", "greater than maximum value 16"),
    ((1, 2, 0.5, "cubic"), "/interpolation_frame", "not in the list of choices: ['slerp', 'linear']"),
    ((0, 10**6), "/ring8", "greater than maximum value 5000"),
])
def test_bad_input_gets_a_clear_error_and_the_app_keeps_serving(client, args, api_name, message):
    with pytest.raises(AppError) as caught:
        client.predict(*args, api_name=api_name)
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value)
    open_labelled_png(client.predict(5, 4, api_name="/digits"))  # still serving


# ------------------------------------------------------------------------------------------------ page content

def component(demo, elem_id):
    for block in demo.blocks.values():
        if getattr(block, "elem_id", None) == elem_id:
            return block
    return None


def test_header_names_the_device_and_models_are_loaded_once(demo_server, client):
    demo, _ = demo_server
    header = component(demo, "app-header").value
    assert describe(demo.deepfake_lab_context.device) in header and LABEL_TEXT in header
    ctx = demo.deepfake_lab_context
    before = ctx.models.get(tab_gan.DIGITS)
    client.predict(9, 4, api_name="/digits")
    assert ctx.models.get(tab_gan.DIGITS) is before  # the same generator serves every request
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False" and demo.analytics_enabled is False


def test_about_tab_reads_metrics_from_the_model_cards(demo_server):
    demo, _ = demo_server
    for spec in tab_gan.MODELS:
        text = component(demo, f"about-{spec.key}").value
        card = spec.embedded().with_suffix(".md")
        assert card.exists(), f"{card}: demo weights need a model card beside them"
        metrics = tab_about.card_metrics(card.read_text(encoding="utf-8"))
        assert metrics, f"{card}: no metrics section"
        assert metrics.splitlines()[0] in text
        assert "licen" in text.lower() or "CC" in text
    responsible = component(demo, "responsible-use").value
    for word in ("Consent", "Labelling", "Detection"):
        assert word in responsible
    # the training-progress panel is there exactly when the package ships sample grids from training
    shipped = list((tab_gan.DIGITS.embedded().parent / "gan-digits-samples").glob("step-*.png"))
    assert (component(demo, "training-progress") is not None) == bool(shipped)


def test_card_metrics_takes_the_measured_section_only():
    card = "# gan\n\nIntro.\n\n## Measured metrics\n\n| FID | 12.3 |\n\n### detail\nmore\n\n## Command\n\nrun it\n"
    assert tab_about.card_metrics(card) == "| FID | 12.3 |\n\n### detail\nmore"
    assert tab_about.card_metrics("# gan\n\nno numbers\n") is None


def test_weights_folder_overrides_card_and_adds_training_progress(tmp_path):
    embedded = tab_gan.DIGITS.embedded()
    shutil.copy(embedded, tmp_path / embedded.name)
    (tmp_path / "gan-digits.md").write_text("# mine\n\n## Metrics\n\n| modes | 42 of 42 |\n", encoding="utf-8")
    (tmp_path / "gan-digits-samples").mkdir()
    for step in (100, 200, 300, 400, 500, 600, 700):
        grid = Image.new("RGB", (64, 64), (step // 3, 0, 0))
        if step == 100:  # an unlabelled picture: the app labels it before showing it
            grid.save(tmp_path / "gan-digits-samples" / f"step-{step:07d}.png")
        else:
            save_labelled_png(grid, tmp_path / "gan-digits-samples" / f"step-{step:07d}.png")
    demo = build_app(device="cpu", weights_dir=tmp_path)
    about = component(demo, "about-gan-digits").value
    assert "42 of 42" in about and f"--weights {tmp_path}" in about
    gallery = component(demo, "training-progress")
    assert gallery is not None
    captions = [item["caption"] for item in gallery.value]
    assert captions[0] == "step 100" and captions[-1] == "step 700" and len(captions) == 5
    for item in gallery.value:
        open_labelled_png(item["image"]["path"])
    # ring8 was not in the folder: it falls back to the package's weights
    assert demo.deepfake_lab_context.models.path(tab_gan.RING8) == tab_gan.RING8.embedded()


def test_broken_weights_give_a_clear_error_not_a_crash(tmp_path):
    (tmp_path / "gan-digits.safetensors").write_bytes(b"not a weights file")
    demo = build_app(device="cpu", weights_dir=tmp_path)
    assert "gan-digits.safetensors" in component(demo, "missing-gan-digits").value
    ctx = demo.deepfake_lab_context
    with pytest.raises(ModelUnavailable, match="gan-digits.safetensors"):
        tab_gan.digit_grid(ctx, 0, 4)
    tab_gan.ring_scatter(ctx, 0, 100)  # the other model still works


def test_launch_with_auth_requires_the_password(free_port):
    demo = build_app(device="cpu")
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port,
                auth=parse_auth("teacher:s3cret:x"), **launch_options())
    try:
        url = f"http://127.0.0.1:{free_port}/"
        with pytest.raises(Exception):
            Client(url, verbose=False)
        authed = Client(url, auth=("teacher", "s3cret:x"), verbose=False)
        open_labelled_png(authed.predict(1, 4, api_name="/digits"))
    finally:
        demo.close()


# ------------------------------------------------------------------------------------------------ command line

def test_demo_command_defaults_to_this_computer_only(monkeypatch):
    monkeypatch.delenv("DEEPFAKE_LAB_AUTH", raising=False)
    args = cli.build_parser().parse_args(["demo"])
    assert (args.host, args.port, args.device, args.auth, args.weights) == ("127.0.0.1", 7860, "auto", None, None)
    assert args.func.__module__ == "deepfake_lab.cli.demo"
    assert host_warning("127.0.0.1", None) is None and host_warning("localhost", None) is None
    assert "--auth" in host_warning("0.0.0.0", None)
    assert host_warning("0.0.0.0", ("a", "b")) is None


@pytest.mark.parametrize("argv, message", [
    (["demo", "--auth", "nopassword"], "--auth 'nopassword': expected USER:PASSWORD"),
    (["demo", "--port", "70000"], "--port 70000: use a port from 1 to 65535"),
    (["demo", "--weights", "/no/such/folder"], "--weights /no/such/folder: not a folder"),
])
def test_demo_command_bad_flags_are_one_line_errors(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_other_commands_do_not_import_gradio():
    """Registering ``demo`` must not slow every other command down with Gradio's import, nor change its env."""
    code = ("import os, sys; from deepfake_lab import cli; cli.build_parser(); "
            "print('gradio' in sys.modules, os.environ.get('HF_HUB_OFFLINE'))")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["False", "None"]

