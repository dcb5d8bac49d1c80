"""Where the project keeps its data by default.

``CSAGAN_DATA`` overrides the ToyBirds location; otherwise the dataset lives in
``data/toybirds`` below the current working directory's repository root (the folder that
holds ``pyproject.toml``), which is where ``make book`` and ``make test`` create it.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above ``start`` (default: cwd) holding ``pyproject.toml``.

    Falls back to ``start`` itself when there is none (an installed package used elsewhere).
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "csagan").is_dir():
            return folder
    return here


def default_toybirds_root() -> Path:
    """The ToyBirds dataset folder: ``$CSAGAN_DATA`` or ``<repo>/data/toybirds``."""
    env = os.environ.get("CSAGAN_DATA")
    return Path(env) if env else repo_root() / "data" / "toybirds"
