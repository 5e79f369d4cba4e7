"""Regenerate every figure, number and table of the tutorial, then render the tutorial.

    make tutorial-figures          # or: python tutorial/make_figures.py

1. Each section below loads the package's demo weights (nothing is retrained, except the small
   real-vs-fake detector of the responsible-use section, a few hundred steps) and computes its
   figures (PNG under ``tutorial/assets/``; generated images carry the visible SYNTHETIC strip and
   provenance text chunks of :func:`deepfake_lab.provenance.save_labelled_png`) and its numbers.
2. A section whose lesson module or weights are missing prints why and is skipped; the tutorial then
   says which command produces its data instead of showing numbers.
3. All numbers go to ``tutorial/assets/numbers.json``; ``deepfake-generation.template.md`` is filled in
   (``{{name}}`` placeholders, ``<!-- if:section -->`` ... ``<!-- else:section -->`` ... ``<!-- end:section -->``
   blocks) and written to ``tutorial/deepfake-generation.md``. Code excerpts are read from the package
   source with :func:`inspect.getsource`, so they never drift from the code.
"""
from __future__ import annotations

import datetime as _dt
import inspect
import json
import os
import re
import socket
import sys
import textwrap
import time
import traceback
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HERE = ROOT / "tutorial"
ASSETS = HERE / "assets"
TEMPLATE = HERE / "deepfake-generation.template.md"
OUTPUT = HERE / "deepfake-generation.md"
WEIGHTS = ROOT / "deepfake_lab" / "assets" / "weights"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

import torch  # noqa: E402

NUMBERS: dict[str, str] = {}      # placeholder -> the number exactly as printed in the text
TEXT: dict[str, str] = {}         # placeholder -> tables and code excerpts (not numbers)
SECTIONS: dict[str, str] = {}     # section -> "ok" or "skipped: why"


class Skip(Exception):
    """A section's data is missing: the message says what is missing and how to make it."""


def num(name: str, value, fmt: str = "{:.3f}") -> str:
    text = fmt.format(value) if not isinstance(value, str) else value
    NUMBERS[name] = text
    return text


def asset(name: str) -> Path:
    ASSETS.mkdir(parents=True, exist_ok=True)
    return ASSETS / name


def save_synthetic(image, name: str, details: dict) -> None:
    """A generated image: visible label + provenance metadata."""
    from deepfake_lab.provenance import save_labelled_png

    save_labelled_png(image, asset(name), {"figure": f"tutorial/assets/{name}", **details})


def save_plain(image, name: str) -> None:
    """A chart or a screenshot (no generated pixels)."""
    image.save(asset(name))


def need(path: Path, command: str) -> Path:
    if not path.exists():
        raise Skip(f"{path.relative_to(ROOT)} is missing; make it with `{command}`")
    return path


def excerpt(obj, max_lines: int = 40, name: str | None = None) -> str:
    """The source of a class or function, docstring shortened to its first paragraph, cut at ``max_lines``."""
    src = textwrap.dedent(inspect.getsource(obj))
    src = re.sub(r'("""|\'\'\')(.*?)(\1)', lambda m: _short_doc(m), src, count=1, flags=re.S)
    lines = src.rstrip().splitlines()
    if len(lines) > max_lines:
        lines = lines[:max_lines] + ["    ...  # (cut here; the full code is in the package)"]
    where = f"{obj.__module__}.{obj.__qualname__}"
    return f"```python\n# {where}\n" + "\n".join(lines) + "\n```"


def _short_doc(match) -> str:
    body = match.group(2).strip().split("\n\n")[0]
    return match.group(1) + body + match.group(3)


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def row_images(rows: list[list], size: int = 128, pad: int = 2):
    """A grid of uint8 (H, W, 3) arrays / PIL images: one list per row, each resized to ``size``."""
    import numpy as np
    from PIL import Image

    n_cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (n_cols * (size + pad) + pad, len(rows) * (size + pad) + pad), "white")
    for i, r in enumerate(rows):
        for j, im in enumerate(r):
            if not isinstance(im, Image.Image):
                im = Image.fromarray(np.asarray(im).astype("uint8"))
            canvas.paste(im.convert("RGB").resize((size, size), Image.BICUBIC),
                         (pad + j * (size + pad), pad + i * (size + pad)))
    return canvas


def t2u8(x: torch.Tensor):
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


# ==============================================================================================
# Sections, in the tutorial's order
# ==============================================================================================
def section_architectures() -> None:
    """Parameter counts of the paper-default networks (built, not loaded: no weights needed)."""
    from deepfake_lab import blocks, cyclegan, losses, pix2pix
    from deepfake_lab.blocks import count_parameters
    from deepfake_lab.cyclegan import NLayerDiscriminator, ResnetGenerator

    num("resnet9_params", count_parameters(ResnetGenerator(n_blocks=9)), "{:,}")
    num("resnet6_params", count_parameters(ResnetGenerator(n_blocks=6)), "{:,}")
    num("patchgan_params", count_parameters(NLayerDiscriminator(3)), "{:,}")
    num("patchgan_rf", cyclegan.patch_receptive_field(3), "{}")
    num("unet256_params", count_parameters(pix2pix.UnetGenerator(num_downs=8)), "{:,}")
    num("patchgan6_params", count_parameters(pix2pix.conditional_discriminator(pix2pix.Pix2PixConfig())), "{:,}")
    from deepfake_lab.lessons import LESSONS

    TEXT["lesson_table"] = table(
        ["#", "lesson", "paper", "module", "notebook", "train command"],
        [[str(row.number), row.title, row.paper, f"`{row.module}`", f"`notebooks/{row.notebook}`",
          f"`deepfake-lab train {row.name}`"] for row in LESSONS])
    TEXT["code_resnet_block"] = excerpt(blocks.ResidualBlock, 30)
    TEXT["code_resnet_generator"] = excerpt(cyclegan.ResnetGenerator, 45)
    TEXT["code_patchgan"] = excerpt(cyclegan.NLayerDiscriminator, 30)
    TEXT["code_image_pool"] = excerpt(cyclegan.ImagePool.query if hasattr(cyclegan.ImagePool, "query")
                                      else cyclegan.ImagePool, 30)
    TEXT["code_cycle_loss"] = excerpt(losses.l1_loss, 20)
    TEXT["code_unet_level"] = excerpt(pix2pix.UnetSkipLevel, 45)
    TEXT["code_pix2pix_gloss"] = excerpt(pix2pix.generator_loss, 30)
    TEXT["code_cond_disc"] = excerpt(pix2pix.conditional_discriminator, 25)


def section_gan() -> None:
    from deepfake_lab import gan

    done = []
    for data in ("ring8", "digits"):
        path = gan.demo_weights_path(data)
        if not path.exists():
            print(f"  gan: {path.name} missing (make it with `deepfake-lab train gan --data {data} --preset demo`)")
            continue
        G, config = gan.load_generator(path)
        metrics = gan.evaluate_generator(G, config, n=1000, seed=0)
        z = torch.randn(1000 if config.is_points else 64, config.latent_dim,
                        generator=torch.Generator().manual_seed(0))
        out = gan.sample(G, z)
        if config.is_points:
            real = gan.make_dataset(config)
            pts = torch.stack([real[i] if torch.is_tensor(real[i]) else real[i][0] for i in range(1000)])
            image = gan.scatter_plot(out, pts.reshape(len(pts), -1)[:, :2], title="GAN samples (red) over the data")
            save_synthetic(image, "gan-ring8.png", {"model": path.name, "samples": 1000, "seed": 0})
        else:
            from deepfake_lab.viz import to_grid_image

            save_synthetic(to_grid_image(out, nrow=8).resize((384, 384)), "gan-digits.png",
                           {"model": path.name, "samples": 64, "seed": 0})
            if config.code_labels:  # AC-GAN: one row per code, noise of seed 0 with the code swapped in
                from deepfake_lab.gan_codes import noise_for_code

                codes = torch.arange(config.code).repeat_interleave(8)
                rows = gan.sample(G, noise_for_code(codes, len(codes), config.latent_dim, config.code,
                                                    generator=torch.Generator().manual_seed(0)))
                save_synthetic(to_grid_image(rows, nrow=8).resize((384, 480)), "gan-digits-by-code.png",
                               {"model": path.name, "samples": len(codes), "seed": 0, "rows": "code 0-9"})
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                num(f"gan_{data}_{k}", v, "{:.3f}" if isinstance(v, float) else "{}")
        SECTIONS[f"gan_{data}"] = "ok"
        done.append(data)
    if not done:
        raise Skip("no GAN demo weights (gan-ring8/gan-digits.safetensors)")
    for data in ("ring8", "digits"):
        SECTIONS.setdefault(f"gan_{data}", "skipped: weights missing")


def section_cyclegan() -> None:
    from deepfake_lab import cyclegan
    from deepfake_lab.data.embedded import embedded_path
    from deepfake_lab.data.images import load_image, pil_to_tensor
    from deepfake_lab.evaluation import domain_distances, evaluate_pairs, run_generator

    path = need(cyclegan.demo_weights_path("face2cartoon"), "deepfake-lab train cyclegan --preset demo")
    G, _ = cyclegan.load_generator(path, "AtoB")
    F, _ = cyclegan.load_generator(path, "BtoA")
    root = embedded_path("face2cartoon")
    scores = evaluate_pairs(G, root, "test", perceptual=True)
    domain = domain_distances(G, root)
    print(f"  cyclegan scores: {scores} {domain}")
    num("cyclegan_images", scores["images"], "{}")
    for who, key in (("G", "cyclegan"), ("identity", "cyclegan_identity")):
        for k, v in scores[who].items():
            num(f"{key}_{k}", v, "{:.2f}" if k == "psnr" else "{:.3f}")
        num(f"{key}_fid", domain[who]["fid"], "{:.1f}")
        num(f"{key}_kid", domain[who]["kid"], "{:.3f}")
    rows = []
    for frame in (100, 110, 119):
        name = f"carphone_{frame:03d}.png"
        x = pil_to_tensor(load_image(Path(root) / "testA" / name)).unsqueeze(0)
        y = run_generator(G, x)
        rec = run_generator(F, y)
        rows.append([t2u8(x[0]), t2u8(y[0]), t2u8(rec[0]), load_image(Path(root) / "testB" / name)])
    save_synthetic(row_images(rows), "cyclegan-face2cartoon.png",
                   {"model": path.name, "columns": "input x, G(x), F(G(x)), true cartoon"})
    SECTIONS["cyclegan"] = "ok"


def section_pix2pix() -> None:
    from deepfake_lab import pix2pix
    from deepfake_lab.data.paired import CarphoneEdges2Face
    from deepfake_lab.evaluation import face_task_report

    candidates = sorted(WEIGHTS.glob("pix2pix*.safetensors"))
    if not candidates:
        raise Skip("no pix2pix demo weights; make them with `deepfake-lab train pix2pix --preset demo`")
    path = candidates[0]
    G, config = pix2pix.load_generator(path)
    try:
        report = face_task_report(G, config, use_lpips=True)
    except Exception as err:  # LPIPS weights are optional
        print(f"  pix2pix: LPIPS unavailable ({err}); scoring without it")
        report = face_task_report(G, config, use_lpips=False)
    import math

    # a metric that could not be computed (NaN: LPIPS without its weights) is left out of the table
    metrics = sorted({m for r in report.values() for m, v in r.items() if not math.isnan(v)})
    rows = []
    for name, r in report.items():
        cells = []
        for m in metrics:
            key = f"pix2pix_{re.sub(r'[^a-z0-9]+', '_', name.lower())}_{m}"
            ok = m in r and not math.isnan(r[m])
            cells.append(num(key, r[m], "{:.2f}" if "psnr" in m else "{:.3f}") if ok else "–")
        rows.append([name] + cells)
    names = {"psnr": "PSNR (dB) ↑", "ssim": "SSIM ↑", "lpips": "LPIPS (VGG) ↓", "lpips_alex": "LPIPS (AlexNet) ↓",
             "sharpness_gap": "sharpness gap ↓",
             "sharpness_ratio": "sharpness ratio (1 = as sharp as the truth)"}
    TEXT["pix2pix_table"] = table(["method"] + [names.get(m, m) for m in metrics], rows)
    test_A, test_B = CarphoneEdges2Face("test", config.crop_size).stacked()
    idx = [0, 7, 14]
    out = pix2pix.translate(G, test_A[idx], "eval")
    grid = [[t2u8(test_A[i]), t2u8(out[k]), t2u8(test_B[i])] for k, i in enumerate(idx)]
    save_synthetic(row_images(grid), "pix2pix-edges2face.png",
                   {"model": path.name, "columns": "edges, pix2pix output, real frame"})
    ablation = WEIGHTS / "pix2pix-ablation.md"
    if ablation.exists():
        text = ablation.read_text().split("<!-- notes", 1)[0].splitlines()
        first = next((i for i, ln in enumerate(text) if ln.startswith("|")), len(text))
        end = next((i for i in range(first, len(text)) if not text[i].startswith("|")), len(text))
        lines = text[first:end]  # the ablation table (not the timing table below it)
        lines += ["", *[ln for ln in text if ln.startswith("Reading it:")]]  # the script's own reading of it
        TEXT["pix2pix_ablation"] = ("\n".join(lines) if lines else "") + \
            "\n\n*(Table copied from `deepfake_lab/assets/weights/pix2pix-ablation.md`, written by " \
            "`benchmarks/ablation_pix2pix.py`.)*"
    else:
        TEXT["pix2pix_ablation"] = ("*(The ablation table appears here after `python benchmarks/ablation_pix2pix.py` "
                                    "has written `deepfake_lab/assets/weights/pix2pix-ablation.md`.)*")
    SECTIONS["pix2pix"] = "ok"


def section_data_size() -> None:
    """The data-size curves: measured by ``benchmarks/data_size_curves.py`` (hours of CPU), drawn here."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from benchmarks.data_size_curves import LESSONS, RESULTS, table

    results = json.loads(need(RESULTS, "python benchmarks/data_size_curves.py").read_text())
    lessons = [name for name in LESSONS if results["lessons"].get(name)]
    if not lessons:
        raise Skip(f"{RESULTS.name} holds no runs; make them with `python benchmarks/data_size_curves.py`")
    titles = {"cyclegan": "lesson 2, CycleGAN G (face -> cartoon)", "pix2pix": "lesson 3, pix2pix (edges -> face)"}
    fig, axes = plt.subplots(1, len(lessons), figsize=(5.2 * len(lessons), 3.6), squeeze=False)
    for ax, name in zip(axes[0], lessons):
        rows = results["lessons"][name]
        for augment, style in (("", "o-"), ("color,translation,cutout", "s--")):
            pts = sorted((r["train_images"], r["held_out"]["lpips_alex"]) for r in rows if r["diffaugment"] == augment)
            ax.plot(*zip(*pts), style, label="DiffAugment" if augment else "no augmentation")
        ax.axhline(rows[0]["baseline"]["lpips_alex"], color="grey", lw=1, ls=":",
                   label="input unchanged" if name == "cyclegan" else "mean training frame")
        ax.set_xscale("log")
        ax.set_xticks(LESSONS[name]["sizes"], [str(n) for n in LESSONS[name]["sizes"]])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(LESSONS[name]["unit"])
        ax.set_ylabel("held-out LPIPS (AlexNet), lower is better")
        ax.set_title(f"{titles[name]}, {rows[0]['steps']} steps", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = asset("chart-data-size-curves.png")
    fig.savefig(path, dpi=110)  # a chart of measured numbers: no generated pixels, no label
    plt.close(fig)
    TEXT["data_size_table"] = table({"lessons": {n: results["lessons"][n] for n in lessons}})
    machine = results.get("machine", {})
    note = f"; {machine['note']}" if machine.get("note") else ""
    num("data_size_machine", f"`{machine.get('cpu', 'unknown CPU')}`, one thread per run{note}", "{}")
    SECTIONS["data_size"] = "ok"


def section_animation() -> None:
    from deepfake_lab import animation
    from deepfake_lab.animation.evaluate import transfer_to_himself
    from deepfake_lab.animation.transfer import ADAPT_SCALE_DEFAULT, BEST_FRAME_DEFAULT
    from deepfake_lab.data import animation_data
    from deepfake_lab.data.faces import carphone_faces
    from deepfake_lab.data.portraits import portrait

    need(animation.DEMO_WEIGHTS, "deepfake-lab train animation --preset demo-128 --portrait-weight 3")
    model = animation.load_animation_model(None, "cpu", precision="fp32")
    scores = animation.evaluate_carphone(model)
    for k, v in scores.as_dict().items():
        num(f"anim_{k}", v, "{:.4f}" if isinstance(v, float) else "{}")
    num("anim_l1_margin_pct", abs(100 * scores.l1_margin), "{:.1f}")
    TEXT["anim_l1_direction"] = "lower" if scores.l1_margin > 0 else "higher"
    for other in animation.evaluate_transfer(model):
        num(f"anim_transfer_{other.portrait}", other.transfer)
        num(f"anim_mouth_r_{other.portrait}", other.mouth_corr, "{:.2f}")
        num(f"anim_to_source_{other.portrait}", other.to_source_l1, "{:.4f}")
        num(f"anim_to_driver_{other.portrait}", other.to_driver_l1, "{:.4f}")
    for other in animation.evaluate_transfer(model, adapt_scale=True):
        num(f"anim_adapted_transfer_{other.portrait}", other.transfer)
    crops, _ = carphone_faces(model.config.image_size)  # the man driven from his frame 45 by the held-out frames
    _, mouth = transfer_to_himself(model, crops, crops[-animation_data.CARPHONE_TEST_FRAMES:], 45)
    num("anim_mouth_r_himself", mouth["dark_corr"], "{:.2f}")
    for best, label in ((True, "best"), (False, "first")):  # frames 60-89 start with the driver's mouth wide open
        grace = animation.evaluate_transfer(model, ("grace_hopper",), crops[60:90], find_best_frame=best)[0]
        num(f"anim_window60_mouth_r_{label}", grace.mouth_corr, "{:.2f}")
    driving = animation_data.read_frames(animation_data.example_driving_path(), max_frames=60)
    source = portrait("grace_hopper")
    frames, details = animation.animate(model, source, driving, adapt_scale=ADAPT_SCALE_DEFAULT,  # as `animate`
                                        find_best_frame=BEST_FRAME_DEFAULT, return_details=True)
    shown = slice(0, 60, 12)  # five of the 60 frames
    save_synthetic(row_images([list(details["driving"][shown]), frames[shown]], size=128),
                   "animation-grace-hopper.png",
                   {"model": animation.DEMO_WEIGHTS.name, "rows": "driving frames; animated source"})
    from deepfake_lab.animation.keypoints import relative_keypoints

    TEXT["code_kp_transfer"] = excerpt(animation.normalize_kp, 30) + "\n\n" + excerpt(relative_keypoints, 30)
    SECTIONS["animation"] = "ok"


def section_faceswap() -> None:
    import numpy as np

    from deepfake_lab import faceswap
    from deepfake_lab.compositing import swap_frame
    from deepfake_lab.data.portraits import portrait
    from deepfake_lab.evaluation import evaluate_reconstruction

    nets, config = faceswap.load_faceswap()
    _, B_frames, held, train = faceswap.build_training_faces(config)
    rec = evaluate_reconstruction(nets, held, train)
    for who, r in rec.items():
        for k, v in r.items():
            num(f"faceswap_{who}_{k}", v, "{:.2f}" if "psnr" in k else ("{}" if k == "n" else "{:.4f}"))
    num("faceswap_encoder_params", faceswap.count_parameters(nets["encoder"]), "{:,}")
    num("faceswap_decoder_params", faceswap.count_parameters(nets["decoder_A"]), "{:,}")
    # swap the held-out faces of each identity into the other one
    a, b = held["A"][:4], held["B"][:4]
    a2b, b2a = faceswap.swap_faces(nets, a, "B"), faceswap.swap_faces(nets, b, "A")
    grid = [[t2u8(x) for x in a], [t2u8(x) for x in a2b], [t2u8(x) for x in b], [t2u8(x) for x in b2a]]
    save_synthetic(row_images(grid, size=96), "faceswap-swaps.png",
                   {"model": "faceswap-demo.safetensors", "rows": "A, A->B, B, B->A (held-out faces)"})
    try:
        frame = np.asarray(portrait("grace_hopper"))
        result = swap_frame(frame, nets, config, to="A")
        save_synthetic(row_images([[result.frame, result.result]], size=256), "faceswap-frame.png",
                       {"model": "faceswap-demo.safetensors", "columns": "photo, swapped and blended"})
        SECTIONS["faceswap_frame"] = "ok"
    except Exception as err:
        SECTIONS["faceswap_frame"] = f"skipped: {err}"
        print(f"  faceswap: whole-frame swap skipped ({err})")
    TEXT["code_faceswap_encoder"] = excerpt(faceswap.Encoder, 30)
    TEXT["code_faceswap_swap"] = excerpt(faceswap.swap_faces, 15)
    SECTIONS["faceswap"] = "ok"


def section_detect() -> None:
    from deepfake_lab import detect

    config = detect.DetectorConfig(steps=150)
    num("detect_steps", config.steps, "{}")
    report = detect.detection_report(("faceswap",), config)
    rows = []
    for where in ("seen", "unseen"):
        for method, s in report[where].items():
            rows.append([method, "yes" if where == "seen" else "no",
                         num(f"detect_{method}_accuracy", s["accuracy"], "{:.3f}"),
                         num(f"detect_{method}_real_called_real", s["real_called_real"], "{:.3f}"),
                         num(f"detect_{method}_fake_caught", s["fake_caught"], "{:.3f}"),
                         num(f"detect_{method}_n_fake", s["n_fake"], "{}")])
    TEXT["detect_table"] = table(["method", "seen in training", "balanced accuracy", "real called real",
                                  "fakes caught", "fakes tested"], rows)
    unseen = report["unseen"]
    if unseen:
        worst = min(unseen, key=lambda m: unseen[m]["fake_caught"])
        NUMBERS["detect_unseen_method"] = worst
        TEXT["detect_unseen_caught"] = NUMBERS[f"detect_{worst}_fake_caught"]
    else:
        TEXT["detect_unseen_caught"] = "(no unseen method available)"
        NUMBERS["detect_unseen_method"] = "none"
    SECTIONS["detect"] = "ok"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def section_demo() -> None:
    if not CHROMIUM.exists():
        raise Skip(f"{CHROMIUM} not found (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        raise Skip("the python package playwright is not installed") from err
    from PIL import Image

    from deepfake_lab.app import build_app, launch_options

    demo = build_app(device="cpu")
    port = _free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, **launch_options())
    shots = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(60_000)
                page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                page.get_by_role("tab").first.wait_for(state="visible")
                page.wait_for_timeout(2000)  # the first tab fills its pictures when the page opens
                tabs = page.get_by_role("tab")
                names = [tabs.nth(i).inner_text().strip() for i in range(tabs.count())]
                for i, name in enumerate(names):
                    page.get_by_role("tab", name=name).first.click()
                    page.wait_for_timeout(800)
                    if name == "Image-to-image":  # show a result, as in class: an example through every model
                        page.locator("#translate-examples button.gallery-item").first.click()
                        page.wait_for_timeout(500)
                        page.locator("#translate-run").click()
                        page.wait_for_function(
                            """() => { const imgs = [...document.querySelectorAll('#translate-outputs img')];
                                       return imgs.length >= 3 && imgs.every(i => i.complete && i.naturalWidth > 0); }""")
                        page.wait_for_timeout(500)
                    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or f"tab{i}"
                    path = asset(f"demo-{slug}.png")
                    page.screenshot(path=str(path), full_page=(name == "Image-to-image"))
                    Image.open(path).convert("RGB").save(path)
                    shots.append((name, path.name))
            finally:
                browser.close()
    finally:
        demo.close()
    if not shots:
        raise Skip("the app showed no tabs")
    TEXT["demo_screenshots"] = "\n\n".join(f"![The demo app, tab “{n}”](assets/{f})" for n, f in shots)
    SECTIONS["demo_screenshots"] = "ok"


# ==============================================================================================
# Rendering
# ==============================================================================================
BLOCK = re.compile(r"<!-- if:(?P<name>[a-z0-9_]+) -->\n?(?P<yes>.*?)(?:<!-- else:(?P=name) -->\n?(?P<no>.*?))?"
                   r"<!-- end:(?P=name) -->\n?", re.S)
PLACEHOLDER = re.compile(r"\{\{([A-Za-z][A-Za-z0-9_]*)\}\}")


def render(template: str) -> str:
    def block(m):
        ok = SECTIONS.get(m.group("name")) == "ok"
        return m.group("yes") if ok else (m.group("no") or "")

    values = {**NUMBERS, **TEXT, "date": _dt.date.today().isoformat()}
    # a section that ran but did not compute every value its text needs is shown as skipped
    demoted = False
    for m in BLOCK.finditer(template):
        name = m.group("name")
        lacking = sorted({p for p in PLACEHOLDER.findall(m.group("yes")) if p not in values})
        if SECTIONS.get(name) == "ok" and lacking:
            SECTIONS[name] = f"skipped: no value for {lacking}"
            print(f"[{name}] shown as skipped: no value for {lacking}")
            demoted = True
    if demoted:
        return render(template)
    previous = None
    while previous != template:  # nested blocks
        previous, template = template, BLOCK.sub(block, template)
    missing = sorted({name for name in PLACEHOLDER.findall(template) if name not in values})
    if missing:
        raise SystemExit(f"{TEMPLATE.name}: no value for {missing}: a section that was not skipped did not "
                         "compute them (fix make_figures.py or put them inside that section's if-block)")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


SECTION_FUNCS = [("architectures", section_architectures), ("gan", section_gan), ("cyclegan", section_cyclegan),
                 ("pix2pix", section_pix2pix), ("data_size", section_data_size), ("animation", section_animation),
                 ("faceswap", section_faceswap),
                 ("detect", section_detect), ("demo_screenshots", section_demo)]


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(max(1, min(2, int(os.environ.get("OMP_NUM_THREADS", "2")))))
    start = time.perf_counter()
    for old in ASSETS.glob("*.png"):  # figures of a section that is skipped now must not linger
        old.unlink()
    for name, func in SECTION_FUNCS:
        t0 = time.perf_counter()
        print(f"[{name}] ...", flush=True)
        torch.manual_seed(0)
        try:
            func()
            SECTIONS.setdefault(name, "ok")
            print(f"[{name}] done in {time.perf_counter() - t0:.1f} s", flush=True)
        except Skip as why:
            SECTIONS[name] = f"skipped: {why}"
            print(f"[{name}] SKIPPED: {why}", flush=True)
        except Exception as err:  # a half-finished lesson must not stop the other sections
            SECTIONS[name] = f"skipped: {type(err).__name__}: {err}"
            print(f"[{name}] SKIPPED after an error: {type(err).__name__}: {err}", flush=True)
            traceback.print_exc(limit=3)
        if not SECTIONS[name].startswith("ok"):
            # drop half-computed values of a failed section so the text never shows them
            for store in (NUMBERS, TEXT):
                for key in [k for k in store if k.startswith(name.split("_")[0] + "_")]:
                    del store[key]
    rendered = render(TEMPLATE.read_text())
    OUTPUT.write_text(rendered)
    used = {k: v for k, v in NUMBERS.items() if v in rendered}
    record = {"generated": _dt.datetime.now().isoformat(timespec="seconds"), "sections": SECTIONS,
              "numbers": used, "seconds": round(time.perf_counter() - start, 1)}
    asset("numbers.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"wrote {OUTPUT.relative_to(ROOT)} and {len(used)} numbers in {record['seconds']} s")
    for name, state in SECTIONS.items():
        print(f"  {name:18s} {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
