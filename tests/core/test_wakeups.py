"""When a deployment next needs the planner, and the queue of deployments by that time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dockyard.core.planning import DeploymentView, plan
from dockyard.core.schedules import CronSchedule as Cron
from dockyard.core.schedules import IntervalSchedule as Interval
from dockyard.core.schedules import Schedule
from dockyard.core.wakeups import COMPACT_SLACK, WakeupQueue, next_plan_at

T0 = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Broken(Interval):
    """A schedule whose maths raises (as an rrule past the calendar's end does)."""

    def next_after(self, after: datetime) -> datetime | None:
        raise OverflowError("date value out of range")


def view(*schedules: Schedule, cursor: datetime | None = T0) -> DeploymentView:
    return DeploymentView("etl/d", schedules, paused=False, cursor=cursor)


@pytest.mark.parametrize(
    ("schedules", "cursor", "expected"),
    [
        ([Cron("* * * * *")], None, T0),  # new: due at once (plan sets its cursor)
        ([Cron("* * * * *")], T0, datetime(2024, 5, 1, 12, 1, tzinfo=UTC)),
        ([Cron("0 0 1 1 *")], T0, datetime(2025, 1, 1, tzinfo=UTC)),
        ([Cron("0 0 1 1 *"), Cron("*/5 * * * *")], T0, datetime(2024, 5, 1, 12, 5, tzinfo=UTC)),
        # An inactive schedule's slot is when plan moves the cursor past it.
        ([Cron("0 0 1 1 *"), Cron("* * * * *", active=False)], T0, T0 + 30 * timedelta(seconds=1)),
        ([Broken(60)], T0, T0),  # its error is plan's to report, now
        ([], T0, None),
    ],
)
def test_next_plan_at(schedules: list[Schedule], cursor: datetime | None, expected: object) -> None:
    assert next_plan_at(view(*schedules, cursor=cursor), T0) == expected


@pytest.mark.parametrize(
    "schedules",
    [[Cron("* * * * *")], [Cron("*/7 * * * *"), Interval(45)], [Cron("* * * * *", active=False)]],
)
def test_plan_decides_nothing_before_next_plan_at_and_something_at_it(
    schedules: list[Schedule],
) -> None:
    cursor = T0
    due = next_plan_at(view(*schedules, cursor=cursor), T0)
    assert due is not None
    before = due - timedelta(microseconds=1)
    assert plan(before, [view(*schedules, cursor=cursor)], started_at=T0 - MINUTE).decisions == []
    assert plan(due, [view(*schedules, cursor=cursor)], started_at=T0 - MINUTE).decisions != []


def test_the_queue_pops_what_is_due_earliest_first_and_forgets_it() -> None:
    queue = WakeupQueue()
    queue.set("b", T0 + 2 * MINUTE)
    queue.set("a", T0 + MINUTE)
    queue.set("c", T0 + 3 * MINUTE)
    assert queue.next_at() == T0 + MINUTE
    assert queue.pop_due(T0) == []
    assert queue.pop_due(T0 + 2 * MINUTE) == ["a", "b"]
    assert queue.pop_due(T0 + 2 * MINUTE) == []
    assert (len(queue), queue.next_at(), queue.due_at("c")) == (1, T0 + 3 * MINUTE, T0 + 3 * MINUTE)


def test_setting_a_name_again_replaces_its_time_and_none_or_discard_removes_it() -> None:
    queue = WakeupQueue()
    queue.set("a", T0 + MINUTE)
    queue.set("a", T0 + 5 * MINUTE)  # later: the earlier entry no longer counts
    queue.set("b", T0 + 2 * MINUTE)
    assert queue.next_at() == T0 + 2 * MINUTE
    assert queue.pop_due(T0 + 4 * MINUTE) == ["b"]
    queue.set("a", T0)  # earlier again
    queue.set("a", T0)  # twice the same: popped once
    assert queue.pop_due(T0 + 10 * MINUTE) == ["a"]
    queue.set("c", T0)
    queue.set("c", None)
    queue.set("d", T0)
    queue.discard("d")
    assert (queue.pop_due(T0 + 10 * MINUTE), queue.next_at(), len(queue)) == ([], None, 0)


def test_many_replacements_keep_one_entry_per_name() -> None:
    queue = WakeupQueue()
    for i in range(10 * COMPACT_SLACK):
        queue.set(f"d{i % 3}", T0 + i * timedelta(seconds=1))
    assert len(queue._heap) <= 2 * len(queue) + COMPACT_SLACK  # compacted on the way
    last = {f"d{i % 3}": i for i in range(10 * COMPACT_SLACK)}  # each name's last time
    order = sorted(last, key=last.__getitem__)
    assert queue.pop_due(T0 + max(last.values()) * timedelta(seconds=1)) == order
    assert len(queue) == 0
