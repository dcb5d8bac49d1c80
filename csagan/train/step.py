"""One training step (DF-GAN's one-stage scheme with CSA-GAN's objective, Eqs. 22-25).

One step, for a batch of real images x with captions t (sentence codes s and word features w
from the frozen DAMSM text encoder, Eqs. 13-15):

1. Generate x̂ = G(z, s) once, z ~ N(0, I) (with CSA the code is ĉ ~ N(μ(s), σ²(s)), Eq. 16).
2. Discriminator step, Eq. (24): hinge terms on (x, s) (real), (x̂.detach(), s) (fake) and
   (x, roll(s, 1)) (mismatched: the batch's sentences rolled by one, reusing the real features),
   plus λ1 · MA-GP on the real matched pairs with gradients w.r.t. the image and the sentence
   (DF-GAN's zero-centred penalty; ``gp_form="printed"`` uses Eq. 22 as printed), plus λ2 · KL
   when ``kl_side="discriminator"`` (then D's optimiser also updates the CSA network, the literal
   reading of Eq. 24; x̂ is regenerated for the G step because those weights changed).
3. Generator step, Eq. (25): −E[D(x̂, s)] + λ3 · L_DAMSM(image encoder(x̂), w, s) (Eq. 12, skipped
   when λ3 = 0; same-class pairs are not negatives; γ1, γ2, γ3, the reading of Eq. 8 and the reduction
   of Eqs. 10-11 are the run's ``damsm_*`` settings, :func:`gan_damsm_config`) + λ2 · KL (Eq. 16) when CSA is on and
   ``kl_side="generator"``. The text and image encoders are frozen; gradients pass through the
   image encoder into x̂ only. D's parameters do not collect gradients in this step.

The step is :class:`TrainStep` (models, optimisers, the update; no data or files): the trainer of
:mod:`csagan.train.engine` delegates to it and ``benchmarks/train_step.py`` times it on synthetic batches.

Everything random in a step comes from one ``torch.Generator`` per rank (seeded from the run seed
and the rank) and from the data layer's ``(seed, epoch, index)`` generators, so a run is a function
of its seed, and a resumed run reproduces the uninterrupted one exactly on the CPU.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from csagan.config import ModelConfig
from csagan.csa import kl_divergence
from csagan.damsm import DAMSMConfig, damsm_loss
from csagan.data.datasets import TextImageBatch
from csagan.losses import discriminator_objective, generator_objective, gp_printed, magp_dfgan, magp_from_outputs
from csagan.models import Discriminator, Generator
from csagan.train.config import TrainConfig
from csagan.train.distributed import DistInfo, average_gradients, broadcast_buffers

__all__ = ["GAN_DAMSM_CONFIG", "TrainStep", "TrainingDivergedError", "gan_damsm_config", "rank_generator"]

def gan_damsm_config(train_cfg: TrainConfig) -> DAMSMConfig:
    """The :class:`DAMSMConfig` of L_DAMSM in the generator objective (Eq. 25) of a run.

    From the run's ``damsm_gamma1/2/3`` (Eqs. 7-9), ``damsm_word_score_mode`` (Eq. 8: ``"code"``,
    AttnGAN's ``log Σ exp(γ2 R)``, or ``"paper"``, with the printed 1/γ2) and ``damsm_reduction``
    (Eqs. 10-11: ``"mean"`` as AttnGAN/DF-GAN, or ``"sum"`` as printed).
    """
    return DAMSMConfig(
        gamma1=train_cfg.damsm_gamma1,
        gamma2=train_cfg.damsm_gamma2,
        gamma3=train_cfg.damsm_gamma3,
        word_score_mode=train_cfg.damsm_word_score_mode,
        reduction=train_cfg.damsm_reduction,
    )


#: The default GAN-time DAMSM factors: DF-GAN / SSA-GAN's (γ1 = 5 instead of pretraining's 4, γ2 = 5,
#: γ3 = 10, AttnGAN's Eq. 8 and batch mean); a run's own are :func:`gan_damsm_config`.
GAN_DAMSM_CONFIG = gan_damsm_config(TrainConfig())
_D_TERMS = ("d_real", "d_fake", "d_mismatch", "magp", "kl_d", "d_total")
_G_TERMS = ("g_adv", "damsm", "kl", "g_total")


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the message names the step and the loss term."""


def rank_generator(seed: int, rank: int, device: torch.device) -> torch.Generator:
    """The generator of a process's training noise (z, CSA's ε, MA-GP's draws): one stream per (seed, rank)."""
    state = np.random.SeedSequence([seed, rank, 0x6A4]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


# ----------------------------------------------------------------------------- one step


def _default_diverged(flag: list[str], values: dict[str, float]) -> None:
    if flag:
        raise TrainingDivergedError(
            f"loss term '{flag[0]}' is {values[flag[0]]} (all non-finite terms: {flag}); lower the learning rates "
            "or use precision=fp32."
        )
    raise TrainingDivergedError("a loss term became non-finite on another rank.")


class TrainStep:
    """The models, optimisers and the update of one training step (Eqs. 22-25), without data or files.

    ``step(batch)`` runs the module docstring's D step (hinge terms of Eq. 24 + λ1·MA-GP, Eqs. 22-23,
    reusing the real images' D pass for the penalty) and G step (Eq. 25: adversarial term, λ3·DAMSM
    of Eq. 12 and λ2·KL of Eq. 16). The trainer delegates to it, and ``benchmarks/train_step.py``
    times it on synthetic batches, so both run the same code.

    Args:
        model_cfg, train_cfg: the run's configuration (precision, channels_last, compile, betas, lrs).
        generator, discriminator: freshly built (or loaded) networks; moved to ``device`` here.
        text_encoder: the frozen DAMSM text encoder (Eqs. 13-15), already on ``device``.
        image_encoder: the frozen DAMSM image encoder (Eq. 4), already on ``device``.
        device: where the step runs.
        info: this process's rank (default: a single process).
        gen: the ``torch.Generator`` for the step's noise (default: seeded from ``train_cfg.seed``).
        on_diverged: called as ``on_diverged(names, values)`` when a loss term is NaN/inf (``names``
            empty when another rank saw it); it must raise. Default: raise
            :class:`TrainingDivergedError`.
    """

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        generator: Generator,
        discriminator: Discriminator,
        text_encoder: torch.nn.Module,
        image_encoder: torch.nn.Module,
        device: torch.device,
        *,
        info: DistInfo | None = None,
        gen: torch.Generator | None = None,
        on_diverged: Callable[[list[str], dict[str, float]], None] | None = None,
    ) -> None:
        self.mcfg, self.tcfg, self.device = model_cfg, train_cfg, device
        self.info = info if info is not None else DistInfo()
        self.text_encoder, self.image_encoder = text_encoder, image_encoder
        self.on_diverged = on_diverged if on_diverged is not None else _default_diverged
        self.memory_format = torch.channels_last if train_cfg.channels_last else torch.contiguous_format
        self.G = generator.to(device).to(memory_format=self.memory_format)
        self.D = discriminator.to(device).to(memory_format=self.memory_format)
        if train_cfg.channels_last:
            self.image_encoder.to(memory_format=torch.channels_last)
        self.G_fwd: Any = torch.compile(self.G) if train_cfg.compile else self.G

        self.kl_on_d = model_cfg.kl_side == "discriminator" and self.G.csa is not None
        betas = (float(train_cfg.betas[0]), float(train_cfg.betas[1]))
        self.opt_g = torch.optim.Adam([p for p in self.G.parameters() if p.requires_grad], lr=train_cfg.lr_g,
                                      betas=betas)
        d_groups: list[dict[str, Any]] = [{"params": list(self.D.parameters())}]
        if self.kl_on_d and self.G.csa is not None:
            d_groups.append({"params": list(self.G.csa.parameters())})
        self.opt_d = torch.optim.Adam(d_groups, lr=train_cfg.lr_d, betas=betas)
        self.scaler = torch.amp.GradScaler(device.type, enabled=train_cfg.precision == "fp16")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(train_cfg.precision)
        self.lambdas = (model_cfg.magp_weight, model_cfg.kl_weight, model_cfg.damsm_weight)
        self.gen = gen if gen is not None else rank_generator(train_cfg.seed, self.info.rank, device)
        self.damsm_cfg = gan_damsm_config(train_cfg)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The step's autocast context (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _check_finite(self, terms: dict[str, Tensor], names: Sequence[str]) -> dict[str, float]:
        values = torch.stack([terms[n].detach().float() for n in names]).tolist()
        out = dict(zip(names, values))
        bad = [n for n in names if not math.isfinite(out[n])]
        if self.info.distributed:
            t = torch.tensor([float(len(bad))], device=self.device)
            torch.distributed.all_reduce(t)
            any_bad = t.item() > 0
        else:
            any_bad = bool(bad)
        if any_bad:
            self.on_diverged(bad, out)
            raise TrainingDivergedError(f"non-finite loss terms {bad}")  # on_diverged must raise
        return out

    def _penalty(self, images: Tensor, fake: Tensor, sent: Tensor, real_scores: Tensor | None,
                 sent_req: Tensor | None) -> Tensor:
        """Unweighted gradient penalty (λ1 is applied by discriminator_objective), Eqs. (22)-(23)."""
        if self.mcfg.gp_form == "printed":
            ctx = torch.autocast(self.device.type, enabled=False) if self.amp_dtype == torch.float16 else \
                self.autocast()
            with ctx:
                return gp_printed(self.D, images, fake, sent, 1.0, generator=self.gen)
        if real_scores is not None and sent_req is not None:
            return magp_from_outputs(real_scores, images, sent_req, k=1.0, p=self.mcfg.magp_p)
        # fp16: run the penalty's own pass in fp32 so the input gradients cannot underflow.
        with torch.autocast(self.device.type, enabled=False):
            return magp_dfgan(self.D, images.float(), sent, k=1.0, p=self.mcfg.magp_p)

    def __call__(self, batch: TextImageBatch) -> dict[str, float]:
        """Alias of :meth:`step`."""
        return self.step(batch)

    def step(self, batch: TextImageBatch) -> dict[str, float]:
        """One D step and one G step (module docstring); returns every loss term as a float."""
        dev = self.device
        images = batch.images.to(dev, non_blocking=True).contiguous(memory_format=self.memory_format)
        captions, cap_lens = batch.captions.to(dev), batch.cap_lens.to(dev)
        class_ids = batch.class_ids.to(dev)
        with torch.no_grad():
            words, sent = self.text_encoder(captions, cap_lens)
        words, sent = words.float().detach(), sent.float().detach()
        z = torch.randn(images.shape[0], self.mcfg.z_dim, generator=self.gen, device=dev)

        # ---- discriminator step, Eq. (24)
        fused_gp = self.mcfg.gp_form == "dfgan" and self.amp_dtype != torch.float16
        real_in = images.detach().requires_grad_(True) if fused_gp else images
        sent_req = sent.detach().requires_grad_(True) if fused_gp else None
        with self.autocast():
            out = self.G_fwd(z, sent, words=words, generator=self.gen)
            real_feat = self.D(real_in)
            real_s = self.D.head(real_feat, sent_req if sent_req is not None else sent)
            mis_s = self.D.head(real_feat, sent.roll(1, dims=0))
            fake_s = self.D.head(self.D(out.image.detach()), sent)
        gp = self._penalty(real_in, out.image, sent, real_s if fused_gp else None, sent_req)
        kl_d: Tensor | None = None
        if self.kl_on_d and self.G.csa is not None:
            mu, logvar = self.G.csa.encode(sent)
            kl_d = kl_divergence(mu, logvar)
        d = discriminator_objective(real_s, fake_s, mis_s, gp=gp, kl=kl_d, lambdas=self.lambdas,
                                    kl_side=self.mcfg.kl_side)
        d_named = {"d_real": d["real"], "d_fake": d["fake"], "d_mismatch": d["mismatch"], "magp": d["gp"],
                   "kl_d": d["kl"], "d_total": d["total"]}
        d_vals = self._check_finite(d_named, _D_TERMS)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(d["total"]).backward()
        average_gradients([p for g in self.opt_d.param_groups for p in g["params"]], self.info)
        self.scaler.step(self.opt_d)

        # ---- generator step, Eq. (25)
        for p in self.D.parameters():
            p.requires_grad_(False)
        try:
            with self.autocast():
                if self.kl_on_d:  # the CSA weights changed in the D step: regenerate x̂
                    out = self.G_fwd(z, sent, words=words, generator=self.gen)
                fake = out.image
                g_s = self.D.head(self.D(fake), sent)
                damsm: Tensor | None = None
                if self.mcfg.damsm_weight > 0:
                    regions, code = self.image_encoder(fake)
                    damsm = damsm_loss(regions, code, words, sent, cap_lens, class_ids, self.damsm_cfg).total
            kl_g = kl_divergence(out.csa.mu, out.csa.logvar) if out.csa is not None else None
            g = generator_objective(g_s, damsm=damsm, kl=kl_g, lambdas=self.lambdas, kl_side=self.mcfg.kl_side)
            g_named = {"g_adv": g["adv"], "damsm": g["damsm"], "kl": g["kl"], "g_total": g["total"]}
            g_vals = self._check_finite(g_named, _G_TERMS)
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(g["total"]).backward()
        finally:
            for p in self.D.parameters():
                p.requires_grad_(True)
        average_gradients(self.G.parameters(), self.info)
        self.scaler.step(self.opt_g)
        self.scaler.update()
        broadcast_buffers(self.G, self.info)
        broadcast_buffers(self.D, self.info)
        vals = {**d_vals, **g_vals}
        vals["kl"] = vals["kl"] + vals.pop("kl_d")
        if self.G.g0_weight is not None:
            vals["g0_weight"] = float(self.G.g0_weight.detach())
        return vals


