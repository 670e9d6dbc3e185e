"""The top-level command group, with the commands whose options derive from RunSpec built on first use.

``models``, ``describe``, ``train`` and ``submit`` live in :mod:`skipweb.cli.core`, whose options come from
RunSpec's fields (pydantic, about 0.1 s to import). The database commands never need them, so the group
lists these four by name and help (``COMMANDS``, where they are registered) and imports core only when
one of them runs or its own ``--help`` is asked for: ``skipweb status`` stays an instant command.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command

# command → (the function in skipweb.cli.core, its help); `train` and `submit` share one option set
COMMANDS = {
    "models": ("models", "Families, their variants and valid depths."),
    "describe": ("describe", "Parameters, FLOPs per sample, probe layers and a short layer summary."),
    "train": ("train", "Train one model in this process with a progress bar; recorded like a submitted run, so "
                       "it shows in the dashboard."),
    "submit": ("submit", "Queue a grid (families × depths × seeds, or a story's --preset) for the workers; "
                        "returns at once. Watch it with `skipweb status` or the dashboard."),
}  # fmt: skip


class Deferred(TyperCommand):
    """Stands in for a core command in listings (its name and help); :meth:`LazyGroup.resolve_command`
    swaps in the real one before anything is parsed."""

    def __init__(self, name: str) -> None:
        super().__init__(name, help=COMMANDS[name][1])

    def load(self) -> TyperCommand:
        from skipweb.cli import core

        function, help = COMMANDS[self.name]  # type: ignore[index]
        sub = typer.Typer()
        sub.command(self.name, help=help)(getattr(core, function))
        return get_command(sub)  # one command: the command itself, not a group


class LazyGroup(TyperGroup):
    """``get_command`` gives the stand-ins (listings ask it for every command); only ``resolve_command``,
    the path by which click runs a command, builds the real one."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = {**{name: Deferred(name) for name in COMMANDS}, **self.commands}  # listed first, as before

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        return name, (cmd.load() if isinstance(cmd, Deferred) else cmd), rest
