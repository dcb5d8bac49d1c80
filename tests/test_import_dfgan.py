"""``csagan import dfgan``: DF-GAN's state_epoch_XXX.pth as a csagan ``dfgan`` run.

The reference networks below are written in this file from DF-GAN's published rules (ANCHORS.md and
its models/GAN.py layout: parameter names, registration order, channels nf·min(2^k, 8)), in plain
torch and with random weights (the affine MLPs are not identity-initialised, so every tensor matters).
"""

from __future__ import annotations

import json
import math
import shlex
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from csagan.cli import main
from csagan.config import get_model_config
from csagan.dfgan_import import dfgan_key_map
from csagan.models import Discriminator, Generator
from csagan.train.checkpoint import load_checkpoint
from csagan.train.run import load_run

pytestmark = pytest.mark.usefixtures("single_thread")


# ----------------------------------------------------------------------------- DF-GAN's networks, by its rules


def _chans(nf: int, imsize: int) -> list[int]:
    return [nf * min(2**k, 8) for k in range(int(math.log2(imsize)) - 1)]


class RefAffine(nn.Module):
    def __init__(self, cond_dim: int, ch: int) -> None:
        super().__init__()
        mlp = lambda: nn.Sequential(OrderedDict(
            [("linear1", nn.Linear(cond_dim, ch)), ("relu1", nn.ReLU()), ("linear2", nn.Linear(ch, ch))]))
        self.fc_gamma, self.fc_beta = mlp(), mlp()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.fc_gamma(y)[:, :, None, None] * x + self.fc_beta(y)[:, :, None, None]


class RefFuse(nn.Module):
    def __init__(self, cond_dim: int, ch: int) -> None:
        super().__init__()
        self.affine0, self.affine1 = RefAffine(cond_dim, ch), RefAffine(cond_dim, ch)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return F.leaky_relu(self.affine1(F.leaky_relu(self.affine0(x, y), 0.2), y), 0.2)


class RefGBlock(nn.Module):
    def __init__(self, cond_dim: int, cin: int, cout: int) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.fuse1, self.fuse2 = RefFuse(cond_dim, cin), RefFuse(cond_dim, cout)
        if cin != cout:
            self.c_sc = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2)  # upsample first, as DF-GAN does
        short = self.c_sc(x) if hasattr(self, "c_sc") else x
        return short + self.c2(self.fuse2(self.c1(self.fuse1(x, y)), y))


class RefNetG(nn.Module):
    def __init__(self, nf: int, nz: int, sent_dim: int, imsize: int) -> None:
        super().__init__()
        self.nf = nf
        self.fc = nn.Linear(nz, nf * 8 * 16)
        ch = _chans(nf, imsize)[::-1]
        self.GBlocks = nn.ModuleList([RefGBlock(nz + sent_dim, a, b) for a, b in zip(ch[:-1], ch[1:])])
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(ch[-1], 3, 3, 1, 1), nn.Tanh())

    def forward(self, z: Tensor, s: Tensor) -> Tensor:
        h, y = self.fc(z).view(z.shape[0], 8 * self.nf, 4, 4), torch.cat([z, s], 1)
        for block in self.GBlocks:
            h = block(h, y)
        return self.to_rgb(h)


class RefDBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_r = nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
                                    nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.LeakyReLU(0.2))
        self.conv_s = nn.Conv2d(cin, cout, 1)  # built always, applied only when the channels change
        self.gamma = nn.Parameter(torch.randn(1))  # DF-GAN starts at 0; random here so the residual counts
        self.learned = cin != cout

    def forward(self, x: Tensor) -> Tensor:
        res = self.conv_r(x)
        return F.avg_pool2d(self.conv_s(x) if self.learned else x, 2) + self.gamma * res


class RefNetD(nn.Module):
    def __init__(self, ndf: int, imsize: int) -> None:
        super().__init__()
        self.conv_img = nn.Conv2d(3, ndf, 3, 1, 1)
        ch = _chans(ndf, imsize)
        self.DBlocks = nn.ModuleList([RefDBlock(a, b) for a, b in zip(ch[:-1], ch[1:])])

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_img(x)
        for block in self.DBlocks:
            h = block(h)
        return h


class RefNetC(nn.Module):
    def __init__(self, ndf: int, sent_dim: int) -> None:
        super().__init__()
        self.joint_conv = nn.Sequential(nn.Conv2d(ndf * 8 + sent_dim, ndf * 2, 3, 1, 1, bias=False), nn.LeakyReLU(0.2),
                                        nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False))

    def forward(self, h: Tensor, s: Tensor) -> Tensor:
        return self.joint_conv(torch.cat([h, s[:, :, None, None].expand(-1, -1, 4, 4)], 1))


def make_dfgan(
    path: Path, imsize: int, nf: int = 4, ndf: int = 4, *, sent_dim: int = 256, optimizers: bool = True,
    ddp: bool = False, lrs: tuple[float, float] = (1e-4, 4e-4),
) -> dict[str, Any]:
    """DF-GAN-like networks (seeded), two Adam steps of DF-GAN's losses when ``optimizers``, saved as
    DF-GAN's train.py saves them."""
    torch.manual_seed(imsize + nf)
    g, d, c = RefNetG(nf, 100, sent_dim, imsize), RefNetD(ndf, imsize), RefNetC(ndf, sent_dim)
    opt_g = torch.optim.Adam(g.parameters(), lr=lrs[0], betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(list(d.parameters()) + list(c.parameters()), lr=lrs[1], betas=(0.0, 0.9))
    if optimizers:
        for _ in range(2):
            x, z, s = torch.randn(2, 3, imsize, imsize), torch.randn(2, 100), torch.randn(2, sent_dim)
            loss_d = F.relu(1 - c(d(x), s)).mean() + F.relu(1 + c(d(g(z, s).detach()), s)).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = -c(d(g(z, s)), s).mean()
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
    prefix = "module." if ddp else ""
    state: dict[str, Any] = {
        "model": {name: {prefix + k: v for k, v in net.state_dict().items()}
                  for name, net in (("netG", g), ("netD", d), ("netC", c))},
        "epoch": 7,
    }
    if optimizers:
        state["optimizers"] = {"optimizer_G": opt_g.state_dict(), "optimizer_D": opt_d.state_dict()}
    torch.save(state, path)
    return {"netG": g.eval(), "netD": d.eval(), "netC": c.eval(), "opt_g": opt_g, "opt_d": opt_d, "state": state}


def run_import(ckpt: Path, out: Path, damsm: Path, *extra: str) -> int:
    return main(["import", "dfgan", str(ckpt), "--out", str(out), "--damsm", str(damsm), "--preset", "smoke", *extra])


# ----------------------------------------------------------------------------- the mapping


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_key_map_covers_every_csagan_tensor_once(size: int) -> None:
    cfg = get_model_config("dfgan", "paper", image_size=size, nf=2, d_nf=2)
    with torch.device("meta"):
        g, d = Generator(cfg).state_dict(), Discriminator(cfg).state_dict()
    km = dfgan_key_map(cfg)
    g_targets = list(km["netG"].values())
    d_targets = [v for part in ("netD", "netC") for v in km[part].values() if v is not None]
    assert sorted(g_targets) == sorted(g) and len(set(g_targets)) == len(g_targets)  # type: ignore[type-var]
    assert sorted(d_targets) == sorted(d) and len(set(d_targets)) == len(d_targets)  # type: ignore[type-var]
    ref = make_dfgan_meta(size)
    for part in ("netG", "netD", "netC"):  # the key map lists DF-GAN's names in its parameters() order
        assert list(km[part]) == list(ref[part].state_dict())


def make_dfgan_meta(size: int) -> dict[str, nn.Module]:
    with torch.device("meta"):
        return {"netG": RefNetG(2, 100, 256, size), "netD": RefNetD(2, size), "netC": RefNetC(2, 256)}


# ----------------------------------------------------------------------------- imported runs


@pytest.mark.parametrize(("size", "ddp", "optimizers"), [(32, False, True), (64, True, False)])
def test_imported_networks_compute_dfgans_functions(
    size: int, ddp: bool, optimizers: bool, toy: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "state_epoch_007.pth"
    ref = make_dfgan(ckpt, size, nf=4, ndf=4, optimizers=optimizers, ddp=ddp)
    run = tmp_path / "run"
    assert run_import(ckpt, run, toy["damsm"]) == 0
    printed = capsys.readouterr().out
    loaded = load_run(run)
    cfg = loaded.model_config
    assert (cfg.name, cfg.image_size, cfg.nf, cfg.d_nf, cfg.z_dim, cfg.text_dim) == ("dfgan", size, 4, 4, 100, 256)

    torch.manual_seed(1)
    z, s = torch.randn(3, 100), torch.randn(3, 256)
    x = torch.rand(3, 3, size, size) * 2 - 1
    with torch.no_grad():
        ours = loaded.generator(z, s).image
        theirs = ref["netG"](z, s)
        assert ours.shape == theirs.shape == (3, 3, size, size)
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6), (ours - theirs).abs().max()
        state = load_checkpoint(run / "checkpoint.pt")
        d = Discriminator(cfg)
        d.load_state_dict(state["discriminator"])
        ours_d = d.head(d(x), s)
        theirs_d = ref["netC"](ref["netD"](x), s).reshape(-1)
        assert torch.allclose(ours_d, theirs_d, rtol=1e-5, atol=1e-5), (ours_d - theirs_d).abs().max()

    info = json.loads((run / "import.json").read_text())
    assert info["dfgan_epoch"] == 7 and info["sizes"]["image_size"] == size
    # 64 px has one D block 8·ndf → 8·ndf whose conv_s DF-GAN builds but never applies
    assert info["dropped_keys"] == ([] if size == 32 else ["netD.DBlocks.3.conv_s.weight", "netD.DBlocks.3.conv_s.bias"])
    train = json.loads((run / "config.json").read_text())["train"]
    assert (train["lr_g"], train["lr_d"], train["betas"]) == (1e-4, 4e-4, [0.0, 0.9])
    assert ("optimizer states: imported" in printed) == optimizers
    if not optimizers:
        assert "fresh Adam states (the checkpoint has no 'optimizers' entry)" in printed
        assert state["opt_g"]["state"] == {} and state["opt_d"]["state"] == {}


def test_optimizer_moments_follow_their_parameters(toy: dict[str, Path], tmp_path: Path) -> None:
    ckpt = tmp_path / "state_epoch_007.pth"
    ref = make_dfgan(ckpt, 64, nf=4, ndf=4, lrs=(3e-4, 5e-4))
    run = tmp_path / "run"
    assert run_import(ckpt, run, toy["damsm"]) == 0
    state = load_checkpoint(run / "checkpoint.pt")
    cfg = get_model_config("dfgan", "cpu", image_size=64, nf=4, d_nf=4)
    g_names = [n for n, _ in Generator(cfg).named_parameters()]
    d_names = [n for n, _ in Discriminator(cfg).named_parameters()]

    def theirs(opt: torch.optim.Optimizer, param: Tensor) -> Tensor:
        return opt.state[param]["exp_avg_sq"]

    g, d, c = ref["netG"], ref["netD"], ref["netC"]
    pairs_g = [("blocks.1.fuse2.affine2.beta.fc2.weight", g.GBlocks[1].fuse2.affine1.fc_beta.linear2.weight),
               ("blocks.1.fuse2.affine2.gamma.fc2.weight", g.GBlocks[1].fuse2.affine1.fc_gamma.linear2.weight),
               ("blocks.2.shortcut.bias", g.GBlocks[2].c_sc.bias), ("to_rgb.weight", g.to_rgb[1].weight)]
    for name, param in pairs_g:
        got = state["opt_g"]["state"][g_names.index(name)]
        assert torch.equal(got["exp_avg_sq"], theirs(ref["opt_g"], param)), name
        assert float(got["step"]) == 2
    pairs_d = [("blocks.2.gamma", d.DBlocks[2].gamma), ("blocks.3.conv2.weight", d.DBlocks[3].conv_r[2].weight),
               ("head.conv1.weight", c.joint_conv[0].weight), ("head.conv2.weight", c.joint_conv[2].weight)]
    for name, param in pairs_d:
        assert torch.equal(state["opt_d"]["state"][d_names.index(name)]["exp_avg_sq"], theirs(ref["opt_d"], param)), name
    assert len(state["opt_g"]["state"]) == len(g_names) and len(state["opt_d"]["state"]) == len(d_names)
    assert state["opt_g"]["param_groups"][0]["lr"] == 3e-4 and state["opt_d"]["param_groups"][0]["lr"] == 5e-4
    train = json.loads((run / "config.json").read_text())["train"]
    assert (train["lr_g"], train["lr_d"]) == (3e-4, 5e-4)


def test_sample_evaluate_ready_and_resume_continues(toy: dict[str, Path], tmp_path: Path) -> None:
    ckpt = tmp_path / "state_epoch_007.pth"
    make_dfgan(ckpt, 32, nf=4, ndf=4)
    run = tmp_path / "run"
    assert run_import(ckpt, run, toy["damsm"], "--set", "max_steps=3") == 0
    png = tmp_path / "grid.png"
    assert main(["sample", "--run", str(run), "--caption", "this bird has a red crown and black wings", "--n", "2",
                 "--out", str(png)]) == 0
    assert png.is_file()
    report = tmp_path / "report.json"
    assert main(["evaluate", "--run", str(run), "--data", str(toy["data"]), "--metrics", "rprec", "--rprec-candidates",
                 "4", "--rprec-rounds", "1", "--device", "cpu", "--quiet", "--out", str(report)]) == 0
    assert report.is_file()
    before = load_checkpoint(run / "checkpoint.pt")

    command = shlex.split(json.loads((run / "import.json").read_text())["resume_command"])
    assert command[:2] == ["csagan", "train"] and "--resume" in command
    argv = [str(toy["data"]) if a == "DATA" else a for a in command[1:]] + ["--set", "max_steps=1", "--no-progress"]
    assert main(argv) == 0
    after = load_checkpoint(run / "checkpoint.pt")
    assert after["step"] == 1 and load_run(run).step == 1
    changed = [k for k in before["generator"] if not torch.equal(before["generator"][k], after["generator"][k])]
    assert changed  # one Adam step from the imported moments moved the weights
    assert all(float(s["step"]) == 3 for s in after["opt_g"]["state"].values())  # DF-GAN's 2 steps + 1


# ----------------------------------------------------------------------------- bad input


class NotATensor:
    pass


def _case_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = tmp_path / "good.pth"
    ref = make_dfgan(good, 32, optimizers=False)
    st = ref["state"]
    cases: dict[str, tuple[Path, str]] = {}

    def save(name: str, obj: Any, expect: str) -> None:
        p = tmp_path / f"{name}.pth"
        torch.save(obj, p)
        cases[name] = (p, expect)

    save("list", [torch.zeros(1)], "holds a list, not DF-GAN's checkpoint dict")
    save("no_model", {"netG": st["model"]["netG"]}, "has no 'model' entry")
    save("bare_state_dict", st["model"]["netG"], "bare state dict")
    save("no_netC", {"model": {"netG": st["model"]["netG"], "netD": st["model"]["netD"]}}, "'model' lacks netC")
    bad_shape = {k: dict(v) for k, v in st["model"].items()}
    bad_shape["netG"]["GBlocks.1.c1.weight"] = torch.zeros(8, 16, 1, 1)
    save("wrong_shape", {"model": bad_shape}, "netG.GBlocks.1.c1.weight (8, 16, 1, 1) (expected (8, 16, 3, 3))")
    mixed = {k: dict(v) for k, v in st["model"].items()}
    mixed["netC"] = RefNetC(8, 256).state_dict()  # the head of a run with ndf=8
    save("mixed_widths", {"model": mixed}, "netC.joint_conv.0.weight (16, 320, 3, 3) (expected (8, 288, 3, 3))")
    save("pickled", {"model": NotATensor()}, "holds Python objects other than tensors")
    other_text = tmp_path / "other_text.pth"
    make_dfgan(other_text, 32, sent_dim=128, optimizers=False)
    cases["other_text_dim"] = (other_text, "trained on 128-d codes")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["truncated"] = (truncated, "truncated or corrupt")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    cases["empty"] = (empty, "is empty")
    cases["missing"] = (tmp_path / "nope.pth", "not found")
    return cases


def test_bad_inputs_give_one_line_errors(
    toy: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = _case_files(tmp_path)
    good = tmp_path / "good.pth"
    cases_args: list[tuple[str, Path, list[str], str, Path]] = [
        (name, p, [], expect, p) for name, (p, expect) in cases.items()
    ]
    cases_args.append(("conflicting_set", good, ["--set", "nf=8"], "the weights imply nf=4 but --set gives nf=8", good))
    for name, path, extra, expect, named in cases_args:
        out = tmp_path / f"run_{name}"
        rc = run_import(path, out, toy["damsm"], *extra)
        err = capsys.readouterr().err
        assert rc == 2, name
        assert expect in err, (name, err)
        assert str(named) in err, (name, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (name, err)
        assert not out.exists(), name  # nothing half-written
    # an existing, non-empty --out is refused and left alone
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    assert run_import(good, busy, toy["damsm"]) == 2
    err = capsys.readouterr().err
    assert "already exists and is not an empty folder" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    # an empty existing folder is fine
    empty_dir = tmp_path / "empty_dir"
    empty_dir.mkdir()
    assert run_import(good, empty_dir, toy["damsm"]) == 0
    assert (empty_dir / "generator.pt").is_file() and not list(tmp_path.glob(".*.import-*"))
