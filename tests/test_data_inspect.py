"""inspect_dataset: counts, caption statistics and broken files."""

from __future__ import annotations

import pickle
import statistics
from pathlib import Path

import pytest
from test_data_fixtures import caption_for, make_birds

from csagan.data import LayoutError, TextImageDataset
from csagan.data.inspect import inspect_dataset


def test_inspect_clean_dataset_statistics(tmp_path: Path) -> None:
    make_birds(tmp_path)
    report = inspect_dataset(tmp_path, progress=False)
    lengths = [len(caption_for(i, k).split()) for i in range(8) for k in range(10)]
    assert report.ok and report.n_images == 8 and report.images_per_split == {"train": 6, "test": 2}
    assert report.n_classes == 4
    assert (report.captions_per_image_min, report.captions_per_image_max) == (10, 10)
    assert report.caption_len_mean == pytest.approx(statistics.fmean(lengths))
    assert report.caption_len_median == statistics.median(lengths)
    assert report.caption_len_max == max(lengths)
    assert report.share_longer_than_t == pytest.approx(sum(n > 18 for n in lengths) / 80)
    words = {w.lower().strip(".") for i in range(8) for k in range(10) for w in caption_for(i, k).split()}
    assert report.vocab_size == len(words) + 1
    TextImageDataset(tmp_path, image_size=8)  # writes captions_DAMSM.pickle
    assert inspect_dataset(tmp_path, progress=False).vocab_source == "captions_DAMSM.pickle"
    text = report.format()
    assert "images: 8 (train 6, test 2)" in text and "problems: 0 (none)" in text


def test_inspect_lists_broken_files(tmp_path: Path) -> None:
    keys = make_birds(tmp_path)
    img_dir = tmp_path / "CUB_200_2011" / "images"
    bad_img = img_dir / f"{keys['train'][1]}.png"
    bad_img.write_bytes(b"garbage")
    truncated = img_dir / f"{keys['train'][2]}.png"
    truncated.write_bytes(truncated.read_bytes()[:60])
    (img_dir / f"{keys['test'][0]}.png").unlink()
    short_txt = tmp_path / "text" / f"{keys['train'][3]}.txt"
    short_txt.write_text("one caption\n\n")
    missing_txt = tmp_path / "text" / f"{keys['test'][1]}.txt"
    missing_txt.unlink()
    report = inspect_dataset(tmp_path, progress=False)
    bad_paths = [p for p, _ in report.bad_images]
    assert len(report.bad_images) == 3
    assert str(bad_img) in bad_paths and str(truncated) in bad_paths and keys["test"][0] in bad_paths
    assert dict(report.bad_texts)[str(short_txt)] == "1 caption(s), need 10"
    assert str(missing_txt) in dict(report.bad_texts)
    assert report.captions_per_image_min == 0 and report.n_problems == 5
    text = report.format()
    assert f"unreadable image: {bad_img}" in text and "problems: 5 (3 image(s), 2 caption file(s), 0 other)" in text


def test_inspect_one_split_and_errors(tmp_path: Path) -> None:
    make_birds(tmp_path)
    assert inspect_dataset(tmp_path, "test", progress=False).images_per_split == {"test": 2}
    (tmp_path / "test" / "filenames.pickle").unlink()
    report = inspect_dataset(tmp_path, progress=False)
    assert report.splits == ["train"] and "test/filenames.pickle not found" in report.other_problems[0]
    with pytest.raises(LayoutError, match="filenames.pickle"):
        inspect_dataset(tmp_path, "test", progress=False)
    with pytest.raises(LayoutError, match="not found"):
        inspect_dataset(tmp_path / "missing", progress=False)
    (tmp_path / "captions.pickle").write_bytes(pickle.dumps([Path("x")]))
    assert "refuses the global" in inspect_dataset(tmp_path, progress=False).other_problems[-1]
