"""What an image-to-image lesson hands ``translate`` and the app: a :class:`Translator`, and an :class:`Importer`.

* :class:`Translator`: a loaded model that maps a picture to a picture (``run`` on tensors, ``__call__`` on
  PIL images), with the details that go into the provenance of every output;
* :func:`network_runner`: wraps a fully convolutional network so it runs on any picture size;
* :class:`Importer`: how a lesson recognises and converts one kind of official checkpoint.

The lesson table (:mod:`deepfake_lab.lessons`) names each lesson's translator builder and importer;
:mod:`deepfake_lab.translate` reads the table.
"""
from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["Translator", "Importer", "network_runner", "is_official"]


@dataclass
class Translator:
    """A loaded image-to-image model: ``run`` maps (N, 3, H, W) in [-1, 1] to the same shape.

    ``details`` (model file, kind, direction...) go into the provenance chunks of every output.
    ``run`` takes up to ``max_batch`` pictures of one size at once (1: one at a time, as pix2pix's official
    test mode, whose BatchNorm must see each picture alone); pictures longer than ``batch_side`` pixels on a
    side are not worth stacking (no faster per picture; None: any size). The app stacks simultaneous
    requests by these two numbers (:mod:`deepfake_lab.app.batching`).
    """

    run: Callable[[torch.Tensor], torch.Tensor]
    kind: str
    direction: str
    details: dict[str, Any] = field(default_factory=dict)
    max_batch: int = 1
    batch_side: int | None = None

    def batch_limit(self, width: int, height: int) -> int:
        """How many pictures of ``width`` x ``height`` one call of ``run`` should take."""
        if self.batch_side is not None and max(width, height) > self.batch_side:
            return 1
        return max(1, self.max_batch)

    def __call__(self, image):
        """A PIL RGB image -> the translated PIL RGB image of the same size."""
        return self.translate_many([image])[0]

    def translate_many(self, images: list) -> list:
        """PIL RGB images of one size -> their translations, in one call of ``run`` (at most ``max_batch``)."""
        from .data.images import pil_to_tensor
        from .viz import to_pil

        if len({im.size for im in images}) > 1 or len(images) > max(1, self.max_batch):
            raise ValueError(f"{self.kind} translator: takes up to {max(1, self.max_batch)} pictures of one size "
                             f"at once, got {len(images)} of sizes {sorted({im.size for im in images})}; "
                             "pass them in groups")
        x = torch.stack([pil_to_tensor(im) for im in images])  # (N, 3, H, W)
        with torch.no_grad():
            y = self.run(x)
        return [to_pil(y[i].float().cpu()) for i in range(len(images))]


def network_runner(net: nn.Module, multiple: int = 4, precision=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap a fully convolutional ``net`` so it runs on any size: reflection-pad to ``multiple``, run, crop back."""
    from .data.images import pad_to_multiple, unpad

    device = next(net.parameters()).device

    def run(x: torch.Tensor) -> torch.Tensor:
        padded, size = pad_to_multiple(x.to(device), multiple)
        with torch.no_grad(), (precision.autocast() if precision is not None else contextlib.nullcontext()):
            y = net(padded)
        return unpad(y.float(), size)

    return run


@dataclass
class Importer:
    """How one lesson imports official checkpoints.

    * ``claims(state_dict)``: True when the state dict is this lesson's kind of network;
    * ``add_arguments(parser)``: the flags of ``deepfake-lab import <kind>`` (e.g. ``--n-blocks``);
    * ``convert(state_dict, name, args)`` -> ``(networks, config, extra)``: networks as
      ``{name: state_dict or module}`` and the config dict, ready for :func:`checkpoints.save_weights`;
    * ``describe(state_dict, name)`` (optional) -> one line saying what the file holds, after checking that
      it converts (``deepfake-lab fetch --pretrained`` checks a download with it); raises ``ValueError``
      naming the file when it is not this kind;
    * ``explain(state_dict, name)`` (optional) -> for a file this lesson recognises as *related but not
      translatable* (a discriminator), what it is and which file to give instead; ``None`` otherwise.

    ``name`` is the file's name, for messages.
    """

    kind: str
    help: str
    claims: Callable[[dict], bool]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    convert: Callable[[dict, str, argparse.Namespace], tuple[dict, dict, dict]]
    describe: Callable[[dict, str], str] | None = None
    explain: Callable[[dict, str], str | None] | None = None


def is_official(meta: dict) -> bool:
    """True for a model converted from an official checkpoint (in memory, or once by ``deepfake-lab import``):
    its outputs must reproduce the official code's, so the precision policy keeps it in fp32."""
    return bool(meta.get("official") or meta.get("imported_from"))
