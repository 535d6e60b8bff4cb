"""The ``dockyard`` command line: the command tree, and errors as one line.

Each command lives in its own module (``serve``, ``build``, and ``resources`` for the
``deployment``, ``run`` and ``replica`` groups), with the option types they share in
``options``. Errors are one line on stderr (``dockyard: error: …``) with exit code 2 for
usage errors and 1 otherwise; ``--debug`` (or DOCKYARD_DEBUG) shows the traceback instead.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperArgument

from dockyard.cli import build, resources, serve
from dockyard.cli.options import CONTEXT, DEBUG
from dockyard.errors import DockyardError

app = typer.Typer(
    name="dockyard",
    help="Serve Python workflows from long-lived containers.",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
    context_settings=CONTEXT,
)
app.command("serve")(serve.serve)
app.add_typer(resources.deployment_app, name="deployment")
app.add_typer(resources.run_app, name="run")
app.add_typer(resources.replica_app, name="replica")
app.command("build")(build.build)


def _print_version(given: bool) -> None:
    if given:
        from dockyard._version import __version__

        print(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_print_version,
            help="Print dockyard's version and exit.",
        ),
    ] = False,
) -> None:
    pass


@app.command("version")
def version() -> None:
    """Print dockyard's version."""
    from dockyard._version import __version__

    print(__version__)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, exit 2 for usage errors, 1 otherwise."""
    args = list(sys.argv[1:] if argv is None else argv)
    DEBUG["on"] = "--debug" in args
    if argv is None:
        _hide_credentials(args)
    command = click_command()
    try:
        code = command.main(args, prog_name="dockyard", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:
        _usage_error(exc)
    except DockyardError as exc:
        if DEBUG["on"]:
            traceback.print_exc()  # the traceback instead of the line, same exit code
        else:
            print(f"dockyard: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def click_command() -> Any:
    """The click command tree of ``app``, each argument shown by its metavar alone
    (typer would add the Python type: ``ENTRYPOINT <str>``)."""
    command = typer.main.get_command(app)
    for sub in _walk(command):
        for param in sub.params:
            if isinstance(param, TyperArgument):
                param.__class__ = _Argument
    return command


def _walk(command: Any) -> list[Any]:
    subs = getattr(command, "commands", {}).values()
    return [command, *(c for sub in subs for c in _walk(sub))]


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _hide_credentials(args: list[str]) -> None:
    """Hide passwords in this process's arguments from ``ps`` before anything else."""
    from dockyard.execution.environment import hide_argv_credentials
    from dockyard.settings import password_in_flag

    hide_argv_credentials()
    if password_in_flag(args):
        print(
            "dockyard: warning: --database-url holds a password, which process lists showed "
            "until now (dockyard hid it): prefer DOCKYARD_DATABASE_URL_FILE, "
            "DOCKYARD_DATABASE_URL or PGPASSFILE",
            file=sys.stderr,
        )


def _usage_error(exc: typer.TyperException) -> None:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare `dockyard run`: show the help
        print(exc.format_message(), file=sys.stderr)
        sys.exit(2)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    message = exc.format_message().replace("Value error, ", "")  # typer's pydantic wording
    print(f"dockyard: error: {message}{hint}", file=sys.stderr)
    sys.exit(getattr(exc, "exit_code", 2))
