"""Read a training run folder back: the generator and what sampling needs.

A run folder (written by :func:`csagan.train.engine.train`) holds ``config.json``, ``generator.pt``
(generator state dict + model config, updated at every checkpoint), ``vocab.json`` and a copy of
the DAMSM folder in ``damsm/``. :func:`load_run` turns it into ready-to-sample modules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from csagan.config import ModelConfig
from csagan.models import Generator
from csagan.pretrain import load_damsm, read_vocab
from csagan.text import RNNEncoder
from csagan.train.checkpoint import GENERATOR_NAME
from csagan.train.config import TrainConfig

__all__ = ["LoadedRun", "load_run"]


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
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    model_cfg = ModelConfig.from_dict(cfg["model"])
    train_cfg = TrainConfig.from_dict(cfg["train"])
    obj = torch.load(folder / GENERATOR_NAME, map_location="cpu", weights_only=True)
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
