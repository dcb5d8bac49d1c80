"""TextImageDataset on tiny birds/coco fixtures: shapes, crops, caption indexing, pickles."""

from __future__ import annotations

import pickle
import random
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image
from test_data_fixtures import caption_for, coordinate_image, make_birds, make_coco, write_pickle
from torch.utils.data import DataLoader
from torchvision import transforms as T

import csagan.data.captions as captions_module
import csagan.data.layout as ds
from csagan.data import (
    CaptionError,
    EpochSampler,
    ImageReadError,
    LayoutError,
    OutOfVocabularyError,
    PickleFileError,
    TextImageDataset,
    UnsafePickleError,
    VocabularyMismatchError,
    collate,
    read_attributes,
)
from csagan.data.text import tokenize


@pytest.fixture()
def birds(tmp_path: Path) -> Path:
    make_birds(tmp_path)
    return tmp_path


def _text_tokens(root: Path, key: str) -> list[list[str]]:
    lines = (root / "text" / f"{key}.txt").read_text().splitlines()
    return [tokenize(line) for line in lines if line.strip()]


# --------------------------------------------------------------------------- basics


def test_birds_item_shapes_and_range(birds: Path) -> None:
    data = TextImageDataset(birds, "train", image_size=16)
    assert len(data) == 6
    item = data[0]
    assert item.image.shape == (3, 16, 16) and item.image.dtype == torch.float32
    assert item.image.min() >= -1.0 and item.image.max() <= 1.0
    assert item.caption.shape == (18,) and item.caption.dtype == torch.long
    assert 1 <= item.cap_len <= 18
    assert bool((item.caption[item.cap_len:] == 0).all()) and bool((item.caption[: item.cap_len] > 0).all())
    assert item.key == data.keys[0] and item.class_id == 1 and 0 <= item.caption_index < 10


def test_class_ids_derived_from_folder_names_without_class_info(tmp_path: Path) -> None:
    make_birds(tmp_path, class_info=False)
    data = TextImageDataset(tmp_path, "test", image_size=8)
    assert data.class_ids == [4, 4]


def test_crop_to_bbox_matches_hand_computation() -> None:
    img = coordinate_image(100, 80)
    # box (30, 20, 20, 10): r = int(0.75*20) = 15, centre (40, 25) -> x 25..54, y 10..39
    out = crop_to_bbox_pixels(img, (30, 20, 20, 10))
    assert out.size == (30, 30)
    assert out.getpixel((0, 0)) == (25, 10, 128) and out.getpixel((29, 29)) == (54, 39, 128)
    # near the corner the square is clipped: centre (10, 5), r 15 -> x 0..24, y 0..19
    out = crop_to_bbox_pixels(img, (0, 0, 20, 10))
    assert out.size == (25, 20) and out.getpixel((0, 0)) == (0, 0, 128)


def crop_to_bbox_pixels(img: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    return ds.crop_to_bbox(img, box)


def test_dataset_crops_each_image_to_its_box(birds: Path) -> None:
    data = TextImageDataset(birds, "train", image_size=8)
    # image j=1 of class 1: box (6, 5, 20, 16) -> r 15, centre (16, 13) -> x 1..30, y 0..27
    img = data.load_pil(1)
    assert img.size == (30, 28) and img.getpixel((0, 0)) == (1, 0, 128)


def test_eval_transform_equals_torchvision_resize_centre_crop(birds: Path) -> None:
    data = TextImageDataset(birds, "test", image_size=16, transform="eval")
    ref = T.Compose([T.Resize(19), T.CenterCrop(16), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
    expected = ref(data.load_pil(0))
    assert torch.allclose(data[0].image, expected, atol=1e-6)


def test_train_transform_is_a_crop_or_flipped_crop_of_the_resized_image(birds: Path) -> None:
    data = TextImageDataset(birds, "train", image_size=16, transform="train")
    big = T.ToTensor()(T.Resize(19)(data.load_pil(2))) * 2 - 1
    seen_flip = set()
    for epoch in range(6):
        data.set_epoch(epoch)
        img = data[2].image
        matches = [
            (top, left, flip)
            for top in range(big.shape[1] - 15)
            for left in range(big.shape[2] - 15)
            for flip in (False, True)
            if torch.allclose(
                big[:, top : top + 16, left : left + 16].flip(-1) if flip else big[:, top : top + 16, left : left + 16],
                img,
                atol=1e-6,
            )
        ]
        assert matches, f"epoch {epoch}: output is no crop of the resized image"
        seen_flip.update(m[2] for m in matches)
    assert seen_flip == {False, True}


def test_caption_k_of_image_i_is_entry_i_times_n_plus_k(birds: Path) -> None:
    data = TextImageDataset(birds, "train", image_size=8)
    with open(birds / "captions_DAMSM.pickle", "rb") as f:
        train, test, ixtoword, _wordtoix = pickle.load(f)
    assert len(train) == 6 * 10 and len(test) == 2 * 10
    for i in (0, 3, 5):
        expected = _text_tokens(birds, data.keys[i])
        for k in (0, 4, 9):
            assert [ixtoword[ix] for ix in train[i * 10 + k]] == expected[k]
            assert data.captions_of(i)[k] == train[i * 10 + k]
        assert data.caption_texts(i)[2] == " ".join(expected[2])


def _is_subsequence(short: list[int], full: list[int]) -> bool:
    it = iter(full)
    return all(any(w == v for v in it) for w in short)


def test_item_caption_is_the_chosen_caption(birds: Path) -> None:
    data = TextImageDataset(birds, "train", image_size=8)
    for i in range(len(data)):
        item = data[i]
        full = data.captions_of(i)[item.caption_index]
        got = item.caption[: item.cap_len].tolist()
        if len(full) <= 18:
            assert got == full and item.cap_len == len(full)
        else:  # an order-preserving subsequence of 18 words
            assert item.cap_len == 18 and _is_subsequence(got, full)


def test_long_caption_keeps_18_words_in_order(tmp_path: Path) -> None:
    make_birds(tmp_path, n_classes=2, per_class=1, n_captions=1)
    words = [f"w{j:02d}" for j in range(25)]
    for key in ("001.Bird_1/Bird_1_0000", "002.Bird_2/Bird_2_0000"):
        (tmp_path / "text" / f"{key}.txt").write_text(" ".join(words) + "\n")
    data = TextImageDataset(tmp_path, "train", image_size=8, captions_per_image=1)
    item = data[0]
    decoded = data.vocab.decode(item.caption.tolist())
    assert item.cap_len == 18 and len(decoded) == 18
    assert decoded == sorted(decoded) and set(decoded) <= set(words)


def test_built_vocabulary_starts_with_end_and_is_sorted(birds: Path) -> None:
    data = TextImageDataset(birds, "train", image_size=8)
    ixtoword = data.vocab.ixtoword
    assert ixtoword[0] == "<end>"
    words = [ixtoword[i] for i in range(1, len(ixtoword))]
    assert words == sorted(words)
    all_words = {w for key in data.keys for cap in _text_tokens(birds, key) for w in cap}
    test_keys = pickle.loads((birds / "test" / "filenames.pickle").read_bytes())
    all_words |= {w for key in test_keys for cap in _text_tokens(birds, key) for w in cap}
    assert set(words) == all_words


def test_existing_pickle_with_shuffled_vocabulary_is_used_as_is(birds: Path) -> None:
    keys = {s: pickle.loads((birds / s / "filenames.pickle").read_bytes()) for s in ("train", "test")}
    words = sorted({w for s in keys for k in keys[s] for cap in _text_tokens(birds, k) for w in cap})
    random.Random(5).shuffle(words)
    wordtoix = {"<end>": 0, **{w: i + 1 for i, w in enumerate(words)}}
    ixtoword = {i: w for w, i in wordtoix.items()}
    caps = {s: [[wordtoix[w] for w in cap] for k in keys[s] for cap in _text_tokens(birds, k)] for s in keys}
    write_pickle([caps["train"], caps["test"], ixtoword, wordtoix], birds / "captions.pickle")
    before = (birds / "captions.pickle").read_bytes()
    data = TextImageDataset(birds, "test", image_size=8)
    assert dict(data.vocab.wordtoix) == wordtoix
    assert data.captions_of(1) == caps["test"][10:20]
    for i in range(len(data)):
        item = data[i]
        full = caps["test"][10 * i + item.caption_index]
        assert _is_subsequence(item.caption[: item.cap_len].tolist(), full)
        assert item.cap_len == min(18, len(full))
    assert (birds / "captions.pickle").read_bytes() == before
    assert not (birds / "captions_DAMSM.pickle").exists()


def test_captions_pickle_is_built_once_then_reused(birds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not (birds / "captions_DAMSM.pickle").exists()
    first = TextImageDataset(birds, "train", image_size=8)
    assert (birds / "captions_DAMSM.pickle").is_file()
    assert not list(birds.glob(".captions_DAMSM.pickle.*"))  # no temporary file left

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("captions rebuilt although the cache exists")

    monkeypatch.setattr(captions_module, "build_captions", no_build)
    second = TextImageDataset(birds, "train", image_size=8)
    assert second.captions_of(4) == first.captions_of(4)


def test_coco_layout_reads_all_image_locations(tmp_path: Path) -> None:
    keys = make_coco(tmp_path)
    train = TextImageDataset(tmp_path, "train", image_size=16)
    test = TextImageDataset(tmp_path, "test", image_size=16)
    assert train.kind == "coco" and train.captions_per_image == 5
    assert train.image_path(0).parent == tmp_path / "images"
    assert train.image_path(1).parent == tmp_path / "images" / "train2014"
    assert test.image_path(0).parent == tmp_path / "images" / "val2014"
    assert train.class_ids == [0, 1, 2]  # every image its own class (AttnGAN)
    item = test[1]
    assert item.image.shape == (3, 16, 16) and item.key == keys["test"][1]
    assert test.caption_texts(1)[3] == " ".join(tokenize(caption_for(4, 3)))


def test_seed_and_epoch_make_items_reproducible(birds: Path) -> None:
    a = TextImageDataset(birds, "train", image_size=16, seed=3)
    b = TextImageDataset(birds, "train", image_size=16, seed=3)
    b_items = [b[i] for i in reversed(range(6))][::-1]  # read order does not matter
    for i in range(6):
        assert torch.equal(a[i].image, b_items[i].image) and torch.equal(a[i].caption, b_items[i].caption)
    ep0 = [a[i] for i in range(6)]
    a.set_epoch(1)
    ep1 = [a[i] for i in range(6)]
    assert any(x.caption_index != y.caption_index or not torch.equal(x.image, y.image) for x, y in zip(ep0, ep1))
    assert torch.equal(a[(2, 0)].image, ep0[2].image)  # (index, epoch) overrides set_epoch
    a.set_epoch(0)
    assert [a[i].caption_index for i in range(6)] == [x.caption_index for x in ep0]
    c = TextImageDataset(birds, "train", image_size=16, seed=4)
    assert [c[i].caption_index for i in range(6)] != [x.caption_index for x in ep0] or any(
        not torch.equal(c[i].image, ep0[i].image) for i in range(6)
    )


def test_dataloader_workers_see_the_same_items(birds: Path) -> None:
    data = TextImageDataset(birds, "train", image_size=16, seed=1)
    sampler = EpochSampler(len(data), seed=1, with_epoch=True)
    sampler.set_epoch(2)
    runs = []
    for workers in (0, 2):
        loader = DataLoader(data, batch_size=3, sampler=sampler, collate_fn=collate, num_workers=workers)
        runs.append(list(loader))
    for x, y in zip(*runs):
        assert x.keys == y.keys and torch.equal(x.images, y.images) and torch.equal(x.captions, y.captions)
    assert [k for batch in runs[0] for k in batch.keys] == [data.keys[i] for i in sampler.order()]


def test_epoch_sampler_is_a_seeded_permutation_per_epoch() -> None:
    s = EpochSampler(50, seed=7)
    o0 = list(s)
    assert sorted(o0) == list(range(50)) and len(s) == 50
    s.set_epoch(1)
    assert list(s) != o0
    s.set_epoch(0)
    assert list(s) == o0 == EpochSampler(50, seed=7).order(0)
    assert list(EpochSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


def test_collate_stacks_in_order_without_sorting(birds: Path) -> None:
    data = TextImageDataset(birds, "train", image_size=8)
    items = [data[i] for i in (4, 0, 2)]
    batch = collate(items)
    assert batch.images.shape == (3, 3, 8, 8) and batch.captions.shape == (3, 18)
    assert batch.keys == [data.keys[i] for i in (4, 0, 2)]
    assert batch.indices.tolist() == [4, 0, 2]
    assert batch.cap_lens.tolist() == [it.cap_len for it in items]
    assert torch.equal(batch.images[1], items[1].image)
    moved = batch.to("cpu")
    assert moved.images.device.type == "cpu" and len(moved) == 3


def test_encode_free_text(birds: Path) -> None:
    data = TextImageDataset(birds, "train", image_size=8)
    ids, n = data.encode("A small BIRD, with red wings!")
    assert n == 6 and data.vocab.decode(ids.tolist()) == ["a", "small", "bird", "with", "red", "wings"]
    assert ids.shape == (18,) and int(ids[6:].abs().sum()) == 0
    with pytest.warns(UserWarning, match="zebra"):
        ids, n = data.encode("red zebra bird")
    assert n == 2
    with pytest.raises(OutOfVocabularyError, match="giraffe, zebra"):
        data.encode("zebra giraffe")
    with pytest.raises(CaptionError, match="empty"):
        data.encode("  ?! ")


def test_read_attributes_is_optional(birds: Path) -> None:
    assert read_attributes(birds) is None
    (birds / "attributes.jsonl").write_text('{"key": "a/b", "crown": "red"}\n\n{"key": "c/d", "crown": "blue"}\n')
    attrs = read_attributes(birds)
    assert attrs is not None and attrs["c/d"]["crown"] == "blue" and len(attrs) == 2
    assert TextImageDataset(birds, "train", image_size=8).attributes == attrs


# --------------------------------------------------------------------------- bad input


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match=r"not found.*AttnGAN.*csagan data prepare") as info:
        TextImageDataset(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


def test_missing_images_dir(birds: Path) -> None:
    (birds / "CUB_200_2011" / "images").rename(birds / "CUB_200_2011" / "imgs")
    with pytest.raises(LayoutError, match=r"images folder not found: .*CUB_200_2011/images.*prepare"):
        TextImageDataset(birds)


def test_missing_filenames_pickle(birds: Path) -> None:
    (birds / "train" / "filenames.pickle").unlink()
    with pytest.raises(LayoutError, match=r"train/filenames\.pickle not found.*AttnGAN layout.*csagan data prepare"):
        TextImageDataset(birds, "train")


def test_unknown_layout(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="neither"):
        TextImageDataset(tmp_path)


def test_corrupt_image_names_the_path(birds: Path) -> None:
    data = TextImageDataset(birds, "train", image_size=8)
    path = data.image_path(3)
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    with pytest.raises(ImageReadError, match=str(path)):
        data[3]


def test_missing_image_names_the_key(birds: Path) -> None:
    data = TextImageDataset(birds, "train", image_size=8)
    data.image_path(2).unlink()
    with pytest.raises(ImageReadError, match=data.keys[2]):
        data[2]


def test_corrupt_filenames_pickle(birds: Path) -> None:
    (birds / "test" / "filenames.pickle").write_bytes(b"\x80\x02]q\x00(X\x03")
    with pytest.raises(PickleFileError, match=r"test/filenames\.pickle.*corrupt"):
        TextImageDataset(birds, "test")


def test_pickle_with_a_global_is_refused(birds: Path) -> None:
    marker = birds / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))  # type: ignore[return-value]

    write_pickle([Evil()], birds / "train" / "filenames.pickle")
    with pytest.raises(UnsafePickleError, match=r"train/filenames\.pickle.*global"):
        TextImageDataset(birds, "train")
    assert not marker.exists()


def test_text_file_with_too_few_captions(birds: Path) -> None:
    key = pickle.loads((birds / "test" / "filenames.pickle").read_bytes())[1]
    path = birds / "text" / f"{key}.txt"
    path.write_text("\n".join(caption_for(0, k) for k in range(7)) + "\n")
    with pytest.raises(CaptionError, match=rf"{path}: found 7 caption\(s\), need 10"):
        TextImageDataset(birds, "train")


def test_empty_lines_that_leave_too_few_captions(birds: Path) -> None:
    key = pickle.loads((birds / "train" / "filenames.pickle").read_bytes())[0]
    path = birds / "text" / f"{key}.txt"
    lines = [caption_for(0, k) for k in range(9)] + ["", "  ", "?!"]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CaptionError, match=r"found 9 caption\(s\) \(3 empty line\(s\) skipped\), need 10"):
        TextImageDataset(birds, "train")


def test_empty_lines_are_skipped_when_enough_captions_remain(birds: Path) -> None:
    key = pickle.loads((birds / "train" / "filenames.pickle").read_bytes())[0]
    lines = [caption_for(0, k) for k in range(10)]
    (birds / "text" / f"{key}.txt").write_text("\n\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="skipped 9 empty caption line"):
        data = TextImageDataset(birds, "train", image_size=8)
    assert data.caption_texts(0)[9] == " ".join(tokenize(lines[9]))


def test_captions_pickle_with_wrong_count(birds: Path) -> None:
    TextImageDataset(birds, "train", image_size=8)
    obj = pickle.loads((birds / "captions_DAMSM.pickle").read_bytes())
    obj[0] = obj[0][:-10]
    write_pickle(obj, birds / "captions_DAMSM.pickle")
    with pytest.raises(VocabularyMismatchError, match=r"50 train captions.*6 images x 10.*Delete .*captions_DAMSM\.pickle"):
        TextImageDataset(birds, "train")


def test_captions_pickle_with_a_different_vocabulary(birds: Path) -> None:
    TextImageDataset(birds, "train", image_size=8)
    train, test, ixtoword, _ = pickle.loads((birds / "captions_DAMSM.pickle").read_bytes())
    words = [ixtoword[i] for i in range(1, len(ixtoword))]
    shifted = {0: "<end>", **{i + 1: w for i, w in enumerate(words[1:] + words[:1])}}
    write_pickle([train, test, shifted, {w: i for i, w in shifted.items()}], birds / "captions_DAMSM.pickle")
    with pytest.raises(VocabularyMismatchError, match=r"does not match the text files.*Delete"):
        TextImageDataset(birds, "train")
    assert TextImageDataset(birds, "train", check_pickle=False).vocab.ixtoword == shifted


def test_captions_pickle_with_bad_structure(birds: Path) -> None:
    write_pickle({"not": "a list"}, birds / "captions.pickle")
    with pytest.raises(PickleFileError, match=r"captions\.pickle: expected \[train_captions"):
        TextImageDataset(birds, "train")


def test_missing_bounding_boxes_are_counted_in_a_warning(birds: Path) -> None:
    bbox = birds / "CUB_200_2011" / "bounding_boxes.txt"
    bbox.write_text("\n".join(bbox.read_text().splitlines()[2:]) + "\n")  # drop images 1 and 2
    with pytest.warns(UserWarning, match="2 of 6 train images have no bounding box"):
        data = TextImageDataset(birds, "train", image_size=8)
    assert data.load_pil(0).size == (60, 48)


def test_bad_arguments(birds: Path) -> None:
    with pytest.raises(ValueError, match="split"):
        TextImageDataset(birds, "val")
    with pytest.raises(ValueError, match="transform"):
        TextImageDataset(birds, transform="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="epoch"):
        TextImageDataset(birds, image_size=8).set_epoch(-1)


def test_no_warnings_on_a_clean_dataset(birds: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TextImageDataset(birds, "train", image_size=8)[0]


def test_skipped_empty_lines_are_counted_in_a_warning(birds: Path) -> None:
    key = pickle.loads((birds / "train" / "filenames.pickle").read_bytes())[0]
    lines = [caption_for(0, k) for k in range(10)]
    (birds / "text" / f"{key}.txt").write_text("\n\n".join(lines[:3]) + "\n" + "\n".join(lines[3:]) + "\n")
    with pytest.warns(UserWarning, match=r"skipped 2 empty caption line\(s\) in 1 text file\(s\)"):
        TextImageDataset(birds, "train", image_size=8)
