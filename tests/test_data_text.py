"""Tokenisation, vocabulary and fixed-length captions (AttnGAN conventions)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from csagan.data.errors import CaptionError
from csagan.data.text import build_vocabulary, fixed_length_caption, read_caption_file, tokenize


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("A bird, with RED wings!!", ["a", "bird", "with", "red", "wings"]),
        ("this bird's belly-feathers...are white", ["this", "bird", "s", "belly", "feathers", "are", "white"]),
        ("café naïve", ["caf", "nave"]),  # non-ASCII characters removed from tokens
        ("a 日本 bird", ["a", "bird"]),  # a token of only non-ASCII letters disappears
        ("2_tone bird 10cm", ["2_tone", "bird", "10cm"]),  # digits and underscore are \w
        ("bad\ufffd\ufffdbytes", ["bad", "bytes"]),
        ("", []),
        ("  ?! ... ", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_tokenize_matches_regex_reference() -> None:
    text = "The Small,brown-BIRD has 2 wings; tail_feathers: long!"
    reference = [t for t in re.findall(r"[A-Za-z0-9_]+", text.lower())]
    assert tokenize(text) == reference


def test_read_caption_file_skips_empty_lines_and_keeps_the_first_n(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("One bird.\n\n  \n...\nTwo birds\nthree\n", encoding="utf-8")
    assert read_caption_file(path, 2) == [["one", "bird"], ["two", "birds"]]
    with pytest.raises(CaptionError, match=r"found 3 caption\(s\) \(3 empty line\(s\) skipped\), need 4"):
        read_caption_file(path, 4)
    with pytest.raises(CaptionError, match="caption file not found"):
        read_caption_file(tmp_path / "missing.txt", 1)


def test_build_vocabulary_end_first_then_sorted() -> None:
    vocab = build_vocabulary([["red", "bird"], ["a", "bird", "zebra"]])
    assert dict(vocab.ixtoword) == {0: "<end>", 1: "a", 2: "bird", 3: "red", 4: "zebra"}
    assert all(vocab.wordtoix[w] == i for i, w in vocab.ixtoword.items())
    assert vocab.decode([2, 3, 0, 1]) == ["bird", "red"]
    assert vocab.decode([2, 0, 1], stop_at_end=False) == ["bird", "<end>", "a"]


def test_short_caption_is_zero_padded() -> None:
    out, n = fixed_length_caption([5, 3, 9])
    assert n == 3 and out.tolist() == [5, 3, 9] + [0] * 15 and out.dtype == torch.long


def test_long_caption_keeps_words_num_words_in_order() -> None:
    ids = list(range(1, 31))
    out, n = fixed_length_caption(ids, 18, torch.Generator().manual_seed(0))
    kept = out.tolist()
    assert n == 18 and len(set(kept)) == 18 and kept == sorted(kept) and set(kept) <= set(ids)


def test_long_caption_choice_is_random_and_seeded() -> None:
    ids = list(range(1, 21))
    outs = [fixed_length_caption(ids, 18, torch.Generator().manual_seed(s))[0] for s in range(60)]
    assert torch.equal(outs[0], fixed_length_caption(ids, 18, torch.Generator().manual_seed(0))[0])
    dropped = set()
    for out in outs:
        dropped |= set(ids) - set(out.tolist())
    assert {1, 20} <= dropped  # the first and last words are dropped sometimes: not a truncation


def test_exactly_words_num_is_kept_unchanged() -> None:
    ids = list(range(1, 19))
    out, n = fixed_length_caption(ids, 18)
    assert n == 18 and out.tolist() == ids
