"""The ``csagan`` command line: data commands end to end, and clear errors for bad input."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from csagan.cli import main


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "data" in out and "evaluate" in out and "fid-stats" in out


def test_toybirds_then_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tb"
    rc = main(["data", "toybirds", "--out", str(out), "--n-images", "24", "--n-species", "4",
               "--workers", "1", "--quiet"])
    assert rc == 0
    keys = pickle.loads((out / "train" / "filenames.pickle").read_bytes())
    assert keys and all((out / "text" / f"{k}.txt").is_file() for k in keys)
    rc = main(["data", "inspect", "--root", str(out)])
    report = capsys.readouterr().out
    assert rc == 0, report
    assert "24" in report  # every image counted


def test_inspect_missing_root_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["data", "inspect", "--root", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "nowhere" in err and "Traceback" not in err


def test_console_script_entry_point_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "csagan.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("csagan ")


@pytest.mark.slow
def test_pretrain_train_sample_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's path at smoke size: data -> pretrain-damsm -> train -> sample."""
    data, damsm, run = tmp_path / "tb", tmp_path / "damsm", tmp_path / "run"
    assert main(["data", "toybirds", "--out", str(data), "--n-images", "40", "--n-species", "8",
                 "--workers", "1", "--quiet"]) == 0
    assert main(["pretrain-damsm", "--data", str(data), "--out", str(damsm), "--set", "epochs=1",
                 "--set", "batch_size=8", "--set", "max_steps=2", "--no-progress"]) == 0
    assert (damsm / "text_encoder.pth").is_file() and (damsm / "image_encoder.pth").is_file()
    assert main(["train", "--config", "csagan", "--preset", "smoke", "--data", str(data),
                 "--damsm", str(damsm), "--out", str(run), "--no-progress"]) == 0
    assert (run / "generator.pt").is_file() and (run / "metrics.jsonl").is_file()
    grid = tmp_path / "grid.png"
    assert main(["sample", "--run", str(run), "--caption", "this bird has a red crown and black wings",
                 "--caption", "a bird with a short orange bill", "--n", "3", "--out", str(grid)]) == 0
    from PIL import Image

    with Image.open(grid) as im:
        assert im.width > 3 * 32 and im.height > 2 * 32
    capsys.readouterr()
    assert main(["sample", "--run", str(run), "--caption", "zzz qqq", "--out", str(tmp_path / "x.png")]) == 2
    assert "outside the dataset vocabulary" in capsys.readouterr().err


def test_config_show_rejects_unknown_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "csagan", "--set", "nope=1"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "batch_size" in err


def test_config_show_prints_the_paper_settings(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["config", "show", "csagan", "--preset", "cub"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["model"]["image_size"] == 256 and cfg["train"]["batch_size"] == 40
    assert (cfg["train"]["lr_g"], cfg["train"]["lr_d"]) == (2e-4, 4e-4)
    assert (cfg["model"]["magp_weight"], cfg["model"]["kl_weight"], cfg["model"]["damsm_weight"]) == (2.0, 0.01, 0.05)


def test_evaluator_train_missing_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["evaluator", "train", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "ev.pt"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "absent" in err and "Traceback" not in err


def test_study_table_prints_table_and_verdicts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    trained, early = tmp_path / "trained", tmp_path / "early"
    for folder in (trained, early):
        folder.mkdir()
    for variant, fids in (("csagan", (10.0, 11.0)), ("csagan-no-ssf", (20.0, 21.0))):
        for seed, fid in enumerate(fids):
            points = [{"images_seen": 50, "metrics": {"domain_fid": 50.0 - fid}},
                      {"images_seen": 100, "metrics": {"domain_fid": fid}}]  # fmt: skip
            record = {"variant": variant, "seed": seed, "images_seen": 100, "metrics": {"domain_fid": fid},
                      "points": points}  # fmt: skip
            (trained / f"{variant}_seed{seed}.json").write_text(json.dumps(record))
            record = {"variant": variant, "seed": seed, "images_seen": 10, "metrics": {"domain_fid": 2 * fid}}
            (early / f"{variant}_seed{seed}.json").write_text(json.dumps(record))
    assert main(["study", "table", "--results", str(trained), "--results", str(early), "--points"]) == 0
    out = capsys.readouterr().out
    first, second = out.split(f"## {early}")
    assert "2 run(s)" not in first and "4 run(s), 100 images each" in first and "4 run(s), 10 images each" in second
    assert "| csagan | 2 | 10.50 ± 0.71" in first and "| csagan | 2 | 21.00 ± 1.41" in second
    final, at50 = first.split("at 50 images:")
    assert "Table 3: SSF helps (csagan vs csagan-no-ssf), domain_fid: reproduced" in final
    assert "  Table 3: SSF helps (csagan vs csagan-no-ssf), domain_fid: not reproduced" in at50


def test_export_run_command(csagan_run: Path, tmp_path: Path) -> None:
    assert main(["export-run", "--run", str(csagan_run), "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "generator.pt").is_file() and (tmp_path / "x" / "damsm" / "text_encoder.pth").is_file()
    assert main(["export-run", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "y")]) == 2


def test_config_lists_and_shows_the_damsm_presets(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from csagan.pretrain import DAMSM_PRESETS, PRETRAIN_DEFAULTS

    assert main(["config", "list"]) == 0
    assert "DAMSM presets:        toybirds-cpu, cub, coco" in capsys.readouterr().out
    assert main(["config", "show-damsm", "--preset", "cub", "--set", "lr=0.001"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["image_encoder"] == DAMSM_PRESETS["cub"].image_encoder == "inception"
    assert shown["lr"] == 0.001 and set(shown) == set(PRETRAIN_DEFAULTS)


def test_pretrain_damsm_old_config_option_names_the_new_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pretrain-damsm", "--config", "cub", "--data", "nowhere", "--out", "nothing"]) == 2
    err = capsys.readouterr().err
    assert "renamed --preset" in err and "--preset cub" in err and "Traceback" not in err
