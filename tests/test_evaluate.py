"""csagan.evaluate and ``csagan evaluate`` / ``csagan fid-stats`` at smoke size.

Uses the conftest fixtures ``toy`` (40-image ToyBirds, random DAMSM) and ``csagan_run`` (2 smoke
steps), a randomly initialised FID Inception saved to a file (so its numbers must be labelled
non-standard) and a random ToyBirds evaluator. Every metric in the report is checked against the
function that defines it, run here directly on the images the report scored.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from csagan.cli import EVALUATE_METRICS, main
from csagan.evaluate import (
    METRICS,
    EvaluationResult,
    caption_plan,
    evaluate_run,
    generate_images,
    parse_metrics,
    resolve_evaluator_path,
)
from csagan.evaluator import AttributeEvaluator, save_evaluator
from csagan.metrics.fid import extract_features, fid_from_features
from csagan.metrics.inception_fid import FID_WEIGHTS_FILENAME, FIDInceptionV3

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def fake_inception(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random (test-made) FID Inception weights in a file."""
    path = tmp_path_factory.mktemp("inception") / "random_inception.pth"
    torch.save(FIDInceptionV3(None, allow_random=True, seed=1).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def fake_evaluator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised ToyBirds attribute evaluator file (32 px)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AttributeEvaluator(n_species=4, image_size=32, width=4, feature_dim=16)
    return save_evaluator(model, tmp_path_factory.mktemp("ev") / "evaluator.pt")


_SMALL: dict[str, Any] = {
    "max_images": 4, "is_splits": 2, "rprec_candidates": 3, "rprec_rounds": 2, "sanity_images": 6,
    "batch_size": 3, "device": "cpu", "progress": False,
}  # fmt: skip


@pytest.fixture(scope="module")
def result(csagan_run: Path, toy: dict[str, Path], fake_inception: Path, fake_evaluator: Path) -> EvaluationResult:
    return evaluate_run(
        csagan_run, toy["data"], METRICS, passes=2, seed=0, fid_weights=fake_inception, evaluator=fake_evaluator,
        **_SMALL,
    )  # fmt: skip


# ----------------------------------------------------------------------------- the plan, names


def test_caption_plan_covers_every_test_image_once_per_pass() -> None:
    plan = caption_plan(7, 10, passes=3, seed=5)
    assert len(plan) == 21 and plan.n_passes == 3
    for p in range(3):
        assert sorted(plan.items[plan.passes == p].tolist()) == list(range(7))
    assert plan.captions.min() >= 0 and plan.captions.max() < 10
    assert len({tuple(plan.captions[plan.passes == p]) for p in range(3)}) > 1  # passes draw fresh captions
    again = caption_plan(7, 10, passes=3, seed=5)
    assert np.array_equal(again.captions, plan.captions)
    capped = caption_plan(7, 10, passes=3, seed=5, max_images=5)
    assert len(capped) == 5 and np.all(np.diff(capped.passes) >= 0)
    with pytest.raises(ValueError, match="passes"):
        caption_plan(7, 10, passes=0)


def test_metric_names() -> None:
    assert parse_metrics("is, fid") == ("fid", "is") and parse_metrics(["dis", "align"]) == ("align", "dis")
    assert EVALUATE_METRICS == METRICS  # the CLI's copy (kept torch-free) is the library's list
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['kid'\].*rprec"):
        parse_metrics("fid,kid")
    with pytest.raises(ValueError, match="no metric"):
        parse_metrics(" , ")


# ----------------------------------------------------------------------------- bad input fails early


def test_missing_inputs_are_clear_errors(
    csagan_run: Path, toy: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FileNotFoundError, match="run folder not found"):
        evaluate_run(tmp_path / "norun", toy["data"], "rprec", **_SMALL)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("CSAGAN_FID_WEIGHTS", raising=False)
    weights_error = "(?s)" + FID_WEIGHTS_FILENAME.replace(".", r"\.") + ".*github.com/mseitzer"
    with pytest.raises(FileNotFoundError, match=weights_error):
        evaluate_run(csagan_run, toy["data"], "fid", **_SMALL)
    monkeypatch.setattr("csagan.evaluate.config.default_evaluator_path", lambda: tmp_path / "assets" / "ev.pt")
    with pytest.raises(FileNotFoundError, match="(?s)default location.*csagan evaluator train"):
        evaluate_run(csagan_run, toy["data"], "align", **_SMALL)
    with pytest.raises(FileNotFoundError, match="csagan evaluator train"):
        resolve_evaluator_path(tmp_path / "given.pt")
    with pytest.raises(ValueError, match="IS over 10 splits needs at least 10"):
        evaluate_run(csagan_run, toy["data"], "dis", **{**_SMALL, "is_splits": 10})
    with pytest.raises(ValueError, match="among 100 captions"):
        evaluate_run(csagan_run, toy["data"], "rprec", **{**_SMALL, "rprec_candidates": 100})


def test_cli_errors_exit_2(csagan_run: Path, toy: dict[str, Path], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = str(tmp_path / "r.json")
    assert main(["evaluate", "--run", str(csagan_run), "--data", str(toy["data"]), "--metrics", "fid,kid",
                 "--out", out]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "unknown metric" in err and "kid" in err and "Traceback" not in err
    assert main(["fid-stats", "--folder", str(tmp_path / "nowhere"), "--out", out]) == 2
    assert "nowhere" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the report


@pytest.mark.slow
def test_report_metrics_equal_direct_computation(
    result: EvaluationResult, csagan_run: Path, fake_inception: Path, fake_evaluator: Path
) -> None:
    from csagan.damsm_io import load_damsm
    from csagan.evaluator import caption_mentions, domain_fid, domain_is, evaluate_alignment, load_evaluator
    from csagan.metrics.inception_score import inception_score
    from csagan.metrics.rprecision import encode_pairs, r_precision_from_codes
    from csagan.sample import encode_captions
    from csagan.train.run import load_run

    rep, m = result.report, result.report["metrics"]
    assert set(m) == set(METRICS) and rep["generation"]["n_images"] == 4 and rep["generation"]["passes"] == 2
    assert result.images.dtype == torch.uint8 and result.images.shape == (4, 3, 32, 32)
    assert result.real_images is not None and len(result.real_images) == 4
    # FID (Eq. 27) and IS (Eq. 26) on the same images, computed here
    net = FIDInceptionV3(fake_inception)
    gen = extract_features(result.images, net, progress=False, with_logits=True)
    real = extract_features(result.real_images, net, progress=False)
    assert m["fid"]["fid"] == pytest.approx(fid_from_features(gen, real).fid, rel=1e-6)
    assert m["fid"]["fid"] > 0 and m["fid"]["num_images_2"] == 4
    assert gen.logits is not None
    assert m["is"]["mean"] == pytest.approx(inception_score(gen.logits, splits=2).mean, rel=1e-6)
    # R-precision with the run's DAMSM on the same images and captions
    run = load_run(csagan_run)
    ids, lens = encode_captions(result.captions, run.vocab)
    images = result.images.float().div(127.5).sub(1.0)
    codes = encode_pairs(load_damsm(csagan_run / "damsm").image_encoder, run.text_encoder, images, ids, lens)
    expected = r_precision_from_codes(*codes, n_candidates=3, rounds=2, seed=0)
    assert m["rprec"]["mean"] == pytest.approx(expected.mean) and m["rprec"]["per_round"] == list(expected.per_round)
    # ToyBirds evaluator metrics
    ev = load_evaluator(fake_evaluator)
    ds = _test_split(result)
    mentions = [caption_mentions(ds, int(i), int(k)) for i, k in zip(result.plan.items, result.plan.captions)]
    align = evaluate_alignment(ev, result.images, mentions)
    assert m["align"]["attribute_accuracy"] == pytest.approx(align.attribute_accuracy)
    assert m["align"]["bounds"]["n_images"] == 6
    # the fake evaluator's features give a domain FID near 1e-5, a difference of cancelling terms:
    # float rounding alone moves it by ~1e-6 relative, so compare to 1e-4
    assert m["dfid"]["fid"] == pytest.approx(domain_fid(ev, result.images, result.real_images).fid, rel=1e-4)
    assert m["dis"]["mean"] == pytest.approx(domain_is(ev, result.images, splits=2).mean, rel=1e-6)


def _test_split(result: EvaluationResult) -> Any:
    from csagan.data.datasets import TextImageDataset

    return TextImageDataset(result.report["data"]["path"], "test", image_size=32, transform="eval")


@pytest.mark.slow
def test_report_labels_and_provenance(result: EvaluationResult, fake_inception: Path) -> None:
    rep = json.loads(json.dumps(result.report))  # JSON-able
    inc = rep["inception"]
    assert inc["sha256"] == hashlib.sha256(fake_inception.read_bytes()).hexdigest()
    assert inc["is_published_weights"] is False and inc["weights_path"] == str(fake_inception)
    for name in ("fid", "is"):
        assert rep["metrics"][name]["standard"] is False and "NON-STANDARD" in rep["metrics"][name]["label"]
    summary = result.summary()
    assert "NOT a standard FID" in summary and "\nFID:" not in summary and "sanity bounds" in summary
    assert rep["metrics"]["fid"]["reference"]["source"] == "test split"
    assert set(rep["timings_s"]) >= {"load", "generate", "inception_metrics", "rprec", "evaluator_metrics"}
    assert rep["run"]["config"]["model"]["image_size"] == 32 and rep["generation"]["seed"] == 0
    # the captions are the planned test captions
    ds = _test_split(result)
    j = 2
    assert result.captions[j] == ds.caption_texts(int(result.plan.items[j]))[int(result.plan.captions[j])]


def test_generation_is_seeded(csagan_run: Path) -> None:
    from csagan.train.run import load_run

    run = load_run(csagan_run)
    caps = ["a bird with a red crown", "a bird with black wings", "a yellow bird"]
    a = generate_images(run, caps, seed=3, batch_size=2, progress=False)
    b = generate_images(run, caps, seed=3, batch_size=2, progress=False)
    c = generate_images(run, caps, seed=4, batch_size=2, progress=False)
    assert a.dtype == torch.uint8 and a.shape == (3, 3, 32, 32)
    assert torch.equal(a, b) and not torch.equal(a, c)


# ----------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_fid_stats_then_evaluate(
    csagan_run: Path, toy: dict[str, Path], fake_inception: Path, fake_evaluator: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from csagan.metrics.stats import load_stats

    npz = tmp_path / "test_stats.npz"
    assert main(["fid-stats", "--data", str(toy["data"]), "--image-size", "32", "--max-images", "3",
                 "--fid-weights", str(fake_inception), "--out", str(npz), "--quiet"]) == 0  # fmt: skip
    assert "3 images" in capsys.readouterr().out
    out = tmp_path / "report.json"
    assert main(["evaluate", "--run", str(csagan_run), "--data", str(toy["data"]), "--metrics", "fid,align,dis",
                 "--max-images", "4", "--is-splits", "2", "--sanity-images", "4", "--fid-stats", str(npz),
                 "--fid-weights", str(fake_inception), "--evaluator", str(fake_evaluator), "--device", "cpu",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    rep = json.loads(out.read_text())
    assert set(rep["metrics"]) == {"fid", "align", "dis"} and str(out) in printed
    assert "Fréchet distance (NOT a standard FID)" in printed and "attribute accuracy" in printed
    ref = rep["metrics"]["fid"]["reference"]
    assert ref["source"] == str(npz) and ref["num_images"] == 3 and "note" not in ref
    # the statistics are those of the test images' features, computed here (the FID value itself
    # is checked against fid_from_features in test_report_metrics_equal_direct_computation)
    from csagan.data.datasets import TextImageDataset
    from csagan.metrics.fid import compute_statistics
    from csagan.metrics.reference import sample_items

    ds = TextImageDataset(toy["data"], "test", image_size=32, transform="eval")
    real = torch.stack([ds[int(i)].image for i in sample_items(len(ds), 3, 0)])
    real_u8 = ((real + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    mu, sigma = compute_statistics(extract_features(real_u8, FIDInceptionV3(fake_inception), progress=False))
    stats = load_stats(npz)
    np.testing.assert_allclose(stats.mu, mu, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(stats.sigma, sigma, rtol=1e-6, atol=1e-9)
    assert stats.weights_id.startswith("random_inception.pth sha256:") and stats.num_images == 3


@pytest.mark.slow
def test_fid_stats_folder_matches_pytorch_fid(fake_inception: Path, tmp_path: Path) -> None:
    """Our statistics of an image folder equal pytorch-fid's own, with the same weights; our .npz
    is read by pytorch-fid's loader."""
    from unittest import mock

    from PIL import Image

    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    pfi = pytest.importorskip("pytorch_fid.inception")
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"{k}.png")
    (folder / "notes.txt").write_text("not an image")
    npz = tmp_path / "folder_stats.npz"
    assert main(["fid-stats", "--folder", str(folder), "--fid-weights", str(fake_inception),
                 "--out", str(npz), "--quiet"]) == 0  # fmt: skip
    state = torch.load(fake_inception, weights_only=True)
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
        ref_model = pfi.InceptionV3([3]).eval()
    mu_ref, sigma_ref = fid_score.compute_statistics_of_path(str(folder), ref_model, 3, 2048, "cpu", 0)
    mu, sigma = fid_score.compute_statistics_of_path(str(npz), None, 1, 2048, "cpu")
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sigma, sigma_ref, rtol=1e-3, atol=1e-5)


def test_labels_name_only_the_published_standard_file_an_fid() -> None:
    from csagan.evaluate.scores import inception_labels as _labels

    standard = {"is_published_weights": True, "protocol": "standard", "weights_id": "x"}
    dfgan = {"is_published_weights": True, "protocol": "dfgan", "weights_id": "y"}
    other = {"is_published_weights": False, "protocol": "standard", "weights_id": "mine.pth sha256:abc"}
    ok, fid, inc = _labels(standard)
    assert ok and fid.startswith("FID (Eq. 27)") and inc.startswith("IS (Eq. 26)")
    ok, fid, _ = _labels(dfgan)
    assert not ok and "not comparable" in fid
    ok, fid, inc = _labels(other)
    assert not ok and "not an FID" in fid and "mine.pth" in fid and "NON-STANDARD" in inc


def test_eval_config_presets_and_overrides() -> None:
    from csagan.evaluate import EVAL_PRESETS, EvalConfig, eval_config

    assert eval_config() == EvalConfig() and EvalConfig().metrics == ("fid", "is")
    assert eval_config("paper").passes == 10 and eval_config("paper").max_images is None
    study = eval_config("study", ["max_images=200", "metrics=rprec,dfid", "truncation=none"])
    assert study.metrics == ("rprec", "dfid") and study.max_images == 200 and study.truncation is None
    assert EVAL_PRESETS["study"].metrics == ("rprec", "align", "dfid", "dis")  # kept in METRICS order
    with pytest.raises(ValueError, match="unknown evaluation preset"):
        eval_config("cub")
    with pytest.raises(ValueError, match="unknown evaluation setting"):
        eval_config(None, ["images=3"])
    with pytest.raises(ValueError, match="choose one of"):
        EvalConfig(protocol="tf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="passes must be >= 1"):
        EvalConfig(passes=0)
    with pytest.raises(ValueError, match="unknown metric"):
        EvalConfig(metrics=("fid", "kid"))


def test_evaluate_cli_reads_the_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show-eval", "--preset", "study", "--set", "seed=3"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["max_images"] == 1000 and shown["seed"] == 3 and shown["metrics"] == ["rprec", "align", "dfid", "dis"]
