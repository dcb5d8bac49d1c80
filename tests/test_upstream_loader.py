"""ToyBirds read by a loader written to the upstream (AttnGAN / DF-GAN / SSA-GAN) path rules.

The rules, as their ``datasets.py`` apply them to the CUB "birds" layout:

* keys come from ``<data_dir>/<split>/filenames.pickle`` (e.g. ``001.Black_footed_Albatross/Black_Footed_Albatross_0046_18``);
* the image is ``<data_dir>/CUB_200_2011/images/<key>.jpg`` (the ``.jpg`` is hard-coded);
* captions are the lines of ``<data_dir>/text/<key>.txt``;
* the bounding box of ``<key>.jpg`` is found by joining ``CUB_200_2011/images.txt`` (id -> relative
  path) with ``bounding_boxes.txt`` (id -> x y w h, read as integers), keyed by the path without its
  extension;
* the crop: r = int(0.75 · max(w, h)) is the half-side of a square around the box centre, clipped to
  the image.

Nothing here calls csagan's own readers, so a layout mistake in ToyBirds shows up as a failure.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from csagan.data.datasets import TextImageDataset
from csagan.data.toybirds import make_toybirds


def upstream_boxes(data_dir: Path) -> dict[str, list[float]]:
    cub = data_dir / "CUB_200_2011"
    paths = dict(line.split(maxsplit=1) for line in (cub / "images.txt").read_text().splitlines() if line.strip())
    boxes = {}
    for line in (cub / "bounding_boxes.txt").read_text().splitlines():
        if line.strip():
            image_id, *xywh = line.split()
            boxes[paths[image_id].strip()[:-4]] = [int(float(v)) for v in xywh]  # read as integers
    return boxes


def upstream_crop(img: Image.Image, bbox: list[float]) -> Image.Image:
    width, height = img.size
    r = int(np.maximum(bbox[2], bbox[3]) * 0.75)
    cx, cy = int((2 * bbox[0] + bbox[2]) / 2), int((2 * bbox[1] + bbox[3]) / 2)
    y1, y2 = np.maximum(0, cy - r), np.minimum(height, cy + r)
    x1, x2 = np.maximum(0, cx - r), np.minimum(width, cx + r)
    return img.crop((int(x1), int(y1), int(x2), int(y2)))


def upstream_load(data_dir: Path, split: str) -> list[tuple[str, Image.Image, list[str]]]:
    with open(data_dir / split / "filenames.pickle", "rb") as fh:
        keys = pickle.load(fh)
    boxes = upstream_boxes(data_dir)
    out = []
    for key in keys:
        img = Image.open(f"{data_dir}/CUB_200_2011/images/{key}.jpg").convert("RGB")
        captions = [c for c in (data_dir / "text" / f"{key}.txt").read_text().split("\n") if c]
        out.append((key, upstream_crop(img, boxes[key]), captions))
    return out


@pytest.fixture(scope="module")
def toybirds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toybirds(tmp_path_factory.mktemp("up") / "birds", n_images=12, n_species=4, workers=1,
                         progress=False)


def test_upstream_loader_reads_toybirds_unchanged(toybirds: Path) -> None:
    for split in ("train", "test"):
        items = upstream_load(toybirds, split)
        assert items, split
        for key, img, captions in items:
            assert len(captions) == 10 and img.size[0] > 8 and img.size[1] > 8


def test_csagan_crops_like_upstream(toybirds: Path) -> None:
    """csagan's own reader gives the same crop from the same .jpg files."""
    ours = TextImageDataset(toybirds, "train", image_size=16)
    theirs = upstream_load(toybirds, "train")
    assert ours.keys == [k for k, _, _ in theirs]
    for i, (_, img, _) in enumerate(theirs):
        assert np.array_equal(np.asarray(ours.load_pil(i)), np.asarray(img))


def test_jpeg_is_close_to_the_lossless_render(toybirds: Path, tmp_path: Path) -> None:
    """Quality 95 without chroma subsampling: the JPEG stays within a few grey levels of the PNG."""
    png = make_toybirds(tmp_path / "png", n_images=12, n_species=4, workers=1, progress=False, image_format="png")
    key = upstream_load(toybirds, "test")[0][0]
    a = np.asarray(Image.open(toybirds / "CUB_200_2011" / "images" / f"{key}.jpg"), dtype=np.float64)
    b = np.asarray(Image.open(png / "CUB_200_2011" / "images" / f"{key}.png"), dtype=np.float64)
    assert a.shape == b.shape and np.abs(a - b).mean() < 3.0
    assert "png" in (png / "CUB_200_2011" / "images.txt").read_text()
    with pytest.raises(ValueError, match="image_format"):
        make_toybirds(tmp_path / "bad", n_images=4, n_species=2, workers=1, progress=False, image_format="gif")


def test_csagan_reads_png_toybirds_too(tmp_path: Path) -> None:
    """Datasets rendered before the JPEG default (and ``--image-format png``) hold ``.png`` files."""
    png = make_toybirds(tmp_path / "png", n_images=8, n_species=4, workers=1, progress=False, image_format="png")
    assert not list((png / "CUB_200_2011" / "images").rglob("*.jpg"))
    data = TextImageDataset(png, "test", image_size=16)
    key = data.keys[0]
    expected = upstream_crop(Image.open(png / "CUB_200_2011" / "images" / f"{key}.png").convert("RGB"),
                             upstream_boxes(png)[key])
    assert np.array_equal(np.asarray(data.load_pil(0)), np.asarray(expected))
    assert data[0].image.shape == (3, 16, 16)
