"""Entry point of the ``epopt`` console script.

Exit codes: 0 success; 2 bad input (unknown id, invalid value, broken file, unsupported
model); 3 storage failure; 4 no configuration meets the SLO (``epopt recommend``). Errors
print one ``error: ...`` line to stderr, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from optimizer.cli import db, gpus, models, profiles, recommend, simulate, space, surrogate
from optimizer.errors import EpoptError, StorageError

__all__ = ["app", "main"]

app = typer.Typer(
    name="epopt",
    help="Pick the LLM serving configuration that meets a latency SLO at the lowest cost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(profiles.app, name="profiles")
app.add_typer(models.app, name="models")
app.add_typer(gpus.app, name="gpus")
app.add_typer(surrogate.app, name="surrogate")
app.command("space")(space.space_command)
app.command("recommend")(recommend.recommend_command)
app.command("simulate")(simulate.simulate_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map epopt errors to a one-line message and an exit code."""
    try:
        # with standalone_mode=False, click returns the code of a raised typer.Exit
        # instead of exiting (``epopt recommend`` exits 4 when nothing meets the SLO)
        result = app(args=argv, standalone_mode=False)
    except EpoptError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 3 if isinstance(exc, StorageError) else 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
