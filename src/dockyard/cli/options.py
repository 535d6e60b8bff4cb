"""What the ``dockyard`` options share: help naming each one's variable, choices from
the core enums, and the flags of earlier versions.

No option reads the environment itself (no click ``envvar``): ``dockyard.settings`` is
the one reader of ``DOCKYARD_*``, so precedence and error messages are the same for a
flag, a variable and a dockyard.yaml value. The help only names the variable.
"""

from __future__ import annotations

from enum import StrEnum

from dockyard.settings import env_name

CONTEXT = {"help_option_names": ["-h", "--help"]}
"""Click context settings of every command and group."""


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
