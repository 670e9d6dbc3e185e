"""Commands that need no database: models, describe, train."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from skipweb.cli import options as o
from skipweb.cli.runs import UserError
from skipweb.facts import Metric

stdout, stderr = Console(), Console(stderr=True)


def models() -> None:
    # help: skipweb.cli.lazy.COMMANDS
    from skipweb.models import get_info, list_models

    # one block per family, not a five-column table: at 80 columns the table folded words in the middle
    for name in list_models():
        info = get_info(name)
        opts = ", ".join(f"{k}={'|'.join(map(str, v))}" for k, v in info.options.items())
        stdout.print(f"{name} ({info.task}): {info.summary}", style="bold", highlight=False, markup=False)
        stdout.print(f"  depths: {info.depth_rule}\n  options: {opts}\n", highlight=False, markup=False)


def describe(
    family: Annotated[str, typer.Argument(help="model family, see `skipweb models`")],
    depth: Annotated[int, typer.Option("--depth", "-d", help="network depth")],
    dataset: Annotated[str, typer.Option(help="input shape and classes of this dataset")] = "cifar10",
    shortcut: o.Shortcut = None, block: o.Block = None, growth: o.Growth = None, bc: o.BC = False,
    skip: o.Skip = None, no_skip: o.NoSkip = False, norm: o.Norm = None, act: o.Act = None,
    init: o.Init = None, width: o.Width = None, up: o.Up = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    # help: skipweb.cli.lazy.COMMANDS
    from skipweb.data import get_dataset_info
    from skipweb.describe import describe as describe_model

    data = get_dataset_info(dataset)
    opts = o.model_options(family, shortcut=shortcut, block=block, growth=growth, bc=bc, skip=skip,
                           no_skip=no_skip, norm=norm, act=act, init=init, width=width, up=up)
    d = describe_model(family, depth, num_classes=data.num_classes, in_channels=data.in_channels,
                       image_size=data.image_size, **opts)
    d["dataset"] = dataset
    if as_json:
        print(json.dumps(d))
        return
    stdout.print(f"[bold]{family}-{depth}[/bold] on {dataset} {tuple(d['input'])}  options: {d['options']}")
    stdout.print(f"parameters {d['params']:,}   FLOPs/sample {d['flops']:,}   probe layers {d['probe_layers']}"
                 f" ({d['skip_layers']} bridged by skips)")
    table = Table("module", "type", "params")
    for row in d["summary"]:
        table.add_row(row["name"], row["type"], f"{row['params']:,}")
    stdout.print(table)


def train(
    ctx: typer.Context,
    family: Annotated[str | None, typer.Argument(help="model family (submit: a comma list), see `skipweb models`",
                                                 show_default=False)] = None,
    depth: Annotated[str | None, typer.Option("--depth", "-d", help="depth (submit: a comma list, e.g. 20,56)")] = None,
    dataset: Annotated[str, typer.Option(help="dataset, e.g. digits, shapes, cifar10")] = "digits",
    epochs: o.Epochs = None,
    seed: Annotated[str | None, typer.Option("--seed", "--seeds", help="seed (submit: a comma list); default 0, "
                                             "or the preset's seeds 0,1,2")] = None,
    subset: o.Subset = None,
    batch_size: o.BatchSize = None,
    optimizer: o.Optimizer = None,
    lr: o.Lr = None,
    weight_decay: o.WeightDecay = None,
    schedule: o.Schedule = None,
    warmup: o.Warmup = None,
    probe_every: o.ProbeEvery = o.spec_default("probe_every"),
    device: o.Device = None,
    amp: o.Amp = o.spec_default("amp"),
    channels_last: o.ChannelsLast = o.spec_default("channels_last"),
    compile_: o.Compile = o.spec_default("compile"),
    shortcut: o.Shortcut = None, block: o.Block = None, growth: o.Growth = None, bc: o.BC = False,
    skip: o.Skip = None, no_skip: o.NoSkip = False, norm: o.Norm = None, act: o.Act = None,
    init: o.Init = None, width: o.Width = None, up: o.Up = None, zero_init_residual: o.ZeroInit = False,
    preset: Annotated[str | None, typer.Option(help="submit: a story's preset (see `skipweb story --help`)")] = None,
    title: Annotated[str | None, typer.Option(help="experiment title")] = None,
    tags: Annotated[str, typer.Option(help="comma-separated experiment tags")] = "",
    force: Annotated[bool, typer.Option("--force", help="submit: run configurations that already succeeded, or "
                                        "are queued or running, again")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object at the end")] = False,
) -> None:
    """train: one model in this process, with a progress bar. submit: a grid, queued for the workers."""
    from skipweb.grid import plan, split_list

    tag_list = [t for t in (x.strip() for x in tags.split(",")) if t]
    if preset is not None:
        if ctx.info_name != "submit":
            raise UserError("--preset submits a story's runs; use `skipweb submit --preset KEY`")
        story = _story(preset)
        training = _preset_options(ctx, dict(
            epochs=epochs, subset=subset, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
            schedule=schedule, warmup_epochs=warmup, probe_every=probe_every, device=device, amp=amp,
            channels_last=channels_last, compile=compile_))  # fmt: skip  (device: where it trains decides its queue)
        specs = story.preset.specs(None if seed is None else split_list(seed, int), **training)
        tags_all = [story.tag, *(t for t in tag_list if t != story.tag)]
        surface = {"grid": story.preset.landscape_grid} if story.preset.landscape else None
        _submit(specs, title=title or story.title, tags=tags_all, force=force, as_json=as_json, landscape=surface)
        return
    if family is None or depth is None:
        raise UserError(f"{ctx.info_name} needs a model family and --depth (or, for submit, --preset KEY)")
    families, depths, seeds = split_list(family), split_list(depth, int), split_list(seed or "0", int)
    opts = o.model_options(families[0], shortcut=shortcut, block=block, growth=growth, bc=bc, skip=skip,
                           no_skip=no_skip, norm=norm, act=act, init=init, width=width, up=up,
                           zero_init_residual=zero_init_residual)
    given = dict(epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                 schedule=schedule, warmup_epochs=warmup)  # None: the dataset's recipe (RunSpec fills it in)
    base = dict(dataset=dataset, subset=subset, probe_every=probe_every, device=device or "auto", amp=amp,
                channels_last=channels_last, compile=compile_, **{k: v for k, v in given.items() if v is not None})
    if no_skip:  # --no-skip maps to each family's own twin option
        opts = {k: v for k, v in opts.items() if k not in ("no_skip", "skip")}
        specs = [s for f in families for s in plan([f], depths, seeds, base, {**opts, **o.model_options(f, no_skip=True)})]
    else:
        specs = plan(families, depths, seeds, base, opts)
    if ctx.info_name == "submit":
        _submit(specs, title=title, tags=tag_list, force=force, as_json=as_json)
    else:
        if len(specs) != 1:
            raise typer.BadParameter("train runs one configuration; use `skipweb submit` for a grid")
        _train(specs[0], title=title, tags=tag_list, as_json=as_json)


# ---- submit --preset: which of train's options a story's preset takes ----------------------------------------
# A preset fixes its grid (families, depths, dataset, model options); the training recipe and set-up are
# overrides of its base. The grid's options are refused by name rather than dropped.
PRESET_FIXES = {"family": "the family argument", "depth": "--depth", "dataset": "--dataset", "shortcut": "--shortcut",
                "block": "--block", "growth": "--growth", "bc": "--bc", "skip": "--skip", "no_skip": "--no-skip",
                "norm": "--norm", "act": "--act", "init": "--init", "width": "--width", "up": "--up",
                "zero_init_residual": "--zero-init-residual"}  # fmt: skip
PRESET_PARAMS = {"warmup_epochs": "warmup", "compile": "compile_"}  # RunSpec field → train()'s parameter name


def _preset_options(ctx: typer.Context, training: dict) -> dict:
    """The RunSpec fields the command line set for a preset's runs (``training``: field → value); refuses,
    in one line, the options that would change the preset's grid."""
    def given(param: str) -> bool:  # typed on the command line (by name: Typer may vendor its own click)
        source = ctx.get_parameter_source(param)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    fixed = [flag for param, flag in PRESET_FIXES.items() if given(param)]
    if fixed:
        raise UserError(f"--preset sets its own families, depths, dataset and model options; drop {', '.join(fixed)} "
                        "(or submit the grid yourself: `skipweb submit FAMILY --depth ...`)")
    return {name: v for name, v in training.items() if given(PRESET_PARAMS.get(name, name))}


def _story(key: str):
    from skipweb.stories import get_story

    try:
        return get_story(key)
    except KeyError as e:
        raise UserError(e.args[0]) from None


def _submit(specs, *, title, tags, force, as_json, landscape=None) -> None:
    from skipweb.cli.runs import open_db
    from skipweb.services.launch import submit

    open_db(create=True)
    title = title or ", ".join(dict.fromkeys(f"{s.family}" for s in specs)) + f" on {specs[0].dataset}"
    result = submit(specs, title=title, tags=tags, force=force, owner=os.environ.get("USER"),
                    landscape=landscape)  # fmt: skip
    if as_json:
        print(json.dumps(result.as_json()))
        return
    for item in result.skipped:
        stdout.print(f"skipped {item['label']}: already {item['status']} as run {item['run_id']} "
                     "(use --force to run it again)")
    if result.run_ids:
        stdout.print(f"experiment {result.experiment_id}: queued runs {', '.join(map(str, result.run_ids))}")
    if result.warning:
        stderr.print(f"warning: {result.warning}")


def _train(spec, *, title, tags, as_json) -> None:
    """Record the run like a submitted one (so it shows in the dashboard), then execute it here."""
    from skipweb.cli.progress import ProgressSink
    from skipweb.cli.runs import open_db
    from skipweb.data import load_dataset
    from skipweb.services.launch import record_local
    from skipweb.services.training import execute
    from skipweb.sinks import Recorder

    settings = open_db(create=True)
    # Refuse an unavailable dataset (offline, bad subset) before anything is recorded.
    load_dataset(spec.dataset, data_dir=settings.datasets_dir, seed=spec.seed, subset=spec.subset)
    run_id = record_local(spec, title=title or f"cli: {spec.label}", tags=tags or ["cli"],
                          owner=os.environ.get("USER"), db=settings.db_url)  # fmt: skip
    recorder = Recorder()
    with ProgressSink(spec.label, console=stderr if as_json else stdout) as progress:
        outcome = execute(run_id, settings, extra_sinks=[recorder, progress], owner=f"cli:{os.getpid()}")
    result = recorder.result
    if as_json:
        print(json.dumps({"run_id": run_id, **run_json(spec, recorder)}))
    elif result is None:
        stderr.print(f"run {run_id}: {outcome}")
    else:
        final = ", ".join(f"{k} {v:.4g}" for k, v in summary_final(recorder).items())
        stdout.print(f"run {run_id} {spec.label}: {result.status}" + (f" ({result.reason})" if result.reason else "")
                     + f"  {final}")
    if result is None or result.status == "failed":
        raise typer.Exit(1)


def summary_final(rec) -> dict[str, float]:
    last = rec.epochs[-1] if rec.epochs else {}
    seg = Metric.TEST_MIOU in last
    keys = {"train_loss": Metric.EPOCH_TRAIN_LOSS, "train_error": Metric.EPOCH_TRAIN_ERROR}
    keys.update({"test_miou": Metric.TEST_MIOU, "test_dice": Metric.TEST_DICE, "test_error": Metric.TEST_ERROR}
                if seg else {"test_error": Metric.TEST_ERROR})  # fmt: skip
    return {k: last[v] for k, v in keys.items() if v in last}


def run_json(spec, rec) -> dict:
    """The `train --json` object: params, final metrics and first/last probe-layer gradient norms."""
    probes = rec.probes
    grad = {}
    if probes:
        grad = {name: {"first": p.grad_norm[0], "last": p.grad_norm[-1], "step": p.step}
                for name, p in (("first_step", probes[0]), ("last_step", probes[-1]))}
    r = rec.result
    if r is None:
        return {"status": "failed", "reason": "the run did not start"}
    return {"family": spec.family, "depth": spec.depth, "dataset": spec.dataset, "options": spec.options,
            "params": rec.info.params if rec.info else None, "flops": rec.info.flops if rec.info else None,
            "status": r.status, "reason": r.reason, "epochs": r.epochs_done, "steps": r.steps,
            "final": summary_final(rec), "grad": grad}
