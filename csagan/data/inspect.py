"""Check an AttnGAN-layout dataset and summarise it (``csagan data inspect``).

:func:`inspect_dataset` opens every image (PIL ``verify`` and a full decode) and every
caption file of the selected split(s), and reports counts, caption statistics and every
unreadable file by path.  It never stops at the first problem: problems are collected.
"""

from __future__ import annotations

import statistics
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from csagan.data.captions import CAPTIONS_PICKLE_NAMES, load_captions_pickle
from csagan.data.errors import DatasetError, LayoutError
from csagan.data.layout import (
    DEFAULT_CAPTIONS_PER_IMAGE,
    DatasetKind,
    detect_dataset,
    find_image,
    read_class_ids,
    read_dataset_info,
    read_filenames,
    single_class_message,
)
from csagan.data.text import WORDS_NUM, tokenize

__all__ = ["InspectReport", "inspect_dataset"]


@dataclass
class InspectReport:
    """Summary of a dataset; :meth:`format` renders it as text."""

    root: Path
    dataset: DatasetKind
    splits: list[str]
    images_per_split: dict[str, int]
    n_classes: int
    expected_captions_per_image: int
    captions_per_image_min: int
    captions_per_image_mean: float
    captions_per_image_max: int
    vocab_size: int
    vocab_source: str
    caption_len_mean: float
    caption_len_median: float
    caption_len_max: int
    share_longer_than_t: float
    words_num: int = WORDS_NUM
    bad_images: list[tuple[str, str]] = field(default_factory=list)
    bad_texts: list[tuple[str, str]] = field(default_factory=list)
    other_problems: list[str] = field(default_factory=list)
    #: usable but suspicious (e.g. a single class id): shown, not counted as problems
    warnings: list[str] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        """Images listed in the selected splits."""
        return sum(self.images_per_split.values())

    @property
    def n_problems(self) -> int:
        """Number of problems of every kind."""
        return len(self.bad_images) + len(self.bad_texts) + len(self.other_problems)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return self.n_problems == 0

    def format(self) -> str:
        """A human-readable multi-line report."""
        per = ", ".join(f"{s} {n}" for s, n in self.images_per_split.items())
        kinds = (
            f"{len(self.bad_images)} image(s), {len(self.bad_texts)} caption file(s), "
            f"{len(self.other_problems)} other"
        )
        lines = [
            f"dataset: {self.root} ({self.dataset} layout, splits: {', '.join(self.splits)})",
            f"images: {self.n_images} ({per})",
            f"classes: {self.n_classes}",
            (
                f"captions per image: min {self.captions_per_image_min}, mean "
                f"{self.captions_per_image_mean:.2f}, max {self.captions_per_image_max} "
                f"(expected {self.expected_captions_per_image})"
            ),
            f"vocabulary: {self.vocab_size} words ({self.vocab_source})",
            (
                f"caption length (words): mean {self.caption_len_mean:.2f}, median "
                f"{self.caption_len_median:g}, max {self.caption_len_max}, longer than "
                f"{self.words_num}: {100 * self.share_longer_than_t:.1f} %"
            ),
            f"problems: {self.n_problems}" + (" (none)" if self.ok else f" ({kinds})"),
        ]
        lines += [f"  unreadable image: {p}: {why}" for p, why in self.bad_images]
        lines += [f"  bad caption file: {p}: {why}" for p, why in self.bad_texts]
        lines += [f"  {msg}" for msg in self.other_problems]
        lines += [f"warning: {msg}" for msg in self.warnings]
        return "\n".join(lines)


def _check_image(path: Path) -> str | None:
    """Return why ``path`` is unreadable, or ``None`` when it decodes."""
    try:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:  # verify() does not decode pixel data; load() does
            img.load()
    except Exception as exc:  # noqa: BLE001 - every decoder failure is a finding
        return f"{type(exc).__name__}: {exc}"
    return None


def inspect_dataset(
    root: str | Path, split: str | None = None, *, progress: bool = True
) -> InspectReport:
    """Open every image and caption file of ``split`` (both when ``None``) and summarise.

    Captions per image count the non-empty (tokenised) lines of each text file; caption
    lengths and the text-derived vocabulary use the first ``N`` captions of each file (the
    ones the loader uses).  The vocabulary size is the captions pickle's when one exists.

    Raises:
        LayoutError: ``root`` is not an AttnGAN-layout dataset, or no split has a
            ``filenames.pickle``.
    """
    r = Path(root)
    kind = detect_dataset(r)
    if split is not None and split not in ("train", "test"):
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
    n_expected = int(read_dataset_info(r).get("captions_per_image", DEFAULT_CAPTIONS_PER_IMAGE[kind]))
    other: list[str] = []
    keys_by_split: dict[str, list[str]] = {}
    for s in [split] if split else ["train", "test"]:
        try:
            keys_by_split[s] = read_filenames(r, s)
        except DatasetError as exc:
            if split is not None:
                raise
            other.append(str(exc))
    if not keys_by_split:
        raise LayoutError(f"{r}: no split has a filenames.pickle; " + " ".join(other))

    classes: set[int] = set()
    notes: list[str] = []
    for s, keys in keys_by_split.items():
        try:
            split_ids = read_class_ids(r, s, keys, kind)
        except DatasetError as exc:
            other.append(str(exc))
            continue
        classes.update(split_ids)
        if s == "train" and len(split_ids) > 1 and len(set(split_ids)) == 1:  # what DAMSM and the GAN train on
            notes.append(single_class_message(r, s))
            warnings.warn(notes[-1], UserWarning, stacklevel=2)

    bad_images: list[tuple[str, str]] = []
    bad_texts: list[tuple[str, str]] = []
    counts: list[int] = []
    lengths: list[int] = []
    words: set[str] = set()
    items = [(s, k) for s, keys in keys_by_split.items() for k in keys]
    for _, key in tqdm(items, desc="inspect", unit="img", disable=not progress):
        try:
            img_path = find_image(r, kind, key)
        except DatasetError as exc:
            bad_images.append((key, str(exc)))
        else:
            why = _check_image(img_path)
            if why is not None:
                bad_images.append((str(img_path), why))
        txt = r / "text" / f"{key}.txt"
        try:
            content = txt.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            bad_texts.append((str(txt), f"{type(exc).__name__}: {exc.strerror or exc}"))
            counts.append(0)
            continue
        caps = [t for t in (tokenize(line) for line in content.splitlines()) if t]
        counts.append(len(caps))
        if len(caps) < n_expected:
            bad_texts.append((str(txt), f"{len(caps)} caption(s), need {n_expected}"))
        for cap in caps[:n_expected]:
            lengths.append(len(cap))
            words.update(cap)

    vocab_size, vocab_source = len(words) + 1, "distinct caption words + <end> (no captions pickle)"
    for name in CAPTIONS_PICKLE_NAMES:
        if (r / name).is_file():
            try:
                vocab_size, vocab_source = len(load_captions_pickle(r / name).vocab), name
            except DatasetError as exc:
                other.append(str(exc))
            break

    return InspectReport(
        root=r,
        dataset=kind,
        splits=list(keys_by_split),
        images_per_split={s: len(k) for s, k in keys_by_split.items()},
        n_classes=len(classes),
        expected_captions_per_image=n_expected,
        captions_per_image_min=min(counts),
        captions_per_image_mean=statistics.fmean(counts),
        captions_per_image_max=max(counts),
        vocab_size=vocab_size,
        vocab_source=vocab_source,
        caption_len_mean=statistics.fmean(lengths) if lengths else 0.0,
        caption_len_median=float(statistics.median(lengths)) if lengths else 0.0,
        caption_len_max=max(lengths, default=0),
        share_longer_than_t=(sum(1 for n in lengths if n > WORDS_NUM) / len(lengths)) if lengths else 0.0,
        bad_images=bad_images,
        bad_texts=bad_texts,
        other_problems=other,
        warnings=notes,
    )
