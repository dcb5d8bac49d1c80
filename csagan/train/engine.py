"""The GAN training loop (DF-GAN's one-stage scheme with CSA-GAN's objective, Eqs. 22-25).

The trainer reads batches, runs one step of :class:`csagan.train.step.TrainStep` per batch (the D step of
Eq. 24 with MA-GP, Eqs. 22-23, and the G step of Eq. 25; that module's docstring writes it out), logs,
draws sample grids and writes atomic checkpoints; on several processes it shards the data and keeps the
models in sync. ``benchmarks/train_step.py`` times the same step on synthetic batches.

Everything random in a step comes from one ``torch.Generator`` per rank (seeded from the run seed
and the rank) and from the data layer's ``(seed, epoch, index)`` generators, so a run is a function
of its seed, and a resumed run reproduces the uninterrupted one exactly on the CPU.

Run folder (the contract with :mod:`csagan.damsm_io`, :mod:`csagan.train.run` and sampling): ``config.json``,
``checkpoint.pt``, ``generator.pt``, ``vocab.json``, ``damsm/``, ``metrics.jsonl`` (+ ``.csv``),
``samples/step_XXXXXXX.png``.
"""

from __future__ import annotations

import contextlib
import json
import math
import textwrap
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torch.utils.data import DataLoader

from csagan import __version__
from csagan.atomic import remove_orphan_tmp_files
from csagan.config import ModelConfig
from csagan.damsm_io import LoadedDAMSM, file_sha256, find_vocab_source, load_damsm
from csagan.data.datasets import EpochSampler, TextImageBatch, TextImageDataset, collate
from csagan.data.layout import warn_if_single_class
from csagan.devices import resolve_device
from csagan.models import Discriminator, Generator
from csagan.runlock import folder_lock
from csagan.sample import truncated_noise
from csagan.train.checkpoint import (
    CHECKPOINT_NAME,
    GENERATOR_NAME,
    atomic_save,
    atomic_write_text,
    capture_rng_state,
    config_differences,
    load_checkpoint,
    restore_rng_state,
)
from csagan.train.config import RESUMABLE_FIELDS, TrainConfig, run_config_json
from csagan.train.distributed import (
    DistInfo,
    barrier,
    broadcast_parameters,
    cleanup_distributed,
    gather_objects,
    init_distributed,
    read_env,
    shard_batches,
)
from csagan.train.logging import MetricsLogger, ProgressBar
from csagan.train.step import TrainingDivergedError, TrainStep, rank_generator

__all__ = ["CONFIG_JSON", "EvalFn", "caption_grid", "copy_damsm", "train"]

EvalFn = Callable[[int, Generator], dict[str, float]]
CONFIG_JSON = "config.json"


@dataclass
class _Position:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    images_seen: int = 0
    wall_time: float = 0.0


# ----------------------------------------------------------------------------- helpers


def caption_grid(images: Tensor, captions: Sequence[str], cols: int = 8, min_cell: int = 96) -> Image.Image:
    """A PNG-ready grid: each image (in [−1, 1], [N, 3, S, S]) with its caption written under it."""
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[0] != len(captions):
        raise ValueError(
            f"caption_grid: need images [N, 3, S, S] and N captions, got {tuple(images.shape)} and {len(captions)}."
        )
    n, size = images.shape[0], images.shape[-1]
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    cell = max(size, min_cell)
    font = ImageFont.load_default()
    chars = max(8, cell // 6)
    wrapped = [textwrap.wrap(c, chars)[:6] for c in captions]
    line_h = 11
    text_h = line_h * max(1, max(len(w) for w in wrapped)) + 6
    grid = Image.new("RGB", (cols * cell, rows * (cell + text_h)), "white")
    draw = ImageDraw.Draw(grid)
    pixels = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    for i in range(n):
        r, c = divmod(i, cols)
        tile = Image.fromarray(pixels[i].permute(1, 2, 0).numpy()).resize((cell, cell), Image.Resampling.NEAREST)
        x0, y0 = c * cell, r * (cell + text_h)
        grid.paste(tile, (x0, y0))
        for j, line in enumerate(wrapped[i]):
            draw.text((x0 + 2, y0 + cell + 2 + j * line_h), line, fill=(0, 0, 0), font=font)
    return grid


def _check_damsm(damsm: LoadedDAMSM, dataset: TextImageDataset, model_cfg: ModelConfig, damsm_dir: Path) -> None:
    words = [dataset.vocab.ixtoword[i] for i in range(dataset.n_words)]
    if damsm.text_encoder.n_words != dataset.n_words or list(damsm.vocab) != words:
        raise ValueError(
            f"the DAMSM text encoder in {damsm_dir} has a vocabulary of {damsm.text_encoder.n_words} words but the "
            f"dataset {dataset.root} has {dataset.n_words} (or the words differ): it was pretrained on another "
            f"dataset. Pretrain DAMSM on this dataset (`csagan pretrain-damsm --data {dataset.root}`) and pass "
            "that folder as damsm_dir."
        )
    if damsm.text_encoder.hidden != model_cfg.text_dim:
        raise ValueError(
            f"the DAMSM text encoder in {damsm_dir} gives {damsm.text_encoder.hidden}-d sentence codes but the "
            f"model expects text_dim={model_cfg.text_dim}; set text_dim={damsm.text_encoder.hidden}."
        )


def copy_damsm(damsm: LoadedDAMSM, run_dir: Path) -> None:
    """Write the run's self-contained ``damsm/`` copy and ``vocab.json``, so that ``sample`` and
    ``evaluate`` need only the run folder."""
    folder = run_dir / "damsm"
    folder.mkdir(parents=True, exist_ok=True)
    cpu = lambda m: {k: v.detach().cpu() for k, v in m.state_dict().items()}
    atomic_save(cpu(damsm.text_encoder), folder / "text_encoder.pth")
    atomic_save(cpu(damsm.image_encoder), folder / "image_encoder.pth")
    atomic_write_text(folder / "damsm.json", json.dumps(damsm.meta, indent=2))
    vocab = json.dumps(list(damsm.vocab))
    atomic_write_text(folder / "vocab.json", vocab)
    atomic_write_text(run_dir / "vocab.json", vocab)


def _load_mask_source(generator: Generator, mask_source: str) -> None:
    p = Path(mask_source)
    path = p / GENERATOR_NAME if p.is_dir() else p
    if not path.is_file():
        raise FileNotFoundError(
            f"mask_source: {path} not found. ssagan-fixed-mask takes its mask predictors from a trained csagan "
            "run: train `csagan` first and set mask_source=<that run folder> (it must hold generator.pt)."
        )
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise ValueError(f"mask_source: {path} is not a csagan generator.pt (no 'state_dict').")
    generator.load_mask_predictors_from(obj["state_dict"])


def _check_resume_config(saved: dict[str, Any], model_cfg: ModelConfig, train_cfg: TrainConfig, where: Path,
                         change_lr: bool = False) -> None:
    ok = RESUMABLE_FIELDS | ({"lr_g", "lr_d"} if change_lr else set())
    # a field a checkpoint of an older csagan lacks (e.g. damsm_reduction) was trained with its default
    saved_train = {**TrainConfig().to_dict(), **saved["train_config"]}
    diffs = [f"model.{d}" for d in config_differences(saved["model_config"], model_cfg.to_dict())]
    diffs += [f"train.{d}" for d in config_differences(saved_train, train_cfg.to_dict(), ok)]
    if diffs:
        raise ValueError(
            f"cannot resume {where}: the configuration differs from the run's in {len(diffs)} field(s): "
            + "; ".join(diffs)
            + f". Resume with the run's own settings (see {where / CONFIG_JSON}); only "
            + ", ".join(sorted(RESUMABLE_FIELDS))
            + " may change (lr_g and lr_d too with --change-lr), or start a new run folder."
        )


def _dataset_info(dataset: TextImageDataset) -> dict[str, Any]:
    """What identifies a run's training data: resolved root, image count, vocabulary, captions file hash."""
    captions = getattr(dataset, "captions_path", None)
    return {
        "path": str(Path(dataset.root).resolve()),
        "train_images": len(dataset),
        "n_words": int(dataset.n_words),
        "captions_sha256": file_sha256(captions) if captions else "",
    }


def _check_resume_data(saved: dict[str, Any] | None, current: dict[str, Any], where: Path) -> None:
    """Refuse to resume on other data (a moved copy of the same data, same counts and captions, is fine)."""
    if not saved:  # a checkpoint from before the dataset was recorded
        return
    keys = ("train_images", "n_words", "captions_sha256")
    if all(saved.get(k) == current.get(k) for k in keys):
        return
    raise ValueError(
        f"cannot resume {where}: it was trained on {saved.get('path')} ({saved.get('train_images')} training "
        f"images, {saved.get('n_words')} words) but --data is {current['path']} ({current['train_images']} images, "
        f"{current['n_words']} words{'' if saved.get('n_words') != current['n_words'] else ', other captions'}); "
        f"resume with --data {saved.get('path')}, or train on the new data into a new --out folder."
    )


# ----------------------------------------------------------------------------- trainer


class _Trainer:
    """Holds the models, optimisers and state of one training process (see :func:`train`)."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        data_dir: Path,
        run_dir: Path,
        info: DistInfo,
        device: torch.device,
        resume_state: dict[str, Any] | None,
    ) -> None:
        self.mcfg, self.tcfg, self.run_dir, self.info, self.device = model_cfg, train_cfg, run_dir, info, device
        damsm_dir = Path(train_cfg.damsm_dir) if train_cfg.damsm_dir else run_dir / "damsm"
        if resume_state is not None and not damsm_dir.is_dir() and (run_dir / "damsm").is_dir():
            damsm_dir = run_dir / "damsm"
        if not train_cfg.damsm_dir and resume_state is None:
            raise ValueError(
                "damsm_dir is not set: the GAN needs a pretrained DAMSM text encoder. Run `csagan pretrain-damsm` "
                "on this dataset and pass --set damsm_dir=<folder>."
            )
        if damsm_dir.is_dir():  # AttnGAN's released folder (no vocab.json) needs the data's own captions.pickle,
            find_vocab_source(damsm_dir, data_dir)  # checked before the dataset would build a vocabulary of its own
        self.dataset = TextImageDataset(data_dir, "train", image_size=train_cfg.image_size, seed=train_cfg.seed)
        self.data_info = _dataset_info(self.dataset)
        if resume_state is not None:
            _check_resume_data(resume_state.get("data"), self.data_info, run_dir)
        if model_cfg.damsm_weight > 0 and info.rank == 0:
            warn_if_single_class(self.dataset.class_ids, data_dir, "train")
        self.damsm = load_damsm(damsm_dir, map_location=device, data_dir=self.dataset.captions_path or data_dir)
        _check_damsm(self.damsm, self.dataset, model_cfg, damsm_dir)
        self.damsm_dir = damsm_dir
        self.text_encoder = self.damsm.text_encoder
        self.image_encoder = self.damsm.image_encoder

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train_cfg.seed)
            g = Generator(model_cfg)
            d = Discriminator(model_cfg)
        if model_cfg.fixed_masks and resume_state is None:
            if not train_cfg.mask_source:
                raise ValueError(
                    f"{model_cfg.name} (fixed_masks=True) needs mask_source=<a trained csagan run folder> to copy "
                    "its mask predictors from (Table 4); train `csagan` first."
                )
            _load_mask_source(g, train_cfg.mask_source)
        # the step owns G, D, their optimisers, the scaler and the noise generator; checkpoints read them there
        self.step = TrainStep(model_cfg, train_cfg, g, d, self.text_encoder, self.image_encoder, device,
                              info=info, gen=rank_generator(train_cfg.seed, info.rank, device),
                              on_diverged=self._diverged)
        self.pos = _Position()
        if resume_state is not None:
            self._restore(resume_state)
        else:
            broadcast_parameters(self.step.G, info)
            broadcast_parameters(self.step.D, info)
        self.steps_per_epoch = len(self.dataset) // (train_cfg.batch_size * info.world_size)
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"the dataset {data_dir} has {len(self.dataset)} training images, fewer than one step's "
                f"{train_cfg.batch_size} × {info.world_size} processes; lower batch_size."
            )
        limits = [train_cfg.max_steps] if train_cfg.max_steps else []
        if train_cfg.epochs:
            limits.append(train_cfg.epochs * self.steps_per_epoch)
        self.total_steps = min(limits)
        self._sample_inputs: tuple[Tensor, Tensor, list[str]] | None = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The full training state (every rank's generator state gathered on all ranks)."""

        rank_states = gather_objects(self.step.gen.get_state().cpu(), self.info)
        return {
            "format": "csagan-train-checkpoint",
            "version": 1,
            "csagan_version": __version__,
            "step": self.pos.step,
            "epoch": self.pos.epoch,
            "batch_in_epoch": self.pos.batch_in_epoch,
            "images_seen": self.pos.images_seen,
            "wall_time": self.pos.wall_time,
            "world_size": self.info.world_size,
            "data": self.data_info,
            "model_config": self.mcfg.to_dict(),
            "train_config": self.tcfg.to_dict(),
            "generator": self.step.G.state_dict(),
            "discriminator": self.step.D.state_dict(),
            "opt_g": self.step.opt_g.state_dict(),
            "opt_d": self.step.opt_d.state_dict(),
            "scaler": self.step.scaler.state_dict(),
            "rng": capture_rng_state(),
            "train_rng": rank_states,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        if int(state["world_size"]) != self.info.world_size:
            raise ValueError(
                f"the checkpoint was written by {state['world_size']} processes but this run has "
                f"{self.info.world_size}; resume with the same number of processes (torchrun --nproc_per_node "
                f"{state['world_size']}) to continue exactly."
            )
        self.step.G.load_state_dict(state["generator"])
        self.step.D.load_state_dict(state["discriminator"])
        self.step.opt_g.load_state_dict(state["opt_g"])
        self.step.opt_d.load_state_dict(state["opt_d"])
        if state.get("scaler"):
            self.step.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])
        self.step.gen.set_state(state["train_rng"][self.info.rank].cpu())
        self.pos = _Position(int(state["step"]), int(state["epoch"]), int(state["batch_in_epoch"]),
                             int(state["images_seen"]), float(state["wall_time"]))

    def set_learning_rates(self, lr_g: float, lr_d: float) -> None:
        """Set the optimisers' learning rates (after a restore, which loads the saved ones)."""
        for group in self.step.opt_g.param_groups:
            group["lr"] = lr_g
        for group in self.step.opt_d.param_groups:
            group["lr"] = lr_d

    def save_checkpoint(self, name: str = CHECKPOINT_NAME) -> None:
        """Write ``checkpoint.pt`` (or ``name``) and ``generator.pt`` atomically (rank 0 writes)."""
        state = self.state_dict()  # collective: every rank must call it
        if self.info.is_main:
            atomic_save(state, self.run_dir / name)
            if name == CHECKPOINT_NAME:
                self._save_generator()
                self._keep_numbered(state)
        barrier(self.info)

    def _save_generator(self) -> None:
        atomic_save(
            {
                "format": "csagan-generator",
                "model_config": self.mcfg.to_dict(),
                "state_dict": {k: v.detach().cpu() for k, v in self.step.G.state_dict().items()},
                "step": self.pos.step,
            },
            self.run_dir / GENERATOR_NAME,
        )

    def _keep_numbered(self, state: dict[str, Any]) -> None:
        k = self.tcfg.keep_checkpoints
        if k <= 0:
            return
        folder = self.run_dir / "checkpoints"
        atomic_save(state, folder / f"step_{self.pos.step:07d}.pt")
        old = sorted(folder.glob("step_*.pt"))
        for p in old[:-k]:
            p.unlink(missing_ok=True)

    # ------------------------------------------------------------------ step
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return self.step.autocast()

    def _diverged(self, flag: list[str], values: dict[str, float]) -> None:
        """Save ``nan_step_XXXXXXX.pt`` and raise (called by :class:`TrainStep` on every rank)."""
        step = self.pos.step + 1
        name = f"nan_step_{step:07d}.pt"
        self.save_checkpoint(name)
        where = self.run_dir / name
        if flag:
            raise TrainingDivergedError(
                f"training diverged at step {step}: loss term '{flag[0]}' is {values[flag[0]]} "
                f"(all non-finite terms: {flag}); diagnostic checkpoint saved to {where}. Continue from the last "
                f"checkpoint.pt with lower learning rates: rerun the same command with --resume --change-lr "
                f"--set lr_g={self.tcfg.lr_g / 2:g} --set lr_d={self.tcfg.lr_d / 2:g}, or use precision=fp32."
            )
        raise TrainingDivergedError(
            f"training diverged at step {step} on another rank; diagnostic checkpoint saved to {where}."
        )

    def train_step(self, batch: TextImageBatch) -> dict[str, float]:
        """One D step and one G step (module docstring); returns every loss term as a float."""
        return self.step(batch)

    # ------------------------------------------------------------------ data
    def epoch_loader(self, epoch: int, start_batch: int) -> DataLoader[Any]:
        """This rank's batches of ``epoch`` from ``start_batch`` on (the sampler order of the data layer)."""
        order = EpochSampler(len(self.dataset), seed=self.tcfg.seed, shuffle=True).order(epoch)
        batches = [[(i, epoch) for i in b] for b in shard_batches(order, self.tcfg.batch_size, self.info, start_batch)]
        return DataLoader(
            self.dataset,
            batch_sampler=batches,
            collate_fn=collate,
            num_workers=self.tcfg.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.tcfg.seed),
        )

    # ------------------------------------------------------------------ samples
    def _sample_setup(self) -> tuple[Tensor, Tensor, list[str]]:
        if self._sample_inputs is None:
            texts = list(self.tcfg.sample_captions)
            with warnings.catch_warnings():
                if not texts:  # the first training captions; long ones are cut to words_num silently
                    texts = [self.dataset.caption_texts(i)[0] for i in range(min(8, len(self.dataset)))]
                    warnings.simplefilter("ignore")
                caps, lens = zip(*(self.dataset.encode(t) for t in texts))
            captions = torch.stack(list(caps)).to(self.device)
            cap_lens = torch.tensor(lens, dtype=torch.long, device=self.device)
            with torch.no_grad():
                _, sent = self.text_encoder(captions, cap_lens)
            # the noise `csagan sample --seed <seed> --truncation <truncation>` draws for the same captions
            gen = torch.Generator().manual_seed(int(self.tcfg.seed))
            z = truncated_noise(len(texts), self.mcfg.z_dim, self.tcfg.truncation, gen).to(self.device)
            self._sample_inputs = (z, sent.float(), texts)
        return self._sample_inputs

    def write_samples(self) -> Path:
        """Generate the fixed-caption, fixed-noise grid ``samples/step_XXXXXXX.png`` (rank 0)."""
        z, sent, texts = self._sample_setup()
        self.step.G.eval()
        try:
            with torch.no_grad(), self._autocast():
                images = self.step.G(z, sent, csa_sample=False).image
        finally:
            self.step.G.train()
        path = self.run_dir / "samples" / f"step_{self.pos.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        caption_grid(images.float(), texts).save(path)
        return path


# ----------------------------------------------------------------------------- train


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    resume: bool = False,
    eval_fn: EvalFn | None = None,
    progress: bool = True,
    change_lr: bool = False,
) -> Path:
    """Train a GAN of ``model_cfg`` on the AttnGAN-layout dataset ``data_dir`` into the run folder ``out_dir``.

    Runs on the CPU, one CUDA GPU, or several processes under ``torchrun`` (gloo on CPU, NCCL on
    CUDA; rank 0 alone writes files). See the module docstring for the step and the run folder.

    Args:
        model_cfg: the model variant (e.g. from :func:`csagan.train.config.resolve`).
        train_cfg: optimisation/run settings; ``image_size`` must equal the model's.
        data_dir: dataset root (AttnGAN birds/COCO layout, e.g. ToyBirds).
        out_dir: the run folder (created).
        resume: continue exactly from ``out_dir/checkpoint.pt`` (same configuration and dataset required).
        eval_fn: called as ``eval_fn(step, generator)`` every ``eval_every`` steps on rank 0 with G in
            eval mode; its dict is logged to ``metrics.jsonl`` as a record with ``"kind": "eval"``.
        progress: show a tqdm bar (rank 0).
        change_lr: with ``resume``, take ``lr_g``/``lr_d`` from ``train_cfg`` instead of refusing a
            change (e.g. after a divergence); the run is then no longer an exact continuation.

    Returns:
        The run folder.

    Raises:
        ValueError: image sizes differ, bad DAMSM folder/vocabulary, resume with another config, ...
        FileNotFoundError: data, DAMSM files, mask source or (with ``resume``) the checkpoint missing.
        TrainingDivergedError: a loss became NaN/inf (a ``nan_step_XXXXXXX.pt`` checkpoint is saved).
    """
    if train_cfg.image_size != model_cfg.image_size:
        raise ValueError(
            f"train image_size={train_cfg.image_size} differs from the model's image_size={model_cfg.image_size}; "
            f"set both with --set image_size={model_cfg.image_size}."
        )
    if train_cfg.mask_source and not model_cfg.fixed_masks:
        raise ValueError(
            f"mask_source is set but model {model_cfg.name!r} has fixed_masks=False; mask_source is only for "
            "ssagan-fixed-mask. Remove it."
        )
    data_dir, run_dir = Path(data_dir), Path(out_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"dataset folder not found: {data_dir}; make ToyBirds with `csagan data toybirds` or prepare CUB/COCO "
            "with `csagan data prepare`."
        )
    device = resolve_device(train_cfg.device)
    env = read_env()
    if device.type == "cuda" and env.distributed:
        device = torch.device("cuda", env.local_rank)
    info = init_distributed(device)
    stack = contextlib.ExitStack()
    try:
        if info.is_main:  # one writer per run folder; files left by a killed writer are removed
            stack.enter_context(folder_lock(run_dir, "csagan train"))
            for folder in (run_dir, run_dir / "checkpoints", run_dir / "damsm"):
                remove_orphan_tmp_files(folder)
        resume_state: dict[str, Any] | None = None
        ckpt = run_dir / CHECKPOINT_NAME
        if resume:
            resume_state = load_checkpoint(ckpt, map_location=device)
            _check_resume_config(resume_state, model_cfg, train_cfg, run_dir, change_lr)
        elif ckpt.exists():
            raise FileExistsError(
                f"{run_dir} already holds a training run ({ckpt}); pass --resume to continue it or choose a new "
                "--out folder."
            )
        trainer = _Trainer(model_cfg, train_cfg, data_dir, run_dir, info, device, resume_state)
        del resume_state
        if resume and change_lr:
            trainer.set_learning_rates(train_cfg.lr_g, train_cfg.lr_d)
        logger = MetricsLogger(run_dir, enabled=info.is_main)
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / CONFIG_JSON, run_config_json(model_cfg, train_cfg))
            if trainer.damsm_dir.resolve() != (run_dir / "damsm").resolve():
                copy_damsm(trainer.damsm, run_dir)
            if resume:
                logger.truncate_after(trainer.pos.step)
            else:  # no checkpoint: the logs of a run killed before its first one start afresh
                logger.reset()
        barrier(info)
        _loop(trainer, logger, eval_fn, progress and info.is_main)
    finally:
        stack.close()
        cleanup_distributed()
    return run_dir


def _loop(tr: _Trainer, logger: MetricsLogger, eval_fn: EvalFn | None, progress: bool) -> None:
    cfg, pos, info = tr.tcfg, tr.pos, tr.info
    bar = ProgressBar(tr.total_steps, initial=pos.step, enabled=progress)
    per_step = cfg.batch_size * info.world_size
    last_t, last_images = time.perf_counter(), pos.images_seen
    last_ckpt = pos.step if pos.step > 0 else -1
    last_sample = -1
    try:
        while pos.step < tr.total_steps:
            for batch in tr.epoch_loader(pos.epoch, pos.batch_in_epoch):
                t0 = time.perf_counter()
                vals = tr.train_step(batch)
                pos.step += 1
                pos.batch_in_epoch += 1
                pos.images_seen += per_step
                if pos.batch_in_epoch >= tr.steps_per_epoch:
                    pos.epoch, pos.batch_in_epoch = pos.epoch + 1, 0
                pos.wall_time += time.perf_counter() - t0
                if info.is_main and (cfg.log_every and pos.step % cfg.log_every == 0 or pos.step == tr.total_steps):
                    now = time.perf_counter()
                    rate = (pos.images_seen - last_images) / max(now - last_t, 1e-9)
                    last_t, last_images = now, pos.images_seen
                    record = {"kind": "train", "step": pos.step, "epoch": pos.epoch, "images_seen": pos.images_seen,
                              "wall_time": round(pos.wall_time, 3), "images_per_s": round(rate, 3), **vals}
                    logger.log(record)
                    bar.update(0, {"img/s": rate, "d": vals["d_total"], "g": vals["g_total"]})
                bar.update(1, {})
                if info.is_main and cfg.sample_every and pos.step % cfg.sample_every == 0:
                    tr.write_samples()
                    last_sample = pos.step
                if eval_fn is not None and cfg.eval_every and pos.step % cfg.eval_every == 0:
                    if info.is_main:
                        _run_eval(tr, logger, eval_fn)
                    barrier(info)
                if cfg.checkpoint_every and pos.step % cfg.checkpoint_every == 0:
                    tr.save_checkpoint()
                    last_ckpt = pos.step
                if pos.step >= tr.total_steps:
                    break
        if info.is_main and last_sample != pos.step:
            tr.write_samples()
        if last_ckpt != pos.step:
            tr.save_checkpoint()
    finally:
        bar.close()


def _run_eval(tr: _Trainer, logger: MetricsLogger, eval_fn: EvalFn) -> None:
    tr.step.G.eval()
    try:
        metrics = eval_fn(tr.pos.step, tr.step.G)
    finally:
        tr.step.G.train()
    logger.log({"kind": "eval", "step": tr.pos.step, "epoch": tr.pos.epoch, **{k: float(v) for k, v in metrics.items()}})


# ----------------------------------------------------------------------------- module entry
