"""The networks: generator (with masks, CSA and G0), discriminator and parameter summaries.

Architecture (Fig. 3; the backbone follows DF-GAN's and SSA-GAN's released code):

* :class:`Generator`: z → Linear → 8nf×4×4, then up-blocks (nearest ×2 first) with channel
  multipliers (8,8),(8,8),(8,8),(8,4),(4,2),(2,1) for 256 px (128 px drops the first block, 64 px
  the first two, 32 px the first three), then LeakyReLU(0.2) → conv3×3 → tanh. Each block fuses
  the text condition (SSF with predicted masks, Eqs. 17-21; conditional BN; or DF-GAN's affine
  fusion). With CSA (Eq. 16) the condition is the sampled code ĉ; G0 decodes concat(code, z) into
  a second image that is added with a learnable weight (Sec. 3.4 "weighted connection").
* :class:`Discriminator`: DF-GAN's residual down-sampling network to 8·d_nf×4×4 and a one-way
  conditional head (Eq. 24's D(x, t)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig
from .csa import CSA, CSAOutput
from .fusion import SSF, ConditionalBatchNorm2d, DFFuse, MaskPredictor

__all__ = [
    "G0",
    "DBlock",
    "Discriminator",
    "DiscriminatorHead",
    "GBlock",
    "Generator",
    "GeneratorOutput",
    "discriminator_channels",
    "generator_channels",
    "parameter_counts",
    "summary",
]

_G_MULTS_256 = ((8, 8), (8, 8), (8, 8), (8, 4), (4, 2), (2, 1))
_D_MULTS = (1, 2, 4, 8, 8, 8, 8)


def _n_doublings(image_size: int) -> int:
    n = round(math.log2(image_size / 4))
    if 4 * 2**n != image_size or not 1 <= n <= len(_G_MULTS_256):
        raise ValueError(f"image_size={image_size} must be 4·2^n with 1 <= n <= 6 (e.g. 64, 128, 256).")
    return n


def generator_channels(cfg: ModelConfig) -> list[tuple[int, int]]:
    """(in, out) channels of each generator up-block for ``cfg.image_size``."""
    n = _n_doublings(cfg.image_size)
    return [(cfg.nf * a, cfg.nf * b) for a, b in _G_MULTS_256[len(_G_MULTS_256) - n :]]


def discriminator_channels(cfg: ModelConfig) -> list[tuple[int, int]]:
    """(in, out) channels of each discriminator down-block (ends at 8·d_nf × 4×4)."""
    n = _n_doublings(cfg.image_size)
    mults = _D_MULTS[: n + 1]
    return [(cfg.d_nf * mults[i], cfg.d_nf * mults[i + 1]) for i in range(n)]


class GeneratorOutput(NamedTuple):
    """Generator result: image [B, 3, S, S] in [−1, 1], the masks fed to each block ([B, 1, s, s]),
    the CSA output (None without CSA) and G0's own image (None without G0)."""

    image: Tensor
    masks: list[Tensor]
    csa: CSAOutput | None
    g0_image: Tensor | None


class GBlock(nn.Module):
    """Generator up-block: x ← nearest×2(x); out = shortcut(x) + γ·residual(x, c, m).

    residual = fuse → act → conv3×3 → fuse → act → conv3×3 for "ssf"/"cbn" (act = ReLU, γ a
    learnable scalar initialised to 0, SSA-GAN); for "affine" the fuse blocks carry their own
    LeakyReLUs (DF-GAN) and there is no γ (DF-GAN adds the residual unscaled).
    """

    def __init__(self, in_ch: int, out_ch: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.fusion = cfg.fusion
        self.fuse1: nn.Module
        self.fuse2: nn.Module
        if cfg.fusion == "ssf":
            self.fuse1 = SSF(in_ch, cfg.cond_dim, cfg.mlp_hidden, form=cfg.ssf_form)
            self.fuse2 = SSF(out_ch, cfg.cond_dim, cfg.mlp_hidden, form=cfg.ssf_form)
        elif cfg.fusion == "cbn":
            self.fuse1 = ConditionalBatchNorm2d(in_ch, cfg.cond_dim, cfg.mlp_hidden)
            self.fuse2 = ConditionalBatchNorm2d(out_ch, cfg.cond_dim, cfg.mlp_hidden)
        else:
            self.fuse1 = DFFuse(in_ch, cfg.cond_dim)
            self.fuse2 = DFFuse(out_ch, cfg.cond_dim)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut: nn.Module = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.gamma: nn.Parameter | None = nn.Parameter(torch.zeros(1)) if cfg.fusion != "affine" else None

    def _act(self, h: Tensor) -> Tensor:
        return h if self.fusion == "affine" else F.relu(h)

    def forward(self, x: Tensor, cond: Tensor, mask: Tensor | None = None) -> Tensor:
        """x [B, in, H, W] → [B, out, 2H, 2W]; ``mask`` [B, 1, 2H, 2W] (SSF only).

        Computed in a cheaper but equal order: nearest ×2 upsampling copies each pixel, so it
        commutes with the 1×1 shortcut convolution and with DF-GAN's per-pixel affine fuse block;
        both run at the input resolution (4× fewer pixels) before upsampling.
        """
        if self.fusion == "affine":  # DFFuse is per pixel: fuse(up(x)) == up(fuse(x))
            h = self.conv1(F.interpolate(self.fuse1(x, cond, mask), scale_factor=2.0, mode="nearest"))
        else:
            h = self.conv1(F.relu(self.fuse1(F.interpolate(x, scale_factor=2.0, mode="nearest"), cond, mask)))
        h = self.conv2(self._act(self.fuse2(h, cond, mask)))
        short = F.interpolate(self.shortcut(x), scale_factor=2.0, mode="nearest")  # up(conv1×1(x)) == conv1×1(up(x))
        short = short.to(h.dtype)  # under autocast: stay in the convolutions' dtype (a no-op in fp32)
        if self.gamma is not None:
            return torch.addcmul(short, self.gamma.to(h.dtype), h)
        return short + h


class G0(nn.Module):
    """Residual generator G0 (Sec. 3.4): concat(code, z) → image logits [B, 3, S, S].

    Linear → BN → GLU to 4·g0_nf × 4×4, then up-blocks [nearest ×2 → conv3×3 (→ 2·out) → BN → GLU]
    halving the channels (floor 8) up to the output size, then conv3×3 → 3 channels. It returns
    pre-tanh logits; :class:`Generator` combines them with the main branch's logits.
    """

    def __init__(self, in_dim: int, image_size: int, g0_nf: int) -> None:
        super().__init__()
        n = _n_doublings(image_size)
        ch = 4 * g0_nf
        self.ch0 = ch
        self.fc = nn.Linear(in_dim, 2 * ch * 16, bias=False)
        self.bn0 = nn.BatchNorm2d(2 * ch)
        blocks: list[nn.Module] = []
        for _ in range(n):
            out = max(ch // 2, 8)
            blocks.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2.0, mode="nearest"),
                    nn.Conv2d(ch, 2 * out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(2 * out),
                    nn.GLU(dim=1),
                )
            )
            ch = out
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, inp: Tensor) -> Tensor:
        """[B, in_dim] → logits [B, 3, S, S]."""
        h = self.fc(inp).reshape(inp.shape[0], 2 * self.ch0, 4, 4)
        h = F.glu(self.bn0(h), dim=1)
        return self.to_rgb(self.blocks(h))


class Generator(nn.Module):
    """CSA-GAN's generator family (see the module docstring); built from a :class:`ModelConfig`.

    Components (top-level children, as :func:`parameter_counts` reports them): ``csa``
    (Eq. 16, optional), ``fc``, ``masks`` (one :class:`MaskPredictor` per block, SSF only),
    ``blocks``, ``to_rgb``, ``g0`` and the scalar ``g0_weight`` (optional).

    Output with G0: image = tanh(main_logits + w · g0_logits), w learnable (init
    ``cfg.g0_weight_init``). Combining pre-tanh logits keeps the sum in [−1, 1] with non-vanishing
    gradients; the probable authors' code instead adds 0.012 · G0's image to the tanh output,
    which can leave [−1, 1].
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        nf8 = 8 * cfg.nf
        self.csa: CSA | None = CSA(cfg.text_dim, cfg.c_dim) if cfg.use_csa else None
        self.fc = nn.Linear(cfg.z_dim, nf8 * 16)
        chans = generator_channels(cfg)
        self.blocks = nn.ModuleList([GBlock(i, o, cfg) for i, o in chans])
        self.masks: nn.ModuleList | None = None
        if cfg.uses_masks:
            self.masks = nn.ModuleList([MaskPredictor(i, cfg.mask_hidden, cfg.mask_order) for i, _ in chans])
        self.to_rgb = nn.Conv2d(chans[-1][1], 3, 3, padding=1)
        self.g0: G0 | None = None
        self.g0_weight: nn.Parameter | None = None
        if cfg.use_g0:
            self.g0 = G0(cfg.code_dim + cfg.z_dim, cfg.image_size, cfg.g0_nf)
            self.g0_weight = nn.Parameter(torch.tensor([float(cfg.g0_weight_init)]))
        if cfg.fixed_masks:
            self._freeze_masks()

    # ------------------------------------------------------------------ masks
    def _freeze_masks(self) -> None:
        if self.masks is None:
            raise ValueError("this generator has no mask predictors (fusion must be 'ssf').")
        for p in self.masks.parameters():
            p.requires_grad_(False)
        self.masks.eval()

    @property
    def masks_frozen(self) -> bool:
        """True when the mask predictors are fixed (Table 4's "SSA-GAN with CSA-GAN's masks")."""
        return self.masks is not None and not any(p.requires_grad for p in self.masks.parameters())

    def train(self, mode: bool = True) -> Generator:
        """As ``nn.Module.train``, but frozen mask predictors stay in eval mode (fixed BN stats)."""
        super().train(mode)
        if self.masks_frozen and self.masks is not None:
            self.masks.eval()
        return self

    def load_mask_predictors_from(self, source: Generator | Mapping[str, Tensor]) -> None:
        """Copy the mask predictors of another generator (or its state dict) and freeze them.

        Used for Table 4's "SSA-GAN with CSA-GAN's masks": the predictors come from a trained
        CSA-GAN of the same width and image size and are not trained further.

        Raises:
            ValueError: this generator has no masks, or the source's predictors do not match.
        """
        if self.masks is None:
            raise ValueError("load_mask_predictors_from: this generator has no mask predictors (fusion must be 'ssf').")
        state = source.state_dict() if isinstance(source, nn.Module) else dict(source)
        sub = {k[len("masks.") :]: v for k, v in state.items() if k.startswith("masks.")}
        if not sub:
            raise ValueError(
                "load_mask_predictors_from: the source has no 'masks.*' entries; pass a generator "
                "(or its state_dict) built with fusion='ssf'."
            )
        own = self.masks.state_dict()
        bad = sorted(k for k in own if k not in sub or sub[k].shape != own[k].shape)
        if bad or len(sub) != len(own):
            raise ValueError(
                f"load_mask_predictors_from: the source's mask predictors do not match this generator "
                f"(missing or mis-shaped: {bad[:5]}); build both with the same image_size, nf, "
                f"mask_hidden and mask_order."
            )
        self.masks.load_state_dict(sub)
        self._freeze_masks()

    # ---------------------------------------------------------------- forward
    def _check_inputs(self, z: Tensor, sent: Tensor) -> None:
        c = self.cfg
        if z.dim() != 2 or z.shape[1] != c.z_dim:
            raise ValueError(f"Generator: noise z must have shape [B, {c.z_dim}], got {tuple(z.shape)}.")
        if sent.dim() != 2 or sent.shape[1] != c.text_dim:
            raise ValueError(f"Generator: sentence code must have shape [B, {c.text_dim}], got {tuple(sent.shape)}.")
        if z.shape[0] != sent.shape[0]:
            raise ValueError(f"Generator: z and sent have different batch sizes ({z.shape[0]} vs {sent.shape[0]}).")

    def forward(
        self,
        z: Tensor,
        sent: Tensor,
        *,
        words: Tensor | None = None,
        csa_sample: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> GeneratorOutput:
        """Generate images from noise z [B, z_dim] and sentence codes sent [B, text_dim].

        Args:
            words: word features [B, text_dim, T]; accepted for interface symmetry, unused.
            csa_sample: passed to :class:`CSA` (None: sample in training, mean in eval mode).
            generator: ``torch.Generator`` for the CSA noise ε.
        """
        self._check_inputs(z, sent)
        del words
        csa_out: CSAOutput | None = None
        code = sent
        if self.csa is not None:
            csa_out = self.csa(sent, sample=csa_sample, generator=generator)
            code = csa_out.code
        cond = torch.cat([z, code], dim=1) if self.cfg.concat_noise else code

        h = self.fc(z).reshape(z.shape[0], 8 * self.cfg.nf, 4, 4)
        masks: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            mask = None
            if self.masks is not None:
                mask = self.masks[i](h)
                masks.append(mask)
            h = block(h, cond, mask)
        logits = self.to_rgb(F.leaky_relu(h, 0.2))

        g0_image: Tensor | None = None
        if self.g0 is not None and self.g0_weight is not None:
            g0_logits = self.g0(torch.cat([code, z], dim=1))
            g0_image = torch.tanh(g0_logits)
            logits = logits + self.g0_weight * g0_logits
        return GeneratorOutput(torch.tanh(logits), masks, csa_out, g0_image)


class DBlock(nn.Module):
    """Discriminator down-block: shortcut (1×1 conv if channels change, avg-pool 2) + γ·residual,
    residual = conv4×4 s2 p1 → LReLU(0.2) → conv3×3 → LReLU(0.2), γ learnable, init 0 (DF-GAN)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.shortcut: nn.Module = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        """[B, in, H, W] → [B, out, H/2, W/2].

        The shortcut pools before its 1×1 convolution (both are linear and the convolution acts
        per pixel, so avg_pool(conv1×1(x)) == conv1×1(avg_pool(x))), at a quarter of the cost.
        """
        res = F.leaky_relu(self.conv1(x), 0.2, inplace=True)
        res = F.leaky_relu(self.conv2(res), 0.2, inplace=True)
        # Under autocast the fp32 γ (and an fp32 identity shortcut) would promote the sum to fp32 and
        # make every later elementwise op mix dtypes (~10x slower on the CPU): keep res's dtype.
        short = self.shortcut(F.avg_pool2d(x, 2)).to(res.dtype)
        return torch.addcmul(short, self.gamma.to(res.dtype), res)


class DiscriminatorHead(nn.Module):
    """One-way conditional head (Eq. 24's D(x, t)): tile the sentence to 4×4, concatenate with the
    image features, conv3×3(8nf + text_dim → 2nf) → LReLU(0.2) → conv4×4 (valid) → score [B]."""

    def __init__(self, feat_ch: int, text_dim: int, hidden: int) -> None:
        super().__init__()
        self.feat_ch = feat_ch
        self.text_dim = text_dim
        self.conv1 = nn.Conv2d(feat_ch + text_dim, hidden, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(hidden, 1, 4, bias=False)

    def forward(self, features: Tensor, sent: Tensor) -> Tensor:
        """features [B, 8nf, 4, 4], sent [B, text_dim] → scores [B]."""
        if features.dim() != 4 or features.shape[1:] != (self.feat_ch, 4, 4):
            raise ValueError(
                f"DiscriminatorHead: features must be [B, {self.feat_ch}, 4, 4] (the output of "
                f"Discriminator.forward), got {tuple(features.shape)}."
            )
        if sent.dim() != 2 or sent.shape != (features.shape[0], self.text_dim):
            raise ValueError(
                f"DiscriminatorHead: sentence codes must be [B={features.shape[0]}, {self.text_dim}], "
                f"got {tuple(sent.shape)}."
            )
        tiled = sent[:, :, None, None].expand(-1, -1, 4, 4).to(features.dtype)
        h = torch.cat([features, tiled], dim=1)
        h = F.leaky_relu(self.conv1(h), 0.2)
        return self.conv2(h).reshape(-1)


class Discriminator(nn.Module):
    """DF-GAN's discriminator: conv3×3(3 → d_nf), down-blocks d_nf·[1,2,4,8,8,8,8] truncated so the
    output is 8·d_nf × 4×4 (64 px: 4 blocks, 128 px: 5, 256 px: 6), and :attr:`head`.

    ``forward(images)`` returns features; ``head(features, sent)`` returns scores, so that the
    mismatched-caption term of Eq. (24) reuses the real images' features.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv_img = nn.Conv2d(3, cfg.d_nf, 3, padding=1)
        self.blocks = nn.Sequential(*[DBlock(i, o) for i, o in discriminator_channels(cfg)])
        self.head = DiscriminatorHead(8 * cfg.d_nf, cfg.text_dim, 2 * cfg.d_nf)

    def forward(self, images: Tensor) -> Tensor:
        """images [B, 3, S, S] → features [B, 8·d_nf, 4, 4]."""
        s = self.cfg.image_size
        if images.dim() != 4 or images.shape[1:] != (3, s, s):
            raise ValueError(
                f"Discriminator: images must be [B, 3, {s}, {s}] (cfg.image_size={s}), got {tuple(images.shape)}."
            )
        return self.blocks(self.conv_img(images))


def parameter_counts(module: nn.Module) -> dict[str, int]:
    """Number of parameters per top-level component (children and direct parameters), plus
    ``"total"``; the components sum to the total."""
    counts: dict[str, int] = {}
    for name, child in module.named_children():
        n = sum(p.numel() for p in child.parameters())
        if n:
            counts[name] = n
    for name, p in module.named_parameters(recurse=False):
        counts[name] = p.numel()
    counts["total"] = sum(p.numel() for p in module.parameters())
    return counts


def summary(cfg: ModelConfig) -> str:
    """A plain-text table of G's and D's parameter counts per component for ``cfg``.

    The networks are built on the ``meta`` device, so paper-size models cost no memory.
    """
    with torch.device("meta"):
        g, d = Generator(cfg), Discriminator(cfg)
    lines = [
        f"{cfg.name} @ {cfg.image_size}px (G nf={cfg.nf}, D nf={cfg.d_nf})",
        f"{'component':<24}{'parameters':>14}",
    ]
    for label, net in (("G", g), ("D", d)):
        for name, n in parameter_counts(net).items():
            lines.append(f"{label + '.' + name:<24}{n:>14,}")
    return "\n".join(lines)
