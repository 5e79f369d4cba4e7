"""Saving and loading weights and training state, safely.

Two files make one training checkpoint, both written atomically (temp file in the same folder,
``fsync``, ``os.replace``), and a small ``latest.json`` pointer written last, so a crash at any
moment leaves the previous checkpoint intact:

* ``step-000100.safetensors``: every network's weights (``G.model.1.weight``, ``D.model.0.weight``...)
  with metadata: the lesson (``kind``), its config as JSON, the step. safetensors holds only
  tensors, so loading one can never run code.
* ``step-000100.state.pt``: optimizers, schedulers, RNG states and counters; plain tensors, numbers,
  lists and dicts, loaded with ``torch.load(weights_only=True)``.

Files from elsewhere (official ``.pth`` checkpoints) are opened with :func:`load_torch_untrusted`,
which refuses anything that needs unpickling code.
"""
from __future__ import annotations

import json
import os
import tarfile
import tempfile
import warnings
import zipfile
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = [
    "CheckpointError",
    "config_to_dict",
    "config_from_dict",
    "atomic_write",
    "save_weights",
    "load_weights",
    "read_metadata",
    "load_torch_untrusted",
    "save_state",
    "load_state",
]


def config_to_dict(config) -> dict[str, Any]:
    return asdict(config) if is_dataclass(config) else dict(config)


def config_from_dict(cls, values: dict[str, Any]):
    """Rebuild a config dataclass from a dict, ignoring keys it does not know (older/newer files)."""
    names = {f.name for f in fields(cls)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in names}
    return cls(**kwargs)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and what to do."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` then move the finished file onto ``path`` in one step.

    Readers see either the old file or the complete new one, never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on folders
        pass
    return path


def _flatten(networks: dict[str, torch.nn.Module | dict[str, torch.Tensor]], dtype: torch.dtype | None):
    tensors: dict[str, torch.Tensor] = {}
    for net_name, net in networks.items():
        state = net.state_dict() if isinstance(net, torch.nn.Module) else net
        for key, value in state.items():
            value = value.detach().to("cpu")
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
            tensors[f"{net_name}.{key}"] = value.contiguous()
    return tensors


def save_weights(
    path: str | os.PathLike,
    networks: dict[str, torch.nn.Module | dict[str, torch.Tensor]],
    kind: str,
    config: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the weights of ``networks`` (name -> module) to one safetensors file, atomically.

    ``kind`` names the lesson (``"gan"``, ``"cyclegan"``...) and ``config`` its dataclass as a dict,
    so the file alone is enough to rebuild the model. ``dtype=torch.float16`` halves the size
    (the demo weights shipped in the package are stored that way).
    """
    tensors = _flatten(networks, dtype)
    metadata = {"kind": kind, "config": json.dumps(config or {}), "networks": json.dumps(sorted(networks))}
    for key, value in (extra or {}).items():
        metadata[key] = value if isinstance(value, str) else json.dumps(value)
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a weights file: ``kind``, ``config`` (a dict), ``networks`` and any extras."""
    from safetensors import safe_open

    path = Path(path)
    _check_is_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(_not_safetensors_message(path, err)) from err
    meta: dict[str, Any] = dict(raw)
    for key in ("config", "networks"):
        if key in meta:
            meta[key] = json.loads(meta[key])
    return meta


def load_weights(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Read a weights file back as ``({net_name: state_dict}, metadata)``."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        flat = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(_not_safetensors_message(path, err)) from err
    nets: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        net_name, _, rest = key.partition(".")
        nets.setdefault(net_name, {})[rest] = value
    return nets, meta


def _check_is_file(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"{path}: no such file; give the path of a .safetensors weights file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; give a .safetensors file inside it (or the run folder to --resume)")


def _not_safetensors_message(path: Path, err: Exception) -> str:
    hint = ""
    if zipfile.is_zipfile(path) or path.suffix in (".pth", ".pt", ".tar", ".ckpt"):
        hint = " It looks like a PyTorch pickle: official checkpoints are imported with `deepfake-lab import ...`."
    return f"{path}: not a readable safetensors weights file ({err}).{hint}"


def load_torch_untrusted(path: str | os.PathLike) -> Any:
    """Open a ``.pth``/``.pt``/``.pth.tar`` from elsewhere without running any code it carries.

    ``torch.load(weights_only=True)`` allows tensors, numbers, strings, lists and dicts only.
    A file that needs more (a pickled class or function) is refused with a clear message.
    """
    path = Path(path)
    _check_is_file(path)
    with path.open("rb") as f:
        head = f.read(8)
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80") or tarfile.is_tarfile(path)):
        raise CheckpointError(f"{path}: not a torch checkpoint at all (not a zip/pickle file: first bytes {head!r}); "
                              "give the .pth file that torch.save wrote")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: the refusal below says what matters
            warnings.filterwarnings("ignore", message=r".*(pickle protocol|weights_only)", category=UserWarning)
            warnings.filterwarnings("ignore", message=r".*(pickle protocol|weights_only)", category=FutureWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        text = str(err)
        if "Unsupported global" in text or "GLOBAL" in text:  # a class or function that weights_only refuses
            raise CheckpointError(
                f"{path}: refused: it holds pickled Python objects that weights_only refuses, not just tensors, and "
                "unpickling an untrusted file can run arbitrary code. Re-save it as a plain state_dict (or "
                "safetensors) on a machine you trust."
            ) from err
        if "WeightsUnpickler error:" in text:  # torch's long notice; its reason is the part after this
            text = " ".join(text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0].split())
        raise CheckpointError(f"{path}: not a PyTorch checkpoint this can read, damaged or of another kind "
                              f"({err.__class__.__name__}: {text})") from err


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write training state (optimizers, schedulers, RNG, counters) atomically, loadable with weights_only."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read training state written by :func:`save_state` (``weights_only=True``: no code runs)."""
    state = load_torch_untrusted(path)
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{path}: not a deepfake_lab training state file (no 'step')")
    return state
