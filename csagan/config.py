"""Model configurations: one model family, many named variants (CSA-GAN Tables 3-4).

A :class:`ModelConfig` describes the generator, the discriminator and the weights of the
objective (Eqs. 22-25). Every ablation of the paper is the same code with different switches:

==================== ====== ===== ===== ===== ======= ===========================================
name                 fusion masks  CSA   G0    λ3      notes
==================== ====== ===== ===== ===== ======= ===========================================
``csagan``           ssf    yes   yes   yes   0.05    the full model (Fig. 3)
``csagan-no-ssf``    affine no    yes   yes   0.05    Table 3 "w/o SSF": DF-GAN's affine fusion
``csagan-no-damsm``  ssf    yes   yes   yes   0       Table 3 "w/o DAMSM"
``csagan-no-csa``    ssf    yes   no    yes   0.05    Table 3 "w/o CSA": sentence code, no KL
``csagan-no-g0``     ssf    yes   yes   no    0.05    Table 4 "CSA-GAN w/o G0"
``ssagan``           ssf    yes   no    no    0.05    Table 4 "SSA-GAN"
``ssagan-fixed-mask`` ssf   fixed no    no    0.05    Table 4 "SSA-GAN with CSA-GAN's masks"
``dfgan``            affine no    no    no    0       DF-GAN, condition concat(z, sentence)
==================== ====== ===== ===== ===== ======= ===========================================

Choices documented here (the paper does not state them):

* ``c_dim`` (the CSA code, Eq. 16) defaults to 256, the width of the sentence code, so that
  ``csagan`` and ``csagan-no-csa`` have fusion MLPs of identical shape and the ablation changes
  only the augmentation and its KL term. The probable authors' code uses a 100-d code (feeding G0
  only); set ``c_dim=100`` to match it.
* "w/o SSF" is read as "replace SSF by the fusion of the backbone CSA-GAN's lineage starts from",
  DF-GAN's affine fuse blocks with the condition concat(z, code) and no masks.
* ``magp_weight`` (λ1 = 2) plays the role of DF-GAN's MA-GP factor k = 2: the penalty itself is
  computed with k = 1 and weighted by λ1 in :func:`csagan.losses.discriminator_objective`.
* Sizes: ``"paper"`` is 256 px with G width nf = 64 (SSA-GAN's generator) and D width 32
  (DF-GAN's released code; its paper says 64). ``"cpu"`` is the same structure at 64 px with
  nf = d_nf = 32 (the ``toybirds-cpu`` train preset narrows it further; measured speeds are in
  ``benchmarks/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from csagan.settings import Settings

__all__ = [
    "SIZES",
    "ModelConfig",
    "get_model_config",
    "list_configs",
]

Fusion = Literal["ssf", "cbn", "affine"]
MaskOrder = Literal["cnn_then_upsample", "upsample_then_cnn"]
SSFForm = Literal["code", "printed"]
GPForm = Literal["dfgan", "printed"]
KLSide = Literal["generator", "discriminator"]

_ALLOWED_SIZES = (32, 64, 128, 256)


@dataclass(frozen=True)
class ModelConfig(Settings):
    """Every switch of the CSA-GAN model family (see the module docstring for the variants).

    Architecture
        image_size: output side in pixels, one of 32, 64, 128, 256.
        nf: generator width (channels are multiples of it, 8·nf at 4×4).
        d_nf: discriminator width.
        z_dim: noise dimension; text_dim: sentence-code dimension (256, Sec. 3.1).
        c_dim: CSA code dimension (Eq. 16); used only when ``use_csa``.
        use_csa: fuse the sampled CSA code instead of the sentence code (Sec. 3.2).
        fusion: "ssf" (Eq. 21 as SSA-GAN codes it, with predicted masks), "cbn" (Eqs. 19-20,
            m ≡ 1) or "affine" (DF-GAN's fuse blocks, no normalisation, no masks).
        concat_noise: fuse concat(z, code) instead of the code alone (DF-GAN's condition).
        mlp_hidden: hidden width of the SSF/CBN γ/β MLPs (SSA-GAN: 256).
        mask_hidden: hidden channels of the mask predictor (Sec. 3.3; SSA-GAN: 100).
        mask_order: "cnn_then_upsample" (SSA-GAN's code, default) or "upsample_then_cnn"
            (the paper's text, Sec. 3.3).
        ssf_form: "code" x̂·(1 + m·γ) + m·β or "printed" m·(γ + β) (Eq. 21 as printed).
        fixed_masks: mask predictors are frozen (Table 4: copied from a trained CSA-GAN with
            :meth:`csagan.models.Generator.load_mask_predictors_from`).
        use_g0: add the residual generator G0's image (Sec. 3.4 "weighted connection").
        g0_weight_init: initial value of the learnable weight w of G0's image.
        g0_nf: G0 width (its 4×4 map has 4·g0_nf channels, halved per up-block, floor 8).

    Objective (Eqs. 22-25)
        magp_weight: λ1, weight of the gradient penalty (= DF-GAN's k).
        magp_p: exponent p of DF-GAN's MA-GP (6).
        kl_weight: λ2, weight of the CSA KL term (Eq. 16).
        damsm_weight: λ3, weight of the DAMSM loss in the generator objective (Eq. 25).
        gp_form: "dfgan" (zero-centred MA-GP on real images, the default) or "printed" (Eq. 22,
            one-centred on interpolates).
        kl_side: which objective carries λ2·KL: "generator" (default; the CSA net is part of G)
            or "discriminator" (Eq. 24 as printed).
    """

    name: str = "custom"
    image_size: int = 64
    nf: int = 32
    d_nf: int = 32
    z_dim: int = 100
    text_dim: int = 256
    c_dim: int = 256
    use_csa: bool = True
    fusion: Fusion = "ssf"
    concat_noise: bool = False
    mlp_hidden: int = 256
    mask_hidden: int = 100
    mask_order: MaskOrder = "cnn_then_upsample"
    ssf_form: SSFForm = "code"
    fixed_masks: bool = False
    use_g0: bool = True
    g0_weight_init: float = 0.1
    g0_nf: int = 16
    magp_weight: float = 2.0
    magp_p: float = 6.0
    kl_weight: float = 0.01
    damsm_weight: float = 0.05
    gp_form: GPForm = "dfgan"
    kl_side: KLSide = "generator"

    settings_label: ClassVar[str] = "ModelConfig field"

    def __post_init__(self) -> None:
        self.check_fields()
        if self.image_size not in _ALLOWED_SIZES:
            raise ValueError(f"ModelConfig.image_size={self.image_size} is not supported; use one of {_ALLOWED_SIZES}.")
        for name in ("nf", "d_nf", "z_dim", "text_dim", "c_dim", "mlp_hidden", "mask_hidden", "g0_nf"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {getattr(self, name)}.")
        for name in ("magp_weight", "kl_weight", "damsm_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"ModelConfig.{name} must be >= 0, got {getattr(self, name)}.")
        if self.magp_p < 1:
            raise ValueError(f"ModelConfig.magp_p must be >= 1, got {self.magp_p}.")
        if self.fixed_masks and self.fusion != "ssf":
            raise ValueError(
                f"ModelConfig.fixed_masks=True needs fusion='ssf' (only SSF uses masks), got "
                f"fusion={self.fusion!r}; set fixed_masks=False or fusion='ssf'."
            )

    @property
    def uses_masks(self) -> bool:
        """True when the generator predicts masks (SSF fusion)."""
        return self.fusion == "ssf"

    @property
    def code_dim(self) -> int:
        """Dimension of the text code that conditions the generator (CSA code or sentence)."""
        return self.c_dim if self.use_csa else self.text_dim

    @property
    def cond_dim(self) -> int:
        """Dimension of the condition fed to the fusion layers."""
        return self.code_dim + (self.z_dim if self.concat_noise else 0)



#: Size presets: "paper" follows SSA-GAN (G nf 64) and DF-GAN's code (D nf 32) at 256 px;
#: "cpu" keeps the structure at 64 px and width 32.
SIZES: dict[str, dict[str, Any]] = {
    "paper": {"image_size": 256, "nf": 64, "d_nf": 32, "g0_nf": 32},
    "cpu": {"image_size": 64, "nf": 32, "d_nf": 32, "g0_nf": 16},
}

_FULL: dict[str, Any] = {
    "use_csa": True,
    "fusion": "ssf",
    "concat_noise": False,
    "use_g0": True,
    "fixed_masks": False,
    "damsm_weight": 0.05,
    "kl_weight": 0.01,
}

_VARIANTS: dict[str, dict[str, Any]] = {
    "csagan": {},
    "csagan-no-ssf": {"fusion": "affine", "concat_noise": True},
    "csagan-no-damsm": {"damsm_weight": 0.0},
    "csagan-no-csa": {"use_csa": False, "kl_weight": 0.0},
    "csagan-no-g0": {"use_g0": False},
    "ssagan": {"use_csa": False, "kl_weight": 0.0, "use_g0": False},
    "ssagan-fixed-mask": {"use_csa": False, "kl_weight": 0.0, "use_g0": False, "fixed_masks": True},
    "dfgan": {
        "fusion": "affine",
        "concat_noise": True,
        "use_csa": False,
        "kl_weight": 0.0,
        "use_g0": False,
        "damsm_weight": 0.0,
    },
}


def list_configs() -> list[str]:
    """Names accepted by :func:`get_model_config`, in the order of the paper's tables."""
    return list(_VARIANTS)


def get_model_config(name: str, size: str = "cpu", **overrides: Any) -> ModelConfig:
    """The named variant at a size preset, with optional field overrides.

    Args:
        name: one of :func:`list_configs` (e.g. ``"csagan"``, ``"ssagan"``, ``"dfgan"``).
        size: ``"cpu"`` (64 px, width 32) or ``"paper"`` (256 px, G width 64, D width 32).
        **overrides: any :class:`ModelConfig` field, e.g. ``nf=8``.

    Raises:
        ValueError: unknown name, size or field, or an invalid value.
    """
    if name not in _VARIANTS:
        raise ValueError(f"unknown model config {name!r}; choose one of {list_configs()}.")
    if size not in SIZES:
        raise ValueError(f"unknown size preset {size!r}; choose one of {list(SIZES)}.")
    ModelConfig.check_names(overrides)
    values: dict[str, Any] = {**_FULL, **SIZES[size], **_VARIANTS[name], "name": name}
    values.update(overrides)
    return ModelConfig(**values)
