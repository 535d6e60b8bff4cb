"""Test-run settings shared by every test module."""

import os

from hypothesis import settings

# CI explores the same examples every run (a failure there is reproducible and not
# luck); developers' runs keep drawing new ones and may find new edge cases.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")
