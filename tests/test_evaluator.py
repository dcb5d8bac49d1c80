"""Tests of csagan.evaluator (ToyBirds attribute classifier and alignment metrics)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from csagan.evaluator import (
    AttributeEvaluator,
    EvaluatorOutput,
    alignment_from_predictions,
    caption_mentions,
    domain_fid,
    domain_is,
    evaluate_alignment,
    load_evaluator,
    sanity_bounds,
    save_evaluator,
    train_evaluator,
)

SCHEMA = {"colour": ("red", "blue", "green"), "size": ("small", "large")}


class FixedLogits(AttributeEvaluator):
    """A fake classifier: image i (all pixels = i / 100) gets row i of fixed logit tables."""

    def __init__(self, attribute_logits: dict[str, Tensor], species_logits: Tensor) -> None:
        super().__init__(
            n_species=species_logits.shape[1],
            image_size=16,
            width=1,
            feature_dim=2,
            attribute_values={k: SCHEMA[k] for k in attribute_logits},
        )
        self.table = attribute_logits
        self.species_table = species_logits

    def forward(self, images: Tensor) -> EvaluatorOutput:
        idx = (images[:, 0, 0, 0] * 100).round().long()
        feats = torch.stack([idx.float(), idx.float() ** 2], dim=1)
        return EvaluatorOutput(feats, {k: v[idx] for k, v in self.table.items()}, self.species_table[idx])


def _index_images(n: int) -> Tensor:
    return (torch.arange(n, dtype=torch.float32) / 100).view(n, 1, 1, 1).expand(n, 3, 16, 16).contiguous()


def _one_hot_logits(indices: list[int], k: int) -> Tensor:
    return torch.nn.functional.one_hot(torch.tensor(indices), k).float() * 5.0


def _fake() -> FixedLogits:
    # predictions: colour = red, blue, green, red; size = small, small, large, large
    return FixedLogits(
        {"colour": _one_hot_logits([0, 1, 2, 0], 3), "size": _one_hot_logits([0, 0, 1, 1], 2)},
        species_logits=torch.zeros(4, 3),
    )


def test_alignment_matches_hand_computation() -> None:
    mentions = [
        {"colour": "red", "size": "small"},  # 2/2
        {"colour": "green"},  # 0/1
        {"colour": "green", "size": "small"},  # 1/2 (colour right, size wrong)
        {"size": "large"},  # 1/1
    ]
    report = evaluate_alignment(_fake(), _index_images(4), mentions, batch_size=3)
    assert report.attribute_accuracy == pytest.approx((1.0 + 0.0 + 0.5 + 1.0) / 4)
    assert report.mention_accuracy == pytest.approx(4 / 6)
    assert report.n_images == 4 and report.n_scored == 4


def test_per_attribute_accuracy_and_counts() -> None:
    mentions = [{"colour": "red", "size": "small"}, {"colour": "green"}, {"colour": "green", "size": "small"}, {}]
    report = evaluate_alignment(_fake(), _index_images(4), mentions)
    assert report.per_attribute == pytest.approx({"colour": 2 / 3, "size": 1 / 2})
    assert report.counts == {"colour": 3, "size": 2}
    assert report.n_scored == 3  # the image without mentions is not scored
    assert report.attribute_accuracy == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    d = report.to_dict()
    assert json.loads(json.dumps(d))["per_attribute"]["size"] == 0.5
    assert "colour" in report.format() and "no sanity bounds" in report.format()


def test_alignment_rejects_bad_mentions() -> None:
    with pytest.raises(ValueError, match="unknown|does not know"):
        evaluate_alignment(_fake(), _index_images(4), [{"beak": "red"}, {}, {}, {}])
    with pytest.raises(ValueError, match="not one of"):
        evaluate_alignment(_fake(), _index_images(4), [{"colour": "purple"}, {}, {}, {}])
    with pytest.raises(ValueError, match="one dict per image"):
        evaluate_alignment(_fake(), _index_images(4), [{"colour": "red"}])
    with pytest.raises(ValueError, match="nothing to score"):
        alignment_from_predictions({"colour": [0]}, [{}], SCHEMA)


def test_domain_is_on_hand_made_logits() -> None:
    # Confident, evenly spread predictions over 4 species: IS = 4; all the same species: IS = 1.
    spread = FixedLogits({"colour": torch.zeros(8, 3)}, species_logits=_one_hot_logits([0, 1, 2, 3] * 2, 4) * 20)
    res = domain_is(spread, _index_images(8), splits=2)
    assert res.mean == pytest.approx(4.0, rel=1e-6) and res.std == pytest.approx(0.0, abs=1e-6)
    same = FixedLogits({"colour": torch.zeros(8, 3)}, species_logits=_one_hot_logits([2] * 8, 4) * 20)
    assert domain_is(same, _index_images(8), splits=1).mean == pytest.approx(1.0)
    assert "domain IS" in res.format() and res.to_dict()["n_classes"] == 4


def test_domain_fid_zero_for_identical_and_positive_for_different() -> None:
    fake = FixedLogits({"colour": torch.zeros(40, 3)}, species_logits=torch.zeros(40, 2))
    images = _index_images(40)
    same = domain_fid(fake, images[:20], images[:20].clone())
    assert same.fid == pytest.approx(0.0, abs=1e-6)
    diff = domain_fid(fake, images[:20], images[20:])
    assert diff.fid > 1.0
    assert diff.n_images_a == 20 and diff.feature_dim == 2 and "domain FID" in diff.format()


def test_real_evaluator_features_give_zero_fid_for_identical_sets() -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = AttributeEvaluator(n_species=5, image_size=16, width=4, feature_dim=8).eval()
    a = torch.rand(64, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert domain_fid(model, a, a.clone()).fid == pytest.approx(0.0, abs=1e-6)


def test_domain_fid_matches_closed_form_on_features() -> None:
    # Features (i, i²) of the fake classifier: FID against an independent NumPy/SciPy formula.
    import scipy.linalg

    fake = FixedLogits({"colour": torch.zeros(40, 3)}, species_logits=torch.zeros(40, 2))
    ia, ib = torch.arange(0, 20), torch.arange(10, 40, 2)
    fa = np.stack([ia.numpy(), ia.numpy() ** 2], 1).astype(np.float64)
    fb = np.stack([ib.numpy(), ib.numpy() ** 2], 1).astype(np.float64)
    s1, s2 = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    ref = np.sum((fa.mean(0) - fb.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    images = _index_images(40)
    res = domain_fid(fake, images[ia], images[ib])
    assert res.fid == pytest.approx(ref, rel=1e-6)


def test_images_outside_unit_range_are_rejected() -> None:
    model = AttributeEvaluator(n_species=3, image_size=16, width=2, feature_dim=4)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model(torch.full((1, 3, 16, 16), 200.0))
    out = model(torch.full((2, 3, 32, 32), 255, dtype=torch.uint8))  # uint8 accepted, resized
    assert out.features.shape == (2, 4) and out.species.shape == (2, 3)
    assert set(out.attributes) == set(model.attribute_names)


def test_save_load_round_trip(tmp_path: Path) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = AttributeEvaluator(n_species=4, image_size=32, width=4, feature_dim=16, species_ids=[3, 5, 8, 9])
    model.eval()
    model.meta = {"seed": 0}
    path = save_evaluator(model, tmp_path / "sub" / "ev.pt", meta={"note": "x"})
    # the file is readable with weights_only=True and stores fp16 weights
    payload = torch.load(path, weights_only=True)
    assert payload["state_dict"]["species_head.weight"].dtype == torch.float16
    loaded = load_evaluator(path)
    assert loaded.species_ids == (3, 5, 8, 9) and loaded.attribute_values == model.attribute_values
    assert loaded.attribute_names == model.attribute_names  # schema order survives the file
    assert loaded.meta["seed"] == 0 and loaded.meta["note"] == "x" and "csagan_version" in loaded.meta
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.copy_(p.half().float())
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    a, b = model.predict(x), loaded.predict(x)
    np.testing.assert_allclose(a.features, b.features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.species_logits, b.species_logits, rtol=1e-5, atol=1e-6)


def test_missing_file_error_names_file_and_command(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError) as info:
        load_evaluator(missing)
    assert str(missing) in str(info.value) and "csagan evaluator train --data DIR --out PATH" in str(info.value)


def test_foreign_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a csagan attribute evaluator"):
        load_evaluator(path)


def test_training_needs_toybirds(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="attributes.jsonl"):
        train_evaluator(tmp_path, tmp_path / "ev.pt", epochs=1)


# ------------------------------------------------------------------ real data (tiny ToyBirds)


@pytest.fixture(scope="module")
def tiny_toybirds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from csagan.data.toybirds import make_toybirds

    root = tmp_path_factory.mktemp("toybirds")
    return make_toybirds(root, size=32, seed=0, n_images=200, n_species=8, workers=1, progress=False, overwrite=True)


@pytest.fixture(scope="module")
def tiny_evaluator(tiny_toybirds: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ev") / "evaluator.pt"
    return train_evaluator(
        tiny_toybirds, out, epochs=6, batch_size=16, lr=3e-3, image_size=32, seed=0, device="cpu", progress=False
    )


@pytest.mark.slow
def test_sanity_bounds_ceiling_beats_chance(tiny_toybirds: Path, tiny_evaluator: Path) -> None:
    from csagan.data.datasets import TextImageDataset

    ev = load_evaluator(tiny_evaluator)
    ds = TextImageDataset(tiny_toybirds, "train", image_size=32, transform="eval")
    bounds = sanity_bounds(ev, ds, n=150, seed=0)
    assert bounds.n_images == 150
    assert bounds.ceiling.attribute_accuracy > bounds.chance.attribute_accuracy + 0.25
    assert bounds.ceiling.attribute_accuracy > 0.6
    assert "ceiling" in bounds.format() and bounds.to_dict()["split"] == "train"
    # attached bounds are printed with a report
    report = evaluate_alignment(ev, torch.zeros(1, 3, 32, 32), [{"size": "small"}], bounds=bounds)
    assert "sanity bounds" in report.format() and report.to_dict()["bounds"]["n_images"] == 150


@pytest.mark.slow
def test_trained_file_metadata(tiny_toybirds: Path, tiny_evaluator: Path) -> None:
    ev = load_evaluator(tiny_evaluator)
    meta = ev.meta
    assert meta["seed"] == 0 and meta["epochs"] == 6 and len(meta["data_sha256"]) == 64
    assert ev.n_species == 6 and ev.species_ids == tuple(range(1, 7))  # the 6 train species of 8
    assert 0.0 <= meta["heldout_accuracy"]["mean_attribute"] <= 1.0
    assert not math.isnan(meta["test_split_accuracy"]["mean_attribute"])


@pytest.mark.slow
def test_caption_mentions_read_attributes_jsonl(tiny_toybirds: Path) -> None:
    from csagan.data.datasets import TextImageDataset

    ds = TextImageDataset(tiny_toybirds, "test", image_size=32, transform="eval")
    lines = [json.loads(line) for line in (tiny_toybirds / "attributes.jsonl").read_text().splitlines()]
    rec = next(r for r in lines if r["key"] == ds.keys[3])
    assert caption_mentions(ds, 3, 7) == rec["captions"][7]["mentions"]
    with pytest.raises(ValueError, match="captions"):
        caption_mentions(ds, 3, 10)


# ------------------------------------------------------------------ random-attribute birds


@pytest.mark.slow
def test_eval_view_equals_the_dataset_item(tiny_toybirds: Path) -> None:
    """A re-rendered dataset bird, through eval_view, is exactly what the dataset loader returns."""
    from csagan.data.attributes import BirdAttributes
    from csagan.data.datasets import TextImageDataset
    from csagan.data.toybirds import _image_rngs, render_bird
    from csagan.evaluator import eval_view

    ds = TextImageDataset(tiny_toybirds, "test", image_size=32, transform="eval")
    image_format = json.loads((tiny_toybirds / "toybirds.json").read_text())["image_format"]
    records = {json.loads(line)["key"]: json.loads(line) for line in (tiny_toybirds / "attributes.jsonl").read_text().splitlines()}
    for i in (0, 5):
        rec = records[ds.keys[i]]
        _, rng_img, _ = _image_rngs(0, rec["image_id"] - 1)
        bird = render_bird(BirdAttributes.from_dict(rec["attributes"]), 32, rng_img)
        expected = ds[i].image.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
        assert torch.equal(eval_view(bird, 32, image_format), expected)


def test_random_birds_are_seeded_and_uncorrelated() -> None:
    from csagan.data.attributes import ATTRIBUTE_VALUES
    from csagan.evaluator import render_random_birds

    a = render_random_birds(60, 32, seed=1)
    assert a.images.shape == (60, 3, 32, 32) and a.images.dtype == torch.uint8 and a.class_ids == [-1] * 60
    assert torch.equal(a.images, render_random_birds(60, 32, seed=1).images)
    assert not torch.equal(a.images, render_random_birds(60, 32, seed=2).images)
    # drawn independently, not per species: nearly every belly colour occurs, and (belly, crown)
    # pairs are nearly all distinct (a species-driven set repeats a few prototypes' pairs)
    col = list(ATTRIBUTE_VALUES).index("belly_color")
    crown = list(ATTRIBUTE_VALUES).index("crown_color")
    assert len(set(a.targets[:, col].tolist())) >= len(ATTRIBUTE_VALUES["belly_color"]) - 2
    assert len(set(zip(a.targets[:, col].tolist(), a.targets[:, crown].tolist()))) >= 40
