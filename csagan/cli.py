"""The ``csagan`` command line.

Every sub-command is a thin wrapper around a library function, so that what the command
line does and what the book's notebooks do are the same code. Errors that come from bad
input (missing files, corrupt data, unknown names) are printed as one clear message with
exit status 2 instead of a traceback; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Handler = Callable[[argparse.Namespace], int]


# --------------------------------------------------------------------------- data
def _cmd_data_toybirds(args: argparse.Namespace) -> int:
    from csagan.data.toybirds import make_toybirds

    root = make_toybirds(
        args.out,
        size=args.size,
        seed=args.seed,
        n_images=args.n_images,
        n_species=args.n_species,
        workers=args.workers,
        progress=not args.quiet,
        overwrite=args.overwrite,
        image_format=args.image_format,
    )
    print(f"ToyBirds written to {root}")
    return 0


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from csagan.data import prepare

    link = not args.copy
    if args.source == "cub":
        root = prepare.prepare_cub(args.cub_dir, args.text_dir, args.out, link=link)
    elif args.source == "coco":
        root = prepare.prepare_coco(
            args.images_dir, args.captions_train, args.captions_val, args.out, link=link
        )
    else:
        root = prepare.prepare_folder(
            args.folder, args.out, test_fraction=args.test_fraction, seed=args.seed, link=link
        )
    print(f"AttnGAN-layout dataset written to {root}")
    return 0


def _cmd_data_inspect(args: argparse.Namespace) -> int:
    from csagan.data.inspect import inspect_dataset

    report = inspect_dataset(args.root, split=args.split, progress=not args.no_progress)
    print(report.format())
    return 0 if report.ok else 1


def _add_data(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    data = sub.add_parser("data", help="make, prepare and inspect datasets")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="{toybirds,prepare,inspect}")

    tb = dsub.add_parser(
        "toybirds",
        help="render the built-in ToyBirds dataset in AttnGAN's birds layout",
        description="Render ToyBirds (procedural birds with CUB-like attributes and captions) "
        "into DIR in the AttnGAN 'birds' layout.",
    )
    tb.add_argument("--out", required=True, type=Path, help="output folder (the dataset root)")
    tb.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    tb.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    tb.add_argument("--n-images", type=int, default=None, help="total images (default: CUB's 11,788)")
    tb.add_argument("--n-species", type=int, default=200, help="species (default: CUB's 200)")
    tb.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    tb.add_argument("--quiet", action="store_true", help="no progress bar")
    tb.add_argument("--overwrite", action="store_true", help="replace an earlier ToyBirds set in --out")
    tb.add_argument("--image-format", choices=("jpg", "png"), default="jpg",
                    help="jpg (default, quality 95, 4:4:4: the images/<key>.jpg upstream loaders open) or png")
    tb.set_defaults(func=_cmd_data_toybirds)

    pr = dsub.add_parser(
        "prepare",
        help="build the AttnGAN layout from raw CUB, COCO or a folder of image+caption pairs",
    )
    psub = pr.add_subparsers(dest="source", required=True, metavar="{cub,coco,folder}")
    cub = psub.add_parser("cub", help="CUB-200-2011 plus the 10-captions-per-image text folder")
    cub.add_argument("--cub-dir", required=True, type=Path, help="the extracted CUB_200_2011 folder")
    cub.add_argument("--text-dir", required=True, type=Path, help="text_c10 folder (<class>/<img>.txt)")
    coco = psub.add_parser("coco", help="COCO 2014 images and the official caption JSON files")
    coco.add_argument("--images-dir", required=True, type=Path, help="folder holding train2014/ and val2014/")
    coco.add_argument("--captions-train", required=True, type=Path, help="captions_train2014.json")
    coco.add_argument("--captions-val", required=True, type=Path, help="captions_val2014.json")
    folder = psub.add_parser("folder", help="your own images, each with a same-name .txt of captions")
    folder.add_argument("--folder", required=True, type=Path, help="folder of image + .txt pairs")
    folder.add_argument("--test-fraction", type=float, default=0.2, help="share held out (default 0.2)")
    folder.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    for p in (cub, coco, folder):
        p.add_argument("--out", required=True, type=Path, help="output dataset root")
        p.add_argument("--copy", action="store_true", help="copy images instead of symlinking them")
        p.set_defaults(func=_cmd_data_prepare)

    ins = dsub.add_parser("inspect", help="count images, captions and vocabulary; list broken files")
    ins.add_argument("--root", required=True, type=Path, help="dataset root in the AttnGAN layout")
    ins.add_argument("--split", choices=["train", "test"], default=None, help="one split (default: both)")
    ins.add_argument("--no-progress", action="store_true", help="no progress bar")
    ins.set_defaults(func=_cmd_data_inspect)


# --------------------------------------------------------------------------- configs and training
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


def _truncation(value: float) -> float | None:
    """``--truncation``: > 0 scales DF-GAN's truncated noise, 0 means plain N(0, 1) noise."""
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"--truncation must be > 0 (DF-GAN's 0.88) or 0 for plain N(0, 1) noise, got {value}.")
    return None if value == 0 else value


def _cmd_sample(args: argparse.Namespace) -> int:
    from csagan.sample import sample_images, save_caption_grid
    from csagan.train.run import load_run

    truncation = _truncation(args.truncation)
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


def _add_training(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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


# --------------------------------------------------------------------------- evaluation
def _cmd_evaluator_train(args: argparse.Namespace) -> int:
    from csagan.evaluator import train_evaluator

    path = train_evaluator(
        args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        image_size=args.image_size, seed=args.seed, device=args.device, progress=not args.quiet,
        random_birds=args.random_birds,
    )
    print(f"ToyBirds attribute evaluator written to {path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from csagan.evaluate import EvalPaths, eval_config, run

    sets = list(args.set or ())
    for key in ("metrics", "passes", "max_images", "seed", "is_splits", "rprec_candidates", "rprec_rounds",
                "sanity_images"):  # fmt: skip
        if getattr(args, key) is not None:
            sets.append(f"{key}={getattr(args, key)}")
    if args.truncation is not None:
        sets.append(f"truncation={_truncation(args.truncation)}")
    sets += [f"batch_size={args.batch_size}", f"device={args.device}", f"protocol={args.protocol}"]
    config = eval_config(args.preset, sets)
    paths = EvalPaths(args.run, args.data, fid_weights=args.fid_weights, fid_stats=args.fid_stats,
                      evaluator=args.evaluator)  # fmt: skip
    result = run(config, paths, progress=not args.quiet)
    path = result.save(args.out)
    print(result.summary())
    print(f"report written to {path}")
    return 0


def _cmd_fid_stats(args: argparse.Namespace) -> int:
    from csagan.devices import resolve_device
    from csagan.metrics.inception_fid import FIDInceptionV3
    from csagan.metrics.reference import folder_statistics, list_images, split_statistics
    from csagan.metrics.stats import save_stats

    if args.folder is not None:
        list_images(args.folder)  # fail on a missing or empty folder before loading the network
    elif not Path(args.data).is_dir():
        raise FileNotFoundError(f"dataset root not found: {args.data}")
    device = resolve_device(args.device)
    model = FIDInceptionV3("auto" if args.fid_weights is None else args.fid_weights, protocol=args.protocol)
    common = {"batch_size": args.batch_size, "device": device, "progress": not args.quiet}
    if args.data is not None:
        size = 256 if args.image_size is None else args.image_size
        stats = split_statistics(
            args.data, model, split=args.split, image_size=size, passes=args.passes, max_images=args.max_images,
            seed=args.seed, **common,
        )  # fmt: skip
        what = f"{args.split} split of {args.data} at {size} px, {args.passes} pass(es)"
    else:
        stats = folder_statistics(args.folder, model, image_size=args.image_size, **common)
        what = f"images in {args.folder}"
    path = save_stats(args.out, stats)
    print(f"reference statistics of {stats.num_images} images ({what}) written to {path}")
    print(f"Inception: {model.weights_info()['label']}")
    return 0


def _add_evaluation(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ev = sub.add_parser("evaluator", help="the ToyBirds attribute classifier used for exact alignment metrics")
    esub = ev.add_subparsers(dest="evaluator_command", required=True, metavar="{train}")
    tr = esub.add_parser("train", help="train the attribute classifier on a ToyBirds dataset")
    tr.add_argument("--data", required=True, type=Path, help="ToyBirds root (with attributes.jsonl)")
    tr.add_argument("--out", required=True, type=Path, help="output weights file (.pt)")
    tr.add_argument("--epochs", type=int, default=6, help="epochs (default 6)")
    tr.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    tr.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    tr.add_argument("--image-size", type=int, default=64, help="input size (default 64)")
    tr.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    tr.add_argument("--random-birds", type=int, default=0,
                    help="also train on N rendered birds with random attributes (breaks species shortcuts)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda (default auto)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_cmd_evaluator_train)

    _add_evaluate(sub)
    _add_fid_stats(sub)


def _add_inception_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fid-weights", type=Path, default=None,
                   help="Inception weights file (default: $CSAGAN_FID_WEIGHTS, then the torch hub cache; "
                        "the standard file is pt_inception-2015-12-05-6726825d.pth from pytorch-fid)")
    p.add_argument("--protocol", choices=["standard", "dfgan"], default="standard",
                   help="standard (pytorch-fid's network, default) or dfgan (DF-GAN's non-standard "
                        "torchvision ImageNet network; not comparable with pytorch-fid)")
    p.add_argument("--batch-size", type=int, default=50, help="images per forward pass (default 50)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 (default auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


EVALUATE_METRICS = ("fid", "is", "rprec", "align", "dfid", "dis")
"""``csagan evaluate --metrics`` names (``csagan.evaluate.METRICS``, repeated so that building the
parser does not import torch; a test keeps the two equal)."""


def _add_evaluate(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    names = ",".join(EVALUATE_METRICS)
    ev = sub.add_parser(
        "evaluate",
        help="generate from the test captions and compute FID, IS, R-precision and ToyBirds alignment",
        description="Generate one image per test image and pass (a random caption of it each time, DF-GAN's "
        f"truncated noise), compute the requested metrics and write a JSON report. Metrics: {names}.",
    )
    ev.add_argument("--run", required=True, type=Path, help="run folder written by `csagan train`")
    ev.add_argument("--data", required=True, type=Path, help="the dataset root the run was trained on")
    ev.add_argument("--preset", default=None,
                    help="evaluation preset: paper (10 passes, FID and IS), study (the reproduction study's), quick; "
                         "default: FID and IS, one pass (see `csagan config show-eval`). The options below override it")
    ev.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting (repeatable)")
    ev.add_argument("--metrics", default=None, help=f"comma-separated, from {names} (default fid,is)")
    ev.add_argument("--passes", type=int, default=None, help="passes over the test captions (default 1; the paper ~10)")
    ev.add_argument("--max-images", type=int, default=None,
                    help="score a seeded subset of this many generated (and real) images, for CPU runs")
    ev.add_argument("--seed", type=int, default=None, help="seed of captions, noise and metric draws (default 0)")
    ev.add_argument("--truncation", type=float, default=None,
                    help="truncated-normal noise scale (default 0.88, DF-GAN; 0 = plain normal)")
    ev.add_argument("--fid-stats", type=Path, default=None,
                    help="reference statistics .npz from `csagan fid-stats` (default: computed from the test images)")
    ev.add_argument("--is-splits", type=int, default=None, help="splits of IS and domain IS (default 10)")
    ev.add_argument("--rprec-candidates", type=int, default=None, help="captions ranked per image (default 100)")
    ev.add_argument("--rprec-rounds", type=int, default=None, help="R-precision repetitions (default 10)")
    ev.add_argument("--evaluator", type=Path, default=None,
                    help="ToyBirds evaluator from `csagan evaluator train` "
                         "(default csagan/assets/evaluator_toybirds.pt)")
    ev.add_argument("--sanity-images", type=int, default=None,
                    help="real test images for the alignment's sanity bounds (default 1000)")
    ev.add_argument("--out", required=True, type=Path, help="the JSON report to write")
    _add_inception_options(ev)
    ev.set_defaults(func=_cmd_evaluate)


def _add_fid_stats(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    fs = sub.add_parser(
        "fid-stats",
        help="precompute FID reference statistics (pytorch-fid .npz) of a dataset split or an image folder",
    )
    src = fs.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, default=None, help="dataset root in the AttnGAN layout")
    src.add_argument("--folder", type=Path, default=None, help="a plain folder of image files")
    fs.add_argument("--split", choices=["train", "test"], default="test", help="split of --data (default test)")
    fs.add_argument("--passes", type=int, default=1,
                    help="passes over the split; > 1 takes random crops and flips (DF-GAN's augmented set)")
    fs.add_argument("--image-size", type=int, default=None,
                    help="read images at this size; use the generator's output size (default: 256 for --data, "
                         "each file's own size for --folder)")
    fs.add_argument("--max-images", type=int, default=None, help="a seeded subset of this many images per pass")
    fs.add_argument("--seed", type=int, default=0, help="seed of the subset and augmentation (default 0)")
    fs.add_argument("--out", required=True, type=Path, help="output .npz (mu, sigma)")
    _add_inception_options(fs)
    fs.set_defaults(func=_cmd_fid_stats)


# --------------------------------------------------------------------------- shipping and the study
def _cmd_export_run(args: argparse.Namespace) -> int:
    from csagan.train.run import export_run

    out = export_run(args.run, args.out, half=not args.fp32)
    print(f"run exported to {out} ({'fp32' if args.fp32 else 'fp16'} weights)")
    return 0


def _cmd_study_run(args: argparse.Namespace) -> int:
    from csagan.study import STUDY_PRESETS, StudyPaths, run, study_config
    from csagan.train.config import list_train_presets

    if args.preset not in STUDY_PRESETS:
        hint = (f" {args.preset!r} is a train preset: give it with --train-preset."
                if args.preset in list_train_presets() else "")  # fmt: skip
        raise SystemExit(f"csagan study run: --preset names a study preset ({', '.join(STUDY_PRESETS)});{hint}")
    sets = list(args.set or ())
    for flag, key in (("variants", "variants"), ("seeds", "seeds"), ("train_preset", "train_preset"),
                      ("steps", "max_steps"), ("batch_size", "batch_size"), ("eval_images", "eval_images")):
        value = getattr(args, flag)
        if value is not None:
            sets.append(f"{key}={value}")
    config = study_config(args.preset, sets)
    if args.train_set:
        config = config.replace(overrides=(*config.overrides, *args.train_set))
    paths = StudyPaths(data_dir=str(args.data), damsm_dir=str(args.damsm), runs_dir=str(args.runs),
                       results_dir=str(args.results), evaluator=None if args.evaluator is None else str(args.evaluator))
    files = run(config, paths, progress=not args.no_progress)
    print(f"{len(files)} result file(s) in {args.results}")
    return 0


def _print_verdicts(verdicts: list[Any], indent: str = "") -> None:
    for v in verdicts:
        if v.verdict != "missing":
            print(f"{indent}{v.table}: {v.claim} ({v.better} vs {v.worse}), {v.metric}: {v.verdict} "
                  f"(difference {v.difference:+.4f}, seed noise {v.noise:.4f})")  # fmt: skip


def _cmd_study_table(args: argparse.Namespace) -> int:
    from csagan.study import budgets, judge_claims, load_results, markdown_table, results_at, summarize

    for n, folder in enumerate(args.results):
        results = load_results(folder)
        seen = sorted({int(r["images_seen"]) for r in results if "images_seen" in r})
        if n:
            print()
        print(f"## {folder}: {len(results)} run(s), {', '.join(map(str, seen))} images each")
        print()
        summary = summarize(results)
        print(markdown_table(summary))
        print()
        _print_verdicts(judge_claims(summary))
        if args.points:
            for images in budgets(results)[:-1]:
                print(f"\nat {images} images:")
                _print_verdicts(judge_claims(summarize(results_at(results, images))), indent="  ")
    return 0


def _cmd_study_figures(args: argparse.Namespace) -> int:
    from csagan.study.figures import load_study_figures, render_study_figures

    render_study_figures(args.runs, args.out, args.data, seed=args.seed)
    print(f"figures of {len(load_study_figures(args.out).samples)} variant(s) in {args.out}")
    return 0


def _add_study(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ex = sub.add_parser("export-run", help="copy a run's generator, DAMSM and logs (fp16) for sampling and shipping")
    ex.add_argument("--run", required=True, type=Path, help="run folder written by `csagan train`")
    ex.add_argument("--out", required=True, type=Path, help="output folder")
    ex.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16, half the size)")
    ex.set_defaults(func=_cmd_export_run)

    st = sub.add_parser("study", help="the reproduction study: every variant, several seeds, one protocol")
    ssub = st.add_subparsers(dest="study_command", required=True, metavar="{run,table,figures}")
    run = ssub.add_parser("run", help="train and evaluate every (variant, seed); resumable")
    run.add_argument("--data", required=True, type=Path, help="ToyBirds root")
    run.add_argument("--damsm", required=True, type=Path, help="pretrained DAMSM folder")
    run.add_argument("--runs", required=True, type=Path, help="folder of the run folders")
    run.add_argument("--results", required=True, type=Path, help="folder of the result JSON files")
    run.add_argument("--preset", default="early",
                     help="study preset: early (600 x 16 images, 64 px), trained (32 px, scored at five budgets), "
                          "smoke; see `csagan config show-study`")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a study setting, e.g. seeds=0,1,2 or max_steps=3000 (repeatable)")
    run.add_argument("--train-set", action="append", metavar="KEY=VALUE",
                     help="extra train/model override for every run, e.g. nf=32 (repeatable)")
    run.add_argument("--variants", default=None, help="comma-separated (default: the preset's, all eight)")
    run.add_argument("--seeds", default=None, help="comma-separated seeds (default: the preset's)")
    run.add_argument("--train-preset", default=None, help="train preset of every run (default: the preset's)")
    run.add_argument("--steps", type=int, default=None, help="steps per run (default: the preset's)")
    run.add_argument("--batch-size", type=int, default=None, help="batch size (default: the preset's)")
    run.add_argument("--eval-images", type=int, default=None, help="generated images scored per point")
    run.add_argument("--evaluator", type=Path, default=None, help="ToyBirds evaluator (default: the shipped one)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(func=_cmd_study_run)
    tab = ssub.add_parser("table", help="mean ± std per variant and the paper's claims, judged")
    tab.add_argument("--results", required=True, type=Path, action="append",
                     help="folder of the result JSON files (repeat for several studies, e.g. two budgets)")
    tab.add_argument("--points", action="store_true", help="also judge the claims at every earlier scored budget")
    tab.set_defaults(func=_cmd_study_table)
    fig = ssub.add_parser("figures", help="the same captions and noise drawn by every variant (PNG files for the book)")
    fig.add_argument("--runs", required=True, type=Path, help="the study's folder of run folders")
    fig.add_argument("--out", required=True, type=Path, help="output folder (e.g. book/results/figures)")
    fig.add_argument("--data", required=True, type=Path, help="ToyBirds root")
    fig.add_argument("--seed", type=int, default=0, help="which training seed's runs (default 0)")
    fig.set_defaults(func=_cmd_study_figures)


# --------------------------------------------------------------------------- importers
def _cmd_import_dfgan(args: argparse.Namespace) -> int:
    from csagan.dfgan_import import import_dfgan

    report = import_dfgan(args.checkpoint, args.out, damsm_dir=args.damsm, preset=args.preset,
                          overrides=list(args.set or []))  # fmt: skip
    s = report.sizes
    epoch = "" if report.dfgan_epoch is None else f" (DF-GAN epoch {report.dfgan_epoch})"
    print(f"DF-GAN checkpoint {args.checkpoint}{epoch} imported into {report.run_dir}: dfgan at {s.image_size} px, "
          f"nf={s.nf}, d_nf={s.d_nf}, z_dim={s.z_dim}, text_dim={s.text_dim}")
    if report.optimizers_imported:
        print("optimizer states: imported")
    else:
        print(f"optimizer states: fresh Adam states ({report.optimizer_note})")
    if report.dropped_keys:
        print(f"dropped {len(report.dropped_keys)} DF-GAN tensor(s) its forward never uses (D_Block.conv_s where "
              "the channels do not change)")
    for note in report.notes:
        print(f"note: {note}")
    print(f"resume training with: {report.resume_command}")
    return 0


def _add_import(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    imp = sub.add_parser("import", help="convert another code base's checkpoint into a csagan run folder")
    isub = imp.add_subparsers(dest="import_command", required=True, metavar="{dfgan}")
    df = isub.add_parser(
        "dfgan",
        help="DF-GAN's state_epoch_XXX.pth (tobran/DF-GAN) as a run of the dfgan configuration",
        description="Convert DF-GAN's checkpoint {'model': {'netG', 'netD', 'netC'}, 'optimizers', 'epoch'} into a "
        "csagan run folder of the dfgan configuration that `csagan sample`, `csagan evaluate` and "
        "`csagan train --resume` accept. Image size and widths are read from the weights; the optimizer states "
        "are imported when compatible, else fresh; import.json records the source and the resume command.",
    )
    df.add_argument("checkpoint", type=Path, help="DF-GAN's state_epoch_XXX.pth")
    df.add_argument("--out", required=True, type=Path, help="the run folder to create (new or empty)")
    df.add_argument("--damsm", required=True, type=Path,
                    help="the DAMSM folder DF-GAN was trained with (AttnGAN's text_encoder*.pth, image_encoder*.pth "
                         "and vocab.json, or `csagan pretrain-damsm`'s output)")
    df.add_argument("--preset", default=None, help="train preset for the run's train settings (default: toybirds-cpu)")
    df.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a train field as `csagan train --set` does (repeatable)")
    df.set_defaults(func=_cmd_import_dfgan)


# --------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """Return the ``csagan`` argument parser (exposed for tests and documentation)."""
    from csagan import __version__

    parser = argparse.ArgumentParser(
        prog="csagan",
        description="CSA-GAN: data, training, sampling and evaluation (see the book for the maths).",
    )
    parser.add_argument("--version", action="version", version=f"csagan {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data(sub)
    _add_training(sub)
    _add_evaluation(sub)
    _add_study(sub)
    _add_import(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``csagan`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (FileNotFoundError, ValueError, RuntimeError, OSError) as exc:
        if args.debug:
            raise
        print(f"csagan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("csagan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
