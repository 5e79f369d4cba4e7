"""DiffAugment (Zhao et al. 2020): each transform does what the paper's policy says, gradients reach G through it,
and the GAN lesson applies it to both of D's inputs."""
import pytest
import torch

from deepfake_lab.diffaugment import DiffAugment, brightness, contrast, cutout, saturation, translation


def test_colour_transforms_follow_their_formulas():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    u = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)
    assert torch.allclose(brightness(x, u), x + torch.tensor([-0.5, 0.5]).view(2, 1, 1, 1))
    grey = saturation(x, u)
    assert torch.allclose(grey[0], x[0].mean(0, keepdim=True).expand(3, 8, 8))  # u = 0: no colour left
    assert torch.allclose(grey[1] - x[1].mean(0), 2 * (x[1] - x[1].mean(0)))  # u = 1: twice the colour
    flat = contrast(x, torch.zeros(2, 1, 1, 1))  # u = 0: half the contrast around the image mean
    assert torch.allclose(flat - x.mean((1, 2, 3), keepdim=True), 0.5 * (x - x.mean((1, 2, 3), keepdim=True)))


def test_translation_moves_whole_pixels_and_fills_with_zero():
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4).repeat(2, 1, 1, 1)
    out = translation(x, torch.tensor([[1, 0], [0, -2]]))
    assert torch.equal(out[0, 0, 1:], x[0, 0, :3]) and torch.equal(out[0, 0, 0], torch.zeros(4))  # down by one
    assert torch.equal(out[1, 0, :, :2], x[1, 0, :, 2:]) and torch.equal(out[1, 0, :, 2:], torch.zeros(4, 2))


def test_cutout_zeroes_a_square_clipped_at_the_border():
    x = torch.ones(2, 1, 8, 8)
    out = cutout(x, torch.tensor([[4, 4], [0, 0]]), 4)
    assert int((out[0] == 0).sum()) == 16 and torch.equal(out[0, 0, 2:6, 2:6], torch.zeros(4, 4))
    assert int((out[1] == 0).sum()) == 4 and torch.equal(out[1, 0, :2, :2], torch.zeros(2, 2))


def test_one_draw_for_a_pair_and_gradients_through_it():
    aug = DiffAugment("color,translation,cutout", generator=torch.Generator().manual_seed(0))
    a = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_()
    pa, pb = aug(a, a.detach().clone())
    assert torch.equal(pa.detach(), pb) and not torch.equal(pa.detach(), a.detach())
    pa.sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    moved = DiffAugment("translation,cutout", generator=torch.Generator().manual_seed(0))
    b = torch.rand(4, 3, 16, 16).requires_grad_()
    moved(b).sum().backward()
    assert set(b.grad.unique().tolist()) == {0.0, 1.0}  # each kept pixel counts once; cut or pushed-out ones not


def test_unknown_policies_are_refused_by_name():
    with pytest.raises(ValueError, match="colour.*color, translation, cutout"):
        DiffAugment("colour")
    from deepfake_lab.gan import GANConfig

    with pytest.raises(ValueError, match="--diffaugment 'translation' with --data ring8"):
        GANConfig(arch="mlp", data="ring8", diffaugment="translation").validate()


def test_the_gan_step_shows_d_augmented_real_and_fake_images():
    from deepfake_lab.gan import GANConfig, GANModel

    config = GANConfig(data="digits", ngf=8, ndf=8, diffaugment="translation,cutout")
    model = GANModel(config)
    seen = []
    model.nets["D"].register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().clone()))
    real = torch.rand(4, 1, 32, 32) * 2 - 1
    model.set_input(real)
    model.optimize_parameters()
    assert len(seen) == 3  # real and fake in the D step, fake in the G step
    assert not torch.equal(seen[0], real) and (seen[0] == 0).any()  # the real batch, moved and cut
