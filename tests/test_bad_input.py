"""Issue 14, faults and bad input: every bad input exits 2 with one line naming the file and the fix."""

from __future__ import annotations

import errno
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from csagan.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "weights_only=False" not in err, err
    last = err.splitlines()[-1]
    for n in needles:
        assert n in last, last
    return last


def _train(toy: dict[str, Path], out: Path, *extra: str) -> int:
    return main(["train", "--config", "csagan", "--preset", "smoke", "--data", str(toy["data"]), "--damsm",
                 str(toy["damsm"]), "--out", str(out), "--no-progress", *extra])


class _Evil:
    def __reduce__(self) -> tuple[object, ...]:
        return (print, ("code ran",))


def test_a_empty_or_malicious_generator(csagan_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(csagan_run, run)
    for content in (b"", pickle.dumps(_Evil())):
        (run / "generator.pt").write_bytes(content)
        assert main(["sample", "--run", str(run), "--caption", "a red bird", "--out", str(tmp_path / "g.png")]) == 2
        _one_line_error(capsys, str(run / "generator.pt"), "csagan train")


def test_b_list_as_fid_weights(csagan_run: Path, toy: dict[str, Path], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    torch.save([1, 2, 3], tmp_path / "w.pth")
    assert main(["evaluate", "--run", str(csagan_run), "--data", str(toy["data"]), "--metrics", "fid",
                 "--fid-weights", str(tmp_path / "w.pth"), "--out", str(tmp_path / "r.json"), "--quiet"]) == 2
    _one_line_error(capsys, str(tmp_path / "w.pth"), "--fid-weights")


def test_c_truncated_npz(tmp_path: Path) -> None:
    from csagan.metrics.stats import load_stats

    np.savez(tmp_path / "s.npz", mu=np.zeros(4), sigma=np.eye(4))
    data = (tmp_path / "s.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="t.npz is truncated or corrupt.*csagan fid-stats"):
        load_stats(tmp_path / "t.npz")


def test_d_wrong_type_for_tuple_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "csagan", "--set", "betas=0.5"]) == 2
    _one_line_error(capsys, "betas", "betas=0.5,0.999")
    assert main(["config", "show", "csagan", "--set", "batch_size=1.5"]) == 2
    _one_line_error(capsys, "batch_size")


def test_e_messages_name_the_file(csagan_run: Path, toy: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    run = tmp_path / "run"
    shutil.copytree(csagan_run, run)
    ckpt = run / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert _train(toy, run, "--resume", "--set", "max_steps=4") == 2
    _one_line_error(capsys, str(ckpt), "truncated")
    (run / "config.json").write_text("{bad")
    assert main(["sample", "--run", str(run), "--caption", "a red bird", "--out", str(tmp_path / "g.png")]) == 2
    _one_line_error(capsys, str(run / "config.json"))

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("csagan.atomic.os.fsync", full)
    assert _train(toy, tmp_path / "new") == 2
    _one_line_error(capsys, str(tmp_path / "new"), "disk is full")
    assert not list((tmp_path / "new").rglob("*.tmp"))


def test_f_second_writer_is_refused_and_stale_lock_reclaimed(toy: dict[str, Path], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from csagan.runlock import folder_lock\n"
         f"with folder_lock({str(out)!r}, 'csagan train'):\n    print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert _train(toy, out, "--set", "max_steps=1") == 2
        _one_line_error(capsys, str(out), f"pid {holder.pid}", "another --out")
    finally:
        holder.communicate("")
    assert (out / ".lock").read_text().strip() == str(holder.pid)  # stale: its process is gone
    assert _train(toy, out, "--set", "max_steps=1") == 0


def test_g_killed_before_first_checkpoint_logs_afresh(toy: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"kind": "train", "step": 1}\n{"kind": "train", "step": 2}\n')
    assert _train(toy, out, "--set", "max_steps=2") == 0
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


def test_i_resume_with_other_data_is_refused(csagan_run: Path, toy: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from csagan.data.toybirds import make_toybirds

    run = tmp_path / "run"
    shutil.copytree(csagan_run, run)
    other = make_toybirds(tmp_path / "other", n_images=40, n_species=8, seed=5, workers=1, progress=False)
    rc = main(["train", "--config", "csagan", "--preset", "smoke", "--data", str(other), "--damsm", str(toy["damsm"]),
               "--out", str(run), "--no-progress", "--resume", "--set", "max_steps=3"])  # fmt: skip
    assert rc == 2
    _one_line_error(capsys, "cannot resume", f"--data {Path(toy['data']).resolve()}")


def test_j_negative_truncation_is_rejected(csagan_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--run", str(csagan_run), "--caption", "a red bird", "--truncation", "-1",
                 "--out", str(tmp_path / "g.png")]) == 2  # fmt: skip
    _one_line_error(capsys, "--truncation", "0 for plain")
    assert not (tmp_path / "g.png").exists()


def test_k_torn_last_metrics_line_is_dropped_on_resume(csagan_run: Path, toy: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    run = tmp_path / "run"
    shutil.copytree(csagan_run, run)
    with (run / "metrics.jsonl").open("a") as fh:
        fh.write('{"kind": "train", "st')
    assert _train(toy, run, "--resume", "--set", "max_steps=3") == 0
    assert "incomplete last line" in capsys.readouterr().err
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_l_orphaned_tmp_files_are_removed(csagan_run: Path, toy: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(csagan_run, run)
    orphan = run / ".checkpoint.pt.abc123.tmp"
    orphan.write_bytes(b"partial")
    assert _train(toy, run, "--resume", "--set", "max_steps=3") == 0
    assert not orphan.exists()


def test_n_resume_with_lower_lr_after_divergence(csagan_run: Path, toy: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    run = tmp_path / "run"
    shutil.copytree(csagan_run, run)
    lower = ["--resume", "--set", "max_steps=3", "--set", "lr_g=0.0001", "--set", "lr_d=0.0002"]
    assert _train(toy, run, *lower) == 2
    _one_line_error(capsys, "--change-lr")
    assert _train(toy, run, *lower, "--change-lr") == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3 and state["opt_g"]["param_groups"][0]["lr"] == 1e-4
    assert state["opt_d"]["param_groups"][0]["lr"] == 2e-4


def test_h_pretrain_rerun_with_other_settings_is_refused(toy: dict[str, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "damsm"
    base = ["pretrain-damsm", "--data", str(toy["data"]), "--out", str(out), "--no-progress", "--set", "epochs=1",
            "--set", "batch_size=8", "--set", "max_steps=1", "--set", "image_size=32", "--set", "ndf=4",
            "--set", "eval_every_epoch=false"]  # fmt: skip
    assert main(base) == 0
    assert main([*base, "--set", "lr=0.001"]) == 2
    _one_line_error(capsys, str(out), "lr: 0.002 -> 0.001", "resume=false")


def test_f_pretrain_second_writer_is_refused(toy: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from csagan.runlock import folder_lock

    out = tmp_path / "damsm"
    with folder_lock(out, "csagan pretrain-damsm"):
        assert main(["pretrain-damsm", "--data", str(toy["data"]), "--out", str(out), "--no-progress",
                     "--set", "max_steps=1"]) == 2  # fmt: skip
    _one_line_error(capsys, str(out), "in use by another")


def test_m_notebook_overrides_accepts_one_string_or_says_what_is_expected() -> None:
    from csagan.notebook import as_overrides

    assert as_overrides("lr_g=0.001") == ["lr_g=0.001"]
    assert as_overrides(["lr_g=0.001", "batch_size=8"]) == ["lr_g=0.001", "batch_size=8"]
    src = json.loads(Path(__file__).parents[1].joinpath("notebooks", "09_training.ipynb").read_text())
    code = "".join("".join(c["source"]) for c in src["cells"] if c["cell_type"] == "code")
    assert "*as_overrides(overrides)" in code
    with pytest.raises(TypeError, match=r"-p overrides lr_g=0.001"):
        as_overrides(0.001)
