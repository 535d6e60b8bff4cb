""".dockerignore cases: (patterns, the project's files, the files that go into the image).

tests/build checks ``project_files`` against the table; tests/e2e/test_docker.py checks
the same table against what the engine itself copies (``COPY . /ctx``), so the SDK's
matcher, which dockyard uses, is shown to agree with docker's on every case.
"""

from __future__ import annotations

from pathlib import Path

FILES = (
    "a.py",
    "README.md",
    "CHANGES.md",
    "docs/guide.md",
    "docs/deep/er/notes.md",
    "data/x.csv",
    "data/sub/x.csv",
    "build/lib/x.py",
    "src/build/y.py",
    "keep/secret.txt",
    "keep/other.txt",
    "logs/today.log",
    "Dockerfile",
)

CASES: dict[str, tuple[str, set[str]]] = {
    # "!" re-includes what an earlier pattern excluded; the last match wins.
    "exception": ("*.md\n!README.md\n", set(FILES) - {"CHANGES.md"}),
    "exception-then-exclude": ("!README.md\n*.md\n", set(FILES) - {"README.md", "CHANGES.md"}),
    # "*" stays in one folder; "**" crosses any number of them, zero included.
    "star-one-level": ("data/*.csv\n", set(FILES) - {"data/x.csv"}),
    "double-star": (
        "**/*.md\n",
        set(FILES) - {"README.md", "CHANGES.md", "docs/guide.md", "docs/deep/er/notes.md"},
    ),
    "double-star-end": ("docs/**\n", set(FILES) - {"docs/guide.md", "docs/deep/er/notes.md"}),
    "double-star-middle": ("docs/**/notes.md\n", set(FILES) - {"docs/deep/er/notes.md"}),
    # A folder pattern takes everything below it; a trailing "/" changes nothing.
    "folder": ("docs\n", set(FILES) - {"docs/guide.md", "docs/deep/er/notes.md"}),
    "folder-slash": ("logs/\n", set(FILES) - {"logs/today.log"}),
    "folder-with-exception": ("keep\n!keep/secret.txt\n", set(FILES) - {"keep/other.txt"}),
    # Patterns are rooted at the context: a leading "/" is the same, and "build" is only
    # the top-level folder, never src/build.
    "leading-slash": ("/build\n", set(FILES) - {"build/lib/x.py"}),
    "rooted": ("build\n", set(FILES) - {"build/lib/x.py"}),
    # Character classes. (Not negated ones: the engine negates "[^…]" as Go does, the SDK
    # "[!…]" as Python's fnmatch does, so a project needing one differs between the two.)
    "class": ("[CD]*.md\n", set(FILES) - {"CHANGES.md"}),
    # Comments and blank lines are not patterns.
    "comments": ("# *.py\n\n   \nlogs/*.log\n", set(FILES) - {"logs/today.log"}),
    # A project's own Dockerfile is a file like any other.
    "dockerfile": ("Dockerfile\n", set(FILES) - {"Dockerfile"}),
}


def make_project(root: Path, patterns: str) -> Path:
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel + "\n")
    (root / ".dockerignore").write_text(patterns)
    return root
