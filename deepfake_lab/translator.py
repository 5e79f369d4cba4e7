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

__all__ = ["Translator", "Importer", "network_runner"]


@dataclass
class Translator:
    """A loaded image-to-image model: ``run`` maps (1, 3, H, W) in [-1, 1] to the same shape.

    ``details`` (model file, kind, direction...) go into the provenance chunks of every output.
    """

    run: Callable[[torch.Tensor], torch.Tensor]
    kind: str
    direction: str
    details: dict[str, Any] = field(default_factory=dict)

    def __call__(self, image):
        """A PIL RGB image -> the translated PIL RGB image of the same size."""
        from .data.images import pil_to_tensor
        from .viz import to_pil

        x = pil_to_tensor(image)[None]         # (1, 3, H, W)
        with torch.no_grad():
            y = self.run(x)
        return to_pil(y[0].float().cpu())


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
      ``{name: state_dict or module}`` and the config dict, ready for :func:`checkpoints.save_weights`.
    """

    kind: str
    help: str
    claims: Callable[[dict], bool]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    convert: Callable[[dict, str, argparse.Namespace], tuple[dict, dict, dict]]
