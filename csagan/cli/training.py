"""``csagan config``, ``train``, ``pretrain-damsm`` and ``sample``."""

from __future__ import annotations

import argparse
from pathlib import Path

from csagan.cli.common import SubParsers, truncation_arg


def _overrides(args: argparse.Namespace) -> list[str]:
    sets = list(args.set or [])
    if getattr(args, "damsm", None) is not None:
        sets.append(f"damsm_dir={args.damsm}")
    return sets


def _cmd_config_list(args: argparse.Namespace) -> int:
    from csagan.config import list_configs
    from csagan.evaluate import EVAL_PRESETS
    from csagan.pretrain import DAMSM_PRESETS
    from csagan.study import STUDY_PRESETS
    from csagan.train.config import list_train_presets

    print("model configurations:", ", ".join(list_configs()))
    print("train presets:       ", ", ".join(list_train_presets()))
    print("DAMSM presets:       ", ", ".join(DAMSM_PRESETS), "(csagan config show-damsm --preset NAME)")
    print("evaluation presets:  ", ", ".join(EVAL_PRESETS), "(csagan config show-eval --preset NAME)")
    print("study presets:       ", ", ".join(STUDY_PRESETS), "(csagan config show-study --preset NAME)")
    return 0


def _cmd_config_show(args: argparse.Namespace) -> int:
    from csagan.train.config import resolve, run_config_json

    model_cfg, train_cfg = resolve(args.name, args.preset, _overrides(args))
    print(run_config_json(model_cfg, train_cfg))
    return 0


def _cmd_config_show_damsm(args: argparse.Namespace) -> int:
    import json

    from csagan.pretrain import pretrain_config

    print(json.dumps(pretrain_config(args.preset, args.set or []).to_dict(), indent=2, sort_keys=True))
    return 0


def _cmd_config_show_study(args: argparse.Namespace) -> int:
    import json

    from csagan.study import study_config

    print(json.dumps(study_config(args.preset, args.set or []).to_dict(), indent=2))
    return 0


def _cmd_config_show_eval(args: argparse.Namespace) -> int:
    import json

    from csagan.evaluate import eval_config

    print(json.dumps(eval_config(args.preset, args.set or []).to_dict(), indent=2))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from csagan.train.config import resolve
    from csagan.train.engine import train

    model_cfg, train_cfg = resolve(args.config, args.preset, _overrides(args))
    if args.change_lr and not args.resume:
        raise ValueError("--change-lr only applies with --resume (a new run takes lr_g/lr_d from --set anyway).")
    run = train(model_cfg, train_cfg, args.data, args.out, resume=args.resume, progress=not args.no_progress,
                change_lr=args.change_lr)
    print(f"run folder: {run}")
    return 0


def _cmd_pretrain_damsm(args: argparse.Namespace) -> int:
    from csagan.pretrain import PretrainPaths, pretrain_config, run

    if args.old_config is not None:
        raise ValueError(
            f"pretrain-damsm --config was renamed --preset (a DAMSM preset; --config names a GAN model variant "
            f"everywhere else): use --preset {args.old_config}."
        )
    config = pretrain_config(args.preset, args.set or [])
    if args.no_progress:
        config = config.replace(progress=False)
    out = run(config, PretrainPaths(args.data, args.out))
    print(f"DAMSM encoders written to {out}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from csagan.sample import sample_images, save_caption_grid
    from csagan.train.run import load_run

    truncation = truncation_arg(args.truncation)
    run = load_run(args.run, map_location=args.device or "cpu")
    result = sample_images(
        run.generator,
        run.text_encoder,
        run.vocab,
        args.caption,
        n_per_caption=args.n,
        truncation=truncation,
        seed=args.seed,
        device=args.device,
    )
    path = save_caption_grid(result, args.out, ncol=min(args.n, 8))
    print(f"{len(args.caption)} caption(s) x {args.n} samples written to {path}")
    return 0


def add_training_commands(sub: SubParsers) -> None:
    pre = sub.add_parser(
        "pretrain-damsm",
        help="pretrain the DAMSM text and image encoders (AttnGAN's recipe)",
        description="Train the BiLSTM text encoder and the DAMSM image encoder; writes text_encoder.pth, "
        "image_encoder.pth (AttnGAN key layout), damsm.json and vocab.json into --out.",
    )
    pre.add_argument("--preset", default="toybirds-cpu",
                     help="DAMSM preset: toybirds-cpu (default), cub, coco; see `csagan config show-damsm`")
    pre.add_argument("--config", dest="old_config", default=None, help=argparse.SUPPRESS)
    pre.add_argument("--data", required=True, type=Path, help="dataset root in the AttnGAN layout")
    pre.add_argument("--out", required=True, type=Path, help="output folder for the encoders")
    pre.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    pre.add_argument("--no-progress", action="store_true", help="no progress bar")
    pre.set_defaults(func=_cmd_pretrain_damsm)

    smp = sub.add_parser("sample", help="draw images for captions from a trained run into a captioned grid")
    smp.add_argument("--run", required=True, type=Path, help="run folder written by `csagan train`")
    smp.add_argument("--caption", required=True, action="append", help="a caption (repeat for several rows)")
    smp.add_argument("--n", type=int, default=8, help="samples per caption (default 8)")
    smp.add_argument("--truncation", type=float, default=0.88,
                     help="truncated-normal noise scale as DF-GAN samples (default 0.88; 0 = plain normal)")
    smp.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    smp.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cpu)")
    smp.add_argument("--out", required=True, type=Path, help="output PNG")
    smp.set_defaults(func=_cmd_sample)

    cfg = sub.add_parser("config", help="list or show the model configurations, train presets and DAMSM presets")
    csub = cfg.add_subparsers(dest="config_command", required=True, metavar="{list,show,show-damsm,show-eval,show-study}")
    lst = csub.add_parser("list", help="the configuration and preset names")
    lst.set_defaults(func=_cmd_config_list)
    show = csub.add_parser("show", help="print the resolved configuration of a run as JSON")
    show.add_argument("name", help="model configuration (csagan, ssagan, dfgan, ...)")
    show.add_argument("--preset", default=None, help="train preset (default: toybirds-cpu)")
    show.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field (repeatable)")
    show.set_defaults(func=_cmd_config_show)
    showd = csub.add_parser("show-damsm", help="print the resolved DAMSM pretraining settings as JSON")
    showd.add_argument("--preset", default=None, help="DAMSM preset: toybirds-cpu, cub, coco (default: the defaults)")
    showd.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    showd.set_defaults(func=_cmd_config_show_damsm)
    showe = csub.add_parser("show-eval", help="print the resolved evaluation settings (csagan evaluate) as JSON")
    showe.add_argument("--preset", default=None, help="evaluation preset: paper, study, quick (default: the defaults)")
    showe.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    showe.set_defaults(func=_cmd_config_show_eval)
    shows = csub.add_parser("show-study", help="print the resolved reproduction-study protocol as JSON")
    shows.add_argument("--preset", default="early", help="study preset: early (default), trained, smoke")
    shows.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    shows.set_defaults(func=_cmd_config_show_study)

    tr = sub.add_parser(
        "train",
        help="train a configuration (csagan, ablations, ssagan, dfgan) with a frozen DAMSM text encoder",
        description="Train a GAN. Several processes: torchrun --nproc_per_node N $(which csagan) train ...",
    )
    tr.add_argument("--config", required=True, help="model configuration; see `csagan config list`")
    tr.add_argument("--data", required=True, type=Path, help="dataset root in the AttnGAN layout")
    tr.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, logs, samples)")
    tr.add_argument("--preset", default=None, help="train preset: toybirds-cpu (default), cub, coco, smoke")
    tr.add_argument("--damsm", type=Path, default=None,
                    help="pretrained DAMSM folder (same as --set damsm_dir=): `csagan pretrain-damsm`'s, or AttnGAN's "
                         "DAMSMencoders/bird as released (vocabulary from --data's captions.pickle)")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a model or train field")
    tr.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.pt")
    tr.add_argument("--change-lr", action="store_true",
                    help="with --resume: use the lr_g/lr_d given by --set (e.g. after a divergence) instead of the run's")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.set_defaults(func=_cmd_train)
