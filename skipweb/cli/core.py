"""Commands that need no database: models, describe, train."""

from __future__ import annotations

import json
import shutil
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from skipweb.cli import options as o

stdout, stderr = Console(), Console(stderr=True)


def models() -> None:
    """Families, their variants and valid depths."""
    from skipweb.models import get_info, list_models

    table = Table(title="skipweb model families")
    for col in ("family", "task", "depths", "options", "summary"):
        table.add_column(col, overflow="fold")
    for name in list_models():
        info = get_info(name)
        opts = ", ".join(f"{k}={'|'.join(map(str, v))}" for k, v in info.options.items())
        table.add_row(name, info.task, info.depth_rule, opts, info.summary)
    stdout.print(table)


def describe(
    family: Annotated[str, typer.Argument(help="model family, see `skipweb models`")],
    depth: Annotated[int, typer.Option("--depth", "-d", help="network depth")],
    dataset: Annotated[str, typer.Option(help="input shape and classes of this dataset")] = "cifar10",
    shortcut: o.Shortcut = None, block: o.Block = None, growth: o.Growth = None, bc: o.BC = False,
    skip: o.Skip = None, no_skip: o.NoSkip = False, norm: o.Norm = None, act: o.Act = None,
    init: o.Init = None, width: o.Width = None, up: o.Up = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Parameters, FLOPs per sample, probe layers and a short layer summary."""
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
    family: Annotated[str, typer.Argument(help="model family, see `skipweb models`")],
    depth: Annotated[int, typer.Option("--depth", "-d")],
    dataset: Annotated[str, typer.Option(help="dataset, e.g. digits, shapes, cifar10")] = "digits",
    epochs: Annotated[int, typer.Option(help="training epochs")] = 10,
    seed: Annotated[int, typer.Option()] = 0,
    subset: Annotated[int | None, typer.Option(help="train on only N samples")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 128,
    optimizer: Annotated[str, typer.Option(help="sgd or adamw")] = "sgd",
    lr: Annotated[float, typer.Option(help="peak learning rate")] = 0.1,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 1e-4,
    schedule: Annotated[str, typer.Option(help="multistep, cosine, onecycle or constant")] = "multistep",
    warmup: Annotated[float, typer.Option(help="warm-up epochs")] = 0.0,
    probe_every: Annotated[int, typer.Option("--probe-every", help="probe gradients every N steps")] = 10,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    amp: Annotated[str, typer.Option(help="none, bf16 or fp16 (CUDA)")] = "none",
    channels_last: Annotated[bool, typer.Option("--channels-last")] = False,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model")] = False,
    shortcut: o.Shortcut = None, block: o.Block = None, growth: o.Growth = None, bc: o.BC = False,
    skip: o.Skip = None, no_skip: o.NoSkip = False, norm: o.Norm = None, act: o.Act = None,
    init: o.Init = None, width: o.Width = None, up: o.Up = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object at the end")] = False,
) -> None:
    """Train one model in this process, with a progress bar."""
    from skipweb.cli.progress import ProgressSink
    from skipweb.settings import get_settings
    from skipweb.sinks import Recorder
    from skipweb.spec import RunSpec
    from skipweb.trainer import Trainer

    opts = o.model_options(family, shortcut=shortcut, block=block, growth=growth, bc=bc, skip=skip,
                           no_skip=no_skip, norm=norm, act=act, init=init, width=width, up=up)
    spec = RunSpec.parse(dict(
        family=family, depth=depth, dataset=dataset, options=opts, epochs=epochs, seed=seed, subset=subset,
        batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay, schedule=schedule,
        warmup_epochs=warmup, probe_every=probe_every, device=device, amp=amp, channels_last=channels_last,
        compile=compile_,
    ))
    settings = get_settings()
    ckpt = settings.checkpoint_dir / f"cli-{spec.config_hash()}"
    shutil.rmtree(ckpt, ignore_errors=True)  # a CLI run starts fresh
    recorder = Recorder()
    with ProgressSink(spec.label, console=stderr if as_json else stdout) as progress:
        result = Trainer(spec, data_dir=settings.datasets_dir, checkpoint_dir=ckpt,
                         sinks=[recorder, progress]).run()
    if as_json:
        print(json.dumps(run_json(spec, recorder)))
    else:
        final = ", ".join(f"{k} {v:.4g}" for k, v in summary_final(recorder).items())
        stdout.print(f"{spec.label}: {result.status}" + (f" ({result.reason})" if result.reason else "") + f"  {final}")
    if result.status == "failed":
        raise typer.Exit(1)


def summary_final(rec) -> dict[str, float]:
    last = rec.epochs[-1] if rec.epochs else {}
    seg = "test/miou" in last
    keys = {"train_loss": "epoch/train_loss", "train_error": "epoch/train_error"}
    keys.update({"test_miou": "test/miou", "test_dice": "test/dice", "test_error": "test/error"} if seg
                else {"test_error": "test/error"})
    return {k: last[v] for k, v in keys.items() if v in last}


def run_json(spec, rec) -> dict:
    """The `train --json` object: params, final metrics and first/last probe-layer gradient norms."""
    probes = rec.probes
    grad = {}
    if probes:
        grad = {name: {"first": p.grad_norm[0], "last": p.grad_norm[-1], "step": p.step}
                for name, p in (("first_step", probes[0]), ("last_step", probes[-1]))}
    r = rec.result
    return {"family": spec.family, "depth": spec.depth, "dataset": spec.dataset, "options": spec.options,
            "params": rec.info.params if rec.info else None, "flops": rec.info.flops if rec.info else None,
            "status": r.status, "reason": r.reason, "epochs": r.epochs_done, "steps": r.steps,
            "final": summary_final(rec), "grad": grad}


def register(app: typer.Typer) -> None:
    app.command()(models)
    app.command()(describe)
    app.command()(train)
