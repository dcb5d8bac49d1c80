"""The AttnGAN dataset layouts on disk (CUB "birds" and COCO) and reading their images.

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

A dataset made by ``csagan data prepare folder`` also has ``csagan_dataset.json`` with
``{"dataset": ..., "captions_per_image": N}``, read when those arguments are left at auto.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from csagan.data.errors import (
    DatasetError,
    ImageReadError,
    LayoutError,
    PickleFileError,
)
from csagan.data.safe_pickle import safe_load_pickle

__all__ = [
    "DATASET_INFO_NAME",
    "DEFAULT_CAPTIONS_PER_IMAGE",
    "IMAGE_EXTENSIONS",
    "PREPARE_HINT",
    "DatasetKind",
    "TransformName",
    "apply_transform",
    "crop_to_bbox",
    "detect_dataset",
    "find_image",
    "images_dir",
    "load_image",
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

DATASET_INFO_NAME = "csagan_dataset.json"
DEFAULT_CAPTIONS_PER_IMAGE: dict[str, int] = {"birds": 10, "coco": 5}
PREPARE_HINT = "`csagan data prepare {cub,coco,folder} ...` builds this layout from raw data"




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
            f"CUB_200_2011/ (birds) or images/ (coco) in the AttnGAN layout; {PREPARE_HINT}."
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
        f"(birds) nor {r / 'images'} (coco) exists; {PREPARE_HINT}."
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


def images_dir(root: Path, kind: DatasetKind) -> Path:
    """The images folder of a dataset of this layout (``CUB_200_2011/images`` or ``images``)."""
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
            f"{PREPARE_HINT}."
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
    folder = images_dir(Path(root), kind)
    bases = [folder / key]
    if kind == "coco":
        bases += [folder / "train2014" / key, folder / "val2014" / key]
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


