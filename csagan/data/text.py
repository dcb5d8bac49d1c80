"""Tokenisation, vocabulary and fixed-length captions in AttnGAN's conventions.

Rules (AttnGAN's ``datasets.py``, which DF-GAN and SSA-GAN reuse):

* a caption is lower-cased and split with the regular expression ``\\w+`` (letters,
  digits and underscore; punctuation separates words); non-ASCII characters are then
  removed from each token and tokens that become empty are dropped.  The replacement
  character U+FFFD (mis-decoded bytes in CUB's text files) counts as a separator;
* empty lines, and lines without any token, are not captions;
* the vocabulary contains every word of the train and test captions (no frequency
  cut-off).  Index 0 is ``<end>`` (padding); when this package builds a vocabulary, the
  words follow in sorted (code-point) order, so the indices are deterministic.  An
  existing captions pickle is always used as it is, because pretrained text encoders
  depend on its indices;
* a caption is given to the text encoder with a fixed length ``T`` (18): shorter ones are
  padded with 0; from a longer one ``T`` words are chosen at random and kept in their
  original order.  The true length ``min(len, T)`` is returned alongside.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from csagan.data.errors import CaptionError, OutOfVocabularyError

__all__ = [
    "END_TOKEN",
    "WORDS_NUM",
    "Vocabulary",
    "build_vocabulary",
    "fixed_length_caption",
    "read_caption_file",
    "read_caption_file_counted",
    "tokenize",
]

END_TOKEN = "<end>"
"""Word at index 0: the padding / end-of-caption symbol."""

WORDS_NUM = 18
"""AttnGAN's fixed caption length ``T``."""

_WORD_RE = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Split one caption into AttnGAN tokens.

    Lower-case, ``\\w+`` regex, non-ASCII characters removed from each token, empty
    tokens dropped.  Example: ``"A café-bird, 2_tone!"`` -> ``["a", "caf", "bird", "2_tone"]``.
    """
    text = text.replace("\ufffd", " ").lower()
    tokens: list[str] = []
    for token in _WORD_RE.findall(text):
        ascii_token = token.encode("ascii", "ignore").decode("ascii")
        if ascii_token:
            tokens.append(ascii_token)
    return tokens


def read_caption_file(path: str | Path, n_captions: int) -> list[list[str]]:
    """Read the first ``n_captions`` tokenised captions of one text file.

    Lines that are empty or have no token are skipped (they are not captions); when
    skipping leaves fewer than ``n_captions`` captions, a :class:`CaptionError` is raised.
    Captions beyond ``n_captions`` are ignored, as AttnGAN does.

    Raises:
        CaptionError: the file is missing or unreadable, or has too few captions.
    """
    return read_caption_file_counted(path, n_captions)[0]


def read_caption_file_counted(path: str | Path, n_captions: int) -> tuple[list[list[str]], int]:
    """Like :func:`read_caption_file`, also returning how many empty lines were skipped
    before the ``n_captions``-th caption (so callers can report the count)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise CaptionError(
            f"caption file not found: {p}. Every image needs a text file with "
            f"{n_captions} captions (one per line) in the AttnGAN layout."
        ) from None
    except OSError as exc:
        raise CaptionError(f"cannot read caption file {p}: {exc}") from exc
    text = raw.decode("utf-8", errors="replace")
    captions: list[list[str]] = []
    skipped = 0
    for line in text.splitlines():
        tokens = tokenize(line)
        if not tokens:
            skipped += 1
            continue
        captions.append(tokens)
        if len(captions) == n_captions:
            break
    if len(captions) < n_captions:
        extra = f" ({skipped} empty line(s) skipped)" if skipped else ""
        raise CaptionError(
            f"{p}: found {len(captions)} caption(s){extra}, need {n_captions} (one per line). "
            "Add captions to the file, or pass captions_per_image to use fewer per image."
        )
    return captions, skipped


@dataclass(frozen=True)
class Vocabulary:
    """A word <-> index mapping (AttnGAN's ``ixtoword`` and ``wordtoix``)."""

    ixtoword: Mapping[int, str]
    wordtoix: Mapping[str, int]

    def __len__(self) -> int:
        return len(self.ixtoword)

    def encode_tokens(self, tokens: Sequence[str]) -> tuple[list[int], list[str]]:
        """Map tokens to indices; returns (indices of known words, unknown words)."""
        ids: list[int] = []
        unknown: list[str] = []
        for token in tokens:
            ix = self.wordtoix.get(token)
            if ix is None:
                unknown.append(token)
            else:
                ids.append(ix)
        return ids, unknown

    def decode(self, ids: Iterable[int], *, stop_at_end: bool = True) -> list[str]:
        """Map indices back to words; stops at the first 0 (``<end>``) by default."""
        words: list[str] = []
        for ix in ids:
            ix = int(ix)
            if ix == 0 and stop_at_end:
                break
            words.append(self.ixtoword.get(ix, f"<unk:{ix}>"))
        return words

    def encode_text(self, text: str, words_num: int = WORDS_NUM) -> tuple[torch.Tensor, int]:
        """Tokenise free text (e.g. a caption typed for sampling) to a fixed-length tensor.

        Unknown words are dropped with a warning that lists them; more than ``words_num``
        known words keep the first ``words_num`` (deterministic, with a warning).

        Returns:
            (LongTensor of shape [words_num], padded with 0; true length).

        Raises:
            CaptionError: the text has no word.
            OutOfVocabularyError: every word is outside the vocabulary.
        """
        tokens = tokenize(text)
        if not tokens:
            raise CaptionError(
                f"caption {text!r} is empty: it has no word (letters, digits or underscore)"
            )
        ids, unknown = self.encode_tokens(tokens)
        if not ids:
            raise OutOfVocabularyError(
                f"caption {text!r}: every word is outside the dataset vocabulary "
                f"(unknown: {', '.join(sorted(set(unknown)))}); use words from the training captions"
            )
        if unknown:
            warnings.warn(
                f"dropped {len(unknown)} out-of-vocabulary word(s) from caption {text!r}: "
                f"{', '.join(sorted(set(unknown)))}",
                stacklevel=2,
            )
        if len(ids) > words_num:
            warnings.warn(
                f"caption {text!r} has {len(ids)} known words; keeping the first {words_num}",
                stacklevel=2,
            )
            ids = ids[:words_num]
        out = torch.zeros(words_num, dtype=torch.long)
        out[: len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out, len(ids)


def build_vocabulary(captions: Iterable[Sequence[str]]) -> Vocabulary:
    """Build a vocabulary from tokenised captions (train and test together).

    Index 0 is ``<end>``; every distinct word follows in sorted order (no frequency
    cut-off), so the same captions always give the same indices.
    """
    words = sorted({word for caption in captions for word in caption})
    if END_TOKEN in words:  # cannot come from tokenize(); guard hand-made input
        words.remove(END_TOKEN)
    ixtoword = {0: END_TOKEN}
    wordtoix = {END_TOKEN: 0}
    for ix, word in enumerate(words, start=1):
        ixtoword[ix] = word
        wordtoix[word] = ix
    return Vocabulary(ixtoword=ixtoword, wordtoix=wordtoix)


def fixed_length_caption(
    ids: Sequence[int], words_num: int = WORDS_NUM, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, int]:
    """Pad or sub-sample a caption to exactly ``words_num`` indices (AttnGAN).

    Shorter captions are padded with 0.  From a longer one, ``words_num`` positions are
    drawn uniformly without replacement (with ``generator``) and kept in their original
    order.  Zeros inside ``ids`` are not removed.

    Returns:
        (LongTensor [words_num], true length ``min(len(ids), words_num)``).
    """
    if words_num < 1:
        raise ValueError(f"words_num must be >= 1, got {words_num}")
    n = len(ids)
    src = torch.as_tensor(list(ids), dtype=torch.long)
    out = torch.zeros(words_num, dtype=torch.long)
    if n <= words_num:
        out[:n] = src
        return out, n
    keep = torch.randperm(n, generator=generator)[:words_num].sort().values
    out[:] = src[keep]
    return out, words_num
