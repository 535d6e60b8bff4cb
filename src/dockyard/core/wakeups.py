"""When each deployment next needs the planner, and a queue of deployments by that time.

The scheduler plans a deployment only when it is due (``next_plan_at`` has come) or its
state changed, instead of planning every deployment every tick; ``planning.plan`` decides
nothing for a deployment before that instant. Pure: time comes in as an argument.
"""

from __future__ import annotations

import heapq
import itertools
from datetime import datetime

from dockyard.core.planning import DeploymentView

COMPACT_SLACK = 64
"""Outdated heap entries tolerated beyond the live ones before the heap is rebuilt."""


def next_plan_at(view: DeploymentView, now: datetime) -> datetime | None:
    """The first instant at which ``plan`` decides something for ``view``; None: never.

    A new deployment (no cursor) is due at ``now``. Otherwise it is due at its first fire
    time after the cursor, of any schedule: an inactive one's slot moves the cursor past
    it, so that activating the schedule later does not count it as missed. Schedules that
    raise are due at ``now`` too: ``plan`` reports the error.
    """
    if view.cursor is None:
        return now
    cursor = view.cursor
    try:
        times = [schedule.next_after(cursor) for schedule in view.schedules]
    except Exception:
        return now
    return min((t for t in times if t is not None), default=None)


class WakeupQueue:
    """Names by the instant they are due; setting a name again replaces its instant."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, str]] = []
        self._due_at: dict[str, datetime] = {}
        self._order = itertools.count()

    def set(self, name: str, at: datetime | None) -> None:
        """Make ``name`` due at ``at`` (None: never)."""
        if at is None:
            self._due_at.pop(name, None)
            return
        self._due_at[name] = at
        heapq.heappush(self._heap, (at, next(self._order), name))
        if len(self._heap) > 2 * len(self._due_at) + COMPACT_SLACK:
            self._compact()

    def discard(self, name: str) -> None:
        self._due_at.pop(name, None)

    def pop_due(self, now: datetime) -> list[str]:
        """The names due at or before ``now``, earliest first; they are no longer queued."""
        due: list[str] = []
        while self._heap and self._heap[0][0] <= now:
            at, _, name = heapq.heappop(self._heap)
            if self._due_at.get(name) == at:  # else outdated: the name was set again
                del self._due_at[name]
                due.append(name)
        return due

    def next_at(self) -> datetime | None:
        """The earliest instant a name is due; None when none is queued."""
        while self._heap and self._due_at.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def due_at(self, name: str) -> datetime | None:
        return self._due_at.get(name)

    def __len__(self) -> int:
        return len(self._due_at)

    def _compact(self) -> None:
        self._heap = [(at, next(self._order), name) for name, at in self._due_at.items()]
        heapq.heapify(self._heap)
