"""Read a training run folder back: the generator and what sampling needs.

A run folder (written by :func:`csagan.train.engine.train`) holds ``config.json``, ``generator.pt``
(generator state dict + model config, updated at every checkpoint), ``vocab.json`` and a copy of
the DAMSM folder in ``damsm/``. :func:`load_run` turns it into ready-to-sample modules.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from csagan.atomic import atomic_torch_save
from csagan.config import ModelConfig
from csagan.damsm_io import load_damsm, read_vocab
from csagan.models import Generator
from csagan.safe_load import load_torch_file
from csagan.text import RNNEncoder
from csagan.train.checkpoint import GENERATOR_NAME
from csagan.train.config import TrainConfig

__all__ = ["EXPORT_FILES", "LoadedRun", "export_run", "load_run"]

#: What :func:`export_run` copies besides ``generator.pt`` and ``damsm/`` (when present).
EXPORT_FILES: tuple[str, ...] = ("config.json", "vocab.json", "metrics.jsonl", "metrics.csv")


@dataclass
class LoadedRun:
    """A trained run: ``generator`` and ``text_encoder`` in eval mode, the vocabulary (ixtoword),
    both configs and the training step the generator weights come from."""

    generator: Generator
    text_encoder: RNNEncoder
    vocab: list[str]
    model_config: ModelConfig
    train_config: TrainConfig
    step: int


def load_run(run_dir: str | Path, map_location: str | torch.device = "cpu") -> LoadedRun:
    """Load a run folder for sampling (weights-only loads, strict state dicts).

    Raises:
        FileNotFoundError: the folder or one of ``config.json``, ``generator.pt``, ``vocab.json``,
            ``damsm/`` is missing (the file is named).
        ValueError: ``generator.pt`` does not match the run's model config.
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"run folder not found: {folder}; train one with `csagan train --out {folder}`.")
    for name in ("config.json", GENERATOR_NAME, "vocab.json", "damsm"):
        if not (folder / name).exists():
            raise FileNotFoundError(
                f"{folder / name} not found: {folder} is not a complete csagan run folder (generator.pt is "
                "written at the first checkpoint; wait for it or resume the run)."
            )
    cfg_path = folder / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        model_cfg = ModelConfig.from_dict(cfg["model"])
        train_cfg = TrainConfig.from_dict(cfg["train"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(
            f"{cfg_path} is not a valid run config.json ({type(exc).__name__}: {exc}); it is rewritten when the "
            "run is resumed (`csagan train --resume` with the run's settings), or copy it from a copy of the run."
        ) from None
    obj = load_torch_file(
        folder / GENERATOR_NAME, what="a csagan generator file",
        fix=f"generator.pt is rewritten at every checkpoint: resume the run (`csagan train --out {folder} --resume`) "
        "or sample from another run.",
    )
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise ValueError(f"{folder / GENERATOR_NAME} is not a csagan generator file (no 'state_dict').")
    generator = Generator(model_cfg)
    try:
        generator.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{folder / GENERATOR_NAME} does not match {folder / 'config.json'}: {exc}") from None
    generator = generator.to(map_location).eval()
    damsm = load_damsm(folder / "damsm", map_location=map_location)
    vocab = read_vocab(folder / "vocab.json")
    return LoadedRun(
        generator=generator,
        text_encoder=damsm.text_encoder.eval(),
        vocab=vocab,
        model_config=model_cfg,
        train_config=train_cfg,
        step=int(obj.get("step", 0)),
    )


def _halve(obj: object) -> object:
    """Floating-point tensors of a (nested) state dict as fp16; everything else unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.half() if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return {k: _halve(v) for k, v in obj.items()}
    return obj


def export_run(run_dir: str | Path, out_dir: str | Path, *, half: bool = True) -> Path:
    """Copy what sampling and evaluation need from a run folder into ``out_dir`` (for shipping).

    Copies ``config.json``, ``vocab.json``, the metrics logs (for the training curves), the
    generator (``generator.pt``) and the DAMSM folder (``damsm/``: encoders, ``damsm.json``,
    ``vocab.json``), with floating-point weights stored in fp16 when ``half`` (half the size;
    :func:`load_run` casts them back to fp32 on load). Optimiser state, the discriminator and the
    resumable ``checkpoint.pt`` are left out: an exported run can be sampled and evaluated, not
    resumed. The export loads with :func:`load_run`.

    Raises:
        FileNotFoundError: ``run_dir`` is not a complete run folder (see :func:`load_run`).
        ValueError: ``out_dir`` is ``run_dir`` itself.
    """
    src, dst = Path(run_dir), Path(out_dir)
    load_run(src)  # validates the folder (and that the generator matches its config)
    if dst.resolve() == src.resolve():
        raise ValueError(f"export_run: out_dir {dst} is the run folder itself; choose another folder.")
    dst.mkdir(parents=True, exist_ok=True)
    for name in EXPORT_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)

    gen = torch.load(src / GENERATOR_NAME, map_location="cpu", weights_only=True)
    atomic_torch_save(_halve(gen) if half else gen, dst / GENERATOR_NAME)
    damsm_src, damsm_dst = src / "damsm", dst / "damsm"
    damsm_dst.mkdir(exist_ok=True)
    for item in sorted(damsm_src.iterdir()):
        if item.name == "checkpoint.pt":  # a DAMSM pretraining checkpoint (optimiser state): not needed
            continue
        if item.suffix in (".pth", ".pt"):
            state = torch.load(item, map_location="cpu", weights_only=True)
            atomic_torch_save(_halve(state) if half else state, damsm_dst / item.name)
        elif item.is_file():
            shutil.copyfile(item, damsm_dst / item.name)
    return dst
