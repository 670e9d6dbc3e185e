"""Options shared by ``train`` and ``submit`` — declared once, with the same names everywhere.

The training options are derived from :class:`skipweb.spec.RunSpec`'s fields: their help text, their
bounds and their choices come from the field, so the CLI cannot drift from the spec. A recipe field
(skipweb.recipes) defaults to None: the dataset's recipe fills it in.
"""

from __future__ import annotations

import inspect
import typing
from typing import Annotated, Any

import typer

from skipweb.recipes import RECIPE_FIELDS
from skipweb.spec import RunSpec, bounds, choices

RECIPE = "(default: the dataset's recipe, see `skipweb recipes`)"


def spec_option(name: str, *flags: str, extra: str = "") -> Any:
    """``Annotated[type | None, typer.Option(...)]`` for the RunSpec field ``name``."""
    field = RunSpec.model_fields[name]
    kind = field.annotation
    allowed = choices(name)
    if allowed:
        kind = str
    elif typing.get_origin(kind) is not None:  # int | None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    low, high, _ = bounds(name)
    limits = {} if kind is bool else {k: v for k, v in (("min", low), ("max", high)) if v is not None}
    text = field.description or name.replace("_", " ")
    if allowed:
        text += f": {', '.join(map(str, allowed))}"
    if name in RECIPE_FIELDS:
        text += f" {RECIPE}"
    elif field.default is not None and kind is not bool:
        text += f" (default {field.default})"
    flags = flags or (f"--{name.replace('_', '-')}",)
    option = typer.Option(*flags, help=text + extra, show_default=False, **limits)
    return Annotated[kind if kind is bool else kind | None, option]


def spec_default(name: str) -> Any:
    """The value a CLI option of field ``name`` starts at: None for a recipe field (the recipe decides)."""
    if name in RECIPE_FIELDS:
        return None
    return RunSpec.model_fields[name].default


# ---- the option set `train` and `submit` share, declared once ---------------------------------------------
# RunSpec fields the command line sets (field → its flags when not --field-name); help, bounds, choices and
# defaults come from the field.
TRAINING = {"epochs": (), "subset": (), "batch_size": (), "optimizer": (), "lr": (), "weight_decay": (),
            "schedule": (), "warmup_epochs": ("--warmup",), "probe_every": (), "device": (), "amp": (),
            "channels_last": (), "compile": ("--compile",)}  # fmt: skip


def param(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def model_params() -> list[inspect.Parameter]:
    """One option per model option the registry declares (any family), its help and choices the registry's:
    a family's new option is an option here by being registered. ``--no-skip`` asks for each family's plain
    twin (skipweb.grid.twin_options). Values are checked by the registry, which names the valid ones."""
    from skipweb.models import OPTION_HELP, declared_options

    out = []
    for name, (values, owners) in declared_options().items():
        flag = f"--{name.replace('_', '-')}"
        text = OPTION_HELP.get(name, name.replace("_", " "))
        if all(isinstance(v, bool) for v in values):
            out.append(param(name, Annotated[bool, typer.Option(flag, help=f"{text} ({', '.join(owners)})")], False))
            continue
        kind = int if all(isinstance(v, int) for v in values) else float if all(
            isinstance(v, int | float) for v in values) else str  # fmt: skip
        text += f": {', '.join(map(str, values))} ({', '.join(owners)}; default: the family's)"
        out.append(param(name, Annotated[kind | None, typer.Option(flag, help=text, show_default=False)]))
    return out


MODEL = model_params()
DATASET = param("dataset", Annotated[str, typer.Option(help="dataset, e.g. digits, shapes, cifar10")], "digits")
JSON = param("as_json", Annotated[bool, typer.Option("--json", help="print one JSON object at the end")], False)
GRID = [
    param("family", Annotated[str | None, typer.Argument(help="model family (submit: a comma list), see "
                                                         "`skipweb models`", show_default=False)]),
    param("depth", Annotated[str | None, typer.Option("--depth", "-d", help="depth (submit: a comma list, e.g. "
                                                      "20,56)")]),
    DATASET,
    param("seed", Annotated[str | None, typer.Option("--seed", "--seeds", help="seed (submit: a comma list); "
                                                     "default 0, or the preset's seeds 0,1,2")]),
    *(param(name, spec_option(name, *flags), spec_default(name)) for name, flags in TRAINING.items()),
    *MODEL,
    param("title", Annotated[str | None, typer.Option(help="experiment title")]),
    param("tags", Annotated[str, typer.Option(help="comma-separated experiment tags")], ""),
    JSON,
]  # fmt: skip
SUBMIT_ONLY = [
    param("preset", Annotated[str | None, typer.Option(help="a story's preset (see `skipweb story --help`)")]),
    param("force", Annotated[bool, typer.Option("--force", help="run configurations that already succeeded, or "
                                                "are queued or running, again")], False),
]  # fmt: skip


def options(*params: inspect.Parameter):
    """Give a command the options ``params``: typer reads a command's signature, set here, and calls it with
    them as keyword arguments. So ``train`` and ``submit`` share one option set without repeating it."""

    def apply(fn):
        fn.__signature__ = inspect.Signature(params)
        fn.__annotations__ = {p.name: p.annotation for p in params}
        return fn

    return apply


def model_options(given: dict) -> tuple[dict, bool]:
    """The model options the user set (from a command's keyword arguments), and whether ``--no-skip`` asked
    for the plain twins."""
    opts = {p.name: given[p.name] for p in MODEL if given.get(p.name) not in (None, False)}
    return opts, bool(opts.pop("no_skip", False))
