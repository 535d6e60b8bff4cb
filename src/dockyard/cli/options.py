"""What the ``dockyard`` options share: help naming each one's variable, choices from
the core enums, and the flags of earlier versions.

No option reads the environment itself (no click ``envvar``): ``dockyard.settings`` is
the one reader of ``DOCKYARD_*``, so precedence and error messages are the same for a
flag, a variable and a dockyard.yaml value. The help only names the variable.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from dockyard.settings import env_name

CONTEXT = {"help_option_names": ["-h", "--help"]}
"""Click context settings of every command and group."""
DEBUG = {"on": False}
"""Whether errors show their traceback (``--debug`` or DOCKYARD_DEBUG): read by ``main``."""


class LogFormat(StrEnum):
    """The values of ``--log-format`` (DOCKYARD_LOG_FORMAT)."""

    TEXT = "text"
    JSON = "json"


class ExecutorKind(StrEnum):
    """The values of ``--executor`` (DOCKYARD_EXECUTOR)."""

    WARM = "warm"
    FRESH = "fresh"


def env_help(field: str, text: str) -> str:
    """``text`` with the variable of the setting: ``Max concurrent runs. [env: DOCKYARD_LIMIT]``."""
    return f"{text} [env: {env_name(field)}]"


def image_env_help(field: str, text: str) -> str:
    """Help of a ``build`` option baked into the image, which the variable overrides when
    the container runs: ``… [run-time env: DOCKYARD_LIMIT]``."""
    return f"{text} [run-time env: {env_name(field)}]"


def choices(enum: type[StrEnum]) -> str:
    """The metavar of an option taking one of an enum's values: ``[allow|skip|cancel-previous]``."""
    return "[" + "|".join(member.value for member in enum) + "]"


def one_of(enum: type[StrEnum]) -> str:
    """The values of an enum for a help text: ``Scheduled, Pending, …``."""
    return ", ".join(member.value for member in enum)


def value_of(member: StrEnum | None) -> str | None:
    """An enum option's value as the plain string the settings and specs hold."""
    return None if member is None else member.value


def hidden(flag: str, metavar: str, new: str) -> Any:
    """A flag of an earlier version, kept but not shown (the command warns when it is used)."""
    return typer.Option(flag, hidden=True, metavar=metavar, help=f"Deprecated: use {new}.")


StateOpt = Annotated[
    str | None,
    typer.Option(
        "--state",
        metavar="PATH",
        help=env_help(
            "state",
            "State database file; with a database URL, local files (results, sources) "
            "still go beside it.",
        ),
    ),
]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        help=env_help(
            "database_url",
            "PostgreSQL state database, e.g. postgresql://dockyard@db:5432/dockyard, or the "
            "file DOCKYARD_DATABASE_URL_FILE names. No password here (process lists show "
            "it): put it in those, or in PGPASSFILE / PGPASSWORD.",
        ),
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
# main() reads --debug from argv; the commands declare it so that click accepts it.
DebugOpt = Annotated[bool, typer.Option("--debug", help="Tracebacks on errors.")]
_URL_HELP = "A running serve process, e.g. http://127.0.0.1:8080 (token: DOCKYARD_API_TOKEN)."
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help=env_help("url", _URL_HELP + " Without it, read the --state / --database-url one."),
    ),
]
ServerUrlOpt = Annotated[
    str | None, typer.Option("--url", metavar="URL", help=env_help("url", _URL_HELP))
]
# The bounds of the API's `limit` and `tail` query parameters (web/api.py), so that
# `--state` and `--url` accept the same values.
MAX_RUNS = 500
MAX_TAIL = 100_000
TailOpt = Annotated[
    int | None, typer.Option(min=1, max=MAX_TAIL, metavar="N", help="Only the last N lines.")
]
NameArg = Annotated[str, typer.Argument(metavar="FLOW/DEPLOYMENT", help="The deployment.")]
RunIdArg = Annotated[
    str, typer.Argument(metavar="RUN_ID", help="A run's id, or a unique prefix of it.")
]
