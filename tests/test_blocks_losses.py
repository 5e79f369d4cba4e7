"""The shared building blocks and the adversarial losses, checked against hand-computed values."""
import math

import pytest
import torch
from torch import nn

from deepfake_lab import losses as L
from deepfake_lab.blocks import ConvNormAct, DownBlock, ResidualBlock, UpBlock, activation, init_weights, mlp_layer, norm_layer


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------------------------------------
# blocks
# ---------------------------------------------------------------------------------------------
def test_conv_norm_act_layers_shapes_and_bias():
    unit = ConvNormAct(3, 8, 3, norm="batch", act="relu")
    assert [type(m) for m in unit] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert unit[0].bias is None  # BatchNorm's shift makes a conv bias redundant
    assert n_params(unit) == 3 * 8 * 9 + 2 * 8
    assert unit(torch.randn(2, 3, 10, 10)).shape == (2, 8, 10, 10)

    bare = ConvNormAct(3, 8, 3, norm="none", act="none")
    assert [type(m) for m in bare] == [nn.Conv2d] and bare[0].bias is not None
    assert list(bare.state_dict()) == ["0.weight", "0.bias"]

    inst = ConvNormAct(3, 8, 7, norm="instance", act="leaky")
    assert isinstance(inst[1], nn.InstanceNorm2d) and not inst[1].affine and inst[2].negative_slope == 0.2


def test_down_and_up_blocks_halve_and_double():
    x = torch.randn(2, 4, 16, 16)
    assert DownBlock(4, 8)(x).shape == (2, 8, 8, 8)
    assert DownBlock(4, 8, kernel=3, norm="instance", act="relu")(x).shape == (2, 8, 8, 8)
    assert UpBlock(4, 2)(x).shape == (2, 2, 32, 32)  # transposed conv, kernel 4
    assert UpBlock(4, 2, kernel=3, norm="instance")(x).shape == (2, 2, 32, 32)  # kernel 3 + output_padding
    up = UpBlock(4, 2, mode="upsample")
    assert up(x).shape == (2, 2, 32, 32)
    assert isinstance(up[0], nn.Upsample) and isinstance(up[1][0], nn.Conv2d)
    with pytest.raises(ValueError, match="up-block mode"):
        UpBlock(4, 2, mode="pixelshuffle")


def test_residual_block_official_layout_and_no_relu_after_sum():
    block = ResidualBlock(8)  # CycleGAN's ResnetBlock: reflect pad, InstanceNorm, conv bias on
    keys = list(block.state_dict())
    assert keys == ["conv_block.1.weight", "conv_block.1.bias", "conv_block.5.weight", "conv_block.5.bias"]
    assert n_params(block) == 2 * (8 * 8 * 9 + 8)
    with_dropout = ResidualBlock(8, dropout=0.5)
    assert "conv_block.6.weight" in with_dropout.state_dict()
    # zero the residual branch: the block must be the identity, negative values included (no ReLU after the sum)
    for p in block.parameters():
        nn.init.zeros_(p)
    x = torch.randn(1, 8, 6, 6)
    assert torch.equal(block(x), x)
    assert block(x).min() < 0


def test_mlp_layer_and_names():
    layer = mlp_layer(3, 5, norm="batch", act="leaky")
    assert isinstance(layer[1], nn.BatchNorm1d) and layer[1].eps == 1e-5  # not PyTorch-GAN's eps=0.8
    assert layer[0].bias is None and n_params(layer) == 3 * 5 + 2 * 5
    assert layer(torch.randn(4, 3)).shape == (4, 5)
    assert norm_layer("none", 4) is None and activation("none") is None
    with pytest.raises(ValueError, match="norm 'group'"):
        norm_layer("group", 4)
    with pytest.raises(ValueError, match="activation 'gelu'"):
        activation("gelu")


def test_init_weights_normal_002_and_batchnorm_gamma_near_one():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 256, 3), nn.BatchNorm2d(4096), nn.Linear(512, 512))
    init_weights(net, "normal", 0.02)
    w = net[0].weight.detach()
    assert abs(float(w.mean())) < 1e-3 and abs(float(w.std()) - 0.02) < 1e-3
    assert torch.count_nonzero(net[0].bias) == 0
    gamma = net[1].weight.detach()
    assert abs(float(gamma.mean()) - 1.0) < 2e-3 and abs(float(gamma.std()) - 0.02) < 2e-3  # N(1, 0.02), not ~0
    assert torch.count_nonzero(net[1].bias) == 0
    with pytest.raises(ValueError, match="init 'uniform'"):
        init_weights(net, "uniform")


# ---------------------------------------------------------------------------------------------
# losses: hand-computed cases. With scores s, sigma(s) is D's probability "real".
# ---------------------------------------------------------------------------------------------
REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([0.0, -1.0])


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_standing_statistics_measure_batchnorm_for_the_weights_as_they_are():
    from deepfake_lab.blocks import standing_statistics

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=0.3))
    inputs = [torch.randn(8, 3) * 2 + 1 for _ in range(5)]
    weight = net[0].weight.detach().clone()
    assert standing_statistics(net, lambda i: inputs[i], batches=5) is net and not net.training
    hidden = [net[0](x).detach() for x in inputs]
    # the plain average over the 5 passes of each batch's mean and unbiased variance, as BatchNorm records them
    assert torch.allclose(net[1].running_mean, torch.stack([h.mean(0) for h in hidden]).mean(0), atol=1e-6)
    assert torch.allclose(net[1].running_var, torch.stack([h.var(0) for h in hidden]).mean(0), atol=1e-5)
    assert net[1].momentum == 0.3 and torch.equal(net[0].weight, weight)  # settings and weights untouched
    assert int(net[1].num_batches_tracked) == 5


def test_bce_losses_by_hand():
    # D: -mean log sigma(real) - mean log(1 - sigma(fake))
    want_d = -(log_sigmoid(0) + log_sigmoid(2)) / 2 - (math.log(0.5) + math.log(1 - 1 / (1 + math.e))) / 2
    assert float(L.minimax_d_loss(REAL, FAKE)) == pytest.approx(want_d, rel=1e-6)
    assert float(L.nonsaturating_d_loss(REAL, FAKE)) == pytest.approx(want_d, rel=1e-6)
    # D knows nothing (all scores 0): 2 log 2
    assert float(L.d_loss("minimax", torch.zeros(3), torch.zeros(3))) == pytest.approx(2 * math.log(2), rel=1e-6)
    # G, minimax: mean log(1 - sigma(fake)); non-saturating: -mean log sigma(fake)
    want_minimax = (math.log(0.5) + math.log(1 - 1 / (1 + math.e))) / 2
    assert float(L.minimax_g_loss(FAKE)) == pytest.approx(want_minimax, rel=1e-6)
    want_ns = -(log_sigmoid(0) + log_sigmoid(-1)) / 2
    assert float(L.nonsaturating_g_loss(FAKE)) == pytest.approx(want_ns, rel=1e-6)


def test_minimax_generator_loss_saturates_where_nonsaturating_does_not():
    # D rejects the sample firmly (logit -8): minimax gives G almost no gradient
    s = torch.tensor([-8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(L.minimax_g_loss(s), s)
    (g_ns,) = torch.autograd.grad(L.nonsaturating_g_loss(s), s)
    assert abs(float(g_mm)) == pytest.approx(1 / (1 + math.exp(8)), rel=1e-4)  # sigma(-8) ~ 3.4e-4
    assert abs(float(g_ns)) == pytest.approx(1 - 1 / (1 + math.exp(8)), rel=1e-4)  # ~1
    assert abs(float(g_ns)) > 1000 * abs(float(g_mm))


def test_lsgan_hinge_wgan_by_hand():
    # LSGAN D: 0.5*mean((real-1)^2) + 0.5*mean(fake^2) = 0.5*(1+1)/2 + 0.5*(0+1)/2 = 0.75
    assert float(L.lsgan_d_loss(REAL, FAKE)) == pytest.approx(0.75)
    # LSGAN G: 0.5*mean((fake-1)^2) = 0.5*(1+4)/2 = 1.25
    assert float(L.lsgan_g_loss(FAKE)) == pytest.approx(1.25)
    # hinge D: mean relu(1-real) + mean relu(1+fake) = (1+0)/2 + (1+0)/2 = 1
    assert float(L.hinge_d_loss(REAL, FAKE)) == pytest.approx(1.0)
    assert float(L.hinge_d_loss(torch.tensor([3.0]), torch.tensor([-2.0]))) == 0.0  # beyond the margin
    assert float(L.hinge_g_loss(FAKE)) == pytest.approx(0.5)
    # WGAN critic: mean(fake) - mean(real) = -0.5 - 1 = -1.5; G: -mean(fake) = 0.5
    assert float(L.wgan_d_loss(REAL, FAKE)) == pytest.approx(-1.5)
    assert float(L.d_loss("wgan-gp", REAL, FAKE)) == pytest.approx(-1.5)
    assert float(L.g_loss("wgan-gp", FAKE)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="loss 'vanilla'"):
        L.d_loss("vanilla", REAL, FAKE)


def test_gradient_penalty_linear_critic():
    # D(x) = w . x has gradient w everywhere: GP = 10 * (|w| - 1)^2 = 10 * (5 - 1)^2 = 160
    w = torch.tensor([3.0, 4.0])
    gp = L.gradient_penalty(lambda x: x @ w, torch.randn(6, 2), torch.randn(6, 2))
    assert gp.item() == pytest.approx(160.0)
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.6, 0.8]]))  # unit norm: no penalty
    assert L.gradient_penalty(lin, torch.randn(4, 2), torch.randn(4, 2)).item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_quadratic_critic_and_backprop():
    # D(x) = 0.5 |x|^2 has gradient x_hat = eps*real + (1-eps)*fake
    real = torch.tensor([[2.0, 0.0], [0.0, 4.0]])
    fake = torch.zeros(2, 2)
    eps = torch.tensor([0.5, 0.25])  # x_hat = (1, 0) and (0, 1): norms 1 -> GP 0
    critic = lambda x: 0.5 * (x ** 2).sum(dim=1)  # noqa: E731
    assert L.gradient_penalty(critic, real, fake, eps=eps).item() == pytest.approx(0.0)
    eps = torch.tensor([1.0, 1.0])  # x_hat = real: norms 2 and 4 -> 10 * mean(1, 9) = 50
    assert L.gradient_penalty(critic, real, fake, eps=eps).item() == pytest.approx(50.0)
    # the penalty reaches the critic's weights (create_graph): d/dw of 10*(|w| - 1)^2 at w = (3, 4)
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    L.gradient_penalty(lambda x: x @ w, real, fake).backward()
    assert torch.allclose(w.grad, 10 * 2 * (5 - 1) * torch.tensor([3.0, 4.0]) / 5)
    with pytest.raises(ValueError, match="one shape"):
        L.gradient_penalty(critic, real, torch.zeros(3, 2))


def test_reconstruction_losses():
    a, b = torch.tensor([1.0, -1.0, 0.5]), torch.tensor([0.0, 1.0, 0.5])
    assert float(L.l1_loss(a, b)) == pytest.approx(1.0)
    assert float(L.reconstruction_loss(a, b, "l2")) == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="one shape"):
        L.l1_loss(a, b[:2])
