"""Simultaneous Image-to-image requests share forward passes (:mod:`deepfake_lab.app.batching`), and the app sizes
its concurrency from the machine (:func:`deepfake_lab.app.ui.serving_plan`).

The batcher is tested with a stand-in translator whose ``run`` records each call's shape (fast, and the
batches are made deterministic by holding the model's lock while the requests queue up); the demo models
with their real weights; the app through ``gradio_client`` on the shared in-process server.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from deepfake_lab.app.batching import Batcher
from deepfake_lab.app.common import AppContext, ModelStore
from deepfake_lab.app.models import demo_entries, spec
from deepfake_lab.checkpoints import load_weights
from deepfake_lab.importers import pix2pix as pix2pix_importer
from deepfake_lab.translator import Translator


class Recorder:
    """A stand-in network: doubles its input (clamped), remembers the shape of every call, refuses white pixels."""

    def __init__(self):
        self.shapes: list[tuple[int, ...]] = []
        self.lock = threading.Lock()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with self.lock:
            self.shapes.append(tuple(x.shape))
        if (x > 0.99).any():
            raise ValueError("white picture: refused")
        return (x * 2).clamp(-1, 1)


def picture(level: int, size=(72, 72)) -> Image.Image:
    return Image.new("RGB", size, (level, level // 2, 255 - level))


def queued(batcher: Batcher, pictures: list[Image.Image], translator, lock, stacked=True) -> tuple[list, list]:
    """Send every picture from its own thread while ``lock`` is held, release it once all are queued.

    Returns (results, errors) in the pictures' order; a result is (image, batch size). ``stacked=False``:
    pictures that are not to be stacked wait for the lock itself, not in a queue: release it after 0.3 s.
    """
    results, errors = [None] * len(pictures), [None] * len(pictures)

    def send(i):
        try:
            results[i] = batcher.translate(translator, lock, pictures[i])
        except Exception as err:  # noqa: BLE001 - the test checks who got which error
            errors[i] = err

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(pictures))]
    with lock:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        time.sleep(0 if stacked else 0.3)
        while stacked and batcher.pending() < len(pictures):
            assert time.monotonic() < deadline, f"only {batcher.pending()} of {len(pictures)} requests queued"
            time.sleep(0.005)
    for t in threads:
        t.join(timeout=30)
    return results, errors


def stand_in(max_batch=4, batch_side=None) -> tuple[Translator, Recorder]:
    net = Recorder()
    return Translator(net, "stand-in", "AtoB", max_batch=max_batch, batch_side=batch_side), net


def test_simultaneous_requests_of_one_size_share_one_forward_and_each_gets_its_own_picture():
    translator, net = stand_in(max_batch=4)
    images = [picture(level) for level in (10, 60, 110, 160)]
    results, errors = queued(Batcher(), images, translator, threading.Lock())
    assert errors == [None] * 4
    assert net.shapes == [(4, 3, 72, 72)], "four simultaneous requests should make one forward of four"
    for image, (out, batch) in zip(images, results):
        assert batch == 4
        assert np.array_equal(np.asarray(out), np.asarray(translator(image))), "a caller got another's picture"


def test_batches_stop_at_the_translators_limit_and_the_rest_follow():
    translator, net = stand_in(max_batch=2)
    results, errors = queued(Batcher(), [picture(20 * i + 10) for i in range(5)], translator, threading.Lock())
    assert errors == [None] * 5
    assert sorted(s[0] for s in net.shapes) == [1, 2, 2]
    assert sorted(batch for _, batch in results) == [1, 2, 2, 2, 2]


def test_different_sizes_are_never_stacked_together():
    translator, net = stand_in(max_batch=4)
    images = [picture(10), picture(50, (64, 48)), picture(90), picture(130, (64, 48))]
    results, errors = queued(Batcher(), images, translator, threading.Lock())
    assert errors == [None] * 4
    assert sorted(net.shapes) == [(2, 3, 48, 64), (2, 3, 72, 72)]
    assert [out.size for out, _ in results] == [im.size for im in images]


def test_an_error_reaches_only_the_request_that_caused_it():
    translator, net = stand_in(max_batch=4)
    images = [picture(10), Image.new("RGB", (72, 72), (255, 255, 255)), picture(90), picture(170)]
    results, errors = queued(Batcher(), images, translator, threading.Lock())
    assert isinstance(errors[1], ValueError) and "white picture" in str(errors[1])
    assert results[1] is None
    assert net.shapes == [(4, 3, 72, 72)] + [(1, 3, 72, 72)] * 4  # the batch, then each picture alone
    for i in (0, 2, 3):
        assert errors[i] is None
        assert np.array_equal(np.asarray(results[i][0]), np.asarray(translator(images[i])))


def test_many_requests_in_a_rush_all_get_their_own_answer():
    translator, net = stand_in(max_batch=4)
    batcher, lock = Batcher(), threading.Lock()
    sizes = ((72, 72), (64, 48))
    failures = []

    def student(n):
        for k in range(6):
            image = picture((7 * n + 13 * k) % 200 + 10, sizes[(n + k) % 2])
            try:
                out, _ = batcher.translate(translator, lock, image)
                expected = (np.asarray(image, dtype=np.float32) / 127.5 - 1) * 2
                if np.abs(np.asarray(out, dtype=np.float32) / 127.5 - 1 - expected.clip(-1, 1)).max() > 0.02:
                    failures.append(f"student {n}, request {k}: another picture's answer")
            except Exception as err:  # noqa: BLE001 - collected, every failure reported
                failures.append(f"student {n}, request {k}: {type(err).__name__}: {err}")

    threads = [threading.Thread(target=student, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures[:3]
    assert sum(shape[0] for shape in net.shapes) == 32 * 6 and batcher.pending() == 0
    assert all(shape[0] <= 4 for shape in net.shapes)


def test_one_at_a_time_translators_large_pictures_and_batching_off_run_alone():
    single, net = stand_in(max_batch=1)
    queued(Batcher(), [picture(10), picture(40)], single, threading.Lock(), stacked=False)
    assert net.shapes == [(1, 3, 72, 72)] * 2
    small_only, net = stand_in(max_batch=4, batch_side=64)
    queued(Batcher(), [picture(10), picture(40)], small_only, threading.Lock(), stacked=False)
    assert net.shapes == [(1, 3, 72, 72)] * 2, "pictures over batch_side must run alone"
    any_size, net = stand_in(max_batch=4)
    queued(Batcher(enabled=False), [picture(10), picture(40)], any_size, threading.Lock(), stacked=False)
    assert net.shapes == [(1, 3, 72, 72)] * 2


def test_pix2pix_official_test_mode_is_never_batched():
    nets, meta = load_weights(spec("pix2pix-carphone-edges").embedded())
    official = pix2pix_importer.translator(nets, {**meta, "test_mode": "official"}, "auto", torch.device("cpu"), "fp32")
    assert official.batch_limit(128, 128) == 1
    own = pix2pix_importer.translator(nets, meta, "auto", torch.device("cpu"), "fp32")
    assert own.batch_limit(128, 128) > 1 and own.batch_limit(512, 384) > 1


def test_demo_models_give_the_same_pixels_stacked_as_alone():
    torch.manual_seed(0)
    ctx = AppContext(device=torch.device("cpu"), models=ModelStore(torch.device("cpu")))
    for size in ((72, 72), (128, 128)):
        images = [Image.fromarray(np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
                  for i in range(2)]
        for entry in demo_entries(ctx):
            assert entry.translator.batch_limit(*size) >= 2, f"{entry.name} should stack {size} pictures"
            together = entry.translator.translate_many(images)
            for image, out in zip(images, together):
                diff = np.abs(np.asarray(out, dtype=int) - np.asarray(entry.translator(image), dtype=int)).max()
                assert diff <= 1, f"{entry.name} at {size}: stacked output differs by {diff} levels from alone"


def test_serving_plan_never_gives_more_threads_than_cores(monkeypatch):
    from deepfake_lab.app.ui import CONCURRENCY_ENV, serving_plan

    monkeypatch.delenv(CONCURRENCY_ENV, raising=False)
    for cores in (1, 2, 4, 16, 64):
        concurrency, threads = serving_plan(cores=cores)
        assert concurrency >= 2 and threads >= 1
        assert threads == 1 or concurrency * threads <= cores, f"{concurrency} x {threads} threads on {cores} cores"
    assert serving_plan(2, cores=16) == (2, 8)
    monkeypatch.setenv(CONCURRENCY_ENV, "3")
    assert serving_plan(cores=12) == (3, 4)
    assert serving_plan(6, cores=12) == (6, 2), "--concurrency wins over the environment"
    monkeypatch.setenv(CONCURRENCY_ENV, "many")
    with pytest.raises(ValueError, match=CONCURRENCY_ENV):
        serving_plan(cores=4)
    with pytest.raises(ValueError, match="--concurrency 0"):
        serving_plan(0, cores=4)


def test_demo_command_takes_concurrency_and_no_batching():
    from deepfake_lab.cli import build_parser

    args = build_parser().parse_args(["demo", "--concurrency", "6", "--no-batching"])
    assert args.concurrency == 6 and args.no_batching


def test_eight_simultaneous_app_requests_all_come_back_labelled_and_right(demo_server):
    pytest.importorskip("gradio")
    from gradio_client import Client, handle_file
    from test_app import open_labelled_png

    from deepfake_lab.app.examples import examples

    demo, url = demo_server
    client = Client(url, verbose=False)
    inputs = [e.input for e in examples()][:2]  # two different tiles, sent alternately
    jobs = [client.submit(handle_file(str(inputs[i % 2])), "", "auto", api_name="/image_to_image") for i in range(8)]
    answers: dict[tuple[int, str], list[np.ndarray]] = {}
    for i, job in enumerate(jobs):
        gallery = job.result(timeout=180)[0]
        assert len(gallery) == 3, f"request {i}: {len(gallery)} outputs instead of one per demo model"
        for item in gallery:
            image, details = open_labelled_png(item["image"])  # the SYNTHETIC strip and the provenance chunks
            assert details["name"] in item["caption"] and details["input"]
            answers.setdefault((i % 2, details["name"]), []).append(np.asarray(image, dtype=int))
    for (which, name), images in answers.items():
        assert len(images) == 4
        assert all(np.abs(im - images[0]).max() <= 1 for im in images), f"{name}: one tile, different answers"
        other = answers[(1 - which, name)][0]
        assert other.shape != images[0].shape or np.abs(other - images[0]).max() > 1, \
            f"{name}: two different tiles came back as the same picture (a request got another's answer)"
    assert demo.deepfake_lab_context.batcher.pending() == 0
