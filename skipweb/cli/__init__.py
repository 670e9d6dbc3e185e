"""The ``skipweb`` command line. Every user error exits 2 with one line: the problem and the valid choices."""

from __future__ import annotations

import sys

import typer
from typer.main import get_command

try:  # Typer >= 0.26 vendors click: its usage errors derive from the public typer.TyperException
    from typer import TyperException as UsageProblem
except ImportError:  # pragma: no cover  (an older Typer raises click's own)
    from click import ClickException as UsageProblem

from skipweb.cli import landscape, runs, serve, stories, worker
from skipweb.cli.lazy import LazyGroup

app = typer.Typer(
    name="skipweb",
    help="See what skip connections do to a neural network.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,  # models, describe, train, submit: imported when they run
)
runs.register(app)
worker.register(app)
serve.register(app)
landscape.register(app)
stories.register(app)


def main(argv: list[str] | None = None) -> None:
    from db.errors import SchemaError
    from skipweb.errors import DatasetError, ModelConfigError, SpecError, UserError

    command = get_command(app)
    try:
        rv = command.main(args=argv, prog_name="skipweb", standalone_mode=False)
    except UsageProblem as e:  # usage errors: one line, no usage block
        if asked_for_help(e):
            typer.echo(e.format_message())
            sys.exit(0)
        typer.echo(f"error: {e.format_message()}", err=True)
        sys.exit(2)
    except (UserError, SpecError, ModelConfigError, DatasetError, SchemaError) as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as e:  # the database away or locked past its wait: one line, not SQLAlchemy's traceback
        if not type(e).__module__.startswith("sqlalchemy"):
            raise
        from db.retry import cause, transient
        from db.session import redacted
        from skipweb.settings import get_settings

        where = redacted(get_settings().db_url)
        what = "is unavailable or locked by another writer; try again" if transient(e) else "refused the request"
        typer.echo(f"error: the database at {where} {what} ({cause(e)})", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


def asked_for_help(e: Exception) -> bool:
    """A group called without a command (``skipweb``, ``skipweb db``): its help, which ``no_args_is_help``
    raises as a usage error carrying the group's context, is the answer rather than an error."""
    ctx = getattr(e, "ctx", None)
    return ctx is not None and e.format_message() == ctx.get_help()
