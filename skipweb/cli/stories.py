"""Commands for the reproduction stories and the recipes they train with: story, recipes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from skipweb.cli.runs import MAX_ID, UserError, open_db

stdout = Console()


def story(
    key: Annotated[str, typer.Argument(help="story key: degradation, gradient-regimes, densenet, ...")],
    exp: Annotated[int | None, typer.Option("--exp", min=1, max=MAX_ID,
                                            help="experiment id (default: the newest tagged story:KEY)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    deck: Annotated[Path | None, typer.Option("--html", help="also write the story as one self-contained HTML "
                                              "deck (charts and plotly.js inlined: opens offline)")] = None,
) -> None:
    """A story's findings, computed from its experiment's runs (as /present?story=KEY shows them)."""
    from db.queries import get_experiment
    from skipweb.stories import get_story, story_experiment, story_runs

    try:
        chosen = get_story(key)
    except KeyError as e:
        raise UserError(e.args[0]) from None
    settings = open_db(create=True)
    if exp is not None:
        if get_experiment(settings.db_url, exp) is None:
            raise UserError(f"no experiment {exp}; see `skipweb status` for experiment ids")
        exp_id: int | None = exp
    else:
        found = story_experiment(settings.db_url, key)
        exp_id = found.id if found else None
    runs = story_runs(settings.db_url, exp_id) if exp_id is not None else []
    view = chosen.build(settings.db_url, runs)
    if deck is not None:
        write_deck(deck, chosen, view, get_experiment(settings.db_url, exp_id) if exp_id is not None else None, runs)
    findings = [{"verdict": f.verdict, "text": f.text, "values": {k: _finite(v) for k, v in f.values.items()}}
                for f in view.findings]  # fmt: skip
    if as_json:
        print(json.dumps({"story": key, "experiment_id": exp_id, "findings": findings}))
        return
    where = f"experiment {exp_id}" if exp_id is not None else f"no experiment tagged {chosen.tag} yet"
    stdout.print(f"[bold]{chosen.title}[/bold] ({where})", highlight=False)
    for f in findings:
        stdout.print(f"- [{f['verdict']}] {f['text']}", highlight=False, markup=False)


def write_deck(path: Path, story, view, exp, runs) -> None:
    """The deck the Present page's "Download as a deck" button gives, written to ``path``."""
    from skipweb.stories.deck import deck_html

    if str(path) in ("", ".") or path.is_dir():
        raise UserError(f"{str(path)!r} is not a file to write; give --html a file name, e.g. deck.html")
    text = deck_html(story, view, exp, runs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    Console(stderr=True).print(f"wrote {path} ({len(view.findings)} findings, {len(view.figures)} charts, "
                               f"{len(text) / 1e6:.1f} MB; opens offline)", highlight=False)  # fmt: skip


def _finite(v) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def recipes() -> None:
    """Each dataset's default training recipe (what a run gets for the fields it leaves out)."""
    from skipweb.recipes import RECIPES

    table = Table("dataset", "epochs", "batch", "lr", "warm-up", "schedule", "source")
    sources = list(dict.fromkeys(r.source for r in RECIPES.values()))
    for name, r in RECIPES.items():
        table.add_row(name, str(r.epochs), str(r.batch_size), f"{r.lr:g}", f"{r.warmup_epochs:g}", r.schedule,
                      f"[{sources.index(r.source) + 1}]")  # fmt: skip
    stdout.print(table)
    for i, text in enumerate(sources, start=1):
        stdout.print(f"[{i}] {text}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command()(story)
    app.command()(recipes)
