"""Pickles that cannot run code: a restricted reader and an atomic writer.

AttnGAN-format datasets ship metadata as pickles (``filenames.pickle``,
``class_info.pickle``, ``captions.pickle``).  A pickle downloaded from the internet can
execute arbitrary code when loaded with :func:`pickle.load`, because it may name any
Python global (``os.system``, ...).  These metadata files only ever contain plain
containers, strings and numbers, so :func:`safe_load_pickle` refuses *every* global.

AttnGAN's own pickles were written by Python 2; their ``str`` objects are byte strings.
They are decoded as ASCII first and, when that fails, as Latin-1 (which maps every byte).

Note: protocol-2 pickles store ``bytes`` and ``set`` objects through globals
(``_codecs.encode``, ``builtins.set``), so those are refused there; protocol 3+ has
opcodes for them.  Dataset pickles hold lists, dicts, ``str`` and ``int`` only.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any, NoReturn

from csagan.atomic import atomic_write_bytes
from csagan.data.errors import LayoutError, PickleFileError, UnsafePickleError

__all__ = ["RestrictedUnpickler", "safe_dump_pickle", "safe_load_pickle", "safe_loads_pickle"]


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global and every persistent id.

    Only the pickle opcodes for ``None``, booleans, numbers, ``str``, ``bytes``, lists,
    tuples, dicts and sets remain usable, so loading cannot import or call anything.
    """

    def find_class(self, module: str, name: str) -> NoReturn:
        raise UnsafePickleError(
            f"refuses the global {module}.{name}: only plain lists, dicts, tuples, str, bytes "
            "and numbers are allowed in dataset pickles"
        )

    def persistent_load(self, pid: Any) -> NoReturn:
        raise UnsafePickleError("refuses a persistent id: dataset pickles contain plain data only")


def safe_loads_pickle(data: bytes, *, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`.

    Args:
        data: the pickle bytes.
        source: a name for error messages (usually the file path).

    Raises:
        UnsafePickleError: the pickle names a Python global (it would run code).
        PickleFileError: the bytes are not a valid pickle.
    """
    last_unicode_error: UnicodeDecodeError | None = None
    for encoding in ("ASCII", "latin1"):
        try:
            return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
        except UnsafePickleError as exc:
            raise UnsafePickleError(
                f"{source}: {exc}. The file was not loaded because a pickle with globals can "
                "execute code; rebuild it with `csagan data prepare` or from trusted data."
            ) from None
        except UnicodeDecodeError as exc:  # Python-2 byte strings that are not ASCII
            last_unicode_error = exc
            continue
        except Exception as exc:
            raise PickleFileError(
                f"{source}: not a readable pickle ({type(exc).__name__}: {exc}). The file is "
                "corrupt or truncated; delete it and rebuild it (`csagan data prepare`)."
            ) from exc
    raise PickleFileError(f"{source}: cannot decode its strings ({last_unicode_error})")


def safe_load_pickle(path: str | os.PathLike[str]) -> Any:
    """Load a pickle file that may only contain plain data (no globals).

    Args:
        path: the pickle file.

    Raises:
        LayoutError: the file does not exist.
        UnsafePickleError: the pickle names a Python global; it is refused.
        PickleFileError: the file is corrupt.
    """
    p = Path(path)
    if not p.is_file():
        raise LayoutError(f"pickle file not found: {p}")
    return safe_loads_pickle(p.read_bytes(), source=str(p))


def safe_dump_pickle(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as a protocol-2 pickle atomically (temporary file + ``os.replace``).

    A reader never sees a half-written file: either the old file or the complete new one.
    Protocol 2 keeps the file readable by the Python-2 era AttnGAN tools.

    Returns:
        The path written.
    """
    return atomic_write_bytes(path, pickle.dumps(obj, protocol=2))
