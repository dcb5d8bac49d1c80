"""One writer per output folder: ``<folder>/.lock`` holds the pid of the process writing it.

``csagan train`` and ``csagan pretrain-damsm`` take the lock before touching their folder, so a
second process pointed at the same ``--out`` stops with a clear error instead of interleaving
checkpoints and logs. The lock is an ``fcntl.flock`` on the file: the kernel releases it when the
process dies, so a lock file left by a killed run is taken over by the next one (stale locks need
no cleaning). Where ``fcntl`` is missing (Windows) the lock is a no-op.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCK_NAME", "FolderLockedError", "folder_lock"]

LOCK_NAME = ".lock"


class FolderLockedError(RuntimeError):
    """Another live process holds the folder's lock."""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], command: str) -> Iterator[Path]:
    """Hold ``folder/.lock`` (created with the folder) for the duration of the ``with`` block.

    Raises:
        FolderLockedError: another process holds it (its pid is named).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield Path(folder) / LOCK_NAME
        return
    base = Path(folder)
    base.mkdir(parents=True, exist_ok=True)
    path = base / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise FolderLockedError(
                f"{base} is in use by another `{command}` (pid {holder}, lock file {path}); wait for it to finish "
                "or choose another --out folder."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock; the file stays (a later run takes it over)
