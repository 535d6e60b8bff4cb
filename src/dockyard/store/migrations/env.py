"""Alembic's environment: run the revisions on the connection dockyard passed in.

dockyard migrates its database itself when it opens it (``open_store``); this file is not
meant for the ``alembic`` command line.
"""

from __future__ import annotations

from alembic import context

from dockyard.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "dockyard migrates its state database when it opens it: run dockyard (or "
        "dockyard.store.open_store(url)) instead of the alembic command"
    )
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():  # no-op: the caller's transaction holds the lock
    context.run_migrations()
