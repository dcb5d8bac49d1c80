"""Torch datasets over CUB / COCO in the AttnGAN layouts (and the ToyBirds copy of it).

Layouts read (AttnGAN's, as DF-GAN and SSA-GAN read them; ``<root>`` is e.g. ``data/birds``):

``birds``
    ``CUB_200_2011/images/<class>/<img>.jpg`` (other image extensions are accepted),
    ``CUB_200_2011/images.txt`` + ``CUB_200_2011/bounding_boxes.txt`` (optional: without
    them images are not cropped), ``text/<class>/<img>.txt`` (10 captions, one per line),
    ``{train,test}/filenames.pickle`` (list of ``"<class>/<img>"`` keys) and optionally
    ``{train,test}/class_info.pickle`` (class ids; otherwise the number before the dot
    of ``<class>``, e.g. ``002.Laysan_Albatross`` -> 2).
``coco``
    ``images/<key>.jpg`` (or ``images/train2014/<key>.jpg``, ``images/val2014/<key>.jpg``),
    ``text/<key>.txt`` (5 captions), ``{train,test}/filenames.pickle``; class ids are
    ``class_info.pickle`` when present, else 0..n-1 (every image its own class, AttnGAN).

Captions come from ``<root>/captions_DAMSM.pickle`` (DF-GAN's name) or
``<root>/captions.pickle`` (AttnGAN's name) = ``[train_captions, test_captions, ixtoword,
wordtoix]``; caption ``k`` of image ``i`` is entry ``i*N + k``.  An existing pickle is used
as it is; when none exists it is built from the text files (vocabulary rules in
:mod:`csagan.data.text`) and cached atomically as ``captions_DAMSM.pickle``.

A dataset made by ``csagan data prepare folder`` also has ``csagan_dataset.json`` with
``{"dataset": ..., "captions_per_image": N}``, read when those arguments are left at auto.

Randomness (caption choice, word sub-sampling, random crop, flip) comes from a
generator seeded by ``(seed, epoch, index)`` only, so results do not depend on worker
processes or on the order items are read, and a resumed run that calls
:meth:`TextImageDataset.set_epoch` sees the same data as the original one.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset, Sampler
from torchvision.transforms import InterpolationMode

from csagan.data.errors import (
    DatasetError,
    ImageReadError,
    LayoutError,
    PickleFileError,
    VocabularyMismatchError,
)
from csagan.data.safe_pickle import safe_dump_pickle, safe_load_pickle
from csagan.data.text import (
    WORDS_NUM,
    Vocabulary,
    build_vocabulary,
    fixed_length_caption,
    read_caption_file,
    read_caption_file_counted,
)

__all__ = [
    "CAPTIONS_PICKLE_NAMES",
    "DATASET_INFO_NAME",
    "DEFAULT_CAPTIONS_PER_IMAGE",
    "IMAGE_EXTENSIONS",
    "CaptionsData",
    "DatasetKind",
    "EpochSampler",
    "TextImageBatch",
    "TextImageDataset",
    "TextImageItem",
    "TransformName",
    "build_captions",
    "collate",
    "apply_transform",
    "crop_to_bbox",
    "detect_dataset",
    "find_image",
    "item_generator",
    "load_captions_pickle",
    "load_image",
    "load_or_build_captions",
    "read_attributes",
    "read_bounding_boxes",
    "read_class_ids",
    "read_dataset_info",
    "read_filenames",
    "single_class_message",
    "warn_if_single_class",
]

DatasetKind = Literal["birds", "coco"]
TransformName = Literal["train", "eval"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
"""Image file extensions looked for, in this order (also in upper case)."""

CAPTIONS_PICKLE_NAMES: tuple[str, ...] = ("captions_DAMSM.pickle", "captions.pickle")
"""Captions pickles looked for under the root, in this order; the first is the cache name."""

DATASET_INFO_NAME = "csagan_dataset.json"
DEFAULT_CAPTIONS_PER_IMAGE: dict[str, int] = {"birds": 10, "coco": 5}
_PREPARE_HINT = "`csagan data prepare {cub,coco,folder} ...` builds this layout from raw data"
_N_CHECKED_IMAGES = 8


# --------------------------------------------------------------------------- layout


def detect_dataset(root: str | Path) -> DatasetKind:
    """Tell the AttnGAN layout of ``root``: ``birds`` (has ``CUB_200_2011/``) or ``coco``
    (has ``images/``); ``csagan_dataset.json`` takes precedence when it names one.

    Raises:
        LayoutError: ``root`` is missing or has neither folder.
    """
    r = Path(root)
    if not r.is_dir():
        raise LayoutError(
            f"dataset root not found: {r}. Point --root at the folder that holds "
            f"CUB_200_2011/ (birds) or images/ (coco) in the AttnGAN layout; {_PREPARE_HINT}."
        )
    info = read_dataset_info(r)
    if info.get("dataset") in ("birds", "coco"):
        return cast(DatasetKind, info["dataset"])
    if (r / "CUB_200_2011").is_dir():
        return "birds"
    if (r / "images").is_dir():
        return "coco"
    raise LayoutError(
        f"{r} is not a dataset in the AttnGAN layout: neither {r / 'CUB_200_2011' / 'images'} "
        f"(birds) nor {r / 'images'} (coco) exists; {_PREPARE_HINT}."
    )


def read_dataset_info(root: str | Path) -> dict[str, Any]:
    """Read ``<root>/csagan_dataset.json`` written by :mod:`csagan.data.prepare` ({} if absent)."""
    path = Path(root) / DATASET_INFO_NAME
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); delete it or fix it") from exc
    if not isinstance(info, dict):
        raise DatasetError(f"{path}: expected a JSON object, got {type(info).__name__}")
    return info


def _images_dir(root: Path, kind: DatasetKind) -> Path:
    return root / "CUB_200_2011" / "images" if kind == "birds" else root / "images"


def read_filenames(root: str | Path, split: str) -> list[str]:
    """Read ``<root>/<split>/filenames.pickle`` (a list of keys, without extension).

    Raises:
        LayoutError: the file is missing.
        PickleFileError: the file is corrupt or not a list of strings.
    """
    path = Path(root) / split / "filenames.pickle"
    if not path.is_file():
        raise LayoutError(
            f"{path} not found: the AttnGAN layout needs <root>/{split}/filenames.pickle, a "
            f"pickled list of image keys ('<class>/<img>' for birds, '<img>' for coco); "
            f"{_PREPARE_HINT}."
        )
    obj = safe_load_pickle(path)
    if not isinstance(obj, (list, tuple)):
        raise PickleFileError(f"{path}: expected a list of image keys, got {type(obj).__name__}")
    keys: list[str] = []
    for i, key in enumerate(obj):
        if isinstance(key, bytes):
            key = key.decode("latin1")
        if not isinstance(key, str) or not key:
            raise PickleFileError(f"{path}: entry {i} is {key!r}, expected a non-empty string key")
        keys.append(key)
    if not keys:
        raise PickleFileError(f"{path}: the list of image keys is empty")
    return keys


def read_class_ids(root: str | Path, split: str, keys: Sequence[str], kind: DatasetKind) -> list[int]:
    """Class id of each key: ``class_info.pickle`` if present, else derived (module docstring)."""
    path = Path(root) / split / "class_info.pickle"
    if path.is_file():
        obj = safe_load_pickle(path)
        if not isinstance(obj, (list, tuple)) or len(obj) != len(keys):
            got = len(obj) if isinstance(obj, (list, tuple)) else type(obj).__name__
            raise PickleFileError(
                f"{path}: expected a list of {len(keys)} class ids (one per entry of "
                f"filenames.pickle), got {got}; delete it to derive class ids from the keys"
            )
        try:
            return [int(c) for c in obj]
        except (TypeError, ValueError) as exc:
            raise PickleFileError(f"{path}: class ids must be integers ({exc})") from exc
    if kind == "coco":
        return list(range(len(keys)))
    # a key without a folder is a class of its own (AttnGAN's rule without a class file)
    folders = [k.split("/", 1)[0] if "/" in k else k for k in keys]
    prefixes = [f.split(".", 1)[0] for f in folders]
    if all("/" in k for k in keys) and all(p.isdigit() for p in prefixes):
        return [int(p) for p in prefixes]
    names = sorted(set(folders))
    return [names.index(f) + 1 for f in folders]


def single_class_message(root: str | Path, split: str) -> str:
    """What is wrong with a split whose images all share one class id, and how to fix it."""
    return (
        f"{Path(root) / split}: every image has the same class id, so DAMSM's same-class masking "
        f"removes every negative pair and the DAMSM losses are exactly 0; give the images distinct "
        f"class ids in {Path(root) / split / 'class_info.pickle'} (`csagan data prepare folder` "
        f"gives an image without a class folder a class of its own), or train without DAMSM"
    )


def warn_if_single_class(class_ids: Sequence[int], root: str | Path, split: str) -> bool:
    """Warn (and return True) when a split of two or more images has a single class id."""
    if len(class_ids) > 1 and len(set(class_ids)) == 1:
        warnings.warn(single_class_message(root, split), UserWarning, stacklevel=2)
        return True
    return False


def read_bounding_boxes(root: str | Path) -> dict[str, tuple[int, int, int, int]] | None:
    """Read CUB's ``images.txt`` + ``bounding_boxes.txt`` into ``key -> (x, y, w, h)``.

    Coordinates are truncated to integers (as AttnGAN reads them).  Returns ``None`` when
    ``bounding_boxes.txt`` does not exist (images are then used uncropped).

    Raises:
        LayoutError: ``bounding_boxes.txt`` exists but ``images.txt`` does not.
        DatasetError: a malformed line (file and line number named).
    """
    cub = Path(root) / "CUB_200_2011"
    bbox_path, images_path = cub / "bounding_boxes.txt", cub / "images.txt"
    if not bbox_path.is_file():
        return None
    if not images_path.is_file():
        raise LayoutError(
            f"{images_path} not found: it maps the image ids of {bbox_path} to files; restore "
            f"it from CUB_200_2011, or delete bounding_boxes.txt to use uncropped images"
        )
    id_to_key: dict[str, str] = {}
    for lineno, line in enumerate(images_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DatasetError(f"{images_path}:{lineno}: expected '<id> <class>/<img>.jpg', got {line!r}")
        id_to_key[parts[0]] = str(Path(parts[1]).with_suffix("")).replace("\\", "/")
    boxes: dict[str, tuple[int, int, int, int]] = {}
    for lineno, line in enumerate(bbox_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 5:
                raise ValueError("wrong number of fields")
            x, y, w, h = (int(float(v)) for v in parts[1:])
        except ValueError:
            raise DatasetError(f"{bbox_path}:{lineno}: expected '<id> x y w h', got {line!r}") from None
        if parts[0] not in id_to_key:
            raise DatasetError(f"{bbox_path}:{lineno}: image id {parts[0]} is not in {images_path}")
        boxes[id_to_key[parts[0]]] = (x, y, w, h)
    return boxes


def read_attributes(root: str | Path) -> dict[str, dict[str, Any]] | None:
    """Read ``<root>/attributes.jsonl`` (ToyBirds ground truth) as ``key -> record``.

    Each line is a JSON object with a ``key``; returns ``None`` when the file is absent
    (it is never required).
    """
    path = Path(root) / "attributes.jsonl"
    if not path.is_file():
        return None
    records: dict[str, dict[str, Any]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
        if not isinstance(rec, dict) or not isinstance(rec.get("key"), str):
            raise DatasetError(f"{path}:{lineno}: expected a JSON object with a string 'key'")
        records[rec["key"]] = rec
    return records


# --------------------------------------------------------------------------- images


def find_image(root: str | Path, kind: DatasetKind, key: str) -> Path:
    """Path of the image of ``key``: ``<images>/<key><ext>`` for the extensions in
    :data:`IMAGE_EXTENSIONS` (any case); for coco also under ``train2014/`` and ``val2014/``.

    Raises:
        ImageReadError: no candidate exists (the first candidate is named).
    """
    images_dir = _images_dir(Path(root), kind)
    bases = [images_dir / key]
    if kind == "coco":
        bases += [images_dir / "train2014" / key, images_dir / "val2014" / key]
    exts = IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS)
    for base in bases:
        for ext in exts:
            cand = base.with_name(base.name + ext)
            if cand.is_file():
                return cand
    raise ImageReadError(
        f"image of key '{key}' not found: looked for {bases[0]}.jpg"
        + (" (also under images/train2014/ and images/val2014/)" if kind == "coco" else "")
        + " and the extensions " + ", ".join(IMAGE_EXTENSIONS)
    )


def load_image(path: str | Path) -> Image.Image:
    """Open an image file fully and convert it to RGB.

    Raises:
        ImageReadError: the file is missing, unreadable or corrupt (path named).
    """
    p = Path(path)
    try:
        with Image.open(p) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise ImageReadError(f"image not found: {p}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"cannot read image {p}: {exc}. Replace or remove the file.") from exc


def crop_to_bbox(img: Image.Image, bbox: tuple[int, int, int, int]) -> Image.Image:
    """Crop around a bird's bounding box like AttnGAN.

    With ``r = int(0.75 * max(w, h))`` and centre ``(int(x + w/2), int(y + h/2))`` the crop
    is the square ``[cx - r, cx + r) x [cy - r, cy + r)`` clipped to the image: ``r`` is
    the half-side, so the square's side is ``2r`` (about 1.5x the longer box side), which
    keeps the whole bird and some background.
    """
    x, y, w, h = bbox
    r = int(max(w, h) * 0.75)
    cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
    width, height = img.size
    x1, x2 = max(0, cx - r), min(width, cx + r)
    y1, y2 = max(0, cy - r), min(height, cy + r)
    if x2 <= x1 or y2 <= y1:
        raise DatasetError(f"bounding box {bbox} lies outside the {width}x{height} image")
    return img.crop((x1, y1, x2, y2))


def _to_unit_range(img: Image.Image) -> torch.Tensor:
    tensor: torch.Tensor = TF.to_tensor(img)
    return tensor.mul_(2.0).sub_(1.0)


def apply_transform(
    img: Image.Image, size: int, name: TransformName, generator: torch.Generator
) -> torch.Tensor:
    """AttnGAN's transform: resize the shorter side to ``int(size*76/64)``, then crop ``size``.

    ``train``: random crop + random horizontal flip (p = 0.5).  ``eval``: centre crop, no
    flip (same scale as training, deterministic).  Output in [-1, 1].
    """
    big = int(size * 76 / 64)
    img = TF.resize(img, big, interpolation=InterpolationMode.BILINEAR, antialias=True)
    width, height = img.size
    if name == "train":
        top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
        img = TF.crop(img, top, left, size, size)
        if float(torch.rand((), generator=generator)) < 0.5:
            img = TF.hflip(img)
    else:
        img = TF.center_crop(img, [size, size])
    return _to_unit_range(img)


# --------------------------------------------------------------------------- captions


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


# --------------------------------------------------------------------------- dataset


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, index)`` only (worker- and order-independent)."""
    if seed < 0 or epoch < 0 or index < 0:
        raise ValueError(f"seed, epoch and index must be >= 0, got {seed}, {epoch}, {index}")
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


@dataclass
class TextImageItem:
    """One dataset item: an image and one of its captions."""

    image: torch.Tensor  # float [3, S, S] in [-1, 1]
    caption: torch.Tensor  # long [T], 0-padded
    cap_len: int
    class_id: int
    key: str
    caption_index: int  # which of the N captions (0..N-1)
    index: int  # position in the split


@dataclass
class TextImageBatch:
    """A collated batch (nothing sorted; training code sorts for packed sequences)."""

    images: torch.Tensor  # [B, 3, S, S]
    captions: torch.Tensor  # [B, T] long
    cap_lens: torch.Tensor  # [B] long
    class_ids: torch.Tensor  # [B] long
    caption_indices: torch.Tensor  # [B] long
    indices: torch.Tensor  # [B] long
    keys: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TextImageBatch:
        """Move every tensor to ``device``."""
        mv = {
            name: getattr(self, name).to(device, non_blocking=non_blocking)
            for name in ("images", "captions", "cap_lens", "class_ids", "caption_indices", "indices")
        }
        return TextImageBatch(keys=list(self.keys), **mv)

    def pin_memory(self) -> TextImageBatch:
        """Pinned copy (called by ``DataLoader(pin_memory=True)``)."""
        mv = {
            name: getattr(self, name).pin_memory()
            for name in ("images", "captions", "cap_lens", "class_ids", "caption_indices", "indices")
        }
        return TextImageBatch(keys=list(self.keys), **mv)


def collate(items: Sequence[TextImageItem]) -> TextImageBatch:
    """Stack items into a :class:`TextImageBatch`, in the given order."""
    if not items:
        raise ValueError("collate() got an empty list of items")
    return TextImageBatch(
        images=torch.stack([it.image for it in items]),
        captions=torch.stack([it.caption for it in items]),
        cap_lens=torch.tensor([it.cap_len for it in items], dtype=torch.long),
        class_ids=torch.tensor([it.class_id for it in items], dtype=torch.long),
        caption_indices=torch.tensor([it.caption_index for it in items], dtype=torch.long),
        indices=torch.tensor([it.index for it in items], dtype=torch.long),
        keys=[it.key for it in items],
    )


class TextImageDataset(Dataset[TextImageItem]):
    """Images with captions from an AttnGAN-layout CUB/COCO root (one random caption per item).

    Args:
        root: dataset root (module docstring).
        split: ``"train"`` or ``"test"``.
        image_size: side ``S`` of the returned images.
        dataset: ``"birds"``, ``"coco"`` or ``"auto"`` (detected from the folders).
        captions_per_image: ``N``; ``None`` = ``csagan_dataset.json`` or 10 (birds) / 5 (coco).
        words_num: fixed caption length ``T`` (18).
        transform: ``"train"`` (random crop + flip), ``"eval"`` (centre crop) or ``None``
            (``"train"`` for the train split, ``"eval"`` otherwise).
        seed: base seed of the per-item generators.
        captions_pickle: explicit captions pickle (default: found under ``root`` or built).
        check_pickle: compare a sample of the pickle's captions with the text files.
        cache_pickle: write the built captions to ``<root>/captions_DAMSM.pickle``.

    Items are :class:`TextImageItem`; use :func:`collate` in the ``DataLoader``.  An index
    may also be a tuple ``(index, epoch)`` (see :class:`EpochSampler`), which overrides the
    epoch set with :meth:`set_epoch` (useful with persistent workers).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        image_size: int = 64,
        dataset: Literal["birds", "coco", "auto"] = "auto",
        captions_per_image: int | None = None,
        words_num: int = WORDS_NUM,
        transform: TransformName | None = None,
        seed: int = 0,
        *,
        captions_pickle: str | Path | None = None,
        check_pickle: bool = True,
        cache_pickle: bool = True,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if dataset not in ("birds", "coco", "auto"):
            raise ValueError(f"dataset must be 'birds', 'coco' or 'auto', got {dataset!r}")
        if transform not in (None, "train", "eval"):
            raise ValueError(f"transform must be None, 'train' or 'eval', got {transform!r}")
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        if words_num < 1:
            raise ValueError(f"words_num must be >= 1, got {words_num}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.root = Path(root)
        kind = detect_dataset(self.root)  # also checks that root exists
        self.kind: DatasetKind = kind if dataset == "auto" else dataset
        info = read_dataset_info(self.root)
        if captions_per_image is None:
            captions_per_image = int(info.get("captions_per_image", DEFAULT_CAPTIONS_PER_IMAGE[self.kind]))
        if captions_per_image < 1:
            raise ValueError(f"captions_per_image must be >= 1, got {captions_per_image}")
        images_dir = _images_dir(self.root, self.kind)
        if not images_dir.is_dir():
            raise LayoutError(
                f"images folder not found: {images_dir} (AttnGAN {self.kind} layout); {_PREPARE_HINT}."
            )
        self.split = split
        self.image_size = image_size
        self.captions_per_image = captions_per_image
        self.words_num = words_num
        self.transform_name: TransformName = transform or ("train" if split == "train" else "eval")
        self.seed = seed
        self.epoch = 0
        self._images_dir = images_dir
        self.keys = read_filenames(self.root, split)
        self.class_ids = read_class_ids(self.root, split, self.keys, self.kind)
        keys_by_split: dict[str, Sequence[str]] = {split: self.keys}
        other = "test" if split == "train" else "train"
        other_file = self.root / other / "filenames.pickle"
        if other_file.is_file():
            keys_by_split[other] = read_filenames(self.root, other)
        found_pickle = captions_pickle is not None or any(
            (self.root / name).is_file() for name in CAPTIONS_PICKLE_NAMES
        )
        if not found_pickle and other not in keys_by_split:
            raise LayoutError(
                f"{other_file} not found: building the vocabulary needs the keys of both splits "
                f"(AttnGAN layout); {_PREPARE_HINT}."
            )
        data = load_or_build_captions(
            self.root,
            keys_by_split,
            captions_per_image,
            captions_pickle=captions_pickle,
            check=check_pickle,
            cache=cache_pickle,
        )
        self.captions_path: Path | None = data.path
        self._captions = data.split(split)
        self._vocab: Vocabulary = data.vocab
        if len(self._captions) != len(self.keys) * captions_per_image:
            raise VocabularyMismatchError(
                f"{data.path}: has {len(self._captions)} {split} captions, expected "
                f"{len(self.keys)} x {captions_per_image}; delete it to rebuild it"
            )
        self.bboxes = read_bounding_boxes(self.root) if self.kind == "birds" else None
        if self.bboxes is not None:
            missing = sum(1 for k in self.keys if k not in self.bboxes)
            if missing:
                warnings.warn(
                    f"{missing} of {len(self.keys)} {split} images have no bounding box in "
                    f"{self.root / 'CUB_200_2011' / 'bounding_boxes.txt'}; they are used uncropped",
                    stacklevel=2,
                )
        self.attributes = read_attributes(self.root)
        self._paths: dict[str, Path] = {}

    # ----------------------------------------------------------------- sizes / vocab

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def vocab(self) -> Vocabulary:
        """The vocabulary (``ixtoword``, ``wordtoix``) of the captions pickle."""
        return self._vocab

    @property
    def n_words(self) -> int:
        """Vocabulary size (including ``<end>``)."""
        return len(self._vocab)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random choices ``__getitem__`` makes (seed, epoch, index)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    # ----------------------------------------------------------------- captions

    def captions_of(self, index: int) -> list[list[int]]:
        """All ``N`` captions of item ``index`` as word-index lists (full length)."""
        n = self.captions_per_image
        return [list(c) for c in self._captions[index * n : (index + 1) * n]]

    def caption_texts(self, index: int) -> list[str]:
        """All ``N`` captions of item ``index`` decoded to text (tokenised words)."""
        return [" ".join(self._vocab.decode(c, stop_at_end=False)) for c in self.captions_of(index)]

    def encode(self, text: str) -> tuple[torch.Tensor, int]:
        """Tokenise free text with this vocabulary (see :meth:`Vocabulary.encode_text`)."""
        return self._vocab.encode_text(text, self.words_num)

    # ----------------------------------------------------------------- images

    def image_path(self, index: int) -> Path:
        """Path of the image of item ``index`` (first existing candidate).

        Raises:
            ImageReadError: no candidate file exists (the candidates are named).
        """
        key = self.keys[index]
        cached = self._paths.get(key)
        if cached is None:
            cached = find_image(self.root, self.kind, key)
            self._paths[key] = cached
        return cached

    def load_pil(self, index: int) -> Image.Image:
        """The image of item ``index``, RGB, cropped to its bounding box when one exists."""
        img = load_image(self.image_path(index))
        if self.bboxes is not None:
            box = self.bboxes.get(self.keys[index])
            if box is not None:
                img = crop_to_bbox(img, box)
        return img

    # ----------------------------------------------------------------- items

    def __getitem__(self, idx: int | tuple[int, int]) -> TextImageItem:
        if isinstance(idx, tuple):
            index, epoch = int(idx[0]), int(idx[1])
        else:
            index, epoch = int(idx), self.epoch
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        gen = item_generator(self.seed, epoch, index)
        n = self.captions_per_image
        k = int(torch.randint(0, n, (1,), generator=gen))
        caption, length = fixed_length_caption(self._captions[index * n + k], self.words_num, gen)
        image = apply_transform(self.load_pil(index), self.image_size, self.transform_name, gen)
        return TextImageItem(
            image=image,
            caption=caption,
            cap_len=length,
            class_id=self.class_ids[index],
            key=self.keys[index],
            caption_index=k,
            index=index,
        )


class EpochSampler(Sampler[Any]):
    """A reproducible shuffling sampler: the order of epoch ``e`` depends on ``(seed, e)`` only.

    Call :meth:`set_epoch` at the start of every epoch (also when resuming).  With
    ``with_epoch=True`` it yields ``(index, epoch)`` tuples that :class:`TextImageDataset`
    accepts, so random choices follow the epoch even in persistent worker processes.
    """

    def __init__(self, n_items: int, seed: int = 0, shuffle: bool = True, with_epoch: bool = False) -> None:
        if n_items < 0:
            raise ValueError(f"n_items must be >= 0, got {n_items}")
        self.n_items = n_items
        self.seed = seed
        self.shuffle = shuffle
        self.with_epoch = with_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order is produced next."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def order(self, epoch: int | None = None) -> list[int]:
        """The item order of ``epoch`` (default: the current one)."""
        e = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return list(range(self.n_items))
        gen = item_generator(self.seed, e, 2**32)  # an index no item uses
        return torch.randperm(self.n_items, generator=gen).tolist()

    def __iter__(self) -> Iterator[Any]:
        if self.with_epoch:
            return iter([(i, self.epoch) for i in self.order()])
        return iter(self.order())

    def __len__(self) -> int:
        return self.n_items
