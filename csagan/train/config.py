"""Training configuration, named presets and ``key=value`` overrides.

A training run is described by two frozen dataclasses: the model (:class:`csagan.config.ModelConfig`,
which also carries the objective's weights λ1, λ2, λ3 of Eqs. 23-25) and :class:`TrainConfig`
(optimisation, devices, precision, checkpoints, logging). :func:`resolve` builds both from a model
config name, a train preset and a list of ``"key=value"`` overrides; the CLI and the notebooks call it.

Presets (:func:`list_train_presets`):

================= ======= ====== ============ ===================================================
preset            size    batch  length       notes
================= ======= ====== ============ ===================================================
``cub``           256 px  40     400 epochs   the paper's CUB setting (model size "paper", GPU)
``coco``          256 px  40     200 epochs   the paper's COCO setting (model size "paper", GPU)
``toybirds-cpu``  64 px   24     2000 steps   ToyBirds on 2 CPU cores (nf 16, fp32; see below)
``smoke``         32 px   4      4 steps      tests and CI: every code path, tiny widths
================= ======= ====== ============ ===================================================

Both paper presets use Adam with β = (0.0, 0.9), lr_G = 2e-4 and lr_D = 4e-4 (DF-GAN's
two-time-scale rule) and the model's λ = (2, 0.01, 0.05).

``toybirds-cpu`` trains in fp32 with the channels-last memory format; bf16 autocast
(``--set precision=bf16``) pays only on CPUs with bf16 instructions (``avx512_bf16``/AMX) and is
much slower without them, so fp32 stays the default. Its length, 2,000 steps of 24 images (48,000
images), is where the shipped 64 px run's sample grids first showed bird shapes. The reproduction
study's trained protocol uses this preset at 32 px with both learning rates doubled
(:data:`csagan.study.STUDY_PRESETS`). Measured speeds and their ratios: ``benchmarks/README.md``.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from csagan.config import ModelConfig, get_model_config
from csagan.settings import Settings, parse_override, parse_value

__all__ = [
    "RESUMABLE_FIELDS",
    "TrainConfig",
    "TrainPreset",
    "default_preset",
    "get_train_preset",
    "list_train_presets",
    "resolve",
    "run_config_json",
]

Precision = Literal["fp32", "bf16", "fp16"]
WordScoreMode = Literal["code", "paper"]
Reduction = Literal["mean", "sum"]

#: Fields that may differ between a run and its ``--resume`` (they do not change the numbers).
RESUMABLE_FIELDS: frozenset[str] = frozenset(
    {"epochs", "max_steps", "num_workers", "log_every", "sample_every", "checkpoint_every", "eval_every",
     "keep_checkpoints", "mask_source"}
)


@dataclass(frozen=True)
class TrainConfig(Settings):
    """Everything about a training run that is not the model (see the module docstring).

    Length
        batch_size: images per step *per process* (the global batch is ``batch_size × world_size``).
        epochs: stop after this many epochs (0 = no epoch limit).
        max_steps: stop after this many steps (0 = no step limit); the first limit reached wins.
    Optimisation
        lr_g, lr_d: Adam learning rates of G and D; betas: Adam (β1, β2), DF-GAN's (0.0, 0.9).
        seed: seeds model initialisation, data order/augmentation and the training noise.
    Execution
        num_workers: DataLoader worker processes (results do not depend on it).
        device: "auto" (CUDA if available, else CPU), "cpu", "cuda" or "cuda:N".
        precision: "fp32", "bf16" (autocast on CPU or CUDA; losses and penalty norms in fp32) or
            "fp16" (CUDA only, with a GradScaler).
        channels_last: NHWC memory format for images and convolution weights.
        compile: ``torch.compile`` the generator (D is not compiled: MA-GP needs a double backward).
    Outputs
        checkpoint_every, sample_every, log_every, eval_every: intervals in steps (0 = off;
            a checkpoint is always written at the end).
        keep_checkpoints: how many numbered copies ``checkpoints/step_XXXXXXX.pt`` to keep
            besides ``checkpoint.pt`` (0 = none).
        sample_captions: captions of the periodic sample grids (empty: the first test captions).
        truncation: DF-GAN's sampling noise for grids: N(0, 1) truncated to [−2, 2], times this.
    Objective (L_DAMSM in the generator's Eq. 25; :class:`csagan.damsm.DAMSMConfig`)
        damsm_gamma1, damsm_gamma2, damsm_gamma3: γ1 (Eq. 7), γ2 (Eq. 8), γ3 (Eq. 9); DF-GAN /
            SSA-GAN's 5, 5, 10 (pretraining uses γ1 = 4).
        damsm_word_score_mode: Eq. (8) as AttnGAN computes it, ``"code"`` (log Σ exp(γ2 R)), or as
            printed, ``"paper"`` (with the 1/γ2 power).
        damsm_reduction: Eqs. (10)-(11) averaged over the batch, ``"mean"`` (AttnGAN, what λ3 = 0.05
            was tuned for), or summed as printed, ``"sum"``.
    Inputs
        damsm_dir: the pretrained DAMSM folder (``csagan pretrain-damsm``), required.
        mask_source: a csagan run folder whose ``generator.pt`` gives the frozen mask predictors
            of ``ssagan-fixed-mask`` (Table 4); must be empty for other configs.
        image_size: must equal the model's image size (checked).
    """

    batch_size: int = 24
    epochs: int = 0
    max_steps: int = 600
    lr_g: float = 2e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.9)
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    precision: Precision = "fp32"
    channels_last: bool = False
    compile: bool = False
    checkpoint_every: int = 250
    sample_every: int = 250
    log_every: int = 10
    eval_every: int = 0
    damsm_dir: str = ""
    mask_source: str = ""
    image_size: int = 64
    truncation: float = 0.88
    sample_captions: tuple[str, ...] = field(default_factory=tuple)
    keep_checkpoints: int = 0
    damsm_gamma1: float = 5.0
    damsm_gamma2: float = 5.0
    damsm_gamma3: float = 10.0
    damsm_word_score_mode: WordScoreMode = "code"
    damsm_reduction: Reduction = "mean"

    settings_label: ClassVar[str] = "TrainConfig field"

    def __post_init__(self) -> None:
        self.check_fields()
        if self.batch_size < 1:
            raise ValueError(f"TrainConfig.batch_size must be >= 1, got {self.batch_size}.")
        for name in ("epochs", "max_steps", "num_workers", "checkpoint_every", "sample_every", "log_every",
                     "eval_every", "keep_checkpoints", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}.")
        if self.epochs == 0 and self.max_steps == 0:
            raise ValueError("TrainConfig: set epochs > 0 or max_steps > 0 (both 0 would train forever).")
        if self.lr_g <= 0 or self.lr_d <= 0:
            raise ValueError(f"TrainConfig: learning rates must be > 0, got lr_g={self.lr_g}, lr_d={self.lr_d}.")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas}.")
        if not (self.device in ("auto", "cpu", "cuda") or (self.device.startswith("cuda:")
                                                             and self.device[5:].isdigit())):
            raise ValueError(f"TrainConfig.device={self.device!r} is invalid; use 'auto', 'cpu', 'cuda' or 'cuda:N'.")
        if self.precision == "fp16" and self.device == "cpu":
            raise ValueError("TrainConfig.precision='fp16' needs a CUDA device; use 'bf16' or 'fp32' on the CPU.")
        if self.truncation <= 0:
            raise ValueError(f"TrainConfig.truncation must be > 0, got {self.truncation}.")
        for name in ("damsm_gamma1", "damsm_gamma2", "damsm_gamma3"):
            value = float(getattr(self, name))
            if not 0 < value < float("inf"):
                raise ValueError(f"TrainConfig.{name} must be a finite number > 0, got {value}.")
            object.__setattr__(self, name, value)  # 5 and 5.0 are the same setting (config.json, resume)



def train_field_names() -> list[str]:
    """Names of the :class:`TrainConfig` fields."""
    return TrainConfig.field_names()


# ----------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class TrainPreset:
    """A named train preset: the model size preset it pairs with, model overrides and train fields."""

    name: str
    model_size: str
    model_overrides: dict[str, Any]
    train: dict[str, Any]
    description: str


_PAPER_TRAIN: dict[str, Any] = {
    "batch_size": 40,
    "lr_g": 2e-4,
    "lr_d": 4e-4,
    "betas": (0.0, 0.9),
    "device": "auto",
    "precision": "fp32",
    "image_size": 256,
    "max_steps": 0,
    "checkpoint_every": 2000,
    "sample_every": 2000,
    "log_every": 50,
    "num_workers": 4,
    "keep_checkpoints": 3,
}

_PRESETS: dict[str, TrainPreset] = {
    "cub": TrainPreset(
        "cub", "paper", {}, {**_PAPER_TRAIN, "epochs": 400},
        "CUB birds, 256 px, batch 40, 400 epochs, Adam(0.0, 0.9), lr_G 2e-4, lr_D 4e-4 (GPU).",
    ),
    "coco": TrainPreset(
        "coco", "paper", {}, {**_PAPER_TRAIN, "epochs": 200},
        "COCO, 256 px, batch 40, 200 epochs, Adam(0.0, 0.9), lr_G 2e-4, lr_D 4e-4 (GPU).",
    ),
    "toybirds-cpu": TrainPreset(
        "toybirds-cpu", "cpu", {"nf": 16, "d_nf": 16, "g0_nf": 8, "mask_hidden": 32, "mlp_hidden": 128},
        {
            "batch_size": 24,
            "epochs": 0,
            "max_steps": 2000,
            "lr_g": 2e-4,
            "lr_d": 4e-4,
            "device": "cpu",
            "precision": "fp32",
            "channels_last": True,
            "image_size": 64,
            "checkpoint_every": 250,
            "sample_every": 250,
            "log_every": 10,
            "num_workers": 0,
        },
        "ToyBirds at 64 px on 2 CPU cores: nf 16, batch 24, 2000 steps (48k images), fp32, channels-last.",
    ),
    "smoke": TrainPreset(
        "smoke", "cpu",
        {"image_size": 32, "nf": 4, "d_nf": 4, "g0_nf": 4, "mask_hidden": 8, "mlp_hidden": 16},
        {
            "batch_size": 4,
            "epochs": 0,
            "max_steps": 4,
            "device": "cpu",
            "precision": "fp32",
            "image_size": 32,
            "checkpoint_every": 2,
            "sample_every": 2,
            "log_every": 1,
            "num_workers": 0,
        },
        "Tiny (32 px, nf 4, batch 4, 4 steps): every code path, for tests and CI.",
    ),
}


def list_train_presets() -> list[str]:
    """Names accepted by :func:`get_train_preset`."""
    return list(_PRESETS)


def get_train_preset(name: str) -> TrainPreset:
    """The named :class:`TrainPreset` (``cub``, ``coco``, ``toybirds-cpu``, ``smoke``).

    Raises:
        ValueError: unknown name.
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown train preset {name!r}; choose one of {list_train_presets()}.")
    return _PRESETS[name]


def default_preset(config_name: str) -> str:
    """The preset used when none is given: the CPU preset ``toybirds-cpu`` for every model config."""
    del config_name
    return "toybirds-cpu"


# ----------------------------------------------------------------------------- overrides


def resolve(
    config_name: str, preset: str | None = None, overrides: typing.Sequence[str] = ()
) -> tuple[ModelConfig, TrainConfig]:
    """Build the (model, train) configs of a run.

    Args:
        config_name: a model variant of :func:`csagan.config.list_configs` (e.g. ``"csagan"``).
        preset: a train preset of :func:`list_train_presets`; default :func:`default_preset`.
        overrides: ``"key=value"`` strings applied by field name to the train config and/or the
            model config (``image_size`` goes to both); ``model.key=value`` / ``train.key=value``
            pick one side explicitly. Values are parsed with ``ast.literal_eval`` (strings may be
            left unquoted; booleans accept true/false).

    Raises:
        ValueError: unknown config, preset or key (the message lists the valid names), or a bad value.
    """
    name = preset if preset is not None else default_preset(config_name)
    p = get_train_preset(name)
    model_values: dict[str, Any] = dict(p.model_overrides)
    train_values: dict[str, Any] = dict(p.train)
    model_hints = ModelConfig.field_hints()
    train_hints = TrainConfig.field_hints()
    model_names = [n for n in ModelConfig.field_names() if n != "name"]
    train_names = train_field_names()
    for item in overrides:
        key, text = parse_override(item)
        side: str | None = None
        if key.startswith(("model.", "train.")):
            side, key = key.split(".", 1)
        in_model = key in model_names and side in (None, "model")
        in_train = key in train_names and side in (None, "train")
        if not (in_model or in_train):
            valid = sorted(set(model_names) | set(train_names))
            raise ValueError(f"unknown setting {item.split('=', 1)[0]!r}; valid names are: {', '.join(valid)}.")
        if in_model:
            model_values[key] = parse_value(key, text, model_hints[key])
        if in_train:
            train_values[key] = parse_value(key, text, train_hints[key])
    try:
        model_cfg = get_model_config(config_name, p.model_size, **model_values)
        train_cfg = TrainConfig(**train_values)
    except TypeError as exc:  # a value of the wrong type: a bad-input error, not a traceback
        raise ValueError(f"{exc} Fix the --set value.") from None
    return model_cfg, train_cfg


def run_config_json(model_cfg: ModelConfig, train_cfg: TrainConfig) -> str:
    """The resolved configuration as a run folder's ``config.json`` holds it (``csagan config show``)."""
    return json.dumps({"model": model_cfg.to_dict(), "train": train_cfg.to_dict()}, indent=2)
