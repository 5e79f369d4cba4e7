"""Building blocks shared by the lessons: the few layer patterns every GAN paper here is made of.

* :func:`norm_layer` and :func:`activation`: the normalisations and non-linearities by name.
* :class:`ConvNormAct`: convolution (or transposed convolution), normalisation, activation, the unit
  of DCGAN (Radford et al. 2015, §3), the CycleGAN/pix2pix networks and most image GANs since.
* :class:`ResidualBlock`: ``x + F(x)`` with two 3x3 convolutions (He et al. 2016), in the layout of
  the official CycleGAN ``ResnetBlock`` (Johnson et al. 2016, as used by Zhu et al. 2017).
* :class:`DownBlock` / :class:`UpBlock`: halve or double the resolution (strided convolution;
  transposed convolution or nearest upsampling + convolution, Odena et al. 2016).
* :func:`mlp_layer`: linear, normalisation, activation, for the MLP GAN of Goodfellow et al. 2014.
* :func:`init_weights`: the N(0, 0.02) initialisation of DCGAN and the official CycleGAN/pix2pix code.
* :func:`count_parameters`: the number every paper and the official code print for a network.
* :func:`standing_statistics`: BatchNorm statistics measured afresh for a network's current weights.

All are plain :class:`torch.nn.Sequential` subclasses or small modules, so their state-dict keys are
predictable (``0.weight``, ``1.weight``...) and a lesson can match an official key layout.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["NORMS", "ACTIVATIONS", "norm_layer", "activation", "ConvNormAct", "ResidualBlock", "DownBlock", "UpBlock",
           "mlp_layer", "init_weights", "count_parameters", "standing_statistics"]

#: normalisation names understood by :func:`norm_layer`
NORMS = ("batch", "instance", "layer", "none")
#: activation names understood by :func:`activation`
ACTIVATIONS = ("relu", "leaky", "tanh", "sigmoid", "none")


def norm_layer(kind: str, channels: int, dim: int = 2) -> nn.Module | None:
    """A normalisation layer by name, or ``None`` for ``"none"``.

    * ``"batch"``: BatchNorm (Ioffe & Szegedy 2015), statistics over the batch; PyTorch's defaults
      (eps=1e-5, momentum 0.1). (The popular PyTorch-GAN code passes ``0.8`` as the *second positional
      argument* of ``BatchNorm1d``, which is ``eps``, not momentum: do not copy it.)
    * ``"instance"``: InstanceNorm (Ulyanov et al. 2016), per image and channel, without affine
      parameters or running statistics, as in the official CycleGAN code.
    * ``"layer"``: LayerNorm over (C, H, W) with a per-channel scale and shift (``GroupNorm`` with one
      group); the critic normalisation WGAN-GP recommends, because its penalty is per sample
      (Gulrajani et al. 2017, §4).

    ``dim`` is 1 for feature vectors (B, C) and 2 for images (B, C, H, W).
    """
    if kind == "none":
        return None
    if dim not in (1, 2):
        raise ValueError(f"norm dim={dim}: use 1 (vectors) or 2 (images)")
    if kind == "batch":
        return nn.BatchNorm1d(channels) if dim == 1 else nn.BatchNorm2d(channels)
    if kind == "instance":
        if dim == 1:
            raise ValueError("norm 'instance' needs images (dim=2); use 'layer' or 'batch' for vectors")
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "layer":
        return nn.LayerNorm(channels) if dim == 1 else nn.GroupNorm(1, channels)
    raise ValueError(f"norm {kind!r}: use one of {', '.join(NORMS)}")


def activation(kind: str, slope: float = 0.2) -> nn.Module | None:
    """A non-linearity by name, or ``None`` for ``"none"``.

    ``"leaky"`` is LeakyReLU with negative ``slope`` (0.2 in DCGAN's discriminator, §3).
    Activations are not in-place, so a block's input stays usable (residual sums, hooks in notebooks).
    """
    if kind == "relu":
        return nn.ReLU()
    if kind == "leaky":
        return nn.LeakyReLU(slope)
    if kind == "tanh":
        return nn.Tanh()
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "none":
        return None
    raise ValueError(f"activation {kind!r}: use one of {', '.join(ACTIVATIONS)}")


class ConvNormAct(nn.Sequential):
    """Convolution -> normalisation -> activation.

    .. math:: y = \\phi(\\mathrm{Norm}(W * x + b))

    Layers that are ``"none"`` are left out, so the keys are ``0.weight`` (the convolution), then
    ``1.*`` (the norm, if any), then the activation. The convolution has a bias only without a norm
    (a norm's shift makes the bias redundant) unless ``bias`` says otherwise; ``transposed=True``
    makes it a ``ConvTranspose2d`` (fractionally-strided convolution, DCGAN §3).

    Shapes: (B, in_ch, H, W) -> (B, out_ch, H', W') with the usual convolution arithmetic.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, padding: int | None = None,
                 norm: str = "batch", act: str = "relu", transposed: bool = False, bias: bool | None = None,
                 padding_mode: str = "zeros", output_padding: int = 0, slope: float = 0.2):
        if padding is None:
            padding = kernel // 2
        if bias is None:
            bias = norm in ("none", "instance")  # InstanceNorm without affine has no shift of its own
        if transposed:
            conv = nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding, output_padding=output_padding, bias=bias)
        else:
            conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=bias, padding_mode=padding_mode)
        layers = [conv, norm_layer(norm, out_ch, 2), activation(act, slope)]
        super().__init__(*[m for m in layers if m is not None])


class ResidualBlock(nn.Module):
    """A residual block with two 3x3 convolutions: :math:`y = x + F(x)` (He et al. 2016, §3.1).

    .. math:: F(x) = \\mathrm{Norm}(W_2 * \\mathrm{ReLU}(\\mathrm{Norm}(W_1 * x)))

    There is **no** activation after the sum: the block is an identity plus a correction, as in the
    official CycleGAN ``ResnetBlock`` (some reimplementations add a ReLU there; that changes the model).
    The layout matches that code, so official weights load by key: ``conv_block.1`` and ``conv_block.5``
    are the convolutions with reflection padding (``conv_block.1`` and ``conv_block.6`` with dropout).

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, norm: str = "instance", padding_mode: str = "reflect", dropout: float = 0.0,
                 act: str = "relu"):
        super().__init__()
        bias = norm in ("none", "instance")
        pad = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}.get(padding_mode)
        if pad is None and padding_mode != "zeros":
            raise ValueError(f"padding_mode {padding_mode!r}: use reflect, replicate or zeros")

        def conv() -> list[nn.Module]:
            if pad is None:
                return [nn.Identity(), nn.Conv2d(channels, channels, 3, padding=1, bias=bias)]
            return [pad(1), nn.Conv2d(channels, channels, 3, bias=bias)]

        layers: list[nn.Module | None] = [*conv(), norm_layer(norm, channels), activation(act)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [*conv(), norm_layer(norm, channels)]
        # identity placeholders keep the official indices even with norm="none"
        self.conv_block = nn.Sequential(*[m if m is not None else nn.Identity() for m in layers])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)  # no ReLU after the sum


class DownBlock(ConvNormAct):
    """Halve the resolution with a strided convolution: (B, in_ch, H, W) -> (B, out_ch, H/2, W/2).

    Defaults are DCGAN's discriminator layer (kernel 4, stride 2, padding 1, BatchNorm, LeakyReLU 0.2;
    Radford et al. 2015, §3: "replace any pooling layers with strided convolutions"). CycleGAN's
    generator uses kernel 3, padding 1, InstanceNorm and ReLU.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 4, norm: str = "batch", act: str = "leaky",
                 padding: int | None = None, **kwargs):
        padding = (kernel - 1) // 2 if padding is None else padding
        super().__init__(in_ch, out_ch, kernel, stride=2, padding=padding, norm=norm, act=act, **kwargs)


class UpBlock(nn.Sequential):
    """Double the resolution: (B, in_ch, H, W) -> (B, out_ch, 2H, 2W).

    * ``mode="transposed"``: a transposed convolution, kernel 4, stride 2, padding 1 (DCGAN's generator
      layer; with kernel 3 it uses ``output_padding=1`` as CycleGAN's generator does).
    * ``mode="upsample"``: nearest-neighbour upsampling then a 3x3 convolution, which avoids the
      checkerboard artifacts of transposed convolutions (Odena et al. 2016, "Deconvolution and
      Checkerboard Artifacts"). Keys: ``0`` upsample, ``1.*`` the conv-norm-act unit.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 4, norm: str = "batch", act: str = "relu",
                 mode: str = "transposed", **kwargs):
        if mode == "transposed":
            if kernel % 2 == 0:
                unit = ConvNormAct(in_ch, out_ch, kernel, 2, (kernel - 2) // 2, norm, act, transposed=True, **kwargs)
            else:
                unit = ConvNormAct(in_ch, out_ch, kernel, 2, kernel // 2, norm, act, transposed=True,
                                   output_padding=1, **kwargs)
            super().__init__(*unit)
        elif mode == "upsample":
            k = kernel if kernel % 2 else 3
            super().__init__(nn.Upsample(scale_factor=2, mode="nearest"),
                             ConvNormAct(in_ch, out_ch, k, 1, k // 2, norm, act, **kwargs))
        else:
            raise ValueError(f"up-block mode {mode!r}: use 'transposed' or 'upsample'")


def mlp_layer(in_features: int, out_features: int, norm: str = "none", act: str = "relu",
              dropout: float = 0.0, slope: float = 0.2) -> nn.Sequential:
    """Linear -> normalisation -> activation (-> dropout): one layer of an MLP.

    .. math:: h = \\phi(\\mathrm{Norm}(W x + b))

    Shapes: (B, in_features) -> (B, out_features). With ``norm="batch"`` this is ``BatchNorm1d`` with
    PyTorch's default eps 1e-5 (see :func:`norm_layer` on a common mistake).
    """
    layers = [nn.Linear(in_features, out_features, bias=norm == "none"), norm_layer(norm, out_features, 1),
              activation(act, slope)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*[m for m in layers if m is not None])


@torch.no_grad()
def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise ``net`` in place, as DCGAN (§4) and the official CycleGAN/pix2pix code do; returns ``net``.

    * convolution and linear weights: ``"normal"`` N(0, gain) (gain 0.02 is the papers' value),
      ``"xavier"`` (Glorot & Bengio 2010, normal, gain), ``"kaiming"`` (He et al. 2015, fan-in),
      ``"orthogonal"`` (Saxe et al. 2014, gain); biases 0.
    * BatchNorm (and LayerNorm/GroupNorm) scale :math:`\\gamma \\sim \\mathcal{N}(1, 0.02)`, shift
      :math:`\\beta = 0`. The scale is centred on **1**: a scale near 0 (a defect in some
      reimplementations) would switch every normalised layer off at the start.
    """
    if kind not in ("normal", "xavier", "kaiming", "orthogonal"):
        raise ValueError(f"init {kind!r}: use normal, xavier, kaiming or orthogonal")
    for m in net.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if getattr(m, "weight", None) is not None:
                nn.init.normal_(m.weight, 1.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
    return net


def count_parameters(net: nn.Module) -> int:
    """Number of trainable numbers in ``net`` (the figure papers and the official code print)."""
    return sum(p.numel() for p in net.parameters())


@torch.no_grad()
def standing_statistics(net: nn.Module, make_input, batches: int = 16) -> nn.Module:
    """Re-measure every BatchNorm's running mean and variance for ``net``'s weights as they are; returns ``net``.

    An average of weights (an EMA of G) never ran a forward pass, so the statistics it carries belong to
    other weights. Here they become the plain average over ``batches`` forward passes of
    ``make_input(i)`` in training mode ("standing statistics", Brock et al. 2019, BigGAN §4 and App. C);
    ``net`` ends in eval mode, every other buffer and weight unchanged.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None: a cumulative average over the passes below
    net.train()
    try:
        for i in range(batches):
            net(make_input(i))
    finally:  # a failing forward pass leaves the settings as they were (and the network in eval mode)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        net.eval()
    return net
