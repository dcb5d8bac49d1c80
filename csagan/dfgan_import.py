"""Import a DF-GAN checkpoint (tobran/DF-GAN, ``state_epoch_XXX.pth``) as a csagan ``dfgan`` run.

DF-GAN's ``train.py`` saves ``{'model': {'netG', 'netD', 'netC'}, 'optimizers': {'optimizer_G',
'optimizer_D'}, 'epoch'}``, each network as a state dict (prefixed ``module.`` when it was saved from
a ``DistributedDataParallel`` wrapper). :func:`import_dfgan` turns that file into a run folder of the
``dfgan`` configuration (:mod:`csagan.config`) that ``csagan sample``, ``csagan evaluate`` and
``csagan train --resume`` accept: ``config.json``, ``generator.pt``, ``checkpoint.pt``,
``vocab.json``, ``damsm/`` (copied from ``--damsm``) and ``import.json`` (provenance and the resume
command).

Key mapping (:func:`dfgan_key_map`; ``i`` = block, DF-GAN name → csagan name):

============================================================== ==============================================
DF-GAN                                                         csagan
============================================================== ==============================================
``netG.fc``                                                    ``generator.fc``
``netG.GBlocks.i.c1`` / ``c2`` / ``c_sc``                      ``generator.blocks.i.conv1`` / ``conv2`` / ``shortcut``
``netG.GBlocks.i.fuse{1,2}.affine{0,1}.fc_{gamma,beta}.        ``generator.blocks.i.fuse{1,2}.affine{1,2}.{gamma,beta}.
linear{1,2}``                                                  fc{1,2}``
``netG.to_rgb.1`` (Sequential LReLU, conv, tanh)               ``generator.to_rgb`` (LReLU and tanh in ``forward``)
``netD.conv_img``                                              ``discriminator.conv_img``
``netD.DBlocks.i.conv_r.0`` / ``conv_r.2`` / ``gamma``         ``discriminator.blocks.i.conv1`` / ``conv2`` / ``gamma``
``netD.DBlocks.i.conv_s`` (channels change)                    ``discriminator.blocks.i.shortcut``
``netC.joint_conv.0`` / ``joint_conv.2``                       ``discriminator.head.conv1`` / ``head.conv2``
============================================================== ==============================================

Where the two differ in structure:

* DF-GAN's ``D_Block`` always builds ``conv_s`` but applies it only when the channels change; csagan's
  block has an identity shortcut there. Those unused weights are dropped (listed in ``import.json``).
* DF-GAN's NetC is csagan's ``Discriminator.head``; both concatenate (features, tiled sentence).
* csagan computes the same functions in a cheaper order: the generator's per-pixel fuse blocks and
  1×1 shortcut run before the nearest ×2 upsampling (equal, since upsampling copies pixels), the
  discriminator's 1×1 shortcut after the 2×2 average pooling (equal up to float rounding).
* The generator's condition is concat(z, sentence) in both (``concat_noise=True``).

Sizes are read from the weights: ``nf`` = rows of ``fc.weight`` / 128, ``z_dim`` = its columns,
``image_size`` = 4·2^(number of G blocks), ``d_nf`` = rows of ``conv_img.weight``, ``text_dim`` =
columns of the first affine MLP − ``z_dim``; every other tensor is then checked against DF-GAN's
rules (``get_G_in_out_chs`` / ``get_D_in_out_chs``: channels nf·min(2^k, 8)).

Optimisers: DF-GAN's Adam states (G over ``netG.parameters()``, D over ``netD`` then ``netC``
parameters) are re-indexed to csagan's parameter order when present and compatible (same parameter
order as DF-GAN's modules, moments of the mapped shapes, Adam's default eps/weight decay, one
parameter group); otherwise the checkpoint gets fresh optimisers and ``import.json`` says why. The
learning rates and betas of the run come from DF-GAN's optimiser groups when present, else DF-GAN's
defaults (lr_G 1e-4, lr_D 4e-4, betas (0.0, 0.9)); ``--set`` overrides them. The csagan run counts
its own steps from 0 (DF-GAN's epoch is recorded in ``import.json``). The checkpoint's training-noise
generator state is made for the device the run's ``device`` setting resolves to on the importing
machine (as a csagan checkpoint is for the device it was written on): to resume on a GPU, import on a
GPU machine. Sampling and evaluation do not depend on it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from csagan import __version__
from csagan.config import ModelConfig
from csagan.damsm_io import file_sha256, load_damsm
from csagan.devices import resolve_device
from csagan.models import Discriminator, Generator, discriminator_channels, generator_channels
from csagan.safe_load import load_torch_file
from csagan.settings import parse_override
from csagan.train.checkpoint import CHECKPOINT_NAME, GENERATOR_NAME, atomic_save, capture_rng_state
from csagan.train.config import resolve, run_config_json
from csagan.train.engine import CONFIG_JSON, copy_damsm
from csagan.train.step import rank_generator

__all__ = [
    "DFGANCheckpoint",
    "DFGANImportError",
    "DFGANSizes",
    "ImportReport",
    "convert_adam_state",
    "convert_weights",
    "dfgan_key_map",
    "import_dfgan",
    "infer_sizes",
    "read_dfgan_checkpoint",
]

PARTS: tuple[str, ...] = ("netG", "netD", "netC")
#: DF-GAN's optimiser settings (DF-GAN's released code: Adam(0.0, 0.9), lr_G 1e-4, lr_D 4e-4), used when the file has none.
DFGAN_LR_G, DFGAN_LR_D, DFGAN_BETAS = 1e-4, 4e-4, (0.0, 0.9)
#: The model fields read from the weights (an override of one of them must agree with the file).
SIZE_FIELDS: tuple[str, ...] = ("image_size", "nf", "d_nf", "z_dim", "text_dim")
IMPORT_JSON = "import.json"
_FILE_FIX = (
    "pass a checkpoint saved by DF-GAN's train.py (state_epoch_XXX.pth: torch.save of "
    "{'model': {'netG': ..., 'netD': ..., 'netC': ...}, 'optimizers': ..., 'epoch': ...})"
)


class DFGANImportError(ValueError):
    """A DF-GAN checkpoint that cannot be imported (one line naming the file and the fix)."""


@dataclass(frozen=True)
class DFGANSizes:
    """The widths and sizes a DF-GAN checkpoint implies (csagan :class:`ModelConfig` field names)."""

    image_size: int
    nf: int
    d_nf: int
    z_dim: int
    text_dim: int

    def overrides(self) -> list[str]:
        """``key=value`` strings for :func:`csagan.train.config.resolve`."""
        return [f"{name}={getattr(self, name)}" for name in SIZE_FIELDS]


@dataclass
class DFGANCheckpoint:
    """The three state dicts of a DF-GAN checkpoint (``module.`` prefixes removed, file order kept),
    its optimiser states (``None`` when absent) and its epoch (``None`` when absent)."""

    path: Path
    nets: dict[str, dict[str, Tensor]]
    optimizers: dict[str, Any] | None
    epoch: int | None


@dataclass
class ImportReport:
    """What :func:`import_dfgan` did: the run folder, the sizes read from the weights, whether the
    optimiser states were imported (``optimizer_note`` says why not), the dropped DF-GAN keys and
    the command that resumes training."""

    run_dir: Path
    sizes: DFGANSizes
    optimizers_imported: bool
    optimizer_note: str
    dropped_keys: list[str]
    dfgan_epoch: int | None
    resume_command: str
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- reading


def _strip_module(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop the ``module.`` prefix DDP/DataParallel adds when every key has it."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def read_dfgan_checkpoint(path: str | os.PathLike[str]) -> DFGANCheckpoint:
    """Load ``path`` (``torch.load(weights_only=True)``) and check DF-GAN's layout.

    Raises:
        FileNotFoundError: no such file. DFGANImportError: not a dict, no ``'model'`` entry, a
            network missing, or a state dict holding something other than tensors (one line each).
        ValueError: empty, truncated or pickled-object file (:func:`csagan.safe_load.load_torch_file`).
    """

    p = Path(path)
    obj = load_torch_file(p, what="a DF-GAN checkpoint", fix=_FILE_FIX + ".")
    if not isinstance(obj, dict):
        raise DFGANImportError(f"{p} holds a {type(obj).__name__}, not DF-GAN's checkpoint dict; {_FILE_FIX}.")
    if "model" not in obj:
        keys = ", ".join(repr(k) for k in list(obj)[:6]) or "none"
        hint = " (it looks like a bare state dict: DF-GAN's netG_*.pth of its older release is not supported)" \
            if any(isinstance(k, str) and k.endswith(".weight") for k in obj) else ""
        raise DFGANImportError(f"{p} has no 'model' entry (top-level keys: {keys}){hint}; {_FILE_FIX}.")
    model = obj["model"]
    if not isinstance(model, dict):
        raise DFGANImportError(f"{p}: 'model' is a {type(model).__name__}, not a dict of networks; {_FILE_FIX}.")
    missing = [name for name in PARTS if name not in model]
    if missing:
        raise DFGANImportError(
            f"{p}: 'model' lacks {', '.join(missing)} (it has {', '.join(map(str, model)) or 'nothing'}); "
            f"the import needs all of netG, netD and netC; {_FILE_FIX}."
        )
    nets: dict[str, dict[str, Tensor]] = {}
    for name in PARTS:
        sd = model[name]
        if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in sd.items()):
            raise DFGANImportError(f"{p}: model['{name}'] is not a state dict of tensors; {_FILE_FIX}.")
        nets[name] = _strip_module(dict(sd))
    optimizers = obj.get("optimizers")
    epoch = obj.get("epoch")
    return DFGANCheckpoint(
        path=p,
        nets=nets,
        optimizers=optimizers if isinstance(optimizers, dict) else None,
        epoch=int(epoch) if isinstance(epoch, int) and not isinstance(epoch, bool) else None,
    )


def infer_sizes(ckpt: DFGANCheckpoint) -> DFGANSizes:
    """Read image size and widths from the shapes (module docstring).

    Raises:
        DFGANImportError: a tensor needed for it is missing or has a shape DF-GAN cannot produce.
    """
    p, g, d = ckpt.path, ckpt.nets["netG"], ckpt.nets["netD"]
    needed = [("netG", "fc.weight"), ("netG", "GBlocks.0.fuse1.affine0.fc_gamma.linear1.weight"),
              ("netD", "conv_img.weight")]  # fmt: skip
    absent = [f"{part}.{key}" for part, key in needed if key not in ckpt.nets[part]]
    if absent:
        raise DFGANImportError(
            f"{p} lacks {', '.join(absent)}: its networks are not DF-GAN's NetG/NetD (models/GAN.py); {_FILE_FIX}."
        )
    fc, aff, conv_img = g["fc.weight"], g["GBlocks.0.fuse1.affine0.fc_gamma.linear1.weight"], d["conv_img.weight"]
    if fc.dim() != 2 or fc.shape[0] % 128 != 0:
        raise DFGANImportError(
            f"{p}: netG.fc.weight has shape {tuple(fc.shape)}; DF-GAN's is [8·nf·4·4, z_dim] (rows a multiple of 128)."
        )
    nf, z_dim = fc.shape[0] // 128, int(fc.shape[1])
    n_blocks = len({k.split(".")[1] for k in g if k.startswith("GBlocks.")})
    image_size = 4 * 2**n_blocks
    if image_size not in (32, 64, 128, 256):
        raise DFGANImportError(
            f"{p}: netG has {n_blocks} GBlocks, i.e. {image_size} px images; csagan's dfgan supports 32, 64, 128 "
            "and 256 px (3 to 6 blocks)."
        )
    if aff.dim() != 2 or aff.shape[1] <= z_dim:
        raise DFGANImportError(
            f"{p}: netG.GBlocks.0.fuse1.affine0.fc_gamma.linear1.weight has shape {tuple(aff.shape)}; DF-GAN's is "
            f"[8·nf, z_dim + sentence dim] with z_dim={z_dim} from netG.fc."
        )
    if conv_img.dim() != 4 or tuple(conv_img.shape[1:]) != (3, 3, 3):
        raise DFGANImportError(f"{p}: netD.conv_img.weight has shape {tuple(conv_img.shape)}; DF-GAN's is [ndf, 3, 3, 3].")
    return DFGANSizes(image_size=image_size, nf=int(nf), d_nf=int(conv_img.shape[0]), z_dim=z_dim,
                      text_dim=int(aff.shape[1]) - z_dim)  # fmt: skip


# ----------------------------------------------------------------------------- key mapping


def _linear(src: str, dst: str) -> list[tuple[str, str]]:
    return [(f"{src}.weight", f"{dst}.weight"), (f"{src}.bias", f"{dst}.bias")]


def dfgan_key_map(cfg: ModelConfig) -> dict[str, dict[str, str | None]]:
    """DF-GAN key → csagan key for each of ``netG`` (→ Generator), ``netD`` and ``netC`` (→ Discriminator).

    Each inner dict is in DF-GAN's ``parameters()`` order (a module's own parameters first, then its
    children in the order ``__init__`` registers them), which is what its optimiser states index.
    ``None`` marks a DF-GAN parameter its forward never uses (``D_Block.conv_s`` when the channels
    do not change); it is dropped.
    """
    gen: list[tuple[str, str | None]] = _linear("fc", "fc")  # type: ignore[assignment]
    for i, (cin, cout) in enumerate(generator_channels(cfg)):
        src, dst = f"GBlocks.{i}", f"blocks.{i}"
        gen += _linear(f"{src}.c1", f"{dst}.conv1") + _linear(f"{src}.c2", f"{dst}.conv2")
        for fuse in (1, 2):
            for a_src, a_dst in ((0, 1), (1, 2)):
                for mlp in ("gamma", "beta"):
                    for layer in (1, 2):
                        gen += _linear(f"{src}.fuse{fuse}.affine{a_src}.fc_{mlp}.linear{layer}",
                                       f"{dst}.fuse{fuse}.affine{a_dst}.{mlp}.fc{layer}")  # fmt: skip
        if cin != cout:
            gen += _linear(f"{src}.c_sc", f"{dst}.shortcut")
    gen += _linear("to_rgb.1", "to_rgb")
    dis: list[tuple[str, str | None]] = _linear("conv_img", "conv_img")  # type: ignore[assignment]
    for i, (cin, cout) in enumerate(discriminator_channels(cfg)):
        src, dst = f"DBlocks.{i}", f"blocks.{i}"
        dis += [(f"{src}.gamma", f"{dst}.gamma"), (f"{src}.conv_r.0.weight", f"{dst}.conv1.weight"),
                (f"{src}.conv_r.2.weight", f"{dst}.conv2.weight")]  # fmt: skip
        if cin != cout:
            dis += _linear(f"{src}.conv_s", f"{dst}.shortcut")
        else:
            dis += [(f"{src}.conv_s.weight", None), (f"{src}.conv_s.bias", None)]
    head = [("joint_conv.0.weight", "head.conv1.weight"), ("joint_conv.2.weight", "head.conv2.weight")]
    return {"netG": dict(gen), "netD": dict(dis), "netC": dict(head)}


def _unused_shape(key: str, cfg: ModelConfig) -> tuple[int, ...]:
    """Shape of an unused DF-GAN ``conv_s`` tensor (ch → ch, 1×1)."""
    i = int(key.split(".")[1])
    ch = discriminator_channels(cfg)[i][1]
    return (ch, ch, 1, 1) if key.endswith("weight") else (ch,)


def convert_weights(
    ckpt: DFGANCheckpoint, cfg: ModelConfig
) -> tuple[dict[str, Tensor], dict[str, Tensor], list[str]]:
    """Rename and check DF-GAN's weights for csagan's modules of ``cfg``.

    Returns:
        (generator state dict, discriminator state dict, dropped DF-GAN keys).

    Raises:
        DFGANImportError: DF-GAN keys missing or left over, or tensors of other shapes (the message
            lists them, up to 6 each, and what the shapes imply).
    """
    key_map = dfgan_key_map(cfg)
    with torch.device("meta"):
        expected = {"netG": Generator(cfg).state_dict(), "netD": Discriminator(cfg).state_dict()}
    expected["netC"] = expected["netD"]
    out: dict[str, dict[str, Tensor]] = {"netG": {}, "netD": {}}
    missing: list[str] = []
    unexpected: list[str] = []
    wrong: list[str] = []
    dropped: list[str] = []
    for part in PARTS:
        sd, mapping = ckpt.nets[part], key_map[part]
        target = out["netG" if part == "netG" else "netD"]
        unexpected += [f"{part}.{k}" for k in sd if k not in mapping]
        for src, dst in mapping.items():
            if src not in sd:
                if dst is not None:  # an unused conv_s may be absent (a fork that builds it only when used)
                    missing.append(f"{part}.{src}")
                continue
            tensor = sd[src]
            shape = _unused_shape(src, cfg) if dst is None else tuple(expected[part][dst].shape)
            if tuple(tensor.shape) != shape:
                wrong.append(f"{part}.{src} {tuple(tensor.shape)} (expected {shape})")
            elif dst is None:
                dropped.append(f"{part}.{src}")
            else:
                target[dst] = tensor.detach().to(torch.float32).clone()
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {', '.join(missing[:6])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unknown key(s): {', '.join(unexpected[:6])}")
    if wrong:
        problems.append(f"{len(wrong)} tensor(s) of another shape: {', '.join(wrong[:6])}")
    if problems:
        raise DFGANImportError(
            f"{ckpt.path} does not fit DF-GAN's NetG/NetD/NetC at the sizes its weights imply (image_size="
            f"{cfg.image_size}, nf={cfg.nf}, d_nf={cfg.d_nf}, z_dim={cfg.z_dim}, sentence dim={cfg.text_dim}): "
            + "; ".join(problems)
            + ". It was saved by a modified DF-GAN, or its networks come from different runs; import a checkpoint "
            "of tobran/DF-GAN's models/GAN.py."
        )
    # every csagan tensor is covered exactly once (a property of the key map, checked here too)
    for name, sd in (("generator", out["netG"]), ("discriminator", out["netD"])):
        exp = expected["netG" if name == "generator" else "netD"]
        if set(sd) != set(exp):  # pragma: no cover - would be a bug in dfgan_key_map
            raise RuntimeError(f"dfgan_key_map does not cover csagan's {name}: {sorted(set(exp) ^ set(sd))[:6]}")
    return out["netG"], out["netD"], dropped


# ----------------------------------------------------------------------------- optimisers


def convert_adam_state(
    saved: Any,
    source_order: Sequence[str],
    mapping: Mapping[str, str | None],
    target: Sequence[tuple[str, nn.Parameter]],
    lr: float,
    betas: tuple[float, float],
) -> tuple[dict[str, Any] | None, str]:
    """Re-index a DF-GAN Adam ``state_dict`` for csagan's parameters.

    Args:
        saved: DF-GAN's ``optimizer.state_dict()``.
        source_order: the DF-GAN parameter names in the order the optimiser was given them.
        mapping: DF-GAN name → csagan name (``None``: dropped parameter).
        target: csagan's (name, parameter) pairs in the order csagan's optimiser takes them.
        lr, betas: the run's Adam settings (written into the parameter group).

    Returns:
        (csagan optimiser state dict, "") or (None, why it was not imported).
    """
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) \
            or not isinstance(saved.get("param_groups"), list):
        return None, "not an optimizer state_dict"
    groups = saved["param_groups"]
    if len(groups) != 1 or not isinstance(groups[0], dict) or not isinstance(groups[0].get("params"), list):
        return None, f"{len(groups)} parameter groups (DF-GAN uses one)"
    group = groups[0]
    if len(group["params"]) != len(source_order):
        return None, f"{len(group['params'])} parameters, DF-GAN's modules have {len(source_order)}"
    defaults = {"eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}
    for key, value in defaults.items():
        if key in group and group[key] != value:
            return None, f"Adam {key}={group[key]!r} differs from DF-GAN's (and csagan's) {value!r}"
    position = {name: i for i, (name, _) in enumerate(target)}
    params = dict(target)
    state: dict[int, dict[str, Any]] = {}
    for idx, src in zip(group["params"], source_order):
        entry = saved["state"].get(idx)
        if entry is None:
            continue
        dst = mapping[src]
        if dst is None:  # an unused parameter never has a gradient; nothing to keep
            continue
        if not isinstance(entry, dict):
            return None, f"the state of {src} is not a dict"
        for key in ("exp_avg", "exp_avg_sq"):
            value = entry.get(key)
            if not isinstance(value, Tensor) or tuple(value.shape) != tuple(params[dst].shape):
                return None, f"{key} of {src} does not have the parameter's shape {tuple(params[dst].shape)}"
        state[position[dst]] = {k: (v.detach().to(torch.float32).clone() if isinstance(v, Tensor) and k != "step"
                                    else v) for k, v in entry.items()}  # fmt: skip
    opt = torch.optim.Adam([p for _, p in target], lr=lr, betas=betas)
    fresh = opt.state_dict()
    converted = {"state": state, "param_groups": [{**fresh["param_groups"][0], "lr": lr, "betas": betas}]}
    try:
        opt.load_state_dict(converted)
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        return None, f"torch refused the re-indexed state ({type(exc).__name__}: {exc})"
    return opt.state_dict(), ""


def _adam_settings(optimizers: dict[str, Any] | None) -> tuple[float, float, tuple[float, float]]:
    """(lr_G, lr_D, betas) of DF-GAN's optimisers, or DF-GAN's defaults when absent or unreadable."""
    if optimizers is None:
        return DFGAN_LR_G, DFGAN_LR_D, DFGAN_BETAS
    try:
        g = optimizers["optimizer_G"]["param_groups"][0]
        d = optimizers["optimizer_D"]["param_groups"][0]
        return float(g["lr"]), float(d["lr"]), (float(g["betas"][0]), float(g["betas"][1]))
    except (KeyError, IndexError, TypeError, ValueError):
        return DFGAN_LR_G, DFGAN_LR_D, DFGAN_BETAS


# ----------------------------------------------------------------------------- the run folder


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(
            f"{out} already exists and is not an empty folder; the import writes a new run folder: choose another --out."
        )


def import_dfgan(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    damsm_dir: str | os.PathLike[str],
    preset: str | None = None,
    overrides: Sequence[str] = (),
) -> ImportReport:
    """Convert DF-GAN's ``state_epoch_XXX.pth`` into the csagan run folder ``out`` (module docstring).

    Args:
        path: the DF-GAN checkpoint.
        out: the run folder to create (must not exist or be empty).
        damsm_dir: the DAMSM folder of the text encoder DF-GAN was trained with (AttnGAN's
            ``text_encoder*.pth`` + ``image_encoder*.pth`` + ``vocab.json``, or ``csagan pretrain-damsm``'s).
        preset: the train preset for the run's train settings (default: ``csagan train``'s).
        overrides: ``key=value`` settings as ``csagan train --set`` takes them; the sizes read from
            the weights (``SIZE_FIELDS``) may only be repeated with the same value.

    Returns:
        An :class:`ImportReport` (the resume command included).

    Raises:
        FileNotFoundError, FileExistsError, ValueError (:class:`DFGANImportError`): bad input, one line each.
    """

    src, run_dir = Path(path), Path(out)
    _check_out(run_dir)
    ckpt = read_dfgan_checkpoint(src)
    sizes = infer_sizes(ckpt)
    lr_g, lr_d, betas = _adam_settings(ckpt.optimizers)
    user = list(overrides)
    for item in user:
        key, value = parse_override(item)
        key = key.split(".", 1)[1] if key.startswith(("model.", "train.")) else key
        if key in SIZE_FIELDS and value.strip() != str(getattr(sizes, key)):
            raise DFGANImportError(
                f"{src}: the weights imply {key}={getattr(sizes, key)} but --set gives {item}; drop that --set "
                f"(the import reads {', '.join(SIZE_FIELDS)} from the weights)."
            )
    train_defaults = [f"lr_g={lr_g!r}", f"lr_d={lr_d!r}", f"betas={betas[0]!r},{betas[1]!r}"]
    sets = [*sizes.overrides(), *train_defaults, *user]
    model_cfg, train_cfg = resolve("dfgan", preset, [*sets, f"damsm_dir={damsm_dir}"])
    g_sd, d_sd, dropped = convert_weights(ckpt, model_cfg)

    damsm = load_damsm(damsm_dir)
    if damsm.text_encoder.hidden != sizes.text_dim:
        raise DFGANImportError(
            f"the DAMSM text encoder in {damsm_dir} gives {damsm.text_encoder.hidden}-d sentence codes but the DF-GAN "
            f"generator in {src} was trained on {sizes.text_dim}-d codes; pass the DAMSM folder DF-GAN was trained "
            "with (--damsm)."
        )

    generator, discriminator = Generator(model_cfg), Discriminator(model_cfg)
    generator.load_state_dict(g_sd, strict=True)
    discriminator.load_state_dict(d_sd, strict=True)
    key_map = dfgan_key_map(model_cfg)
    # DF-GAN's optimisers index netG.parameters() and netD.parameters() + netC.parameters(): the key
    # map's order, without the unused conv_s a fork may not build
    order = {part: [k for k in key_map[part] if k in ckpt.nets[part]] for part in PARTS}
    d_order = [f"netD.{k}" for k in order["netD"]] + [f"netC.{k}" for k in order["netC"]]
    d_mapping = {f"{part}.{k}": v for part in ("netD", "netC") for k, v in key_map[part].items()}
    opt_states: dict[str, dict[str, Any]] = {}
    note = "the checkpoint has no 'optimizers' entry"
    if ckpt.optimizers is not None:
        if any(list(ckpt.nets[part]) != order[part] for part in PARTS):
            note = ("its networks list their parameters in another order than DF-GAN's modules register them, so "
                    "the Adam moments cannot be matched to parameters safely")
        else:
            reasons = []
            for name, saved, src_order, mapping, module, lr in (
                ("optimizer_G", ckpt.optimizers.get("optimizer_G"), order["netG"], key_map["netG"], generator,
                 train_cfg.lr_g),
                ("optimizer_D", ckpt.optimizers.get("optimizer_D"), d_order, d_mapping, discriminator, train_cfg.lr_d),
            ):  # fmt: skip
                state, why = convert_adam_state(saved, src_order, mapping, list(module.named_parameters()), lr,
                                                train_cfg.betas)  # fmt: skip
                if state is None:
                    reasons.append(f"{name}: {why}")
                else:
                    opt_states[name] = state
            note = "; ".join(reasons)
    imported = len(opt_states) == 2
    if not imported:
        opt_states = {
            "optimizer_G": torch.optim.Adam(generator.parameters(), lr=train_cfg.lr_g, betas=train_cfg.betas).state_dict(),
            "optimizer_D": torch.optim.Adam(discriminator.parameters(), lr=train_cfg.lr_d,
                                            betas=train_cfg.betas).state_dict(),
        }  # fmt: skip

    device = resolve_device(train_cfg.device)
    train_rng = rank_generator(train_cfg.seed, 0, device).get_state().cpu()

    cpu = lambda sd: {k: v.detach().cpu() for k, v in sd.items()}
    checkpoint = {
        "format": "csagan-train-checkpoint", "version": 1, "csagan_version": __version__,
        "step": 0, "epoch": 0, "batch_in_epoch": 0, "images_seen": 0, "wall_time": 0.0, "world_size": 1,
        "model_config": model_cfg.to_dict(), "train_config": train_cfg.to_dict(),
        "generator": cpu(generator.state_dict()), "discriminator": cpu(discriminator.state_dict()),
        "opt_g": opt_states["optimizer_G"], "opt_d": opt_states["optimizer_D"], "scaler": {},
        "rng": capture_rng_state(), "train_rng": [train_rng],
    }  # fmt: skip
    command = ["csagan", "train", "--config", "dfgan", "--data", "DATA", "--out", str(run_dir), "--resume"]
    if preset is not None:
        command += ["--preset", preset]
    for item in sets:
        command += ["--set", item]
    command += ["--damsm", str(damsm_dir)]
    resume_command = shlex.join(command)
    notes = [
        "csagan counts steps from 0 (DF-GAN's epoch is kept in import.json); the epoch/max_steps limits of the "
        "preset apply from the import on",
    ]
    if ckpt.optimizers is None:
        notes.append("the file holds no optimiser settings: lr_g, lr_d and betas are DF-GAN's defaults (1e-4, 4e-4, "
                     "(0.0, 0.9)) unless --set gives them")
    report = ImportReport(
        run_dir=run_dir, sizes=sizes, optimizers_imported=imported, optimizer_note="" if imported else note,
        dropped_keys=dropped, dfgan_epoch=ckpt.epoch, resume_command=resume_command, notes=notes,
    )  # fmt: skip
    provenance = {
        "format": "csagan-dfgan-import",
        "source": str(src.resolve()),
        "source_sha256": file_sha256(src),
        "dfgan_epoch": ckpt.epoch,
        "sizes": {name: getattr(sizes, name) for name in SIZE_FIELDS},
        "optimizers": "imported" if imported else f"fresh Adam states ({note})",
        "dropped_keys": dropped,
        "resume_command": resume_command,
        "notes": notes,
    }

    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.import-", dir=run_dir.parent))
    try:
        (tmp / CONFIG_JSON).write_text(run_config_json(model_cfg, train_cfg), encoding="utf-8")
        copy_damsm(damsm, tmp)
        atomic_save(checkpoint, tmp / CHECKPOINT_NAME)
        atomic_save({"format": "csagan-generator", "model_config": model_cfg.to_dict(),
                     "state_dict": checkpoint["generator"], "step": 0}, tmp / GENERATOR_NAME)  # fmt: skip
        (tmp / IMPORT_JSON).write_text(json.dumps(provenance, indent=2), encoding="utf-8")
        os.chmod(tmp, 0o755)
        if run_dir.exists():
            run_dir.rmdir()  # empty (checked above)
        os.replace(tmp, run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report
