"""Build the AttnGAN layout (read by :class:`~csagan.data.datasets.TextImageDataset`) from raw data.

* :func:`prepare_cub` — CUB-200-2011 as downloaded plus the 10-captions-per-image text
  folder distributed with StackGAN/AttnGAN (``text_c10/<class>/<img>.txt``).
* :func:`prepare_coco` — COCO 2014 images plus the official caption annotation JSON files.
* :func:`prepare_folder` — a user's own images, each with a same-stem ``.txt`` of captions.

Images are symbolic links to the originals (``link=True``) or copies.  Every function
also writes the captions pickle ``captions_DAMSM.pickle`` (vocabulary rules in
:mod:`csagan.data.text`) and returns the output root.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csagan.data.captions import CAPTIONS_PICKLE_NAMES, build_captions
from csagan.data.errors import CaptionError, DatasetError, LayoutError
from csagan.data.layout import DATASET_INFO_NAME, IMAGE_EXTENSIONS
from csagan.data.safe_pickle import safe_dump_pickle
from csagan.data.text import tokenize

__all__ = ["prepare_coco", "prepare_cub", "prepare_folder", "split_classes"]


def _same_path(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name the same directory entry (parents resolved, the name itself not)."""
    return os.path.realpath(a.parent) == os.path.realpath(b.parent) and a.name == b.name


def _is_source(src: Path, dst: Path) -> bool:
    """Whether writing ``dst`` would touch the source ``src`` itself (same entry, or a hard link of it)."""
    if _same_path(src, dst):
        return True
    return not dst.is_symlink() and dst.exists() and os.path.samefile(src, dst)


def _place(src: Path, dst: Path, link: bool) -> None:
    """Symlink (absolute target) or copy ``src`` to ``dst``; never modify or delete the source.

    When ``dst`` *is* the source (``--out`` is the folder being read, or a hard link of it), it is
    left in place untouched: an in-place ``prepare`` keeps every source file byte-identical. An
    existing symlink at ``dst`` is replaced (only the link goes, never what it points to); an
    existing link to ``src`` is kept when linking.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(dst):
        if _is_source(src, dst):
            return
        if dst.is_symlink():
            if link and os.path.realpath(dst) == os.path.realpath(src):
                return
            dst.unlink()
        elif dst.is_dir():
            raise LayoutError(f"cannot write image {dst}: a folder of that name exists; remove it or choose another --out")
        else:
            dst.unlink()  # a file of an earlier prepare run (not the source: checked above)
    if link:
        os.symlink(src.resolve(), dst)
    else:
        shutil.copy2(src, dst)


def _copy_file(src: Path, dst: Path) -> None:
    """``shutil.copyfile`` that leaves ``dst`` alone when it is the source itself (in-place prepare)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(dst):
        if _is_source(src, dst):
            return
        if dst.is_symlink():
            dst.unlink()
    shutil.copyfile(src, dst)


def _write_text(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _write_split(out: Path, split: str, keys: Sequence[str], class_ids: Sequence[int] | None) -> None:
    safe_dump_pickle(list(keys), out / split / "filenames.pickle")
    if class_ids is not None:
        safe_dump_pickle([int(c) for c in class_ids], out / split / "class_info.pickle")


def _write_captions(out: Path, train: Sequence[str], test: Sequence[str], n: int) -> None:
    data = build_captions(out, {"train": train, "test": test}, n)
    safe_dump_pickle(data.to_pickle_object(), out / CAPTIONS_PICKLE_NAMES[0])


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise LayoutError(f"{what} not found: {path}")


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise LayoutError(f"{what} not found: {path}")


def split_classes(n_classes: int, train_fraction: float = 0.75) -> int:
    """Number of training classes when the first ``train_fraction`` of the classes train.

    AttnGAN's CUB split: 150 of 200 classes (ids 1-150) train, 151-200 test.  At least one
    class goes to each side when there are two or more.
    """
    if n_classes < 2:
        raise DatasetError(f"need at least 2 classes to split by class, got {n_classes}")
    return min(n_classes - 1, max(1, round(train_fraction * n_classes)))


# --------------------------------------------------------------------------- CUB


def prepare_cub(
    cub_dir: str | Path, text_dir: str | Path, out_dir: str | Path, *, link: bool = True
) -> Path:
    """Build the AttnGAN ``birds`` layout from CUB-200-2011 and its 10-caption text files.

    Args:
        cub_dir: the extracted ``CUB_200_2011`` folder (``images/``, ``images.txt``,
            ``bounding_boxes.txt``, ``classes.txt``, ...).
        text_dir: the caption folder ``text_c10`` (``<class>/<img>.txt``), or a folder
            that contains ``text_c10/``.
        out_dir: output root (``CUB_200_2011/``, ``text/``, ``train/``, ``test/`` are written).
        link: symlink the images instead of copying them.

    Split by class like AttnGAN: classes in ``classes.txt`` order, the first 75 % (1-150 of
    200) train, the rest test; image order follows ``images.txt``.  ``class_info.pickle``
    holds the 1-based class ids.

    Raises:
        LayoutError: a required input file or folder is missing.
        CaptionError: a text file is missing or has fewer than 10 captions.
    """
    cub, out = Path(cub_dir), Path(out_dir)
    text = Path(text_dir)
    if (text / "text_c10").is_dir():
        text = text / "text_c10"
    _require_dir(cub, "CUB_200_2011 folder")
    _require_dir(cub / "images", "CUB images folder")
    _require_dir(text, "caption folder (text_c10)")
    for name in ("images.txt", "classes.txt", "bounding_boxes.txt"):
        _require_file(cub / name, f"CUB file {name}")
    classes: list[tuple[int, str]] = []
    for line in (cub / "classes.txt").read_text(encoding="utf-8").split("\n"):
        if line.strip():
            cid, cname = line.split(maxsplit=1)
            classes.append((int(cid), cname.strip()))
    n_train = split_classes(len(classes))
    train_classes = {name for _, name in classes[:n_train]}
    class_id = {name: cid for cid, name in classes}

    splits: dict[str, list[str]] = {"train": [], "test": []}
    ids: dict[str, list[int]] = {"train": [], "test": []}
    dst_cub = out / "CUB_200_2011"
    for line in (cub / "images.txt").read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        _, rel = line.split(maxsplit=1)
        rel = rel.strip()
        src = cub / "images" / rel
        if not src.is_file():
            raise LayoutError(f"image listed in {cub / 'images.txt'} not found: {src}")
        key = rel.rsplit(".", 1)[0]
        cls = key.split("/", 1)[0]
        if cls not in class_id:
            raise DatasetError(f"{cub / 'images.txt'}: class folder {cls!r} is not in classes.txt")
        split = "train" if cls in train_classes else "test"
        splits[split].append(key)
        ids[split].append(class_id[cls])
        _place(src, dst_cub / "images" / rel, link)
        txt = text / f"{key}.txt"
        if not txt.is_file():
            raise CaptionError(f"caption file not found: {txt} (needed for image {src})")
        _copy_file(txt, out / "text" / f"{key}.txt")
    for name in ("images.txt", "bounding_boxes.txt", "classes.txt", "image_class_labels.txt",
                 "train_test_split.txt"):
        if (cub / name).is_file():
            _copy_file(cub / name, dst_cub / name)
    for split in ("train", "test"):
        _write_split(out, split, splits[split], ids[split])
    _write_captions(out, splits["train"], splits["test"], 10)
    _write_info(out, "birds", 10)
    return out


def _write_info(out: Path, kind: str, n: int, **extra: Any) -> None:
    info = {"dataset": kind, "captions_per_image": n, **extra}
    (out / DATASET_INFO_NAME).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- COCO


def _read_coco_json(path: Path) -> tuple[dict[int, str], dict[int, list[tuple[int, str]]]]:
    _require_file(path, "COCO caption annotation file")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        images = {int(im["id"]): str(im["file_name"]) for im in obj["images"]}
        anns: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for ann in obj["annotations"]:
            anns[int(ann["image_id"])].append((int(ann["id"]), str(ann["caption"])))
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"{path}: not a COCO caption annotation file (needs 'images' with id/file_name and "
            f"'annotations' with id/image_id/caption): {type(exc).__name__}: {exc}"
        ) from exc
    return images, anns


def prepare_coco(
    images_dir: str | Path,
    captions_train_json: str | Path,
    captions_val_json: str | Path,
    out_dir: str | Path,
    *,
    link: bool = True,
) -> Path:
    """Build the AttnGAN ``coco`` layout from COCO 2014 images and caption annotations.

    Args:
        images_dir: folder with ``train2014/`` and ``val2014/`` (or all images directly).
        captions_train_json: ``captions_train2014.json`` (train split).
        captions_val_json: ``captions_val2014.json`` (test split).
        out_dir: output root (``images/``, ``text/``, ``train/``, ``test/``).
        link: symlink the images instead of copying them.

    Keys are the file names without extension.  Each image keeps exactly 5 captions: the
    first 5 by annotation id (newlines inside a caption become spaces).  Images with fewer
    than 5 usable captions, and images whose file is missing, are skipped with a warning
    that gives the count.
    """
    src_root, out = Path(images_dir), Path(out_dir)
    _require_dir(src_root, "COCO images folder")
    n = 5
    splits: dict[str, list[str]] = {}
    for split, json_path, sub in (
        ("train", Path(captions_train_json), "train2014"),
        ("test", Path(captions_val_json), "val2014"),
    ):
        images, anns = _read_coco_json(json_path)
        keys: list[str] = []
        few, missing, empty = 0, 0, 0
        for image_id in sorted(images, key=lambda i: images[i]):
            fname = images[image_id]
            all_caps = [" ".join(c.split()) for _, c in sorted(anns.get(image_id, []))]
            caps = [c for c in all_caps if tokenize(c)]
            empty += len(all_caps) - len(caps)
            if len(caps) < n:
                few += 1
                continue
            src = src_root / sub / fname
            if not src.is_file():
                src = src_root / fname
            if not src.is_file():
                missing += 1
                continue
            key = Path(fname).stem
            _place(src, out / "images" / f"{key}{src.suffix.lower()}", link)
            _write_text(out / "text" / f"{key}.txt", caps[:n])
            keys.append(key)
        if empty:
            warnings.warn(f"{json_path}: ignored {empty} caption(s) without any word", stacklevel=2)
        if few:
            warnings.warn(
                f"{json_path}: skipped {few} image(s) with fewer than {n} captions", stacklevel=2
            )
        if missing:
            warnings.warn(
                f"{json_path}: skipped {missing} image(s) whose file is not under "
                f"{src_root / sub} or {src_root}",
                stacklevel=2,
            )
        if not keys:
            raise DatasetError(f"{json_path}: no usable image (need the file and {n} captions)")
        splits[split] = keys
    for split, keys in splits.items():
        _write_split(out, split, keys, None)
    _write_captions(out, splits["train"], splits["test"], n)
    _write_info(out, "coco", n)
    return out


# --------------------------------------------------------------------------- folder


def _folder_class(key: str, img: Path, src: Path) -> str:
    """Class name of an image: its top-level subfolder, or the image's own key at the top level."""
    rel = img.relative_to(src)
    return rel.parts[0] if len(rel.parts) > 1 else key


def prepare_folder(
    folder: str | Path,
    out_dir: str | Path,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    link: bool = True,
) -> Path:
    """Build a ``birds``-style layout (no bounding boxes) from a user's captioned images.

    Input: image files (``.jpg .jpeg .png .webp .bmp``) each with a same-stem ``.txt``
    beside it holding captions, one per line.  Top-level subfolders become classes; an image
    directly in ``folder`` is a class of its own (AttnGAN's rule when there is no class file:
    one class per image, so DAMSM's same-class masking keeps every other image as a negative).
    Class ids are 1, 2, ... in sorted name order (an image's own class is named by its key,
    ``images/<stem>``).  Deeper subfolders belong to their top-level class.

    Captions per image ``N`` = the minimum number of captions over all images; images
    with more keep their first ``N`` (a warning counts the dropped captions).  An image
    without a caption file, or with no caption, is an error (all such files are listed).

    Split: a random ``test_fraction`` of the images (numpy ``default_rng(seed)``) is the
    test split; at least one image on each side.  Writes ``csagan_dataset.json`` with ``N``.
    """
    src, out = Path(folder), Path(out_dir)
    _require_dir(src, "image folder")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    exts = set(IMAGE_EXTENSIONS)
    images = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in exts
                    and not any(part.startswith(".") for part in p.relative_to(src).parts))
    if out.resolve().is_relative_to(src.resolve()):
        raise ValueError(f"out_dir {out} must not be inside the input folder {src}")
    if len(images) < 2:
        raise DatasetError(f"{src}: found {len(images)} image(s) ({', '.join(IMAGE_EXTENSIONS)}); need at least 2")
    entries: list[tuple[str, Path, list[str]]] = []
    problems: list[str] = []
    seen: dict[str, Path] = {}
    empty_lines = 0
    for img in images:
        rel = img.relative_to(src)
        cls = rel.parts[0] if len(rel.parts) > 1 else "images"
        inner = Path(*rel.parts[1:]) if len(rel.parts) > 1 else rel
        key = f"{cls}/{inner.with_suffix('').as_posix().replace('/', '__')}"
        if key in seen:
            raise DatasetError(f"two images give the same key {key!r}: {seen[key]} and {img}; rename one")
        seen[key] = img
        txt = img.with_suffix(".txt")
        if not txt.is_file():
            problems.append(f"{txt} (missing)")
            continue
        lines = [" ".join(line.split()) for line in txt.read_text(encoding="utf-8", errors="replace").splitlines()]
        caps = [line for line in lines if tokenize(line)]
        empty_lines += sum(1 for line in lines if line) - len(caps)
        if not caps:
            problems.append(f"{txt} (no caption)")
            continue
        entries.append((key, img, caps))
    if problems:
        raise CaptionError(
            f"{len(problems)} image(s) have no usable caption file (a same-stem .txt with one "
            f"caption per line is required): " + "; ".join(problems)
        )
    if empty_lines:
        warnings.warn(f"ignored {empty_lines} caption line(s) without any word", stacklevel=2)
    n = min(len(c) for _, _, c in entries)
    dropped = sum(len(c) - n for _, _, c in entries)
    if dropped:
        warnings.warn(
            f"captions per image = {n} (the minimum over {len(entries)} images); dropped "
            f"{dropped} extra caption(s) from images that have more",
            stacklevel=2,
        )
    class_names = sorted({_folder_class(k, img, src) for k, img, _ in entries})
    class_id = {name: i + 1 for i, name in enumerate(class_names)}
    n_test = min(len(entries) - 1, max(1, math.floor(test_fraction * len(entries) + 0.5)))
    perm = np.random.default_rng(seed).permutation(len(entries))
    test_idx = {int(i) for i in perm[:n_test]}
    splits: dict[str, list[str]] = {"train": [], "test": []}
    by_key = {key: img for key, img, _ in entries}
    sources = {os.path.realpath(img.with_suffix(".txt")) for _, img, _ in entries}
    for key, img, _ in entries:
        dst_txt = out / "text" / f"{key}.txt"
        if os.path.realpath(dst_txt) in sources:
            raise DatasetError(
                f"{os.path.realpath(dst_txt)}: writing the prepared captions of {img} would replace this "
                f"source caption file; choose another --out (not the folder above {src})"
            )
    for i, (key, img, caps) in enumerate(entries):
        _place(img, out / "CUB_200_2011" / "images" / f"{key}{img.suffix.lower()}", link)
        _write_text(out / "text" / f"{key}.txt", caps[:n])
        splits["test" if i in test_idx else "train"].append(key)
    for split, keys in splits.items():
        _write_split(out, split, keys, [class_id[_folder_class(k, by_key[k], src)] for k in keys])
    _write_captions(out, splits["train"], splits["test"], n)
    _write_info(out, "birds", n, classes=class_names)
    return out
