"""Captions of an AttnGAN-layout dataset: the captions pickle, or the text files it is built from.

Captions come from ``<root>/captions_DAMSM.pickle`` (DF-GAN's name) or
``<root>/captions.pickle`` (AttnGAN's name) = ``[train_captions, test_captions, ixtoword,
wordtoix]``; caption ``k`` of image ``i`` is entry ``i*N + k``.  An existing pickle is used
as it is; when none exists it is built from the text files (vocabulary rules in
:mod:`csagan.data.text`) and cached atomically as ``captions_DAMSM.pickle``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csagan.data.errors import (
    LayoutError,
    PickleFileError,
    VocabularyMismatchError,
)
from csagan.data.safe_pickle import safe_dump_pickle, safe_load_pickle
from csagan.data.text import (
    Vocabulary,
    build_vocabulary,
    read_caption_file,
    read_caption_file_counted,
)

__all__ = [
    "CAPTIONS_PICKLE_NAMES",
    "CaptionsData",
    "build_captions",
    "load_captions_pickle",
    "load_or_build_captions",
]

CAPTIONS_PICKLE_NAMES: tuple[str, ...] = ("captions_DAMSM.pickle", "captions.pickle")
"""Captions pickles looked for under the root, in this order; the first is the cache name."""
_N_CHECKED_IMAGES = 8



@dataclass(frozen=True)
class CaptionsData:
    """The content of a captions pickle: index lists per split plus the vocabulary."""

    train: list[list[int]]
    test: list[list[int]]
    vocab: Vocabulary
    path: Path | None = None

    def split(self, name: str) -> list[list[int]]:
        """Captions of ``train`` or ``test``."""
        return self.train if name == "train" else self.test

    def to_pickle_object(self) -> list[Any]:
        """AttnGAN's structure ``[train, test, ixtoword, wordtoix]`` with plain dicts."""
        return [self.train, self.test, dict(self.vocab.ixtoword), dict(self.vocab.wordtoix)]


def load_captions_pickle(path: str | Path) -> CaptionsData:
    """Load and structurally validate ``[train_captions, test_captions, ixtoword, wordtoix]``.

    Raises:
        PickleFileError: corrupt file or unexpected structure (path named).
        UnsafePickleError: the pickle names a Python global.
    """
    p = Path(path)
    obj = safe_load_pickle(p)
    hint = "delete it to rebuild it from the text files"
    if not isinstance(obj, (list, tuple)) or len(obj) != 4:
        raise PickleFileError(
            f"{p}: expected [train_captions, test_captions, ixtoword, wordtoix]; {hint}"
        )
    train, test, ixtoword, wordtoix = obj
    if not isinstance(ixtoword, dict) or not isinstance(wordtoix, dict):
        raise PickleFileError(f"{p}: ixtoword and wordtoix must be dicts; {hint}")

    def _text(v: Any) -> str:
        return v.decode("latin1") if isinstance(v, bytes) else v

    try:
        i2w = {int(k): _text(v) for k, v in ixtoword.items()}
        w2i = {_text(k): int(v) for k, v in wordtoix.items()}
        lists = [[[int(ix) for ix in cap] for cap in caps] for caps in (train, test)]
    except (TypeError, ValueError) as exc:
        raise PickleFileError(f"{p}: captions must be lists of word indices ({exc}); {hint}") from exc
    if not all(isinstance(w, str) for w in i2w.values()) or not all(isinstance(w, str) for w in w2i):
        raise PickleFileError(f"{p}: vocabulary words must be strings; {hint}")
    n_words = len(i2w)
    for caps in lists:
        for cap in caps:
            for ix in cap:
                if ix not in i2w:
                    raise PickleFileError(
                        f"{p}: word index {ix} is not in its vocabulary of {n_words} words; {hint}"
                    )
    return CaptionsData(lists[0], lists[1], Vocabulary(i2w, w2i), p)


def _text_path(root: Path, key: str) -> Path:
    return root / "text" / f"{key}.txt"


def build_captions(
    root: str | Path, keys_by_split: dict[str, Sequence[str]], captions_per_image: int
) -> CaptionsData:
    """Build the captions data from ``<root>/text/<key>.txt`` of both splits.

    The vocabulary is built from train + test (:func:`csagan.data.text.build_vocabulary`).

    Raises:
        CaptionError: a text file is missing or has fewer than ``captions_per_image`` captions.
    """
    r = Path(root)
    tokens: dict[str, list[list[str]]] = {}
    skipped_lines, skipped_files = 0, 0
    for split in ("train", "test"):
        out: list[list[str]] = []
        for key in keys_by_split.get(split, []):
            caps, skipped = read_caption_file_counted(_text_path(r, key), captions_per_image)
            out.extend(caps)
            skipped_lines += skipped
            skipped_files += skipped > 0
        tokens[split] = out
    if skipped_lines:
        warnings.warn(
            f"skipped {skipped_lines} empty caption line(s) in {skipped_files} text file(s) "
            f"under {r / 'text'} (lines without any word are not captions)",
            stacklevel=2,
        )
    vocab = build_vocabulary(tokens["train"] + tokens["test"])
    encoded = {s: [[vocab.wordtoix[w] for w in cap] for cap in caps] for s, caps in tokens.items()}
    return CaptionsData(encoded["train"], encoded["test"], vocab, None)


def _check_captions(
    data: CaptionsData,
    root: Path,
    keys_by_split: dict[str, Sequence[str]],
    n: int,
    check_text: bool,
) -> None:
    """Check a loaded captions pickle against filenames (counts) and text files (sample)."""
    where = data.path or "captions pickle"
    fix = f"Delete {where} to rebuild it from the text files, or pass the pickle that belongs to this dataset."
    for split, keys in keys_by_split.items():
        caps = data.split(split)
        if len(caps) != len(keys) * n:
            raise VocabularyMismatchError(
                f"{where}: has {len(caps)} {split} captions but {split}/filenames.pickle lists "
                f"{len(keys)} images x {n} captions per image = {len(keys) * n}. {fix}"
            )
    if not check_text:
        return
    if not (root / "text").is_dir():
        warnings.warn(
            f"{root / 'text'} not found: the captions pickle {where} was not checked against "
            "the text files",
            stacklevel=3,
        )
        return
    for split, keys in keys_by_split.items():
        caps = data.split(split)
        picks = sorted({int(i) for i in np.linspace(0, len(keys) - 1, min(_N_CHECKED_IMAGES, len(keys)))})
        for i in picks:
            expected = read_caption_file(_text_path(root, keys[i]), n)
            for k in range(n):
                decoded = data.vocab.decode(caps[i * n + k], stop_at_end=False)
                if decoded != expected[k]:
                    raise VocabularyMismatchError(
                        f"{where} does not match the text files: {split} caption {k} of "
                        f"'{keys[i]}' decodes to {' '.join(decoded)!r} but "
                        f"{_text_path(root, keys[i])} has {' '.join(expected[k])!r}. {fix}"
                    )


def load_or_build_captions(
    root: str | Path,
    keys_by_split: dict[str, Sequence[str]],
    captions_per_image: int,
    *,
    captions_pickle: str | Path | None = None,
    check: bool = True,
    cache: bool = True,
) -> CaptionsData:
    """Use an existing captions pickle as it is, or build one and cache it atomically.

    Order: ``captions_pickle`` if given, else ``<root>/captions_DAMSM.pickle``, else
    ``<root>/captions.pickle``; when none exists, build from the text files and write
    ``<root>/captions_DAMSM.pickle``.  An existing pickle is checked: number of captions per
    split equals ``len(filenames) * N``, and (``check``) decoding a sample of images'
    captions reproduces their tokenised text files.

    Raises:
        VocabularyMismatchError: the pickle does not belong to these files.
        PickleFileError / UnsafePickleError / CaptionError / LayoutError.
    """
    r = Path(root)
    path: Path | None
    if captions_pickle is not None:
        path = Path(captions_pickle)
        if not path.is_file():
            raise LayoutError(f"captions pickle not found: {path}")
    else:
        found = [r / name for name in CAPTIONS_PICKLE_NAMES if (r / name).is_file()]
        if len(found) > 1:
            warnings.warn(
                f"both {found[0]} and {found[1]} exist; using {found[0].name} (DF-GAN's name). "
                "Pass captions_pickle to choose.",
                stacklevel=2,
            )
        path = found[0] if found else None
    if path is not None:
        data = load_captions_pickle(path)
        _check_captions(data, r, keys_by_split, captions_per_image, check)
        return data
    data = build_captions(r, keys_by_split, captions_per_image)
    target = r / CAPTIONS_PICKLE_NAMES[0]
    if cache:
        try:
            safe_dump_pickle(data.to_pickle_object(), target)
            data = CaptionsData(data.train, data.test, data.vocab, target)
        except OSError as exc:
            warnings.warn(f"could not cache the captions to {target}: {exc}", stacklevel=2)
    return data


