"""End-to-end training runs at smoke size (csagan.train.engine, csagan.train.run).

Everything runs on the CPU with one intra-op thread (in this process and in the subprocesses), on
a 40-image ToyBirds set and a DAMSM folder holding randomly initialised encoders.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from csagan.config import list_configs
from csagan.damsm_encoders import SmallCNNEncoder
from csagan.damsm_io import save_damsm
from csagan.text import RNNEncoder
from csagan.train import engine
from csagan.train import step as step_module
from csagan.train.checkpoint import load_checkpoint
from csagan.train.config import resolve
from csagan.train.engine import train
from csagan.train.logging import read_metrics
from csagan.train.run import load_run
from csagan.train.step import TrainingDivergedError

# Fixtures ``toy`` (40-image ToyBirds + random DAMSM) and ``csagan_run`` (2 smoke steps): conftest.py.
LOSS_KEYS = ("d_real", "d_fake", "d_mismatch", "magp", "d_total", "g_adv", "damsm", "kl", "g_total")
REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("single_thread")


def _cfg(toy: dict[str, Path], name: str = "csagan", *extra: str) -> tuple[Any, Any]:
    return resolve(name, "smoke", [f"damsm_dir={toy['damsm']}", *extra])


def _losses(run: Path) -> list[dict[str, float]]:
    return [{k: r[k] for k in LOSS_KEYS} for r in read_metrics(run) if r["kind"] == "train"]


# ----------------------------------------------------------------------------- every config


@pytest.mark.parametrize("name", list_configs())
def test_every_config_trains(name: str, toy: dict[str, Path], csagan_run: Path, tmp_path: Path) -> None:
    extra = ["max_steps=2"] + ([f"mask_source={csagan_run}"] if name == "ssagan-fixed-mask" else [])
    m, t = _cfg(toy, name, *extra)
    run = train(m, t, toy["data"], tmp_path / name, progress=False)
    records = [r for r in read_metrics(run) if r["kind"] == "train"]
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        assert all(math.isfinite(r[k]) for k in LOSS_KEYS), r
        assert r["images_seen"] == 4 * r["step"]
    assert (records[-1]["damsm"] == 0.0) == (m.damsm_weight == 0)
    assert (records[-1]["kl"] == 0.0) == (not m.use_csa)
    for f in ("checkpoint.pt", "generator.pt", "config.json", "vocab.json", "metrics.csv", "samples/step_0000002.png",
              "damsm/text_encoder.pth", "damsm/image_encoder.pth", "damsm/damsm.json", "damsm/vocab.json"):
        assert (run / f).is_file(), f
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == m.to_dict() and cfg["train"] == t.to_dict()
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 2


def test_fixed_masks_are_the_source_runs(toy: dict[str, Path], csagan_run: Path, tmp_path: Path) -> None:
    m, t = _cfg(toy, "ssagan-fixed-mask", "max_steps=2", f"mask_source={csagan_run}")
    run = train(m, t, toy["data"], tmp_path / "fixed", progress=False)
    src = load_run(csagan_run).generator.state_dict()
    got = load_run(run).generator.state_dict()
    mask_keys = [k for k in src if k.startswith("masks.") and "num_batches" not in k]
    assert mask_keys and all(torch.equal(src[k], got[k]) for k in mask_keys)


def test_load_run_generates(csagan_run: Path) -> None:
    loaded = load_run(csagan_run)
    assert loaded.step == 2 and not loaded.generator.training and loaded.vocab[0] == "<end>"
    caps = torch.tensor([[1, 2, 3, 0]])
    _, sent = loaded.text_encoder(caps, torch.tensor([3]))
    img = loaded.generator(torch.zeros(1, loaded.model_config.z_dim), sent).image
    assert img.shape == (1, 3, 32, 32) and img.abs().max() <= 1
    with pytest.raises(FileNotFoundError, match="run folder not found"):
        load_run(csagan_run / "nope")


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_losses_other_seed_differs(toy: dict[str, Path], tmp_path: Path) -> None:
    m, t = _cfg(toy, "csagan", "max_steps=3", "sample_every=0")
    a = train(m, t, toy["data"], tmp_path / "a", progress=False)
    b = train(m, t, toy["data"], tmp_path / "b", progress=False)
    assert _losses(a) == _losses(b)
    ga, gb = (load_checkpoint(r / "checkpoint.pt")["generator"] for r in (a, b))
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
    c = train(m, t.replace(seed=1), toy["data"], tmp_path / "c", progress=False)
    assert _losses(c) != _losses(a)


def _engine_cmd(toy: dict[str, Path], out: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "csagan", "train", "--config", "csagan", "--preset", "smoke",
           "--data", str(toy["data"]), "--out", str(out), "--no-progress", "--set", f"damsm_dir={toy['damsm']}"]
    for e in extra:
        cmd += ["--set", e]
    return cmd


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(toy: dict[str, Path], tmp_path: Path) -> None:
    settings = ("max_steps=12", "checkpoint_every=4", "log_every=1", "sample_every=0")
    m, t = _cfg(toy, "csagan", *settings)
    full = train(m, t, toy["data"], tmp_path / "full", progress=False)  # uninterrupted, in this process

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_engine_cmd(toy, killed, *settings), env=_env(), cwd=REPO)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            metrics = killed / "metrics.jsonl"
            if (killed / "checkpoint.pt").exists() and metrics.exists():
                steps = [json.loads(x)["step"] for x in metrics.read_text().splitlines() if x.strip()]
                if steps and max(steps) >= 6:
                    break
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    ckpt_step = load_checkpoint(killed / "checkpoint.pt")["step"]
    assert 4 <= ckpt_step < 12
    logged = max(r["step"] for r in read_metrics(killed))
    assert logged > ckpt_step  # steps after the checkpoint were lost and must be redone

    train(m, t, toy["data"], killed, resume=True, progress=False)
    assert [r["step"] for r in read_metrics(killed)] == list(range(1, 13))
    assert _losses(killed) == _losses(full)
    a, b = load_checkpoint(full / "checkpoint.pt"), load_checkpoint(killed / "checkpoint.pt")
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert a["opt_g"]["state"][0]["exp_avg"].equal(b["opt_g"]["state"][0]["exp_avg"])


def test_resume_with_changed_config_names_the_fields(toy: dict[str, Path], csagan_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "copy"
    shutil.copytree(csagan_run, run)
    m, t = _cfg(toy, "csagan", "max_steps=3", "lr_g=0.001", "nf=8")
    with pytest.raises(ValueError, match=r"model\.nf: 4 -> 8.*train\.lr_g: 0\.0002 -> 0\.001"):
        train(m, t, toy["data"], run, resume=True, progress=False)


def test_resume_extends_training(toy: dict[str, Path], csagan_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "copy"
    shutil.copytree(csagan_run, run)
    m, t = _cfg(toy, "csagan", "max_steps=3")
    train(m, t, toy["data"], run, resume=True, progress=False)
    assert [r["step"] for r in read_metrics(run)] == [1, 2, 3]
    assert load_run(run).step == 3


def test_resume_needs_a_checkpoint_and_fresh_runs_need_an_empty_folder(
    toy: dict[str, Path], csagan_run: Path, tmp_path: Path
) -> None:
    m, t = _cfg(toy, "csagan", "max_steps=2")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        train(m, t, toy["data"], tmp_path / "empty", resume=True, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(m, t, toy["data"], csagan_run, progress=False)


# ----------------------------------------------------------------------------- failures


def test_nan_loss_stops_with_step_term_and_diagnostic_checkpoint(
    toy: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = step_module.magp_from_outputs

    def poisoned(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls["n"] += 1
        out = real(*args, **kwargs)
        return out * float("nan") if calls["n"] == 3 else out

    monkeypatch.setattr(step_module, "magp_from_outputs", poisoned)
    m, t = _cfg(toy, "csagan", "max_steps=5", "checkpoint_every=0", "sample_every=0")
    with pytest.raises(TrainingDivergedError, match=r"step 3: loss term 'magp' is nan"):
        train(m, t, toy["data"], tmp_path / "nan", progress=False)
    diag = load_checkpoint(tmp_path / "nan" / "nan_step_0000003.pt")
    assert diag["step"] == 2
    assert not (tmp_path / "nan" / "checkpoint.pt").exists()


def test_bad_damsm_dir(toy: dict[str, Path], tmp_path: Path) -> None:
    m, t = _cfg(toy, "csagan")
    with pytest.raises(FileNotFoundError, match="DAMSM folder not found"):
        train(m, t.replace(damsm_dir=str(tmp_path / "none")), toy["data"], tmp_path / "r1", progress=False)
    partial = tmp_path / "partial"
    shutil.copytree(toy["damsm"], partial)
    (partial / "text_encoder.pth").unlink()
    with pytest.raises(FileNotFoundError, match="text_encoder"):
        train(m, t.replace(damsm_dir=str(partial)), toy["data"], tmp_path / "r2", progress=False)
    with pytest.raises(ValueError, match="damsm_dir is not set"):
        train(m, t.replace(damsm_dir=""), toy["data"], tmp_path / "r3", progress=False)


def test_damsm_of_another_dataset_is_rejected(toy: dict[str, Path], tmp_path: Path) -> None:
    words = ["<end>"] + [f"w{i}" for i in range(9)]
    other = save_damsm(tmp_path / "other", RNNEncoder(len(words)), SmallCNNEncoder(image_size=32, ndf=4), words)
    m, t = _cfg(toy, "csagan")
    with pytest.raises(ValueError, match="10 words.*Pretrain DAMSM on this dataset"):
        train(m, t.replace(damsm_dir=str(other)), toy["data"], tmp_path / "r", progress=False)


def test_image_size_mismatch_and_mask_source_errors(toy: dict[str, Path], tmp_path: Path) -> None:
    m, t = _cfg(toy, "csagan")
    with pytest.raises(ValueError, match="image_size=64 differs"):
        train(m, t.replace(image_size=64), toy["data"], tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match="only for ssagan-fixed-mask"):
        train(m, t.replace(mask_source=str(tmp_path)), toy["data"], tmp_path / "r", progress=False)
    fm, ft = _cfg(toy, "ssagan-fixed-mask")
    with pytest.raises(ValueError, match="needs mask_source"):
        train(fm, ft, toy["data"], tmp_path / "r", progress=False)
    with pytest.raises(FileNotFoundError, match="generator.pt"):
        train(fm, ft.replace(mask_source=str(tmp_path)), toy["data"], tmp_path / "r", progress=False)
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        train(m, t, tmp_path / "no_data", tmp_path / "r", progress=False)


# ----------------------------------------------------------------------------- options


def test_eval_hook_gets_eval_mode_generator(toy: dict[str, Path], tmp_path: Path) -> None:
    seen: list[tuple[int, bool]] = []

    def eval_fn(step: int, g: torch.nn.Module) -> dict[str, float]:
        seen.append((step, g.training))
        return {"score": float(step)}

    m, t = _cfg(toy, "csagan", "max_steps=4", "eval_every=2", "sample_every=0")
    run = train(m, t, toy["data"], tmp_path / "e", eval_fn=eval_fn, progress=False)
    assert seen == [(2, False), (4, False)]
    evals = [r for r in read_metrics(run) if r["kind"] == "eval"]
    assert [(r["step"], r["score"]) for r in evals] == [(2, 2.0), (4, 4.0)]


def test_bf16_channels_last_printed_gp_and_kl_on_d(toy: dict[str, Path], tmp_path: Path) -> None:
    m, t = _cfg(toy, "csagan", "max_steps=2", "precision=bf16", "channels_last=true", "gp_form=printed",
                "kl_side=discriminator", "keep_checkpoints=1", "checkpoint_every=1")
    run = train(m, t, toy["data"], tmp_path / "bf", progress=False)
    records = [r for r in read_metrics(run) if r["kind"] == "train"]
    assert all(math.isfinite(r[k]) for r in records for k in LOSS_KEYS)
    assert all(r["kl"] > 0 for r in records)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000002.pt"]


def test_epochs_limit_counts_steps_per_epoch(toy: dict[str, Path], tmp_path: Path) -> None:
    # 30 training images, batch 4 → 7 steps per epoch (the last 2 images are dropped)
    m, t = _cfg(toy, "dfgan", "max_steps=0", "epochs=1", "sample_every=0", "checkpoint_every=0", "log_every=7")
    run = train(m, t, toy["data"], tmp_path / "ep", progress=False)
    records = read_metrics(run)
    assert [(r["step"], r["epoch"]) for r in records] == [(7, 1)]


# ----------------------------------------------------------------------------- two processes

_DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    import csagan.train.engine as E
    from csagan.train.config import resolve

    dump = sys.argv[1]
    rank = int(os.environ["RANK"])
    writes = {"n": 0}
    for name in ("atomic_save", "atomic_write_text"):
        real = getattr(E, name)
        def wrapped(*a, _real=real, **k):
            writes["n"] += 1
            return _real(*a, **k)
        setattr(E, name, wrapped)
    real_log = E.MetricsLogger.log
    def log(self, record):
        if self.enabled:
            writes["n"] += 1
        return real_log(self, record)
    E.MetricsLogger.log = log
    real_loop = E._loop
    def loop(tr, *a):
        real_loop(tr, *a)
        torch.save({"G": tr.step.G.state_dict(), "D": tr.step.D.state_dict(), "writes": writes["n"]},
                   os.path.join(dump, f"rank{rank}.pt"))
    E._loop = loop
    m, t = resolve("csagan", "smoke", sys.argv[4:])
    E.train(m, t, sys.argv[2], sys.argv[3], progress=False)
    """
)


@pytest.mark.slow
def test_two_process_gloo_run_stays_in_sync(toy: dict[str, Path], tmp_path: Path) -> None:
    script = tmp_path / "ddp_run.py"
    script.write_text(_DDP_SCRIPT)
    run = tmp_path / "ddp"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           str(script), str(tmp_path), str(toy["data"]), str(run),
           f"damsm_dir={toy['damsm']}", "max_steps=4", "checkpoint_every=2", "sample_every=2"]
    subprocess.run(cmd, check=True, env=_env(), cwd=REPO, timeout=240)
    r0, r1 = (torch.load(tmp_path / f"rank{i}.pt", weights_only=True) for i in (0, 1))
    for part in ("G", "D"):
        assert all(torch.equal(r0[part][k], r1[part][k]) for k in r0[part]), part
    assert r0["writes"] > 0 and r1["writes"] == 0
    records = read_metrics(run)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    # 2 ranks × batch 4 per step; 30 images → 3 steps per epoch, so step 4 is in epoch 1
    assert [r["images_seen"] for r in records] == [8, 16, 24, 32] and records[-1]["epoch"] == 1
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["train_rng"]) == 2
    assert not torch.equal(ckpt["train_rng"][0], ckpt["train_rng"][1])
    assert all(torch.equal(ckpt["generator"][k], r0["G"][k]) for k in r0["G"])


# ----------------------------------------------------------------------------- AttnGAN's DAMSMencoders folder


def test_cli_train_takes_attngan_damsm_folder_as_released(attngan_damsm: dict[str, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`csagan train --damsm DAMSMencoders/bird` (text_encoder200.pth, image_encoder200.pth only) works."""
    from csagan.cli import main
    from csagan.damsm_encoders import InceptionEncoder

    folder, data = attngan_damsm["damsm"], attngan_damsm["data"]
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}
    run = tmp_path / "run"
    rc = main(["train", "--config", "csagan", "--preset", "smoke", "--data", str(data), "--damsm", str(folder),
               "--out", str(run), "--no-progress", "--set", "max_steps=1"])
    assert rc == 0, capsys.readouterr().err
    assert {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()} == before  # read only
    records = [r for r in read_metrics(run) if r["kind"] == "train"]
    assert [r["step"] for r in records] == [1] and math.isfinite(records[0]["damsm"]) and records[0]["damsm"] > 0
    meta = json.loads((run / "damsm" / "damsm.json").read_text())
    assert meta["image_encoder"] == "inception" and meta["text_encoder_file"] == "text_encoder200.pth"
    vocab = json.loads((run / "damsm" / "vocab.json").read_text())
    assert vocab == json.loads((run / "vocab.json").read_text()) and len(vocab) == meta["n_words"]
    loaded = load_run(run)  # sampling / evaluation read the run's self-contained damsm/ copy
    want = torch.load(folder / "text_encoder200.pth", weights_only=True)
    assert torch.equal(loaded.text_encoder.encoder.weight, want["encoder.weight"])
    from csagan.damsm_io import load_damsm

    assert isinstance(load_damsm(run / "damsm").image_encoder, InceptionEncoder)


def test_cli_train_with_attngan_folder_and_no_captions_pickle_names_it(
    attngan_damsm: dict[str, Path], toy: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No vocab.json and no captions.pickle in --data: one line naming the file, before a vocabulary is built."""
    from csagan.cli import main

    data = tmp_path / "birds"
    shutil.copytree(toy["data"], data, ignore=shutil.ignore_patterns("captions*.pickle"))
    rc = main(["train", "--config", "csagan", "--preset", "smoke", "--data", str(data), "--damsm",
               str(attngan_damsm["damsm"]), "--out", str(tmp_path / "run"), "--no-progress", "--set", "max_steps=1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert f"{data / 'captions.pickle'}" in err and "vocab.json" in err, err
    assert not list(data.glob("captions*.pickle"))  # csagan's own (sorted) vocabulary was not built in its place


# ----------------------------------------------------------------------------- GAN-time DAMSM readings


def _hand_damsm(regions: torch.Tensor, code: torch.Tensor, words: torch.Tensor, sent: torch.Tensor,
                cap_lens: torch.Tensor, class_ids: torch.Tensor, g1: float, g2: float, g3: float,
                mode: str, reduction: str) -> float:
    """L_DAMSM (Eq. 12) written out pair by pair: Eqs. 5-7 attention, Eq. 8 (either reading), Eqs. 9-11."""
    regions, code, words, sent = (t.detach().double() for t in (regions, code, words, sent))
    b = words.shape[0]
    word_r = torch.zeros(b, b, dtype=torch.float64)  # [image j, caption i]
    for i in range(b):
        e = words[i, :, : int(cap_lens[i])]  # [D, T_i]
        for j in range(b):
            v = regions[j].flatten(1)  # [D, n]
            s = e.T @ v  # (5) [T_i, n]
            alpha = torch.softmax(g1 * torch.softmax(s, dim=0), dim=1)  # (6), (7)
            c = v @ alpha.T  # region contexts [D, T_i]
            rel = (c * e).sum(0) / (c.norm(dim=0) * e.norm(dim=0))  # R(c_t, e_t)
            pooled = torch.log(torch.exp(g2 * rel).sum())  # (8), AttnGAN's reading
            word_r[j, i] = pooled / g2 if mode == "paper" else pooled
    sent_r = (code @ sent.T) / (code.norm(dim=1)[:, None] * sent.norm(dim=1)[None, :])
    same = (class_ids[:, None] == class_ids[None, :]) & ~torch.eye(b, dtype=torch.bool)
    total = 0.0
    for r in (word_r, sent_r):
        logits = (g3 * r).masked_fill(same, float("-inf"))
        for m in (logits, logits.T):  # (10): P(D_i | Q_i) over captions; (11): P(Q_i | D_i) over images
            nll = -torch.log(torch.exp(m.diagonal()) / torch.exp(m).sum(1))
            total += float(nll.sum() if reduction == "sum" else nll.mean())
    return total


@pytest.mark.parametrize(
    "settings",
    [[], ["damsm_word_score_mode=paper", "damsm_reduction=sum", "damsm_gamma1=4", "damsm_gamma3=7.5"]],
    ids=["defaults", "paper-sum"],
)
def test_gan_damsm_settings_reach_the_generator_loss(
    toy: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: list[str]
) -> None:
    """The run's damsm_* settings shape L_DAMSM of Eq. (25): the value is the hand-computed one (logged × λ3)."""
    calls: list[tuple[Any, ...]] = []
    real = step_module.damsm_loss

    def spy(*args: Any) -> Any:
        out = real(*args)
        calls.append((*args, float(out.total.detach())))
        return out

    monkeypatch.setattr(step_module, "damsm_loss", spy)
    m, t = _cfg(toy, "csagan", "max_steps=1", "sample_every=0", *settings)
    run = train(m, t, toy["data"], tmp_path / "run", progress=False)
    cfg = json.loads((run / "config.json").read_text())["train"]
    want = {"damsm_gamma1": 5.0, "damsm_gamma2": 5.0, "damsm_gamma3": 10.0, "damsm_word_score_mode": "code",
            "damsm_reduction": "mean"}
    if settings:
        want.update(damsm_gamma1=4.0, damsm_gamma3=7.5, damsm_word_score_mode="paper", damsm_reduction="sum")
    assert {k: cfg[k] for k in want} == want
    (regions, code, words, sent, cap_lens, class_ids, used, value), = calls
    assert used == step_module.gan_damsm_config(t)
    hand = _hand_damsm(regions, code, words, sent, cap_lens.cpu(), class_ids.cpu(), want["damsm_gamma1"],
                       want["damsm_gamma2"], want["damsm_gamma3"], want["damsm_word_score_mode"],
                       want["damsm_reduction"])
    assert value == pytest.approx(hand, rel=1e-4)
    logged = [r for r in read_metrics(run) if r["kind"] == "train"][0]["damsm"]  # the λ3-weighted term
    assert logged == pytest.approx(m.damsm_weight * hand, rel=1e-4)


def test_gan_damsm_defaults_are_the_former_constants() -> None:
    from csagan.damsm import DAMSMConfig
    from csagan.train.config import TrainConfig

    assert step_module.gan_damsm_config(TrainConfig()) == DAMSMConfig(5.0, 5.0, 10.0, "code", "mean")
    assert step_module.GAN_DAMSM_CONFIG == DAMSMConfig(gamma1=5.0, gamma2=5.0, gamma3=10.0)


def test_resume_refuses_other_damsm_settings(toy: dict[str, Path], csagan_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "copy"
    shutil.copytree(csagan_run, run)
    m, t = _cfg(toy, "csagan", "max_steps=3", "damsm_reduction=sum", "damsm_gamma1=4")
    with pytest.raises(ValueError, match=r"train\.damsm_gamma1: 5\.0 -> 4\.0; train\.damsm_reduction: 'mean' -> 'sum'"):
        train(m, t, toy["data"], run, resume=True, progress=False)


def test_checkpoint_without_damsm_settings_resumes_as_the_defaults(toy: dict[str, Path], csagan_run: Path) -> None:
    """A checkpoint written before the damsm_* fields existed was trained with today's defaults."""
    state = load_checkpoint(csagan_run / "checkpoint.pt")
    new_keys = ("damsm_gamma", "damsm_word", "damsm_red")
    old = {**state, "train_config": {k: v for k, v in state["train_config"].items() if not k.startswith(new_keys)}}
    m, t = _cfg(toy, "csagan", "max_steps=3")
    engine._check_resume_config(old, m, t, csagan_run)
    with pytest.raises(ValueError, match=r"train\.damsm_word_score_mode: 'code' -> 'paper'"):
        engine._check_resume_config(old, m, t.replace(damsm_word_score_mode="paper"), csagan_run)
