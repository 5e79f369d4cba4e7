"""Loading animation weights: this package's safetensors files and the official ``*.pth.tar`` checkpoints.

The official first-order-model checkpoints (``vox-cpk.pth.tar``, ``taichi-cpk.pth.tar``...) are
pickles of a dict ``{"generator": state_dict, "kp_detector": state_dict, "discriminator": ...,
"optimizer_*": ..., "epoch": int}``. Because :class:`~.keypoints.KPDetector` and
:class:`~.generator.OcclusionAwareGenerator` use the official module names, the two state dicts load
unchanged (``strict=True``); only a DataParallel ``module.`` prefix is removed, and missing
``num_batches_tracked`` counters (files from old PyTorch versions) are filled with zeros. The
network sizes are read off the tensor shapes, so any official config loads, not only vox-256.

The file is opened with :func:`deepfake_lab.checkpoints.load_torch_untrusted`
(``weights_only=True``), which refuses pickles that would run code.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..checkpoints import CheckpointError, load_torch_untrusted, load_weights, save_weights
from ..device import inference_probe, pick_device, precision_for
from ..settings import demo_weights
from ..train import config_from_dict, config_to_dict
from .model import AnimationConfig, FirstOrderModel

__all__ = ["DEMO_WEIGHTS", "load_animation_model", "load_official_checkpoint", "config_from_official",
           "save_animation_model", "OFFICIAL_SUFFIXES"]

DEMO_WEIGHTS = demo_weights("animation-demo")
OFFICIAL_SUFFIXES = (".tar", ".pth", ".pt", ".ckpt")


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("module."): v for k, v in state.items()}


def _count(state: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state for m in [rx.match(k)] if m})


def _scale_from_kernel(state: dict, key: str) -> float:
    """Invert ``size = 2 round(4 sigma) + 1``, ``sigma = (1/s - 1)/2`` of the anti-alias kernel."""
    if key not in state:
        return 1.0
    size = state[key].shape[-1]
    return 1.0 / round(2 * (size - 1) / 8 + 1)


def _max_features(widths: list[int], block_expansion: int, default: int) -> int:
    """``max_features`` only shows where it caps a width; uncapped, any value >= the widest fits: take the default."""
    widest = max(widths)
    uncapped = widest == block_expansion * 2 ** len(widths)
    return max(default, widest) if uncapped else widest


def config_from_official(generator: dict, kp_detector: dict, image_size: int = 256, kp_pad: int = 0) -> AnimationConfig:
    """Read the network sizes of an official checkpoint off its tensor shapes.

    ``image_size`` (256 for the official models) and ``kp_pad`` (0 in every official config before
    the ``pad`` option was added; it leaves no trace in the shapes) cannot be read off the tensors.
    """
    try:
        kp_levels = _count(kp_detector, r"predictor\.encoder\.down_blocks\.(\d+)\.conv\.weight")
        dm_levels = _count(generator, r"dense_motion_network\.hourglass\.encoder\.down_blocks\.(\d+)\.conv\.weight")
        g_levels = _count(generator, r"down_blocks\.(\d+)\.conv\.weight")
        kp_widths = [kp_detector[f"predictor.encoder.down_blocks.{i}.conv.weight"].shape[0] for i in range(kp_levels)]
        dm_widths = [generator[f"dense_motion_network.hourglass.encoder.down_blocks.{i}.conv.weight"].shape[0]
                     for i in range(dm_levels)]
        g_widths = [generator[f"down_blocks.{i}.conv.weight"].shape[0] for i in range(g_levels)]
        kp_be = kp_detector[f"predictor.decoder.up_blocks.{kp_levels - 1}.conv.weight"].shape[0]
        dm_be = generator[f"dense_motion_network.hourglass.decoder.up_blocks.{dm_levels - 1}.conv.weight"].shape[0]
        g_be = generator["first.conv.weight"].shape[0]
        defaults = AnimationConfig()
        return AnimationConfig(
            image_size=image_size,
            num_channels=kp_detector["predictor.encoder.down_blocks.0.conv.weight"].shape[1],
            num_kp=kp_detector["kp.weight"].shape[0],
            estimate_jacobian="jacobian.weight" in kp_detector,
            kp_block_expansion=kp_be, kp_max_features=_max_features(kp_widths, kp_be, defaults.kp_max_features),
            kp_num_blocks=kp_levels,
            kp_scale_factor=_scale_from_kernel(kp_detector, "down.weight"), kp_pad=kp_pad,
            block_expansion=g_be, max_features=_max_features(g_widths, g_be, defaults.max_features),
            num_down_blocks=g_levels,
            num_bottleneck_blocks=_count(generator, r"bottleneck\.r(\d+)\.conv1\.weight"),
            estimate_occlusion_map="dense_motion_network.occlusion.weight" in generator,
            dm_block_expansion=dm_be, dm_max_features=_max_features(dm_widths, dm_be, defaults.dm_max_features),
            dm_num_blocks=dm_levels,
            dm_scale_factor=_scale_from_kernel(generator, "dense_motion_network.down.weight"),
        )
    except (KeyError, IndexError, ValueError) as err:
        raise CheckpointError(f"not a first-order-model checkpoint this can read (missing or odd tensor: {err})") from err


def _fill_counters(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = dict(state)
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    return state


def load_official_checkpoint(path: str | os.PathLike, image_size: int = 256, kp_pad: int = 0) -> FirstOrderModel:
    """An official first-order-model checkpoint (``vox-cpk.pth.tar``) as a :class:`FirstOrderModel` (eval mode)."""
    path = Path(path)
    data = load_torch_untrusted(path)
    if not isinstance(data, dict) or "generator" not in data or "kp_detector" not in data:
        keys = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: not a first-order-model checkpoint (top level {keys}; need 'generator' "
                              "and 'kp_detector', as in vox-cpk.pth.tar)")
    generator, kp_detector = _strip_prefix(data["generator"]), _strip_prefix(data["kp_detector"])
    try:
        config = config_from_official(generator, kp_detector, image_size, kp_pad)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from err
    model = FirstOrderModel(config)
    for name, net, state in (("kp_detector", model.kp_detector, kp_detector), ("generator", model.generator, generator)):
        try:
            net.load_state_dict(_fill_counters(net, state))
        except RuntimeError as err:
            raise CheckpointError(f"{path}: its {name} does not fit the network read off its shapes ({err})") from err
    model.source = f"official checkpoint {path.name}"
    return model.eval()


def save_animation_model(model: FirstOrderModel, path: str | os.PathLike, dtype: torch.dtype | None = None,
                         extra: dict | None = None) -> Path:
    """Write a :class:`FirstOrderModel` as a safetensors weights file of kind ``animation``."""
    return save_weights(path, {"kp_detector": model.kp_detector, "generator": model.generator}, "animation",
                        config_to_dict(model.config), dtype=dtype, extra=extra)


def load_animation_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                         precision: str = "auto") -> FirstOrderModel:
    """Load animation weights for inference, in eval mode on ``device``.

    ``path``: ``None`` for the demo weights shipped in the package; a ``.safetensors`` file written by
    ``deepfake-lab train animation`` (or a run folder: its latest checkpoint); or an official
    ``*.pth.tar`` checkpoint. ``precision``: ``"auto"`` (bf16 autocast where it is faster), ``"fp32"``
    or ``"bf16"``; the policy is kept as ``model.precision`` and used by :func:`~.transfer.animate`.
    """
    device = pick_device(device)
    path = Path(path) if path is not None else DEMO_WEIGHTS
    if path.is_dir():
        from ..train import latest_checkpoint

        found = latest_checkpoint(path)
        if not found:
            raise CheckpointError(f"{path}: a folder without a training checkpoint (latest.json); give a weights file")
        path = found[0]
    if not path.exists():
        if path == DEMO_WEIGHTS:
            raise CheckpointError(f"{path}: the demo weights are missing from this install; train them with "
                                  "`deepfake-lab train animation --preset demo-128 --portrait-weight 3` and pass "
                                  "--model runs/animation-128")
        raise CheckpointError(f"{path}: no such file; give a .safetensors file from `deepfake-lab train animation` "
                              "or an official first-order-model .pth.tar")
    if path.suffix in OFFICIAL_SUFFIXES:
        model = load_official_checkpoint(path)
    else:
        nets, meta = load_weights(path)
        if meta.get("kind") != "animation":
            raise CheckpointError(f"{path}: holds {meta.get('kind')!r} weights, not an animation model; "
                                  "give weights from `deepfake-lab train animation`")
        config = config_from_dict(AnimationConfig, meta.get("config", {}))
        model = FirstOrderModel(config)
        for name in ("kp_detector", "generator"):
            if name not in nets:
                raise CheckpointError(f"{path}: has no {name!r} weights")
            try:
                getattr(model, name).load_state_dict(nets[name])
            except RuntimeError as err:
                raise CheckpointError(f"{path}: {name} weights do not fit its own config ({err})") from err
        model.source = "demo weights" if path == DEMO_WEIGHTS else path.name
    model = model.to(device).eval()
    official = path.suffix in OFFICIAL_SUFFIXES
    size = model.config.image_size
    example = torch.zeros(1, 3, size, size, device=device)
    model.precision = precision_for(device, model.config.bf16_ok, precision, official=official,
                                    key=f"animation inference {size}, {model.source}",
                                    probe=inference_probe(lambda x: model(x, x), example))
    return model

