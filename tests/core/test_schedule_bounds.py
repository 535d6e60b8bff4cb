"""Schedules that used to pass validation and then hang or raise at tick time.

Each case either is refused at load with a one-line ``ScheduleError`` / ``UsageError`` that
says what to change, or answers within the search bound. The hang cases run under
``pytest-timeout`` (pyproject); none asserts a duration.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dockyard.core import planning
from dockyard.core.deployments import Deployment
from dockyard.core.planning import DeploymentView, ScheduleFailed
from dockyard.core.policies import CatchupPolicy
from dockyard.core.schedules import (
    CronSchedule,
    IntervalSchedule,
    RRuleSchedule,
    Schedule,
    fire_times,
)
from dockyard.errors import ScheduleError, UsageError

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RRuleSchedule("FREQ=DAILY;INTERVAL=0"), "INTERVAL must be a whole number of at"),
        (lambda: RRuleSchedule("FREQ=HOURLY;INTERVAL=-2"), "INTERVAL must be a whole number"),
        (lambda: RRuleSchedule("FREQ=DAILY;COUNT=0"), "COUNT must be 1 to 10000"),
        (
            lambda: RRuleSchedule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
            "BYMONTHDAY=30 never occurs in BYMONTH=2",
        ),
        (
            lambda: RRuleSchedule("FREQ=MINUTELY;BYMONTH=4,6;BYMONTHDAY=31"),
            "BYMONTHDAY=31 never occurs in BYMONTH=4,6",
        ),
        # Interval and weekday out of step: every 7th day from a Wednesday is never a Tuesday.
        (lambda: RRuleSchedule("FREQ=DAILY;INTERVAL=7;BYDAY=TU"), "never fires within 30 years"),
        (lambda: RRuleSchedule("FREQ=MONTHLY;INTERVAL=12;BYMONTH=3"), "never fires within 30"),
        (lambda: RRuleSchedule("RRULE:FREQ=DAILY EXRULE:FREQ=WEEKLY"), "EXRULE is not supported"),
        (lambda: IntervalSchedule(0.5), "interval: must be at least 1s, got 0.5s"),
        (lambda: IntervalSchedule(0.001), "interval: must be at least 1s"),
        (lambda: IntervalSchedule(timedelta(milliseconds=999)), "interval: must be at least 1s"),
    ],
)
def test_schedules_that_would_hang_or_never_fire_are_refused_at_load(build, message):
    with pytest.raises(ScheduleError) as info:
        build()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("rule", "next_fire", "latest"),
    [
        # From DTSTART 2020 these walked 200 million seconds (or minutes) per question.
        ("FREQ=SECONDLY;INTERVAL=30", NOW + timedelta(seconds=30), NOW),
        ("FREQ=MINUTELY;INTERVAL=5", NOW + timedelta(minutes=5), NOW),
        ("FREQ=SECONDLY", NOW + timedelta(seconds=1), NOW),
        # Dense in January, empty the rest of the year.
        (
            "FREQ=SECONDLY;BYMONTH=1",
            datetime(2027, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC),
        ),
        # Sparse: 29 February on a Monday (2044); none since the 2020 start.
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", datetime(2044, 2, 29, tzinfo=UTC), None),
        # UNTIL long past: no next fire, and the last one is found without walking from 2020.
        (
            "FREQ=SECONDLY;UNTIL=20200101T000010",
            None,
            datetime(2020, 1, 1, 0, 0, 10, tzinfo=UTC),
        ),
        ("FREQ=DAILY;COUNT=3", None, datetime(2020, 1, 3, tzinfo=UTC)),
        # A restarted MONTHLY rule keeps the time of day DTSTART gave it.
        (
            "DTSTART:20200101T120000 RRULE:FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=8",
            datetime(2026, 6, 1, 8, tzinfo=UTC),
            datetime(2026, 5, 1, 8, tzinfo=UTC),
        ),
        (
            "DTSTART:20200131T063000 RRULE:FREQ=MONTHLY",
            datetime(2026, 5, 31, 6, 30, tzinfo=UTC),
            datetime(2026, 3, 31, 6, 30, tzinfo=UTC),
        ),
    ],
)
def test_rrules_answer_from_near_the_question(rule, next_fire, latest):
    schedule = RRuleSchedule(rule)
    assert schedule.next_after(NOW) == next_fire
    assert schedule.latest_at_or_before(NOW) == latest


def test_fire_times_beyond_the_search_bound_are_none():
    schedule = RRuleSchedule("FREQ=YEARLY;INTERVAL=40")  # 2020, 2060, 2100, ...
    assert schedule.next_after(datetime(2021, 1, 1, tzinfo=UTC)) is None  # 2060: > 30 years
    assert schedule.next_after(datetime(2031, 1, 1, tzinfo=UTC)) == datetime(2060, 1, 1, tzinfo=UTC)


def test_a_dense_rrule_lists_many_slots_from_near_now():
    slots = fire_times([RRuleSchedule("FREQ=SECONDLY")], NOW, NOW + timedelta(hours=1), 1000)
    assert slots[0] == NOW + timedelta(seconds=1) and len(slots) == 1000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"catchup_window_seconds": 1e20}, "catchup_window: must be more than 0 and at most"),
        ({"catchup_window_seconds": 0.0}, "catchup_window: must be more than 0"),
        ({"catchup_max": 10**9}, "catchup_max: must be 0 to 1000"),
    ],
)
def test_catch_up_bounds_are_checked_on_every_deployment(options, message):
    with pytest.raises(UsageError) as info:
        Deployment(name="d", flow_name="f", entrypoint="f.py:f", base_dir=".", **options)
    assert str(info.value).startswith(message)


def view(schedules: list[Schedule], name: str = "f/d", **fields) -> DeploymentView:
    return DeploymentView(name, schedules, paused=False, cursor=NOW - timedelta(hours=2), **fields)


def test_a_huge_misfire_grace_means_since_start_and_does_not_overflow():
    started = NOW - timedelta(hours=1)
    decisions = planning.plan(
        NOW, [view([IntervalSchedule(3600)])], started_at=started, misfire_grace_seconds=1e20
    ).decisions
    assert planning.RunSlot("f/d", NOW) in decisions
    assert not [d for d in decisions if isinstance(d, ScheduleFailed)]


def test_a_catch_up_window_longer_than_the_downtime_does_not_overflow():
    # Built directly (as an old spec could be): the planner clamps instead of raising.
    downtime = view(
        [IntervalSchedule(3600)], catchup=CatchupPolicy.ALL, catchup_window_seconds=1e15
    )
    decisions = planning.plan(NOW, [downtime], started_at=NOW).decisions
    assert [d.scheduled_at for d in decisions if isinstance(d, planning.RunSlot)] == [
        NOW - timedelta(hours=1),
        NOW,
    ]


class Broken(Schedule):
    """A schedule whose maths raise at tick time (what isolation has to survive)."""

    def next_after(self, dt: datetime) -> datetime | None:
        raise OverflowError("date value out of range")

    def latest_at_or_before(self, dt: datetime) -> datetime | None:
        raise OverflowError("date value out of range")


def test_one_deployment_whose_schedule_raises_does_not_stop_the_others():
    good, bad = view([CronSchedule("0 * * * *")], "f/good"), view([Broken()], "f/bad")
    decisions = planning.plan(NOW, [bad, good], started_at=NOW - timedelta(days=1)).decisions
    assert ScheduleFailed("f/bad", "OverflowError: date value out of range") in decisions
    assert planning.RunSlot("f/good", NOW) in decisions
    assert planning.AdvanceCursor("f/good", NOW) in decisions
    assert not [
        d for d in decisions if getattr(d, "deployment", None) == "f/bad" and d != decisions[0]
    ]
    assert planning.next_wakeup(NOW, [bad, good]) == NOW + timedelta(hours=1)
