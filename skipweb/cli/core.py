"""Commands that need no database: models, describe, train."""

from __future__ import annotations

import inspect
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


@o.options(
    o.param("family", Annotated[str, typer.Argument(help="model family, see `skipweb models`")], inspect.Parameter.empty),
    o.param("depth", Annotated[int, typer.Option("--depth", "-d", help="network depth")], inspect.Parameter.empty),
    o.param("dataset", Annotated[str, typer.Option(help="input shape and classes of this dataset")], "cifar10"),
    *o.MODEL,
    o.param("as_json", Annotated[bool, typer.Option("--json", help="one JSON object")], False),
)  # fmt: skip
def describe(*, family: str, depth: int, dataset: str, as_json: bool, **model) -> None:
    # help: skipweb.cli.lazy.COMMANDS
    from skipweb.data import get_dataset_info
    from skipweb.describe import describe as describe_model
    from skipweb.grid import twin_options
    from skipweb.models import get_info

    data = get_dataset_info(dataset)
    opts, twin = o.model_options(model)
    if twin:
        opts.update(twin_options(get_info(family)))
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


@o.options(*o.GRID)
def train(**given) -> None:
    # help: skipweb.cli.lazy.COMMANDS
    specs = _grid("train", given)
    if len(specs) != 1:
        raise typer.BadParameter("train runs one configuration; use `skipweb submit` for a grid")
    _train(specs[0], title=given["title"], tags=_tags(given["tags"]), as_json=given["as_json"])


@o.options(o.param("ctx", typer.Context, inspect.Parameter.empty), *o.GRID, *o.SUBMIT_ONLY)
def submit(ctx: typer.Context, *, preset: str | None, force: bool, **given) -> None:
    # help: skipweb.cli.lazy.COMMANDS
    from skipweb.grid import split_list

    tags = _tags(given["tags"])
    if preset is None:
        _submit(_grid("submit", given), title=given["title"], tags=tags, force=force, as_json=given["as_json"])
        return
    story = _story(preset)
    training = _preset_options(ctx, {name: given[name] for name in o.TRAINING})  # device decides the queue
    seed = given["seed"]
    specs = story.preset.specs(None if seed is None else split_list(seed, int), **training)
    surface = {"grid": story.preset.landscape_grid} if story.preset.landscape else None
    _submit(specs, title=given["title"] or story.title, tags=[story.tag, *(t for t in tags if t != story.tag)],
            force=force, as_json=given["as_json"], landscape=surface)  # fmt: skip


def _tags(text: str) -> list[str]:
    return [t for t in (x.strip() for x in text.split(",")) if t]


def _grid(command: str, given: dict) -> list:
    """The specs the shared options ask for (skipweb.grid.plan: the grid Launch and the presets expand too)."""
    from skipweb.grid import plan, split_list

    if given["family"] is None or given["depth"] is None:
        alone = " (or --preset KEY)" if command == "submit" else ""
        raise UserError(f"{command} needs a model family and --depth{alone}")
    opts, twin = o.model_options(given)
    # a training option left out (None) takes the dataset's recipe: RunSpec fills it in
    base = {"dataset": given["dataset"], **{k: given[k] for k in o.TRAINING if given[k] is not None}}
    return plan(split_list(given["family"]), split_list(given["depth"], int), split_list(given["seed"] or "0", int),
                base, opts, twin=twin)  # fmt: skip


# ---- submit --preset: which of train's options a story's preset takes ----------------------------------------
# A preset fixes its grid (families, depths, dataset, model options); the training recipe and set-up are
# overrides of its base. The grid's options are refused by name rather than dropped.
PRESET_FIXES = {"family": "the family argument", "depth": "--depth", "dataset": "--dataset",
                **{p.name: f"--{p.name.replace('_', '-')}" for p in o.MODEL}}  # fmt: skip


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
    return {name: v for name, v in training.items() if given(name)}


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
    from skipweb.training.sinks import Recorder

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
