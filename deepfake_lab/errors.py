"""The error every entry point turns into one line: wrong input from the user (exit status 2).

Errors of a layer keep their own class beside it (:class:`deepfake_lab.data.DataError`,
:class:`deepfake_lab.checkpoints.CheckpointError`); this one is for flags and arguments.
"""
from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """Wrong input from the user; printed as one line, exit status 2."""
