"""Tiny AttnGAN-layout fixtures written by the data tests themselves (no downloads).

Imported by the other ``test_data_*.py`` files; the tests here check the fixtures.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

WORDS = [
    "bird", "red", "blue", "wings", "small", "long", "beak", "white", "belly", "black",
    "crown", "tail", "yellow", "has", "a", "with", "and", "the", "feet", "grey",
]


def caption_for(i: int, k: int, n_words: int | None = None) -> str:
    """A deterministic caption; every 7th one is long (more than 18 words)."""
    if n_words is None:
        n_words = 22 if (i * 10 + k) % 7 == 3 else 4 + (i + k) % 6
    words = [WORDS[(i * 3 + k * 5 + j * 7) % len(WORDS)] for j in range(n_words)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def coordinate_image(width: int, height: int) -> Image.Image:
    """An RGB image whose pixel (x, y) is (x, y, 128): crops can be located exactly."""
    xs, ys = np.meshgrid(np.arange(width), np.arange(height))
    arr = np.stack([xs % 256, ys % 256, np.full_like(xs, 128)], axis=-1).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def write_pickle(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def make_birds(
    root: Path,
    n_classes: int = 4,
    per_class: int = 2,
    n_captions: int = 10,
    size: tuple[int, int] = (60, 48),
    ext: str = ".png",
    class_info: bool = True,
) -> dict[str, list[str]]:
    """Write a birds-layout dataset; classes 1..n-1 train, the last class test.

    Returns the keys per split.  Image j of class c has the box (5+c, 4+j, 20, 16).
    """
    cub = root / "CUB_200_2011"
    (cub / "images").mkdir(parents=True)
    images_txt, bbox_txt = [], []
    keys: dict[str, list[str]] = {"train": [], "test": []}
    cids: dict[str, list[int]] = {"train": [], "test": []}
    img_id = 0
    n = 0
    for c in range(1, n_classes + 1):
        cls = f"{c:03d}.Bird_{c}"
        (cub / "images" / cls).mkdir()
        (root / "text" / cls).mkdir(parents=True)
        for j in range(per_class):
            img_id += 1
            key = f"{cls}/Bird_{c}_{j:04d}"
            coordinate_image(*size).save(cub / "images" / f"{key}{ext}")
            images_txt.append(f"{img_id} {key}{ext}")
            bbox_txt.append(f"{img_id} {5 + c}.0 {4 + j}.0 20.0 16.0")
            lines = [caption_for(n, k) for k in range(n_captions)]
            (root / "text" / f"{key}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            split = "train" if c < n_classes else "test"
            keys[split].append(key)
            cids[split].append(c)
            n += 1
    (cub / "images.txt").write_text("\n".join(images_txt) + "\n")
    (cub / "bounding_boxes.txt").write_text("\n".join(bbox_txt) + "\n")
    for split in ("train", "test"):
        write_pickle(keys[split], root / split / "filenames.pickle")
        if class_info:
            write_pickle(cids[split], root / split / "class_info.pickle")
    return keys


def make_coco(root: Path, n_train: int = 3, n_test: int = 2, n_captions: int = 5) -> dict[str, list[str]]:
    """Write a coco-layout dataset; train images under images/train2014, test under val2014,
    and the first train image directly under images/ (AttnGAN's own layout)."""
    keys: dict[str, list[str]] = {"train": [], "test": []}
    n = 0
    for split, count, sub in (("train", n_train, "train2014"), ("test", n_test, "val2014")):
        for j in range(count):
            key = f"COCO_{sub}_{j:012d}"
            folder = root / "images" if (split == "train" and j == 0) else root / "images" / sub
            folder.mkdir(parents=True, exist_ok=True)
            coordinate_image(40 + 4 * j, 30).save(folder / f"{key}.jpg", quality=95)
            (root / "text").mkdir(parents=True, exist_ok=True)
            lines = [caption_for(n, k) for k in range(n_captions)]
            (root / "text" / f"{key}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            keys[split].append(key)
            n += 1
        write_pickle(keys[split], root / split / "filenames.pickle")
    return keys


def test_caption_for_makes_long_and_short_captions() -> None:
    lengths = [len(caption_for(i, k).split()) for i in range(4) for k in range(10)]
    assert max(lengths) > 18 and min(lengths) < 18


def test_make_birds_writes_the_layout(tmp_path: Path) -> None:
    keys = make_birds(tmp_path)
    assert len(keys["train"]) == 6 and len(keys["test"]) == 2
    assert (tmp_path / "CUB_200_2011" / "images" / f"{keys['test'][0]}.png").is_file()
