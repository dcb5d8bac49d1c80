"""prepare_cub / prepare_coco / prepare_folder on tiny raw fixtures, read back by TextImageDataset."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import pytest
from test_data_fixtures import caption_for, coordinate_image

from csagan.data import CaptionError, DatasetError, LayoutError, TextImageDataset
from csagan.data.prepare import prepare_coco, prepare_cub, prepare_folder, split_classes
from csagan.data.text import tokenize


def make_raw_cub(base: Path, n_classes: int = 4, per_class: int = 2) -> tuple[Path, Path]:
    """CUB_200_2011 as downloaded (subset) + text_c10/."""
    cub, text = base / "CUB_200_2011", base / "birds_text" / "text_c10"
    images, boxes, labels, split, classes = [], [], [], [], []
    i = 0
    for c in range(1, n_classes + 1):
        cls = f"{c:03d}.Species_{c}"
        classes.append(f"{c} {cls}")
        for j in range(per_class):
            i += 1
            rel = f"{cls}/Species_{c}_{j}.jpg"
            (cub / "images" / cls).mkdir(parents=True, exist_ok=True)
            coordinate_image(50, 40).save(cub / "images" / rel)
            images.append(f"{i} {rel}")
            boxes.append(f"{i} 10.0 8.0 20.0 16.0")
            labels.append(f"{i} {c}")
            split.append(f"{i} {j % 2}")
            (text / cls).mkdir(parents=True, exist_ok=True)
            (text / cls / f"Species_{c}_{j}.txt").write_text("\n".join(caption_for(i, k) for k in range(10)) + "\n")
    for name, lines in (("images.txt", images), ("bounding_boxes.txt", boxes), ("classes.txt", classes),
                        ("image_class_labels.txt", labels), ("train_test_split.txt", split)):
        (cub / name).write_text("\n".join(lines) + "\n")
    return cub, text.parent


def test_split_classes_like_attngan() -> None:
    assert split_classes(200) == 150 and split_classes(4) == 3 and split_classes(2) == 1


@pytest.mark.parametrize("link", [True, False])
def test_prepare_cub_round_trip(tmp_path: Path, link: bool) -> None:
    cub, text = make_raw_cub(tmp_path / "raw")
    out = prepare_cub(cub, text, tmp_path / "birds", link=link)
    train = TextImageDataset(out, "train", image_size=16)
    test = TextImageDataset(out, "test", image_size=16)
    assert train.kind == "birds" and len(train) == 6 and len(test) == 2
    assert train.class_ids == [1, 1, 2, 2, 3, 3] and test.class_ids == [4, 4]
    assert test.keys == ["004.Species_4/Species_4_0", "004.Species_4/Species_4_1"]
    img = out / "CUB_200_2011" / "images" / "001.Species_1" / "Species_1_0.jpg"
    assert img.is_symlink() == link
    assert test.caption_texts(1)[7] == " ".join(tokenize(caption_for(8, 7)))
    assert test[0].image.shape == (3, 16, 16)
    # the box (10, 8, 20, 16) is used: r 15, centre (20, 16) -> x 5..34, y 1..30
    assert train.load_pil(0).size == (30, 30)
    with open(out / "captions_DAMSM.pickle", "rb") as f:
        assert len(pickle.load(f)[0]) == 60


def test_prepare_cub_missing_inputs(tmp_path: Path) -> None:
    cub, text = make_raw_cub(tmp_path / "raw")
    with pytest.raises(LayoutError, match="caption folder"):
        prepare_cub(cub, tmp_path / "nope", tmp_path / "out")
    (cub / "bounding_boxes.txt").unlink()
    with pytest.raises(LayoutError, match="bounding_boxes.txt"):
        prepare_cub(cub, text, tmp_path / "out")


def _coco_json(path: Path, images: list[tuple[int, str]], anns: list[tuple[int, int, str]]) -> Path:
    obj = {
        "images": [{"id": i, "file_name": f} for i, f in images],
        "annotations": [{"id": a, "image_id": i, "caption": c} for a, i, c in anns],
    }
    path.write_text(json.dumps(obj))
    return path


def test_prepare_coco_round_trip(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for sub, names in (("train2014", ["COCO_train2014_1.jpg", "COCO_train2014_2.jpg", "COCO_train2014_3.jpg",
                                      "COCO_train2014_4.jpg"]), ("val2014", ["COCO_val2014_1.jpg"])):
        (raw / sub).mkdir(parents=True)
        for name in names[:3] if sub == "train2014" else names:  # image 4 has no file
            coordinate_image(40, 30).save(raw / sub / name)
    train_anns = []
    for img in (1, 2):  # 6 captions each, annotation ids in reverse order
        for k in range(6):
            train_anns.append((100 * img + 10 - k, img, f"caption {k} of\nimage {img}"))
    train_anns += [(300 + k, 3, f"only {k}") for k in range(4)]  # image 3: 4 captions
    train_anns += [(400 + k, 4, f"file {k}") for k in range(5)]  # image 4: no file
    tj = _coco_json(raw / "captions_train2014.json",
                    [(1, "COCO_train2014_1.jpg"), (2, "COCO_train2014_2.jpg"), (3, "COCO_train2014_3.jpg"),
                     (4, "COCO_train2014_4.jpg")], train_anns)
    vj = _coco_json(raw / "captions_val2014.json", [(9, "COCO_val2014_1.jpg")],
                    [(k, 9, f"val caption {k}") for k in range(5)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = prepare_coco(raw, tj, vj, tmp_path / "coco")
    messages = [str(w.message) for w in caught]
    assert any("skipped 1 image(s) with fewer than 5 captions" in m for m in messages)
    assert any("skipped 1 image(s) whose file is not" in m for m in messages)
    train = TextImageDataset(out, "train", image_size=16)
    test = TextImageDataset(out, "test", image_size=16)
    assert train.kind == "coco" and train.keys == ["COCO_train2014_1", "COCO_train2014_2"]
    assert test.keys == ["COCO_val2014_1"]
    # the first 5 by annotation id: ids 105..110 for image 1 are k = 5..0 -> captions 5,4,3,2,1
    assert train.caption_texts(0) == [f"caption {k} of image 1" for k in (5, 4, 3, 2, 1)]
    assert (out / "text" / "COCO_train2014_1.txt").read_text().splitlines()[0] == "caption 5 of image 1"
    assert train[1].image.shape == (3, 16, 16)


def test_prepare_folder_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "mine"
    for cls, n_imgs in (("cats", 3), ("dogs", 2)):
        (src / cls).mkdir(parents=True)
        for j in range(n_imgs):
            coordinate_image(30, 20).save(src / cls / f"img{j}.png")
            n_caps = 3 if (cls, j) == ("dogs", 1) else 4
            (src / cls / f"img{j}.txt").write_text("\n".join(f"a {cls} number {j} caption {k}" for k in range(n_caps)))
    with pytest.warns(UserWarning, match="captions per image = 3.*dropped 4 extra"):
        out = prepare_folder(src, tmp_path / "out", test_fraction=0.4, seed=1)
    info = json.loads((out / "csagan_dataset.json").read_text())
    assert info["captions_per_image"] == 3 and info["classes"] == ["cats", "dogs"]
    train = TextImageDataset(out, "train", image_size=8)
    test = TextImageDataset(out, "test", image_size=8)
    assert len(train) == 3 and len(test) == 2 and train.captions_per_image == 3
    assert sorted(train.keys + test.keys) == ["cats/img0", "cats/img1", "cats/img2", "dogs/img0", "dogs/img1"]
    for data in (train, test):
        for i, key in enumerate(data.keys):
            cls, name = key.split("/")
            assert data.class_ids[i] == (1 if cls == "cats" else 2)
            assert data.caption_texts(i)[2] == f"a {cls} number {name[-1]} caption 2"
    assert test[0].image.shape == (3, 8, 8)
    with pytest.warns(UserWarning, match="dropped 4 extra"):
        again = prepare_folder(src, tmp_path / "out2", test_fraction=0.4, seed=1)
    assert TextImageDataset(again, "test", image_size=8).keys == test.keys  # seeded split


def test_prepare_folder_without_subfolders_is_one_class(tmp_path: Path) -> None:
    src = tmp_path / "flat"
    src.mkdir()
    for j in range(4):
        coordinate_image(20, 20).save(src / f"p{j}.jpg")
        (src / f"p{j}.txt").write_text(f"picture {j}\n")
    out = prepare_folder(src, tmp_path / "out", test_fraction=0.25)
    train = TextImageDataset(out, "train", image_size=8)
    test = TextImageDataset(out, "test", image_size=8)
    # AttnGAN's rule without a class file: one class per image (not one class for all)
    ids = train.class_ids + test.class_ids
    assert len(train) == 3 and len(set(ids)) == 4 and all(k.startswith("images/") for k in train.keys)


def test_one_class_per_image_keeps_damsm_negatives(tmp_path: Path) -> None:
    """Why the rule matters: with one shared class id the masked matching losses are exactly 0."""
    torch = pytest.importorskip("torch")
    from csagan.damsm import sentence_loss

    src = tmp_path / "flat"
    src.mkdir()
    for j in range(5):
        coordinate_image(20, 20).save(src / f"p{j}.jpg")
        (src / f"p{j}.txt").write_text(f"picture {j}\n")
    out = prepare_folder(src, tmp_path / "out", test_fraction=0.2)
    ids = TextImageDataset(out, "train", image_size=8).class_ids
    g = torch.Generator().manual_seed(0)
    img, sent = torch.randn(len(ids), 8, generator=g), torch.randn(len(ids), 8, generator=g)
    l1, l2 = sentence_loss(img, sent, ids)
    assert float(l1) > 0.01 and float(l2) > 0.01
    z1, z2 = sentence_loss(img, sent, [1] * len(ids))  # every pair masked: log-softmax of one logit
    assert float(z1) == 0.0 and float(z2) == 0.0


def test_single_class_dataset_warns(tmp_path: Path) -> None:
    from csagan.data.inspect import inspect_dataset
    from csagan.data.layout import warn_if_single_class

    cub, text = make_raw_cub(tmp_path / "raw", n_classes=2, per_class=3)  # train split: class 1 only
    out = prepare_cub(cub, text, tmp_path / "birds")
    train = TextImageDataset(out, "train", image_size=8)
    with pytest.warns(UserWarning, match="same class id.*DAMSM losses are exactly 0"):
        assert warn_if_single_class(train.class_ids, out, "train")
    with pytest.warns(UserWarning, match="same class id.*DAMSM losses are exactly 0"):
        report = inspect_dataset(out, progress=False)
    assert any("same class id" in m and "train" in m for m in report.warnings)
    assert report.ok and "warning: " in report.format()  # usable (e.g. without DAMSM): a warning, not a problem
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_single_class([1, 2, 2], out, "train")


def _digest_tree(root: Path) -> dict[str, tuple[bool, str]]:
    """Every file under ``root``: (is a symlink, sha256 of its bytes)."""
    import hashlib

    return {
        p.relative_to(root).as_posix(): (p.is_symlink(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("link", [True, False])
def test_prepare_cub_in_place_keeps_sources(tmp_path: Path, link: bool) -> None:
    """``--cub-dir X/CUB_200_2011 --out X``: the output folder is the source; nothing is destroyed."""
    cub, text = make_raw_cub(tmp_path / "X")
    before = _digest_tree(tmp_path / "X")
    out = prepare_cub(cub, text, tmp_path / "X", link=link)
    after = _digest_tree(tmp_path / "X")
    assert {k: v for k, v in after.items() if k in before} == before  # byte-identical, none became a link
    assert len(TextImageDataset(out, "train", image_size=8)) == 6
    assert TextImageDataset(out, "test", image_size=8)[0].image.shape == (3, 8, 8)
    # text folder given as the output's own text/ folder: copied onto itself, left alone
    again = prepare_cub(cub, tmp_path / "X" / "text", tmp_path / "X", link=link)
    assert {k: v for k, v in _digest_tree(tmp_path / "X").items() if k in before} == before
    assert len(TextImageDataset(again, "test", image_size=8)) == 2


@pytest.mark.parametrize("link", [True, False])
def test_prepare_coco_in_place_keeps_sources(tmp_path: Path, link: bool) -> None:
    """``--images-dir X/images --out X`` with the images directly in ``images/``."""
    raw = tmp_path / "X"
    (raw / "images").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        coordinate_image(30, 20).save(raw / "images" / name)
    tj = _coco_json(tmp_path / "train.json", [(1, "a.jpg")], [(k, 1, f"cap {k} a") for k in range(5)])
    vj = _coco_json(tmp_path / "val.json", [(2, "b.jpg")], [(k + 9, 2, f"cap {k} b") for k in range(5)])
    before = _digest_tree(raw)
    out = prepare_coco(raw / "images", tj, vj, raw, link=link)
    after = _digest_tree(raw)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not (raw / "images" / "a.jpg").is_symlink()
    assert TextImageDataset(out, "train", image_size=8)[0].image.shape == (3, 8, 8)


def test_prepare_folder_refuses_output_inside_input(tmp_path: Path) -> None:
    src = tmp_path / "mine"
    src.mkdir()
    for j in range(3):
        coordinate_image(20, 20).save(src / f"p{j}.png")
        (src / f"p{j}.txt").write_text(f"a caption {j}\n")
    before = _digest_tree(src)
    with pytest.raises(ValueError, match="must not be inside the input folder"):
        prepare_folder(src, src)
    assert _digest_tree(src) == before


def test_prepare_folder_lists_images_without_captions(tmp_path: Path) -> None:
    src = tmp_path / "mine"
    src.mkdir()
    for j in range(3):
        coordinate_image(20, 20).save(src / f"p{j}.png")
    (src / "p0.txt").write_text("a caption\n")
    (src / "p1.txt").write_text("\n ?! \n")
    with pytest.raises(CaptionError, match=r"2 image\(s\).*p1\.txt \(no caption\).*p2\.txt \(missing\)"):
        prepare_folder(src, tmp_path / "out")


def _captioned_folder(root: Path) -> None:
    for cls in ("cats", "dogs"):
        (root / cls).mkdir(parents=True)
        for j in range(2):
            coordinate_image(20, 20).save(root / cls / f"img{j}.png")
            (root / cls / f"img{j}.txt").write_text(f"a  {cls} number {j}\n\nsecond caption {j}\n")


@pytest.mark.parametrize("link", [True, False])
def test_prepare_folder_in_place_keeps_sources(tmp_path: Path, link: bool) -> None:
    """``--folder X/CUB_200_2011/images --out X``: every image already sits where the layout puts it."""
    x = tmp_path / "X"
    _captioned_folder(x / "CUB_200_2011" / "images")
    before = _digest_tree(x)
    out = prepare_folder(x / "CUB_200_2011" / "images", x, test_fraction=0.5, link=link)
    after = _digest_tree(x)
    assert {k: v for k, v in after.items() if k in before} == before  # byte-identical, none became a link
    train, test = TextImageDataset(out, "train", image_size=8), TextImageDataset(out, "test", image_size=8)
    assert len(train) == len(test) == 2 and train[0].image.shape == (3, 8, 8)


def test_prepare_folder_refuses_to_write_over_source_captions(tmp_path: Path) -> None:
    """``--folder X/text --out X``: the prepared captions would replace the user's own files."""
    x = tmp_path / "X"
    _captioned_folder(x / "text")
    before = _digest_tree(x)
    with pytest.raises(DatasetError, match=r"img0\.txt.*another --out"):
        prepare_folder(x / "text", x)
    assert _digest_tree(x) == before
