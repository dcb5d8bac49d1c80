"""Execution profiles: how big the book's computations are.

The book's notebooks run in three profiles, chosen by the environment variable
``CSAGAN_PROFILE``:

``smoke``
    What CI runs under nbval on a 2-core CPU: every code path, tiny sizes.
``book`` (default)
    What the committed notebook outputs were produced with (``make execute``): sized for a
    laptop CPU within minutes per chapter.
``full``
    The paper's sizes; needs GPUs and the real datasets.

Library code never reads the profile implicitly: notebooks and scripts call
:func:`current_profile` and pass explicit sizes on, so that the package itself has no
global state.
"""

from __future__ import annotations

import os
from typing import Literal, TypeVar, get_args

ProfileName = Literal["smoke", "book", "full"]
ENV_VAR = "CSAGAN_PROFILE"
_T = TypeVar("_T")


def current_profile(environ: dict[str, str] | None = None) -> ProfileName:
    """Return the active profile name read from ``CSAGAN_PROFILE`` (default ``"book"``).

    Raises:
        ValueError: if the variable holds an unknown name.
    """
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR, "book").strip().lower() or "book"
    valid = get_args(ProfileName)
    if value not in valid:
        raise ValueError(
            f"{ENV_VAR}={value!r} is not a known profile; use one of {', '.join(valid)} "
            f"(e.g. `export {ENV_VAR}=smoke`)."
        )
    return value  # type: ignore[return-value]


def by_profile(smoke: _T, book: _T, full: _T, profile: ProfileName | None = None) -> _T:
    """Pick a value for the active (or given) profile: ``by_profile(8, 256, 10_000)``."""
    name = current_profile() if profile is None else profile
    return {"smoke": smoke, "book": book, "full": full}[name]
