"""Serve deployments of the bench flows with `prefect.serve`, as a Prefect user would.

    python serve.py noop --name adhoc --limit 4
    python serve.py lateness --name late --deployments 10 --interval 1
    python serve.py noop --name idle --deployments 1000 --cron "0 3 * * *"

Run it from this folder (the deployments' entrypoints are relative to it).
"""

import argparse

from lateness import lateness
from noop import noop
from prefect import serve

FLOWS = {"noop": noop, "lateness": lateness}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("flow", choices=sorted(FLOWS))
    parser.add_argument("--name", required=True, help="deployment name (prefix if several)")
    parser.add_argument("--deployments", type=int, default=1)
    parser.add_argument("--interval", type=float, help="schedule: every N seconds")
    parser.add_argument("--cron", help="schedule: a cron expression (UTC)")
    parser.add_argument("--limit", type=int, help="runs at once (Prefect's default if unset)")
    args = parser.parse_args()

    flow = FLOWS[args.flow]
    schedule = {}
    if args.interval is not None:
        schedule["interval"] = args.interval
    if args.cron is not None:
        schedule["cron"] = args.cron
    names = (
        [args.name]
        if args.deployments == 1
        else [f"{args.name}-{i}" for i in range(args.deployments)]
    )
    deployments = [flow.to_deployment(name=name, **schedule) for name in names]
    if args.limit is None:
        serve(*deployments)
    else:
        serve(*deployments, limit=args.limit)


if __name__ == "__main__":
    main()
