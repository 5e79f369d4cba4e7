"""The categorical code of lesson 1 (InfoGAN, AC-GAN): read from z, fed to G as a one-hot vector, read back by
D's head, trained by the code loss, saved and loaded with the weights, refused where it does not fit."""
from __future__ import annotations

import math

import pytest
import torch

from deepfake_lab import cli
from deepfake_lab.gan import GANConfig, GANModel, build_discriminator, build_generator, load_generator, sample
from deepfake_lab.gan_codes import code_of, noise_for_code, split_scores
from deepfake_lab.losses import code_loss


def test_the_code_of_gaussian_noise_is_uniform_and_noise_for_code_sets_it():
    z = torch.randn(20_000, 100, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(code_of(z, 10), minlength=10)
    assert counts.min() > 1800 and counts.max() < 2200  # 2,000 each, +-4.5 sigma
    for digit in (0, 7):
        chosen = noise_for_code(digit, 500, 100, 10, generator=torch.Generator().manual_seed(1))
        assert (code_of(chosen, 10) == digit).all()
    mixed = noise_for_code(torch.arange(10), 10, 100, 10, generator=torch.Generator().manual_seed(2))
    plain = torch.randn(10, 100, generator=torch.Generator().manual_seed(2))
    assert torch.equal(code_of(mixed, 10), torch.arange(10))
    # only two entries of each row trade places: the noise keeps its N(0, I) values
    assert torch.equal(mixed.sort(dim=1).values, plain.sort(dim=1).values) and torch.equal(mixed[:, 10:], plain[:, 10:])
    with pytest.raises(ValueError, match=r"code \[10\]: need values in \[0, 10\)"):
        noise_for_code(torch.tensor([3, 10, 3, 3]), 4, 100, 10)
    with pytest.raises(ValueError, match="2 values for n=4"):
        noise_for_code(torch.tensor([1, 2]), 4, 100, 10)


def test_a_coded_generator_keeps_dcgan_weights_and_draws_what_its_code_says():
    plain, coded = build_generator(GANConfig(ngf=8)), build_generator(GANConfig(ngf=8, code=10))
    shapes = lambda net: {k: tuple(v.shape) for k, v in net.state_dict().items()}  # noqa: E731
    assert shapes(plain) == shapes(coded)  # the same network, fed (one-hot code, rest of z)
    coded.eval()
    z = torch.randn(2, 100, generator=torch.Generator().manual_seed(3))
    other = z.clone()
    other[:, :10] = z[:, :10].roll(1, dims=1)  # another code, the same continuous noise
    same_code = z.clone()
    same_code[:, :10] = z[:, :10] * 1.5  # larger values, the same argmax: the same one-hot input
    with torch.no_grad():
        out, out_other, out_same = coded(z), coded(other), coded(same_code)
    assert out.shape == (2, 1, 32, 32)
    assert torch.equal(out, out_same) and not torch.allclose(out, out_other)


def test_a_coded_discriminator_scores_and_reads_the_code():
    D = build_discriminator(GANConfig(ndf=8, code=10))
    output = D(torch.rand(5, 1, 32, 32) * 2 - 1)
    assert output.shape == (5, 11)
    scores, logits = split_scores(output)
    assert scores.shape == (5,) and logits.shape == (5, 10)
    assert split_scores(torch.zeros(5))[1] is None  # a plain D: scores only
    assert code_loss(torch.zeros(3, 10), torch.tensor([0, 4, 9])).item() == pytest.approx(math.log(10))


def test_training_with_labels_teaches_the_head_the_digits():
    """AC-GAN's head learns real labels: on a fixed batch its code loss falls well below chance (log 10)."""
    torch.manual_seed(0)
    model = GANModel(GANConfig(data="digits", ngf=8, ndf=8, code=10, code_labels=True))
    images = torch.rand(20, 1, 32, 32) * 2 - 1
    labels = torch.arange(20) % 10
    logs = []
    for _ in range(60):
        model.set_input((images, labels))
        logs.append(model.optimize_parameters())
    assert set(logs[0]) >= {"loss_D", "loss_G", "loss_Q"}
    with torch.no_grad():
        model.nets["D"].eval()
        _, logits = split_scores(model.nets["D"](images))
    assert code_loss(logits, labels).item() < 0.5 * math.log(10), logs[-1]


def test_the_code_is_saved_with_the_weights_and_sampling_works(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "gan", "--data", "digits", "--preset", "demo", "--steps", "2", "--code", "10",
                     "--code-labels", "--checkpoint-every", "2", "--sample-every", "0", "--out", str(out),
                     "--no-progress", "--export", str(tmp_path / "coded.safetensors")]) == 0
    G, config = load_generator(tmp_path / "coded.safetensors")
    assert config.code == 10 and config.code_labels and type(G).__name__ == "CodedDCGANGenerator"
    assert sample(G, noise_for_code(3, 4, config.latent_dim, 10)).shape == (4, 1, 32, 32)
    assert "loss_Q" in (out / "losses.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("argv, message", [
    (["--code", "10", "--arch", "mlp"], "--code 10 with --arch mlp: the code head is on DCGAN's discriminator"),
    (["--code", "10", "--loss", "wgan-gp"], "--code 10 with --loss wgan-gp"),
    (["--code", "100"], "2 <= classes < --latent-dim (100)"),
    (["--code", "5", "--code-labels"], "--code-labels with --code 5: the digit data have 10 labels"),
    (["--code-labels"], "--code-labels without --code"),
    (["--code", "10", "--code-weight", "-1"], "--code-weight -1.0: need a weight >= 0"),
])
def test_code_settings_that_do_not_fit_are_refused_naming_the_flag(tmp_path, capsys, argv, message):
    assert cli.main(["train", "gan", "--data", "digits", "--steps", "1", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_code_agreement_is_high_for_real_digits_with_their_labels_and_chance_for_shuffled_ones():
    from deepfake_lab.data.digits import mnist_subset
    from deepfake_lab.gan_metrics import code_agreement

    digits, pick = mnist_subset("train"), torch.Generator().manual_seed(0)
    some = torch.randperm(len(digits.labels), generator=pick)[:1000]  # the split is in class order: a random 1,000
    images, labels = digits.images[some], digits.labels[some]
    assert code_agreement(images, labels) > 0.95
    assert code_agreement(images, labels[torch.randperm(1000, generator=pick)]) < 0.2
