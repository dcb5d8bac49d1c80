"""DAMSM pretraining (AttnGAN's recipe, paper Section 2.2, Eqs. 4-12).

The result is a DAMSM folder (:mod:`csagan.damsm_io` describes the format, AttnGAN's released
encoders included); each epoch's retrieval accuracy is :func:`csagan.metrics.retrieval.retrieval_accuracy`.

AttnGAN's recipe first brings the losses from their over-confident start down to chance level
(ln B per term), stays near it for an epoch or two, and then learns slowly; what the ``toybirds-cpu``
preset reached is in the shipped DAMSM's ``metrics.jsonl`` (:func:`csagan.paths.shipped_run`, folder
``damsm/``) and in the book's DAMSM chapter.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from csagan.atomic import atomic_torch_save, remove_orphan_tmp_files
from csagan.damsm import DAMSM, DAMSMConfig, DAMSMLosses
from csagan.damsm_encoders import InceptionEncoder, SmallCNNEncoder
from csagan.damsm_io import METRICS_FILE, file_sha256, save_damsm
from csagan.data.datasets import EpochSampler, TextImageDataset, collate
from csagan.data.layout import warn_if_single_class
from csagan.devices import resolve_device
from csagan.metrics.retrieval import retrieval_accuracy
from csagan.runlock import folder_lock
from csagan.safe_load import load_torch_file
from csagan.settings import Settings
from csagan.text import RNNEncoder

__all__ = [
    "DAMSM_PRESETS",
    "PRETRAIN_DEFAULTS",
    "PretrainConfig",
    "PretrainPaths",
    "damsm_settings",
    "evaluate_loss",
    "lr_at_epoch",
    "parse_overrides",
    "pretrain_config",
    "pretrain_damsm",
    "run",
    "train_step",
]

# ----------------------------------------------------------------------------- pretraining

def _damsm_config(cfg: dict[str, Any]) -> Any:
    """The :class:`csagan.damsm.DAMSMConfig` of pretraining settings (γ1-γ3, Eq. 8 reading, reduction).

    Raises:
        ValueError: a γ that is not a positive number, or an unknown word_score_mode / reduction.
    """

    try:
        gammas = {k: float(cfg[k]) for k in ("gamma1", "gamma2", "gamma3")}
    except (TypeError, ValueError):
        bad = {k: cfg[k] for k in ("gamma1", "gamma2", "gamma3")}
        raise ValueError(f"gamma1, gamma2 and gamma3 must be numbers > 0, got {bad}.") from None
    return DAMSMConfig(**gammas, word_score_mode=cfg["word_score_mode"], reduction=cfg["reduction"])


@dataclass(frozen=True)
class PretrainConfig(Settings):
    """Every setting of DAMSM pretraining (AttnGAN's recipe, small CNN by default); frozen.

    ``gamma1``/``gamma2``/``gamma3`` are γ1-γ3 of Eqs. (7)-(9); ``word_score_mode`` is the reading of
    Eq. (8) (``"code"``: AttnGAN's ``log Σ exp(γ2 R)``; ``"paper"``: with the printed 1/γ2) and
    ``reduction`` that of Eqs. (10)-(11) (``"mean"`` over the batch as AttnGAN; ``"sum"`` as printed):
    :class:`csagan.damsm.DAMSMConfig`. Set them with ``--set word_score_mode=paper --set reduction=sum``.
    ``max_steps`` stops after that many optimiser steps in total (resumed ones included);
    ``resume`` continues from ``checkpoint.pt`` of the output folder when there is one.
    """

    image_encoder: Literal["small_cnn", "inception"] = "small_cnn"
    inception_weights: str | None = None
    image_size: int = 64
    ndf: int = 32
    batch_size: int = 48
    epochs: int = 10
    max_steps: int | None = None
    lr: float = 0.002
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay: float = 0.98
    rnn_grad_clip: float = 0.25
    gamma1: float = 4.0
    gamma2: float = 5.0
    gamma3: float = 10.0
    word_score_mode: str = "code"
    reduction: str = "mean"
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    log_every: int = 10
    eval_every_epoch: bool = True
    eval_queries: int = 1000
    eval_candidates: int = 100
    resume: bool = True
    progress: bool = True

    settings_label: ClassVar[str] = "DAMSM pretraining setting"

    def __post_init__(self) -> None:
        self.check_fields()
        _damsm_config(self.to_dict())  # γ > 0, the Eq. 8 reading and the reduction, checked by DAMSMConfig
        for name in ("batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}.")


PRETRAIN_DEFAULTS: dict[str, Any] = PretrainConfig().to_dict()
"""Every setting of :class:`PretrainConfig` and its default, as a dict."""

DAMSM_PRESETS: dict[str, PretrainConfig] = {
    # ToyBirds on a 2-core CPU: small CNN at 64 px, batch 24 (the word-level loss grows as B²); what the
    # shipped DAMSM was trained with (its results: this module's docstring).
    "toybirds-cpu": PretrainConfig(image_encoder="small_cnn", image_size=64, ndf=32, batch_size=24, epochs=14,
                                   lr=0.002, eval_queries=500),
    # AttnGAN's CUB DAMSM: ImageNet Inception-v3 (local weights file), 299 px, batch 48,
    # 200 epochs (the released file is text_encoder200.pth).
    "cub": PretrainConfig(image_encoder="inception", image_size=299, batch_size=48, epochs=200, lr=0.002,
                          num_workers=4),
    # COCO: the same recipe; AttnGAN released text_encoder100.pth (100 epochs).
    "coco": PretrainConfig(image_encoder="inception", image_size=299, batch_size=48, epochs=100, lr=0.002,
                           num_workers=4),
}  # fmt: skip
"""Named settings for ``csagan pretrain-damsm --preset NAME`` (``csagan config show-damsm --preset NAME``)."""


@dataclass(frozen=True)
class PretrainPaths:
    """Where pretraining reads the data set (AttnGAN layout) and writes the DAMSM folder."""

    data_dir: str | os.PathLike[str]
    out_dir: str | os.PathLike[str]


def pretrain_config(preset: str | None = None, sets: Sequence[str] = (), **values: Any) -> PretrainConfig:
    """The preset ``preset`` (``None``: the defaults) with ``key=value`` strings ``sets`` (the shared
    parser of :mod:`csagan.settings`) and then keyword ``values`` applied. With ``image_encoder=inception``
    and no preset, ``image_size`` becomes 299 unless it is given.

    Raises:
        ValueError: an unknown preset or setting (the valid ones are listed) or a bad value.
        TypeError: a value of the wrong type (the message names the field).
    """
    if preset is not None and preset not in DAMSM_PRESETS:
        raise ValueError(f"unknown DAMSM preset {preset!r}; choose one of {sorted(DAMSM_PRESETS)}.")
    changes = {**PretrainConfig.parse_sets(sets), **values}
    PretrainConfig.check_names(changes)
    if preset is None and changes.get("image_encoder") == "inception" and "image_size" not in changes:
        changes["image_size"] = 299
    base = PretrainConfig() if preset is None else DAMSM_PRESETS[preset]
    return base.replace(**changes)


def damsm_settings(preset: str | None = None, **overrides: Any) -> dict[str, Any]:
    """:func:`pretrain_config` as a dict (what ``csagan config show-damsm`` prints)."""
    return pretrain_config(preset, **overrides).to_dict()


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Parse ``--set key=value`` strings into typed pretraining settings (the parser of every ``--set``,
    :mod:`csagan.settings`, typed by :class:`PretrainConfig`'s fields).

    Raises:
        ValueError: a pair without ``=``, an unknown name, or text that is not a value of the field's type.
    """
    return PretrainConfig.parse_sets(pairs)


#: Settings that may differ between a pretraining run and its resumption (they do not change the numbers).
_RESUMABLE_SETTINGS = frozenset({"epochs", "max_steps", "num_workers", "log_every", "eval_every_epoch", "progress",
                                 "resume", "device"})


def _check_pretrain_settings(saved: dict[str, Any] | None, cfg: dict[str, Any], ckpt_path: Path) -> None:
    """Refuse to resume a DAMSM pretraining with other settings (as ``csagan train --resume`` does)."""
    if not isinstance(saved, dict):
        return
    current = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    # a setting a checkpoint of an older csagan lacks (e.g. reduction) was trained with its default
    saved = {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in PRETRAIN_DEFAULTS.items()}, **saved}
    diffs = [f"{k}: {saved.get(k, '<missing>')!r} -> {current.get(k, '<missing>')!r}"
             for k in sorted(set(saved) | set(current))
             if k not in _RESUMABLE_SETTINGS and saved.get(k, "<missing>") != current.get(k, "<missing>")]
    if diffs:
        raise ValueError(
            f"cannot resume the DAMSM pretraining in {ckpt_path.parent}: its {ckpt_path.name} was written with other "
            f"settings ({'; '.join(diffs)}); rerun with the same --config/--set, pass --set resume=false to start "
            "afresh in that folder, or choose another --out."
        )


def lr_at_epoch(epoch: int, lr: float, decay: float) -> float:
    """AttnGAN's schedule: ``lr · decay^epoch``, never below ``lr / 10``."""
    return max(lr * decay**epoch, lr / 10.0)




def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


@torch.no_grad()
def evaluate_loss(damsm_model: Any, loader: Any, device: torch.device) -> dict[str, float]:
    """Mean DAMSM losses (Eq. 12 and its four terms) over a loader, with the encoders in eval mode."""
    sums = {"w1": 0.0, "w2": 0.0, "s1": 0.0, "s2": 0.0}
    n_batches = 0
    for batch in loader:
        batch = batch.to(device)
        losses = damsm_model(batch.images, batch.captions, batch.cap_lens, batch.class_ids)
        for key in sums:
            sums[key] += float(getattr(losses, key))
        n_batches += 1
    if n_batches == 0:
        return {}
    out = {k: v / n_batches for k, v in sums.items()}
    out["loss"] = out["w1"] + out["w2"] + out["s1"] + out["s2"]
    return out


def train_step(model: Any, optimizer: torch.optim.Optimizer, batch: Any, rnn_grad_clip: float = 0.25) -> Any:
    """One optimiser step on L_DAMSM (Eq. 12) of a batch; returns the (detached) :class:`DAMSMLosses`.

    ``model`` is a :class:`csagan.damsm.DAMSM` in train mode, ``batch`` a
    :class:`~csagan.data.datasets.TextImageBatch` on the model's device; same-class pairs are not
    negatives. The text encoder's gradient norm is clipped at ``rnn_grad_clip`` (AttnGAN).
    """

    losses = model(batch.images, batch.captions, batch.cap_lens, batch.class_ids)
    optimizer.zero_grad(set_to_none=True)
    losses.total.backward()
    torch.nn.utils.clip_grad_norm_(model.text_encoder.parameters(), rnn_grad_clip)
    optimizer.step()
    return DAMSMLosses(*(t.detach() for t in losses))


def pretrain_damsm(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    preset: str | None = None,
    **overrides: Any,
) -> Path:
    """Pretrain a DAMSM (text encoder + image encoder) with AttnGAN's recipe; returns ``out_dir``.

    Settings: :func:`pretrain_config` of ``preset`` (:data:`DAMSM_PRESETS`) and keyword ``overrides``
    (unknown names raise ``ValueError``); :func:`run` with a :class:`PretrainConfig` is the same. The recipe
    (AttnGAN's DAMSM pretraining): L_DAMSM = L^w_1 + L^w_2 + L^s_1 + L^s_2 (Eq. 12) with
    γ1 = 4, γ2 = 5, γ3 = 10, AttnGAN's reading of Eq. 8 and the batch mean in Eqs. 10-11 (settings
    ``gamma1``-``gamma3``, ``word_score_mode``, ``reduction``) and same-class negatives masked;
    Adam (lr 0.002, β = (0.5, 0.999))
    over the text encoder and the image encoder's trainable parameters (Inception: only
    ``emb_features`` / ``emb_cnn_code``; small CNN: all); lr × 0.98 per epoch, floor lr/10;
    gradient norm of the text encoder clipped at 0.25; batches of 48 with the last partial batch
    dropped.

    Writes into ``out_dir``: ``metrics.jsonl`` (``{"kind": "train", step, epoch, w1, w2, s1, s2,
    total, lr}`` every ``log_every`` steps, and per epoch ``{"kind": "eval", "split": "test",
    step, epoch, loss, w1.., top1, r_precision, ...}`` from :func:`retrieval_accuracy`),
    ``checkpoint.pt`` (atomically, after every epoch; with ``resume`` a run continues from it)
    and finally the DAMSM folder files via :func:`save_damsm`.

    ``max_steps`` stops after that many optimiser steps (in total, counting resumed ones).
    Seeding uses a forked RNG (the caller's global RNG state is restored afterwards).

    Raises:
        ValueError: bad settings; FileNotFoundError: missing data or Inception weights.
    """
    return run(pretrain_config(preset, **overrides), PretrainPaths(data_dir, out_dir))


def run(config: PretrainConfig, paths: PretrainPaths) -> Path:
    """Pretrain a DAMSM with ``config`` from ``paths.data_dir`` into ``paths.out_dir``
    (:func:`pretrain_damsm` describes the recipe and the files); returns the output folder.

    Raises:
        ValueError: Inception without local weights; FileNotFoundError: missing data or weights.
    """
    cfg = config.to_dict()
    if config.image_encoder == "inception" and not config.inception_weights:
        raise ValueError(
            "image_encoder='inception' needs inception_weights: the local path of torchvision's "
            "inception_v3_google-0cc3c7bd.pth (ImageNet Inception-v3); nothing is downloaded."
        )
    device = resolve_device(config.device)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.seed)
        with folder_lock(paths.out_dir, "csagan pretrain-damsm"):
            remove_orphan_tmp_files(paths.out_dir)
            return _pretrain(Path(paths.data_dir), Path(paths.out_dir), cfg, device)


def _pretrain(data_dir: Path, out_dir: Path, cfg: dict[str, Any], device: torch.device) -> Path:


    seed = int(cfg["seed"])
    image_size = int(cfg["image_size"])
    train_set = TextImageDataset(data_dir, "train", image_size=image_size, seed=seed)
    warn_if_single_class(train_set.class_ids, data_dir, "train")
    test_set: TextImageDataset | None
    try:
        test_set = TextImageDataset(data_dir, "test", image_size=image_size, transform="eval", seed=seed)
    except FileNotFoundError:
        test_set = None
    batch_size = int(cfg["batch_size"])
    if len(train_set) < batch_size:
        raise ValueError(
            f"the train split of {data_dir} has {len(train_set)} images, fewer than batch_size="
            f"{batch_size}; lower batch_size."
        )
    if len(train_set) < 2:
        raise ValueError(f"DAMSM training needs at least 2 training images, {data_dir} has {len(train_set)}.")

    text_encoder = RNNEncoder(train_set.n_words).to(device)
    image_encoder: nn.Module
    if cfg["image_encoder"] == "inception":
        image_encoder = InceptionEncoder.from_imagenet(cfg["inception_weights"])
    else:
        image_encoder = SmallCNNEncoder(image_size=image_size, ndf=int(cfg["ndf"]))
    image_encoder = image_encoder.to(device)
    model = DAMSM(text_encoder, image_encoder, _damsm_config(cfg))
    params = _trainable(text_encoder) + _trainable(image_encoder)
    optimizer = torch.optim.Adam(params, lr=float(cfg["lr"]), betas=tuple(cfg["betas"]))  # type: ignore[arg-type]

    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / METRICS_FILE
    ckpt_path = out_dir / "checkpoint.pt"
    start_epoch, step = 0, 0
    if cfg["resume"] and ckpt_path.is_file():

        state = load_torch_file(
            ckpt_path, what="a DAMSM pretraining checkpoint", map_location=device,
            fix="delete it to start afresh (or pass --set resume=false), or choose another --out folder.",
        )
        _check_pretrain_settings(state.get("settings"), cfg, ckpt_path)
        text_encoder.load_state_dict(state["text_encoder"])
        image_encoder.load_state_dict(state["image_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
    elif metrics_path.exists():
        metrics_path.unlink()  # a fresh run starts a fresh log

    sampler = EpochSampler(len(train_set), seed=seed, shuffle=True, with_epoch=True)
    loader = DataLoader(
        train_set,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate,
        drop_last=True,
        num_workers=int(cfg["num_workers"]),
    )
    max_steps = None if cfg["max_steps"] is None else int(cfg["max_steps"])
    epochs = int(cfg["epochs"])
    log_every = max(1, int(cfg["log_every"]))
    captions_sha = file_sha256(train_set.captions_path) if train_set.captions_path else ""
    progress = None
    if cfg["progress"]:

        total = epochs * len(loader) if max_steps is None else min(max_steps, epochs * len(loader))
        progress = tqdm(total=total, initial=min(step, total), desc="DAMSM", unit="step")
    last_epoch = start_epoch - 1
    for epoch in range(start_epoch, epochs):
        if max_steps is not None and step >= max_steps:
            break
        lr = lr_at_epoch(epoch, float(cfg["lr"]), float(cfg["lr_decay"]))
        for group in optimizer.param_groups:
            group["lr"] = lr
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        model.train()
        for batch in loader:
            losses = train_step(model, optimizer, batch.to(device), float(cfg["rnn_grad_clip"]))
            step += 1
            if step == 1 or step % log_every == 0:
                record = {"kind": "train", "step": step, "epoch": epoch, "lr": lr}
                record.update({k: float(getattr(losses, k)) for k in ("w1", "w2", "s1", "s2")})
                record["total"] = float(losses.total)
                _append_jsonl(metrics_path, record)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{float(losses.total):.3f}")
            if max_steps is not None and step >= max_steps:
                break
        last_epoch = epoch
        if cfg["eval_every_epoch"] and test_set is not None and len(test_set) >= 2:
            _append_jsonl(metrics_path, _eval_record(model, test_set, cfg, device, step, epoch))
        atomic_torch_save(
            {
                "text_encoder": text_encoder.state_dict(),
                "image_encoder": image_encoder.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "step": step,
                "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
            },
            ckpt_path,
        )
    if progress is not None:
        progress.close()
    return save_damsm(
        out_dir,
        text_encoder,
        image_encoder,
        train_set.vocab,
        gamma1=float(cfg["gamma1"]),
        gamma2=float(cfg["gamma2"]),
        gamma3=float(cfg["gamma3"]),
        captions_pickle_sha256=captions_sha,
        epochs=last_epoch + 1,
        step=step,
        extra_meta={"data_dir": str(data_dir), "word_score_mode": cfg["word_score_mode"],
                    "reduction": cfg["reduction"]},
    )


def _eval_record(
    model: Any, test_set: Any, cfg: dict[str, Any], device: torch.device, step: int, epoch: int
) -> dict[str, Any]:


    model.eval()
    subset: Any = test_set
    n_eval = cfg["eval_queries"]
    if n_eval is not None and int(n_eval) < len(test_set):
        gen = torch.Generator().manual_seed(int(cfg["seed"]))
        picks = torch.randperm(len(test_set), generator=gen)[: int(n_eval)].sort().values.tolist()
        subset = Subset(test_set, picks)
    loader = DataLoader(subset, batch_size=int(cfg["batch_size"]), shuffle=False, collate_fn=collate)
    record: dict[str, Any] = {"kind": "eval", "split": "test", "step": step, "epoch": epoch}
    record.update(evaluate_loss(model, loader, device))
    record.update(
        retrieval_accuracy(
            (model.text_encoder, model.image_encoder),
            test_set,
            n_candidates=int(cfg["eval_candidates"]),
            n_queries=cfg["eval_queries"],
            seed=int(cfg["seed"]),
            batch_size=int(cfg["batch_size"]),
        )
    )
    model.train()
    return record
