"""``deepfake-lab``: the command line.

Every command is written once, here, and reads the lesson table (:mod:`deepfake_lab.lessons`) for what
differs between lessons:

* :mod:`.train`: ``deepfake-lab train <lesson>``, one command for every lesson (device, precision, seed,
  loop, DDP, held-out evaluation, export);
* :mod:`.generate`: ``sample``, ``translate``, ``import``, ``swap`` (every output labelled synthetic);
* :mod:`.animate`: ``animate`` and ``animate-eval``;
* :mod:`.verify`: ``verify``, which reads the marks of a file back;
* :mod:`.data`: ``fetch``, ``eval``, ``setup-weights``;
* :mod:`.demo`: ``demo``, the classroom app.

This module holds what they share: the loop and device flags, turning errors into one clear line
instead of a traceback, and notes about converted inputs (``ImageConversionWarning``) into one line each:
``deepfake-lab: note: photo.png: is grayscale; ...``.

    deepfake-lab train gan --data ring8 --out runs/ring8
    deepfake-lab sample --model runs/ring8 -o samples.png
    deepfake-lab demo
"""
from __future__ import annotations

import argparse
import sys
import warnings

from ..errors import UserError
from ..settings import quick_mode
from .common import add_device_arguments, add_loop_arguments, loop_config_from_args

__all__ = ["main", "build_parser", "UserError", "quick_mode", "add_device_arguments", "add_loop_arguments",
           "loop_config_from_args"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from . import animate, data, demo, generate, train, verify

    parser = argparse.ArgumentParser(
        prog="deepfake-lab",
        description="How deepfakes are made, block by block. Every image it writes is labelled synthetic.")
    parser.add_argument("--version", action="version", version=f"deepfake_lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (train, generate, animate, verify, data, demo):  # the order of ``--help``
        module.add_commands(sub)
    return parser


def _print_notes_as_lines() -> None:
    """Show every ImageConversionWarning as ``deepfake-lab: note: ...`` on stderr; other warnings as before.

    Call inside ``warnings.catch_warnings()``, which puts the previous behaviour back.
    """
    from ..data.images import ImageConversionWarning

    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ImageConversionWarning):
            print(f"deepfake-lab: note: {message}", file=sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.simplefilter("always", ImageConversionWarning)  # one note per converted file, every time


def main(argv: list[str] | None = None) -> int:
    from ..checkpoints import CheckpointError

    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            _print_notes_as_lines()
            return int(func(args) or 0)
    except (UserError, CheckpointError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"deepfake-lab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepfake-lab: interrupted", file=sys.stderr)
        return 130
