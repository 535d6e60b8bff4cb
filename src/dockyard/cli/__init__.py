"""The ``dockyard`` command line."""

from dockyard.cli.app import app, main

__all__ = ["app", "main"]
