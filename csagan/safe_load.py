"""``torch.load(weights_only=True)`` with one-line errors that name the file and the fix.

torch's own messages for an empty, truncated or pickled-object file are long, and for the last one
suggest ``weights_only=False``, which would run whatever code the file holds. csagan never loads a
file that way: :func:`load_torch_file` reports such a file as unreadable and says what to do instead.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

__all__ = ["load_torch_file"]


def load_torch_file(
    path: str | os.PathLike[str], *, what: str, fix: str, map_location: Any = "cpu"
) -> Any:
    """Load ``path`` with ``torch.load(weights_only=True)``.

    Args:
        path: the file.
        what: what the file should be, e.g. ``"a csagan generator file"``.
        fix: what to do when it is not (ends the message).
        map_location: passed to ``torch.load``.

    Raises:
        FileNotFoundError: no such file. ValueError: the file is empty, truncated, corrupt or holds
            objects other than tensors and plain containers (torch's text is not passed on).
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found; {fix}")
    if p.stat().st_size == 0:
        raise ValueError(f"{p} is empty (0 bytes), not {what}; {fix}")
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol warnings would precede the one-line error
            warnings.simplefilter("ignore")
            return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{p} is not {what}: it holds Python objects other than tensors, which csagan does not load "
            f"(loading them could run code); {fix}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - truncated zip, bad magic number, EOF, ...
        raise ValueError(f"{p} is not {what}: the file is truncated or corrupt ({type(exc).__name__}); {fix}") from None
