"""Load user code in a throwaway process: ``python -m dockyard.execution.probe REQUEST``.

The serve process never imports the user's code. Before it serves local code, and
before it switches to a new revision of git-sourced code, it asks this process to load
every entrypoint (or the dockyard.yaml that lists them) and to make the deployments.
A commit with a syntax error, a missing flow or a broken YAML file is refused without
the serve process importing it. Prints one JSON line, a ``ProbeResult``: the
deployments as ``Deployment.to_spec()`` dicts, or the error; exit code 0 or 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from dockyard.core.deployments import Deployment, check_unique
from dockyard.execution.leftovers import die_with_parent
from dockyard.execution.spec import ProbeRequest, ProbeResult


def check(request: ProbeRequest) -> list[Deployment]:
    """The deployments ``request`` describes, made from the code under its root."""
    from dockyard.config import load_config
    from dockyard.execution import deploying

    root = Path(request.root)
    sys.path.insert(0, str(root))
    stamp = {"source_key": request.source_key, "revision": request.revision}
    if request.config:
        config_path = root / request.config
        base_dir = root if request.config_base == "root" else None
        return deploying.from_config(load_config(config_path), config_path, base_dir, **stamp)
    made = [
        deploying.from_entrypoint(e.entrypoint, root, e.options, name=e.name, **stamp)
        for e in request.entrypoints
    ]
    check_unique(made)
    return made


def result_for(request: ProbeRequest) -> ProbeResult:
    """``check`` as a ``ProbeResult``: every failure becomes a one-line error."""
    from dockyard.errors import DockyardError

    try:
        made = check(request)
    except DockyardError as exc:
        return ProbeResult(False, str(exc), exc.exit_code, type(exc).__name__)
    except Exception as exc:  # anything user code raises while loading
        return ProbeResult(False, f"{type(exc).__name__}: {exc}")
    return ProbeResult(True, deployments=tuple(d.to_spec() for d in made))


def main() -> int:
    envelope = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    die_with_parent(int(envelope.pop("parent_pid", os.getppid())))
    request = ProbeRequest.from_json(envelope)
    result = result_for(request)
    print(result.to_line(), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
