"""Atomic file writes: a reader (or a resumed run) never sees a half-written file.

Every file that training, pretraining or data preparation writes for later use goes through
:func:`atomic_write_bytes`: the data goes to a temporary file in the same folder, is flushed and
fsync'ed, then ``os.replace`` swaps it in. A process killed at any point leaves either the old
file or the complete new one.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_torch_save", "atomic_write_bytes", "atomic_write_text", "remove_orphan_tmp_files"]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (tmp file in the same folder, fsync, ``os.replace``).

    Parent folders are created; the file gets mode 0644 (``mkstemp`` would leave 0600).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise OSError(
            exc.errno, f"could not write {target}: {why}; the previous file (if any) is unchanged. Free space in "
            f"{target.parent} (or fix the cause) and rerun the command."
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def remove_orphan_tmp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the ``.<name>.XXXX.tmp`` files that :func:`atomic_write_bytes` leaves when its process is
    killed mid-write (in ``folder`` only, not below it); returns what was removed.

    Call it only while no other process writes into ``folder`` (the run's lock is held).
    """
    removed = []
    base = Path(folder)
    if base.is_dir():
        for tmp in sorted(base.glob(".*.tmp")):
            if tmp.is_file() and tmp.name.count(".") >= 3:
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed
