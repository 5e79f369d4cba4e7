"""Simultaneous requests for one model share one forward pass: a small batcher per model and picture size.

When a class clicks the same example at once, twenty requests ask the same translator for a 72x72 picture.
Run one by one, each waits for all those before it; stacked into one (N, 3, H, W) batch, the network runs
once for all of them, and on a CPU that is faster per picture for the small pictures of the demo (measured,
``benchmarks/bench_class.py``).

How :meth:`Batcher.translate` works (no timer, no background thread):

1. each request puts its picture in the queue of its (translator, width, height);
2. the first request of an empty queue *leads*: it takes the model's lock (one forward at a time per model),
   takes the first pictures of the queue, at most :meth:`~deepfake_lab.translator.Translator.batch_limit`
   (its own comes first), runs them in one call, and hands each waiting request its own picture;
3. requests that arrived meanwhile stay queued; the leader wakes the first of them, which leads the next batch.

A lone request therefore runs at once, alone, as without batching; requests that arrive while the model is
busy run together as soon as it is free. ``window`` (seconds, default 0) makes a leader wait that long
before taking the lock, for more requests to join. When a stacked forward fails, each of its pictures is
run again alone, so an error reaches only the request whose picture caused it.

A translator that takes one picture at a time (``max_batch`` 1: pix2pix's official test mode) and pictures
larger than the translator's ``batch_side`` run alone, under the same lock.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..translator import Translator

__all__ = ["Batcher"]

log = logging.getLogger("deepfake_lab.app")


@dataclass(eq=False)
class _Job:
    """One request's picture, waiting in a queue; ``ready`` is set when it is done or must lead."""

    image: Image.Image
    ready: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    done: bool = False
    result: Image.Image | None = None
    error: BaseException | None = None
    batch: int = 0  # how many pictures its forward pass held


class Batcher:
    """Stacks the pictures that simultaneous requests send to one translator into one forward pass.

    ``enabled=False`` runs every picture alone (the behaviour without batching, for comparison);
    ``window``: seconds a leader waits for more requests before it runs (0: none). ``forwards`` and
    ``pictures`` count calls of ``run`` and the pictures they held (for tests and benchmarks).
    """

    def __init__(self, enabled: bool = True, window: float = 0.0):
        self.enabled = enabled
        self.window = window
        self.forwards = 0
        self.pictures = 0
        self._guard = threading.Lock()
        self._queues: dict[tuple, list[_Job]] = {}
        self._leading: set[tuple] = set()  # the queues that have a leader now (exactly one each)

    def translate(self, translator: Translator, lock: threading.Lock, image: Image.Image) -> tuple[Image.Image, int]:
        """``translator``'s output for ``image`` and the size of the batch it ran in; ``lock``: the model's lock."""
        limit = translator.batch_limit(*image.size) if self.enabled else 1
        if limit <= 1:
            with lock:
                out = self._run(translator, [image])[0]
            return out, 1
        key = (id(translator), *image.size)
        job = _Job(image)
        with self._guard:
            queue = self._queues.setdefault(key, [])
            queue.append(job)
            if key not in self._leading:  # nobody leads this queue: its leader's job is the first
                self._leading.add(key)
                job.leads = True
        if not job.leads:
            job.ready.wait()  # done by a leader, or woken to lead the next batch
        if not job.done:
            self._lead(key, translator, lock, limit)
        if job.error is not None:
            raise job.error
        return job.result, job.batch

    def pending(self) -> int:
        """Pictures queued now, waiting for their forward pass (the one running included until it ends)."""
        with self._guard:
            return sum(len(queue) for queue in self._queues.values())

    def _lead(self, key: tuple, translator: Translator, lock: threading.Lock, limit: int) -> None:
        """Run the first ``limit`` pictures of ``key``'s queue (the leader's own first), then wake the next leader."""
        if self.window > 0:
            time.sleep(self.window)
        group: list[_Job] = []
        try:
            with lock:
                with self._guard:
                    queue = self._queues[key]
                    group, queue[:limit] = queue[:limit], []
                self._finish(translator, group)
        finally:
            for job in group:  # an interrupted leader must not leave its batch waiting for ever
                if not job.done:
                    job.error, job.done = RuntimeError("the batch this picture was in was interrupted; try again"), True
                    job.ready.set()
            with self._guard:  # hand the lead to the first request still waiting, or leave the queue unled
                queue = self._queues[key]
                if queue:
                    queue[0].leads = True
                    queue[0].ready.set()
                else:
                    del self._queues[key]
                    self._leading.discard(key)

    def _finish(self, translator: Translator, group: list[_Job]) -> None:
        """One forward for the whole group; if it fails, each picture alone, so each request gets its own error."""
        try:
            outputs: list[Any] = self._run(translator, [job.image for job in group])
            sizes = [len(group)] * len(group)
        except Exception as err:  # noqa: BLE001 - told to the request(s) that caused it below
            if len(group) == 1:
                outputs, sizes = [err], [1]
            else:
                log.info("a batch of %d failed (%s); running its pictures one by one", len(group), err)
                outputs, sizes = [], [1] * len(group)
                for job in group:
                    try:
                        outputs.append(self._run(translator, [job.image])[0])
                    except Exception as alone:  # noqa: BLE001 - this picture's own error
                        outputs.append(alone)
        for job, out, size in zip(group, outputs, sizes):
            if isinstance(out, BaseException):
                job.error = out
            else:
                job.result = out
            job.batch, job.done = size, True
            job.ready.set()

    def _run(self, translator: Translator, images: list[Image.Image]) -> list[Image.Image]:
        out = translator.translate_many(images)
        with self._guard:
            self.forwards += 1
            self.pictures += len(images)
        return out
