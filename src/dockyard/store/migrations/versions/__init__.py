"""The revisions, one module each; Alembic loads them by file (see ``migrations``)."""
