"""The evaluator weights file: :func:`save_evaluator` writes it, :func:`load_evaluator` reads it.

The file is a plain dict readable with ``torch.load(weights_only=True)``::

    format          "csagan-attribute-evaluator" (EVALUATOR_FORMAT)
    format_version  1 (FORMAT_VERSION; newer files are refused)
    config_json     AttributeEvaluator.config() as JSON (key order = head order)
    meta_json       training metadata as JSON (seed, data digest, accuracies, csagan_version, ...)
    state_dict      the network's state dict, floating-point tensors stored as fp16

Loading restores fp32 weights in eval mode.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from csagan import __version__
from csagan.evaluator.model import AttributeEvaluator

__all__ = ["EVALUATOR_FORMAT", "FORMAT_VERSION", "TRAIN_COMMAND", "load_evaluator", "save_evaluator"]

#: ``format`` entry of a saved evaluator file.
EVALUATOR_FORMAT = "csagan-attribute-evaluator"
#: ``format_version`` entry written; files with a larger version are refused.
FORMAT_VERSION = 1
#: The command that makes an evaluator file (named in error messages).
TRAIN_COMMAND = "csagan evaluator train --data DIR --out PATH"


def save_evaluator(evaluator: AttributeEvaluator, path: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``evaluator`` (fp16 weights, config, metadata) to ``path`` atomically; return the path.

    The file is a plain dict of tensors and JSON-like values, readable with
    ``torch.load(weights_only=True)``. ``meta`` (JSON-able) is merged over ``evaluator.meta``.
    """
    out = Path(path)
    merged = {**evaluator.meta, **(dict(meta) if meta else {})}
    merged.setdefault("csagan_version", __version__)
    try:
        meta_json = json.dumps(merged, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"evaluator metadata must be JSON-serialisable: {exc}") from exc
    state = {
        k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
        for k, v in evaluator.state_dict().items()
    }
    payload = {
        "format": EVALUATOR_FORMAT,
        "format_version": FORMAT_VERSION,
        "config_json": json.dumps(evaluator.config()),  # key order = head order
        "meta_json": meta_json,
        "state_dict": state,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        torch.save(payload, tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def load_evaluator(path: str | Path, map_location: str | torch.device = "cpu") -> AttributeEvaluator:
    """Load a file written by :func:`save_evaluator` or
    :func:`~csagan.evaluator.training.train_evaluator` (eval mode, fp32).

    Raises:
        FileNotFoundError: the file does not exist (the message names the training command).
        ValueError: the file is not a csagan attribute evaluator.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"attribute evaluator file not found: {p}. Train one on a ToyBirds dataset with "
            f"`{TRAIN_COMMAND}` (e.g. --out {p})"
        )
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # any unpickling failure means "not our file"
        raise ValueError(f"{p} is not a readable evaluator file ({exc}); retrain it with `{TRAIN_COMMAND}`") from exc
    if not isinstance(payload, dict) or payload.get("format") != EVALUATOR_FORMAT:
        raise ValueError(
            f"{p} is not a csagan attribute evaluator (no format={EVALUATOR_FORMAT!r}); make one with `{TRAIN_COMMAND}`"
        )
    if int(payload.get("format_version", -1)) > FORMAT_VERSION:
        raise ValueError(f"{p} was written by a newer csagan (format_version {payload['format_version']}); upgrade")
    config = json.loads(payload["config_json"])
    model = AttributeEvaluator(**config)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["state_dict"].items()}
    model.load_state_dict(state)
    model.meta = json.loads(payload["meta_json"])
    return model.to(map_location).eval()
