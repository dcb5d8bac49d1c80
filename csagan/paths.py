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


#: The run folder shipped with the package (``csagan export-run`` of a CPU training run on ToyBirds).
SHIPPED_RUN_NAME = "toybirds-csagan"


def shipped_run() -> Path:
    """The shipped CSA-GAN run on ToyBirds (``csagan/assets/toybirds-csagan``; see its README).

    Raises:
        FileNotFoundError: the folder is missing (an install without the package data).
    """
    folder = Path(__file__).resolve().parent / "assets" / SHIPPED_RUN_NAME
    if not (folder / "generator.pt").is_file():
        raise FileNotFoundError(
            f"the shipped run {folder} is missing; reinstall csagan with its package data "
            "(pip install -e .) or train your own with `csagan train` and pass its folder."
        )
    return folder


def default_toybirds_root() -> Path:
    """The ToyBirds dataset folder: ``$CSAGAN_DATA`` or ``<repo>/data/toybirds``."""
    env = os.environ.get("CSAGAN_DATA")
    return Path(env) if env else repo_root() / "data" / "toybirds"


def repo_results_dir() -> Path:
    """The reproduction study's results in the repository (``<repo>/book/results``, written by
    ``make reproduce``).

    Raises:
        FileNotFoundError: the folder is missing (outside a clone of the repository).
    """
    folder = repo_root() / "book" / "results"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} not found: the study's results live in a clone of the csagan repository "
            "(book/results); run there, or make them with `make reproduce`."
        )
    return folder
