"""Check a code revision in a throwaway process: ``python -m dockyard.execution.probe SPEC``.

Before dockyard switches to a new revision of git-sourced code it loads, here, every
entrypoint the deployments use (or the dockyard.yaml that lists them), so a commit
with a syntax error, a missing flow or a broken YAML file is refused without the
serve process importing it. Prints one JSON line: ``{"ok": true, "deployments": [...]}``
or ``{"ok": false, "error": "..."}``; exit code 0 or 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def check(spec: dict[str, Any]) -> list[str]:
    """Load what ``spec`` names under its path; return the deployment names it defines."""
    from dockyard.config import load_config
    from dockyard.execution import loader

    root = Path(spec["path"])
    sys.path.insert(0, str(root))
    if spec.get("config"):
        config_path = root / spec["config"]
        deployments = loader.from_config(load_config(config_path), config_path)
        from dockyard.service.serving import check_unique

        check_unique(deployments)
        return [d.full_name for d in deployments]
    from dockyard.execution.loading import load_flow

    return [load_flow(entrypoint, root).name for entrypoint in spec.get("entrypoints", [])]


def main() -> int:
    from dockyard.errors import DockyardError

    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    try:
        names = check(spec)
    except DockyardError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}), flush=True)
        return 1
    except Exception as exc:  # anything user code raises while loading
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps({"ok": True, "deployments": names}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
