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
    assert "data" in capsys.readouterr().out


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
