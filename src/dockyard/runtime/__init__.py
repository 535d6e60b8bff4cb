"""What a run knows about itself: ``from dockyard import runtime``; ``runtime.flow_run.name``
(``prefect.runtime``). Outside a run each attribute is empty (None, ``{}`` or ``[]``)."""

from dockyard.runtime import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]
