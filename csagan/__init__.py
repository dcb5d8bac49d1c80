"""csagan: a tested, educational reproduction of CSA-GAN.

CSA-GAN ("Text-to-image generation based on conditional semantic augmentation",
Journal of Software 2024) conditions a DF-GAN/SSA-GAN style one-stage generator on a
sampled text code (conditional semantic augmentation, Eq. 16) and fuses it through
mask-guided spatial-semantic fusion blocks (Eqs. 17-21).

Modules each have one job: ``text`` (BiLSTM, Eqs. 13-15), ``damsm`` (Eqs. 4-12),
``csa`` (Eq. 16), ``fusion`` (Eqs. 17-21), ``models`` (generator, G0, discriminator),
``losses`` (Eqs. 1, 3, 22-25), ``data`` (ToyBirds and AttnGAN-format CUB/COCO),
``metrics`` (Eqs. 26-27), ``train`` and ``cli``.
"""

__version__ = "0.1.0"
