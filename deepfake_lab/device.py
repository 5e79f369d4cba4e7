"""Where the tensors live and in what precision: one place for every lesson.

* :func:`pick_device` chooses CUDA, then Apple MPS, then the CPU (``--device`` overrides).
* :func:`seed_everything` seeds Python, NumPy and torch (all devices) from one integer.
* :class:`Precision` is the mixed-precision policy of one model on one device:
  bf16 autocast on CUDA (where the card supports it), and on the CPU only for models that
  measured faster with it (the ResNet generators are ~2x faster in bf16 on an AVX-512-bf16 CPU,
  the U-Net is 5x *slower*: ``benchmarks/`` measures both). Models declare ``cpu_bf16`` in
  their config; the policy never guesses.
"""
from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["pick_device", "seed_everything", "Precision", "precision_for", "describe"]


def pick_device(name: str | None = None) -> torch.device:
    """Return the device to run on.

    ``name`` is ``None``/``"auto"`` (CUDA, then MPS, then CPU) or anything ``torch.device``
    accepts (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``). Asking for a device that is not
    there is an error that says what is.
    """
    if name in (None, "", "auto"):
        if torch.cuda.is_available():  # under torchrun, each process takes the GPU of its LOCAL_RANK
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device {name!r}: not a device name; use auto, cpu, cuda, cuda:N or mps") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu (or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"--device {name}: Apple MPS is not available here; use --device cpu (or auto)")
    return device


def describe(device: torch.device) -> str:
    """A short human description, e.g. for the app's header: ``"CUDA: NVIDIA H100"``."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    """Seed every random number generator a lesson touches (Python, NumPy, torch CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


@dataclass(frozen=True)
class Precision:
    """A mixed-precision policy: autocast to ``dtype`` on ``device_type``, or plain fp32 when ``dtype`` is None.

    bf16 keeps fp32's exponent range, so no gradient scaler is needed (unlike fp16).
    """

    device_type: str
    dtype: torch.dtype | None = None

    @property
    def name(self) -> str:
        return "fp32" if self.dtype is None else f"{str(self.dtype).removeprefix('torch.')} autocast"

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context manager for the forward passes (losses included); backward runs outside it."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 dot products (AVX-512-bf16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.backends.cpu.get_cpu_capability() in ("AVX512_BF16", "AMX")) or _cpuinfo_has_bf16()
    except Exception:  # pragma: no cover - very old torch
        return _cpuinfo_has_bf16()


def _cpuinfo_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def precision_for(device: torch.device, cpu_bf16: bool = False, mode: str = "auto") -> Precision:
    """The precision policy of one model on ``device``.

    ``mode`` is ``"auto"`` (the policy below), ``"fp32"`` or ``"bf16"`` (forced, e.g. by ``--precision``).
    Auto: bf16 autocast on CUDA cards that support it; on the CPU only when the model says it is
    faster there (``cpu_bf16``) *and* the CPU has native bf16; fp32 on MPS.
    """
    if mode == "fp32":
        return Precision(device.type, None)
    if mode == "bf16":
        return Precision(device.type, torch.bfloat16)
    if mode != "auto":
        raise ValueError(f"--precision {mode!r}: use auto, fp32 or bf16")
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return Precision("cuda", torch.bfloat16)
    if device.type == "cpu" and cpu_bf16 and cpu_supports_bf16():
        return Precision("cpu", torch.bfloat16)
    return Precision(device.type, None)
