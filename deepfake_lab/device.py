"""Where the tensors live and in what precision: one place for every lesson.

* :func:`pick_device` chooses CUDA, then Apple MPS, then the CPU (``--device`` overrides).
* :func:`seed_everything` seeds Python, NumPy and torch (all devices) from one integer.
* :class:`Precision` is the mixed-precision policy of one model on one device, and
  :func:`choose_precision` is the **measured** policy that picks it (``--precision auto``):

  1. ``--precision fp32|bf16`` decides;
  2. a model whose bf16 outputs do not stay within its parity bound (its config's ``bf16_ok`` is
     False, set from the bound tests in ``tests/test_precision.py``), and every imported official
     checkpoint (its outputs must match the official code within 1 level of 255), runs fp32;
  3. fp32 on MPS, on CUDA cards without bf16, and on CPUs without native bf16 (AVX2 only: bf16 is
     emulated there, 8-15x slower);
  4. otherwise the first use times a few steps in both precisions (seconds) and caches the verdict in
     ``<cache>/precision.json``, keyed by CPU or GPU model, torch version and model config: bf16 only
     when it measured at least :data:`MIN_GAIN` faster, so ``auto`` is never slower than fp32.

  The choice and its reason are printed by the commands and shown in the app's header.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import random
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

__all__ = ["pick_device", "seed_everything", "Precision", "precision_for", "choose_precision", "describe",
           "cpu_supports_bf16", "machine_key", "time_precisions", "inference_probe", "MIN_GAIN", "mix_seeds", "policy_summary"]


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


def mix_seeds(*values: int) -> int:
    """A fixed, platform-independent hash of a few integers (Python's hash() is salted per process)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h ^= (v + 0x9E3779B97F4A7C15 + ((h << 6) & 0xFFFFFFFFFFFFFFFF) + (h >> 2)) & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


@dataclass(frozen=True)
class Precision:
    """A mixed-precision policy: autocast to ``dtype`` on ``device_type``, or plain fp32 when ``dtype`` is None.

    bf16 keeps fp32's exponent range, so no gradient scaler is needed (unlike fp16).
    """

    device_type: str
    dtype: torch.dtype | None = None
    #: why the policy chose it, in words (printed by the commands, shown in the app)
    reason: str = ""

    @property
    def name(self) -> str:
        return "fp32" if self.dtype is None else f"{str(self.dtype).removeprefix('torch.')} autocast"

    def describe(self) -> str:
        return f"{self.name} ({self.reason})" if self.reason else self.name

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


#: bf16 is chosen only when it measured at least this much faster than fp32 (ratio of seconds)
MIN_GAIN = 1.10
#: timed calls per precision (after one warm-up each), alternating fp32 and bf16
PROBE_REPEATS = 3


def machine_key(device: torch.device) -> str:
    """The processor a verdict belongs to: the GPU's name, or the CPU's model name and bf16 capability."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    return f"cpu:{name}:{capability}:{'bf16' if cpu_supports_bf16() else 'no-bf16'}:{torch.get_num_threads()}t"


def _cache_file():
    from .settings import cache_dir

    return cache_dir() / "precision.json"


def _read_cache(path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def time_precisions(probe: Callable[["Precision"], None], device: torch.device,
                    repeats: int = PROBE_REPEATS) -> dict[str, float]:
    """Median seconds of ``probe(precision)`` in fp32 and in bf16, alternating (one warm-up each)."""
    candidates = {"fp32": Precision(device.type, None), "bf16": Precision(device.type, torch.bfloat16)}
    times: dict[str, list[float]] = {k: [] for k in candidates}

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for name, prec in candidates.items():  # warm-up: kernels chosen, memory allocated
        probe(prec)
    sync()
    for _ in range(repeats):
        for name, prec in candidates.items():
            start = time.perf_counter()
            probe(prec)
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def choose_precision(device: torch.device, mode: str = "auto", *, key: str = "", bf16_ok: bool = True,
                     official: bool = False, probe: Callable[[Precision], None] | None = None,
                     cache: bool = True) -> Precision:
    """The precision of one model on ``device`` under the measured policy (see the module docstring).

    ``key`` names the model and its config (e.g. ``"cyclegan train " + config hash``); ``probe(precision)``
    runs a few representative calls (one training step, or one forward) under that precision without
    changing the model. Without a probe, bf16 is not chosen on the CPU (nothing measured it faster);
    on CUDA it is (bf16 autocast pays on every card that supports it).
    """
    if mode == "fp32":
        return Precision(device.type, None, "--precision fp32")
    if mode == "bf16":
        return Precision(device.type, torch.bfloat16, "--precision bf16")
    if mode != "auto":
        raise ValueError(f"--precision {mode!r}: use auto, fp32 or bf16")
    if official:
        return Precision(device.type, None, "an official checkpoint: fp32 reproduces the official outputs; "
                                            "--precision bf16 trades that for speed")
    if not bf16_ok:
        return Precision(device.type, None, "bf16 moves this model's outputs beyond its parity bound")
    if device.type == "mps":
        return Precision("mps", None, "Apple MPS: fp32")
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return Precision("cuda", None, "this CUDA card has no bf16")
    if device.type == "cpu" and not cpu_supports_bf16():
        return Precision("cpu", None, "this CPU has no native bf16 (AVX2 only): bf16 would be emulated and slower")
    if probe is None:
        if device.type == "cuda":
            return Precision("cuda", torch.bfloat16, "CUDA card with bf16")
        return Precision("cpu", None, "not measured for this model: fp32")

    entry_key = "|".join((machine_key(device), f"torch {torch.__version__}", key))
    path = _cache_file()
    entries = _read_cache(path) if cache else {}
    entry = entries.get(hashlib.sha1(entry_key.encode()).hexdigest())
    if entry is None:
        seconds = time_precisions(probe, device)
        ratio = seconds["fp32"] / max(seconds["bf16"], 1e-12)
        entry = {"key": entry_key, "fp32_s": seconds["fp32"], "bf16_s": seconds["bf16"], "ratio": ratio,
                 "bf16": ratio >= MIN_GAIN}
        if cache:
            from .checkpoints import atomic_write

            entries[hashlib.sha1(entry_key.encode()).hexdigest()] = entry
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda tmp: open(tmp, "w").write(json.dumps(entries, indent=1)))
        measured = "measured"
    else:
        measured = "measured earlier"
    if entry["bf16"]:
        return Precision(device.type, torch.bfloat16, f"{measured}: bf16 {entry['ratio']:.2f}x faster than fp32")
    return Precision(device.type, None, f"{measured}: bf16 {entry['ratio']:.2f}x of fp32, not faster")


def precision_for(device: torch.device, bf16_ok: bool = True, mode: str = "auto", *, official: bool = False,
                  key: str = "", probe: Callable[[Precision], None] | None = None) -> Precision:
    """Shorthand of :func:`choose_precision` for a model whose config says whether bf16 meets its bound."""
    return choose_precision(device, mode, key=key, bf16_ok=bf16_ok, official=official, probe=probe)


def inference_probe(net: Callable[[torch.Tensor], object], example: torch.Tensor) -> Callable[[Precision], None]:
    """A ``probe(precision)`` for :func:`choose_precision`: one forward of ``net`` on ``example`` without gradients."""

    def probe(precision: Precision) -> None:
        with torch.no_grad(), precision.autocast():
            net(example)

    return probe


def policy_summary(device: torch.device) -> str:
    """One line on what ``--precision auto`` does on ``device``, for the app's header."""
    if device.type == "cpu" and not cpu_supports_bf16():
        return "fp32 (this CPU has no native bf16; bf16 would be emulated and slower)"
    if device.type == "mps":
        return "fp32 (Apple MPS)"
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp32 (this CUDA card has no bf16)"
    return ("bf16 autocast where it measured faster and keeps the model within its parity bound, else fp32; "
            "official checkpoints fp32")
