"""Exception classes of the data layer.

Every error the data layer raises on bad input is a :class:`DatasetError` (a
``ValueError``), so the command line can print its message without a traceback.
Messages name the offending file or argument and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "CaptionError",
    "DatasetError",
    "ImageReadError",
    "LayoutError",
    "OutOfVocabularyError",
    "PickleFileError",
    "UnsafePickleError",
    "VocabularyMismatchError",
]


class DatasetError(ValueError):
    """Base class of every data-layer error caused by bad input."""


class LayoutError(DatasetError, FileNotFoundError):
    """A file or folder required by the AttnGAN layout is missing.

    It is also a :class:`FileNotFoundError`, so ``except FileNotFoundError`` catches it.
    """


class ImageReadError(DatasetError):
    """An image file is missing, unreadable or corrupt."""


class PickleFileError(DatasetError):
    """A pickle file is corrupt or does not have the expected structure."""


class UnsafePickleError(PickleFileError):
    """A pickle refers to a Python global (class or function); it is refused unread."""


class CaptionError(DatasetError):
    """A caption file or a caption string is unusable (too few captions, empty caption)."""


class OutOfVocabularyError(CaptionError):
    """Every word of a caption is outside the dataset vocabulary."""


class VocabularyMismatchError(DatasetError):
    """A captions pickle does not match the dataset's filenames or text files."""
