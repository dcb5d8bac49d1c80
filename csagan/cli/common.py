"""What the ``csagan`` sub-commands share."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Handler = Callable[[argparse.Namespace], int]
SubParsers = argparse._SubParsersAction  # type: ignore[type-arg]


def truncation_arg(value: float) -> float | None:
    """``--truncation``: > 0 scales DF-GAN's truncated noise, 0 means plain N(0, 1) noise."""
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"--truncation must be > 0 (DF-GAN's 0.88) or 0 for plain N(0, 1) noise, got {value}.")
    return None if value == 0 else value
