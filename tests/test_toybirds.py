"""Tests of the ToyBirds generator (csagan.data.toybirds, .attributes, .palette).

References are independent of the generator: CUB's published counts (AttnGAN split 8,855 /
2,933), closed-form re-sampling probabilities, a hand-written keyword parser for captions,
the palette's RGB values for pixels, and plain ``pickle``/``PIL`` reads of the files on disk.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from csagan.data.attributes import (
    ATTRIBUTE_VALUES,
    COLOUR_ATTRIBUTES,
    COLOURS,
    MUST_DIFFER,
    BirdAttributes,
    marking_colour,
)
from csagan.data.palette import PALETTE, jitter_colour, nearest_colour
from csagan.data.toybirds import (
    CAPTIONS_PER_IMAGE,
    caption_bird,
    make_toybirds,
    plan_dataset,
    render_bird,
    sample_attributes,
    sample_individual,
    sample_species,
)

TINY: dict[str, Any] = {"n_images": 40, "n_species": 8, "size": 64, "progress": False}


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toybirds(tmp_path_factory.mktemp("tb") / "birds", seed=0, workers=2, **TINY)


# ------------------------------------------------------------------ planning (no rendering)


def test_default_plan_has_cub_shape_and_attngan_split() -> None:
    plan = plan_dataset()
    assert plan.n_species == 200 and plan.n_images == 11788
    assert plan.n_train_species == 150
    assert (plan.n_train_images, plan.n_test_images) == (8855, 2933)
    assert min(plan.counts) >= 58 and max(plan.counts) <= 60  # ~59 per species, like CUB
    train, test = plan.counts[:150], plan.counts[150:]
    assert max(train) - min(train) <= 1 and max(test) - min(test) <= 1


def test_small_plan_keeps_every_species_and_both_splits() -> None:
    plan = plan_dataset(40, 8)
    assert plan.n_species == 8 and plan.n_images == 40 and plan.n_train_species == 6
    assert min(plan.counts) >= 1
    reduced = plan_dataset(5, 200)  # fewer images than species: one image per species
    assert reduced.counts == (1, 1, 1, 1, 1) and 1 <= reduced.n_train_species <= 4
    assert plan_dataset(2, 2).counts == (1, 1)


@pytest.mark.parametrize("kwargs", [{"n_images": 1}, {"n_species": 1}, {"n_images": 0, "n_species": 5}])
def test_plan_rejects_too_small_counts(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="n_"):
        plan_dataset(**kwargs)


# ------------------------------------------------------------------ schema and palette


def test_schema_names_colour_attributes_and_rejects_bad_values() -> None:
    assert set(COLOUR_ATTRIBUTES) == {k for k, v in ATTRIBUTE_VALUES.items() if set(v) == set(COLOURS)}
    good = sample_attributes(np.random.default_rng(0))
    assert BirdAttributes.from_dict(good.to_dict()) == good
    with pytest.raises(ValueError, match="crown_color"):
        good.replace(crown_color="purple")
    with pytest.raises(ValueError, match="neighbouring"):
        good.replace(crown_color=good.back_color)
    with pytest.raises(ValueError, match="missing keys"):
        BirdAttributes.from_dict({"size": "small"})


def test_jittered_colours_stay_nearest_to_their_own_name() -> None:
    assert set(PALETTE) == set(COLOURS)
    rng = np.random.default_rng(0)
    for name in COLOURS:
        for _ in range(200):
            assert nearest_colour(jitter_colour(name, rng)) == name


# ------------------------------------------------------------------ sampling


def test_species_names_unique_cub_like_and_prototypes_valid() -> None:
    species = sample_species(200, np.random.default_rng(3))
    names = [s.name for s in species]
    assert len(set(names)) == 200
    assert [s.class_id for s in species] == list(range(1, 201))
    assert all(re.fullmatch(r"\d{3}\.[A-Z][A-Za-z]*(_[A-Za-z0-9]+)+", s.class_dir) for s in species)
    for s in species:
        for a, b in MUST_DIFFER:
            assert getattr(s.prototype, a) != getattr(s.prototype, b)


def test_individuals_keep_prototype_values_at_the_closed_form_rate() -> None:
    rng = np.random.default_rng(1)
    proto = sample_attributes(rng).replace(size="small", wing_pattern="plain")
    n = 4000
    birds = [sample_individual(proto, rng, resample_prob=0.2) for _ in range(n)]
    # P(same) = 1 - p + p / |values| for an attribute with no exclusions (size: 3 values)
    same_size = np.mean([b.size == proto.size for b in birds])
    assert abs(same_size - (1 - 0.2 + 0.2 / 3)) < 0.02
    assert abs(np.mean([b.facing == "left" for b in birds]) - 0.5) < 0.03
    assert all(
        sample_individual(proto, rng, resample_prob=0.0, background_resample_prob=0.0).replace(facing="right")
        == proto.replace(facing="right")
        for _ in range(20)
    )


# ------------------------------------------------------------------ captions

_PART_WORDS = {
    "crown": "crown_color",
    "head": "crown_color",
    "cap": "crown_color",
    "back": "back_color",
    "mantle": "back_color",
    "bird": "back_color",
    "belly": "belly_color",
    "abdomen": "belly_color",
    "breast": "belly_color",
    "chest": "belly_color",
    "wings": "wing_color",
    "secondaries": "wing_color",
    "primaries": "wing_color",
    "wingbars": "wing_mark",
    "bars": "wing_mark",
    "spots": "wing_mark",
    "tail": "tail_color",
    "rectrices": "tail_color",
    "bill": "bill_color",
    "beak": "bill_color",
    "feet": "leg_color",
    "legs": "leg_color",
    "tarsus": "leg_color",
    "tarsi": "leg_color",
    "eye": "eye_mark",
    "eyering": "eye_mark",
    "eyebrow": "eye_mark",
    "superciliary": "eye_mark",
    "stripe": "eye_mark",
}


def _parse_colours(text: str) -> set[tuple[str, str]]:
    """Hand-written parser: each colour word describes the first part noun after it."""
    words = re.findall(r"[a-z]+", text)
    found = set()
    for i, w in enumerate(words):
        if w in COLOURS:
            for j in range(i + 1, len(words)):
                nxt = words[j]
                if nxt == "wing" and j + 1 < len(words) and words[j + 1] in ("bars", "feathers"):
                    found.add(("wing_mark" if words[j + 1] == "bars" else "wing_color", w))
                    break
                if nxt in _PART_WORDS:
                    found.add((_PART_WORDS[nxt], w))
                    break
            else:
                raise AssertionError(f"colour {w!r} names no part in {text!r}")
    return found


def test_captions_are_true_for_the_bird_and_well_formed() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        bird = sample_individual(sample_attributes(rng), rng)
        cap = caption_bird(bird, rng)
        text = cap.text
        assert text and text == text.strip() and text == text.lower() and text.isascii(), text
        assert 2 <= len(cap.mentions) <= 5 and len(re.findall(r"\w+", text)) <= 18  # AttnGAN's cut-off
        assert all(bird.to_dict()[k] == v for k, v in cap.mentions.items())
        assert "facing" not in cap.mentions and "background" not in cap.mentions
        truth = {k: v for k, v in bird.to_dict().items()}
        truth["wing_mark"] = marking_colour(bird.wing_color)
        for part, colour in _parse_colours(text):
            if part == "eye_mark":
                assert bird.eye_marking != "none"
                ground = bird.belly_color if bird.eye_marking == "eye_ring" else bird.crown_color
                assert colour == marking_colour(ground), text
            else:
                assert truth[part] == colour, (part, colour, text, truth)
        for size, words in (("small", "small|little"), ("medium", "medium"), ("large", "large|big")):
            if re.search(rf"\b({words})\b", text):
                assert bird.size == size and cap.mentions["size"] == size
        if re.search(r"\blong (\w+ )?(bill|beak)\b", text):
            assert bird.bill_length == "long"
        if re.search(r"\b(short|stubby) (\w+ )?(bill|beak)\b", text):
            assert bird.bill_length == "short"
        if re.search(r"\blong (\w+ )?tail", text):
            assert bird.tail_length == "long"
        if re.search(r"\bspot", text):
            assert bird.wing_pattern == "spotted"
        if re.search(r"\b(wing ?bars|two \w+ bars)\b", text):
            assert bird.wing_pattern == "wing_bars"
        if "eye ring" in text or "eyering" in text or "around its eye" in text:
            assert bird.eye_marking == "eye_ring"
        if "eyebrow" in text or "superciliary" in text or "above its eye" in text:
            assert bird.eye_marking == "eyebrow"
        assert "a a" not in text and not re.search(r"\ba [aeiou]", text)


# ------------------------------------------------------------------ rendering

_ANCHOR_ATTR = {
    "crown": "crown_color",
    "back": "back_color",
    "belly": "belly_color",
    "wing": "wing_color",
    "tail": "tail_color",
    "leg": "leg_color",
}


def _anchor_hits(size: int, n: int, seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    hits = total = 0
    for _ in range(n):
        bird = sample_individual(sample_attributes(rng), rng)
        out = render_bird(bird, size, rng)
        px = np.asarray(out.image)
        for part, (x, y) in out.anchors.items():
            if part == "wing" and bird.wing_pattern != "plain":
                continue
            expected = PALETTE[getattr(bird, _ANCHOR_ATTR[part])]
            got = px[int(y), int(x)].astype(float)
            total += 1
            hits += int(
                nearest_colour(tuple(got)) == getattr(bird, _ANCHOR_ATTR[part])
                and np.abs(got - np.asarray(expected)).max() < 60
            )
    return hits, total


def test_part_colours_are_visible_at_128() -> None:
    hits, total = _anchor_hits(128, 40, seed=11)
    assert hits == total


def test_part_colours_are_visible_at_64() -> None:
    hits, total = _anchor_hits(64, 60, seed=12)
    assert hits >= 0.97 * total


@pytest.mark.parametrize("size", [64, 128, 256])
def test_render_size_mode_bbox_and_determinism(size: int) -> None:
    bird = sample_attributes(np.random.default_rng(2))
    a = render_bird(bird, size, np.random.default_rng(9))
    b = render_bird(bird, size, np.random.default_rng(9))
    assert a.image.size == (size, size) and a.image.mode == "RGB"
    assert a.image.tobytes() == b.image.tobytes()
    x, y, w, h = a.bbox
    assert 0 <= x and 0 <= y and x + w <= size and y + h <= size and w > size / 4 and h > size / 4
    for ax, ay in a.anchors.values():
        assert x <= ax <= x + w and y <= ay <= y + h


def test_size_and_facing_attributes_change_the_drawing() -> None:
    base = sample_attributes(np.random.default_rng(4))
    areas = {}
    for size_class in ("small", "medium", "large"):
        boxes = [render_bird(base.replace(size=size_class), 64, np.random.default_rng(i)).bbox for i in range(6)]
        areas[size_class] = np.mean([w * h for _, _, w, h in boxes])
    assert areas["small"] < areas["medium"] < areas["large"]
    for facing, sign in (("right", 1), ("left", -1)):
        out = render_bird(base.replace(facing=facing), 128, np.random.default_rng(0))
        assert sign * (out.anchors["crown"][0] - out.anchors["tail"][0]) > 0  # head ahead of tail


def test_render_rejects_tiny_size() -> None:
    with pytest.raises(ValueError, match="size"):
        render_bird(sample_attributes(np.random.default_rng(0)), 16)


# ------------------------------------------------------------------ the dataset on disk


def test_layout_matches_attngan_birds(tiny: Path) -> None:
    cub = tiny / "CUB_200_2011"
    with open(tiny / "train" / "filenames.pickle", "rb") as fh:
        train = pickle.load(fh)
    with open(tiny / "test" / "filenames.pickle", "rb") as fh:
        test = pickle.load(fh)
    with open(tiny / "train" / "class_info.pickle", "rb") as fh:
        train_cls = pickle.load(fh)
    with open(tiny / "test" / "class_info.pickle", "rb") as fh:
        test_cls = pickle.load(fh)
    for obj, kind in ((train, str), (test, str), (train_cls, int), (test_cls, int)):
        assert type(obj) is list and all(type(v) is kind for v in obj)
    assert (tiny / "train" / "filenames.pickle").read_bytes()[:2] in (
        b"\x80\x02",
        b"\x80\x03",
        b"\x80\x04",
        b"\x80\x05",
    )
    assert len(train) + len(test) == 40 and len(train_cls) == len(train) and len(test_cls) == len(test)
    assert set(train_cls) == set(range(1, 7)) and set(test_cls) == {7, 8}  # split by species
    classes = dict(line.split() for line in (cub / "classes.txt").read_text().splitlines())
    assert len(classes) == 8
    for key, cls in zip(train + test, train_cls + test_cls):
        assert key.split("/")[0] == classes[str(cls)]
        assert (cub / "images" / f"{key}.jpg").is_file()  # the path upstream loaders open
        lines = (tiny / "text" / f"{key}.txt").read_text().split("\n")
        assert lines[-1] == "" and len(lines[:-1]) == CAPTIONS_PER_IMAGE and all(lines[:-1])
    images = [line.split() for line in (cub / "images.txt").read_text().splitlines()]
    assert [int(i) for i, _ in images] == list(range(1, 41))
    assert [p[: -len(".jpg")] for _, p in images] == train + test  # CUB order: by class
    boxes = [line.split() for line in (cub / "bounding_boxes.txt").read_text().splitlines()]
    labels = dict(line.split() for line in (cub / "image_class_labels.txt").read_text().splitlines())
    split = dict(line.split() for line in (cub / "train_test_split.txt").read_text().splitlines())
    assert [b[0] for b in boxes] == [i for i, _ in images]
    for (image_id, path), box in zip(images, boxes):
        x, y, w, h = map(float, box[1:])
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 64 and y + h <= 64
        assert classes[labels[image_id]] == path.split("/")[0]
        assert split[image_id] == ("1" if int(labels[image_id]) <= 6 else "0")
        with Image.open(cub / "images" / path) as im:
            assert im.size == (64, 64) and im.mode == "RGB"


def test_ground_truth_files_agree_with_layout(tiny: Path) -> None:
    records = [json.loads(line) for line in (tiny / "attributes.jsonl").read_text().splitlines()]
    boxes = {
        line.split()[0]: [float(v) for v in line.split()[1:]]
        for line in (tiny / "CUB_200_2011" / "bounding_boxes.txt").read_text().splitlines()
    }
    assert [r["image_id"] for r in records] == list(range(1, 41))
    for r in records:
        attrs = BirdAttributes.from_dict(r["attributes"])
        assert r["attribute_indices"] == {k: ATTRIBUTE_VALUES[k].index(v) for k, v in r["attributes"].items()}
        assert boxes[str(r["image_id"])] == pytest.approx(r["bbox"], abs=0.005)
        assert r["split"] == ("train" if r["class_id"] <= 6 else "test")
        text = (tiny / "text" / f"{r['key']}.txt").read_text().splitlines()
        assert [c["text"] for c in r["captions"]] == text
        for c in r["captions"]:
            assert all(getattr(attrs, k) == v for k, v in c["mentions"].items())
    meta = json.loads((tiny / "toybirds.json").read_text())
    assert (meta["n_images"], meta["n_species"], meta["seed"], meta["size"]) == (40, 8, 0, 64)
    assert meta["n_train_images"] + meta["n_test_images"] == 40
    species = json.loads((tiny / "species.json").read_text())
    assert [s["class_id"] for s in species] == list(range(1, 9))
    assert sum(s["n_images"] for s in species) == 40


def test_same_seed_is_byte_identical_for_any_worker_count(tiny: Path, tmp_path: Path) -> None:
    again = make_toybirds(tmp_path / "again", seed=0, workers=1, **TINY)
    assert _tree_bytes(again) == _tree_bytes(tiny)


def test_every_image_and_caption_file_is_distinct(tiny: Path) -> None:
    files = _tree_bytes(tiny)
    pngs = [v for k, v in files.items() if k.endswith(".jpg")]
    texts = [v for k, v in files.items() if k.startswith("text/")]
    assert len(pngs) == len(set(pngs)) == 40 and len(texts) == len(set(texts)) == 40


def test_different_seed_gives_different_data(tiny: Path, tmp_path: Path) -> None:
    other = _tree_bytes(make_toybirds(tmp_path / "other", seed=1, workers=1, **TINY))
    mine = _tree_bytes(tiny)
    assert other["CUB_200_2011/images.txt"] != mine["CUB_200_2011/images.txt"]  # other species names
    assert sorted(v for k, v in other.items() if k.endswith(".jpg")) != sorted(
        v for k, v in mine.items() if k.endswith(".jpg")
    )


def test_out_dir_protection_and_overwrite(tiny: Path, tmp_path: Path) -> None:
    small: dict[str, Any] = {**TINY, "n_images": 4, "n_species": 2}
    root = make_toybirds(tmp_path / "d", workers=1, **small)
    with pytest.raises(FileExistsError, match="overwrite"):
        make_toybirds(root, workers=1, **small)
    again = make_toybirds(root, workers=1, overwrite=True, seed=0, **small)
    assert len(list((again / "CUB_200_2011" / "images").rglob("*.jpg"))) == 4
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a ToyBirds dataset"):
        make_toybirds(foreign, workers=1, overwrite=True, **small)
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("kwargs", [{"size": 16}, {"seed": -1}, {"workers": 0}])
def test_make_rejects_bad_arguments(kwargs: dict[str, int], tmp_path: Path) -> None:
    args: dict[str, Any] = {**TINY, "n_images": 4, "n_species": 2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_toybirds(tmp_path / "bad", **args)
