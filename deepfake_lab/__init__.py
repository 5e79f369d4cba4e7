"""deepfake_lab: how deepfakes are made, built block by block.

Lessons: :mod:`deepfake_lab.gan` (GAN basics), CycleGAN, pix2pix, image animation and face swap.
Every lesson trains with :func:`deepfake_lab.train.fit` and labels what it generates
(:mod:`deepfake_lab.provenance`).
"""
__version__ = "0.1.0"
