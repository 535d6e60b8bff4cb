#!/bin/sh
# Entry point of the dockyard runtime image (top-level Dockerfile).
#   docker run IMAGE                         serve /app/dockyard.yaml (or DOCKYARD_ENTRYPOINT)
#   docker run IMAGE --limit 2               the same, with more `dockyard serve` flags
#   docker run IMAGE flows/etl.py:etl --interval 60   serve one entrypoint under /app
#   docker run IMAGE dockyard run ls         any other command
# It execs dockyard, so dockyard is PID 1 and receives docker stop's SIGTERM itself.
set -e
case "${1:-}" in
    "" | -*) ;;
    *.py:*) exec /opt/venv/bin/dockyard serve "$@" ;;
    *) exec "$@" ;;
esac
if [ -z "${DOCKYARD_CONFIG:-}" ] && [ -z "${DOCKYARD_ENTRYPOINT:-}" ]; then
    if [ -f /app/dockyard.yaml ]; then
        export DOCKYARD_CONFIG=/app/dockyard.yaml
    else
        echo "dockyard: error: nothing to serve: mount a project with a dockyard.yaml at /app," \
            "or set DOCKYARD_ENTRYPOINT=path/file.py:flow (relative to /app) or DOCKYARD_CONFIG" >&2
        exit 2
    fi
fi
exec /opt/venv/bin/dockyard serve "$@"
