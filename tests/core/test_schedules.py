"""Tests for dockyard.schedules: concrete tables, DST transitions, properties, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.core.schedules import (
    Cron,
    CronSchedule,
    Interval,
    IntervalSchedule,
    RRule,
    RRuleSchedule,
    count_fires,
    fire_times,
    latest_fire,
    make_schedules,
    next_fire,
    schedule_from_dict,
)
from dockyard.errors import ScheduleError

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_times(times: list[datetime], tz: ZoneInfo) -> list[str]:
    return [t.astimezone(tz).strftime("%Y-%m-%d %H:%M%z") for t in times]


# --- concrete tables --------------------------------------------------------------------------

CASES = [
    (CronSchedule("* * * * *"), utc(2026, 1, 1, 0, 0, 30), utc(2026, 1, 1, 0, 1), utc(2026, 1, 1)),
    (CronSchedule("0 * * * *"), utc(2026, 1, 1, 10), utc(2026, 1, 1, 11), utc(2026, 1, 1, 10)),
    (CronSchedule("0 9 * * MON"), utc(2026, 1, 1), utc(2026, 1, 5, 9), utc(2025, 12, 29, 9)),
    (CronSchedule("0 9 * * mon-fri"), utc(2026, 1, 2, 10), utc(2026, 1, 5, 9), utc(2026, 1, 2, 9)),
    (CronSchedule("@hourly"), utc(2026, 1, 1, 10, 5), utc(2026, 1, 1, 11), utc(2026, 1, 1, 10)),
    (CronSchedule("@daily"), utc(2026, 1, 1, 10), utc(2026, 1, 2), utc(2026, 1, 1)),
    (CronSchedule("@weekly"), utc(2026, 1, 1), utc(2026, 1, 4), utc(2025, 12, 28)),
    (CronSchedule("@yearly"), utc(2026, 6, 1), utc(2027, 1, 1), utc(2026, 1, 1)),
    (
        CronSchedule("0 9 1 * MON", day_or=False),
        utc(2026, 1, 1),
        utc(2026, 6, 1, 9),
        utc(2025, 12, 1, 9),
    ),
    (
        CronSchedule("0 * * * * 30", seconds=True),
        utc(2026, 1, 1),
        utc(2026, 1, 1, 0, 0, 30),
        utc(2025, 12, 31, 23, 0, 30),
    ),
    (
        CronSchedule("0 9 * * *", timezone="America/New_York"),
        utc(2026, 1, 1),
        utc(2026, 1, 1, 14),
        utc(2025, 12, 31, 14),
    ),
    (IntervalSchedule(60), utc(2026, 1, 1, 0, 0, 30), utc(2026, 1, 1, 0, 1), utc(2026, 1, 1)),
    (
        IntervalSchedule(timedelta(minutes=10), anchor_date=utc(2026, 1, 1, 0, 3)),
        utc(2026, 1, 1, 12),
        utc(2026, 1, 1, 12, 3),
        utc(2026, 1, 1, 11, 53),
    ),
    (
        IntervalSchedule(7.5, anchor_date=utc(2026, 1, 1)),
        utc(2026, 1, 1, 0, 0, 10),
        utc(2026, 1, 1, 0, 0, 15),
        datetime(2026, 1, 1, 0, 0, 7, 500000, tzinfo=UTC),
    ),
    (
        IntervalSchedule(3600, anchor_date="2026-01-01T00:30:00"),
        utc(2025, 1, 1, 5),
        utc(2025, 1, 1, 5, 30),
        utc(2025, 1, 1, 4, 30),
    ),
    (
        IntervalSchedule(
            timedelta(days=1), anchor_date=datetime(2026, 1, 1, 9), timezone="Europe/Berlin"
        ),
        utc(2026, 7, 1),
        utc(2026, 7, 1, 7),
        utc(2026, 6, 30, 7),
    ),
    (
        RRuleSchedule("FREQ=DAILY;BYHOUR=9;BYMINUTE=0"),
        utc(2026, 1, 1, 10),
        utc(2026, 1, 2, 9),
        utc(2026, 1, 1, 9),
    ),
    (
        RRuleSchedule("RRULE:FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=8"),
        utc(2026, 1, 3),
        utc(2026, 1, 5, 8),
        utc(2026, 1, 2, 8),
    ),
    (
        RRuleSchedule("DTSTART:20260101T120000\nRRULE:FREQ=HOURLY;INTERVAL=6;COUNT=4"),
        utc(2026, 1, 1, 12),
        utc(2026, 1, 1, 18),
        utc(2026, 1, 1, 12),
    ),
    (
        RRuleSchedule("DTSTART:20260101T120000\nRRULE:FREQ=HOURLY;INTERVAL=6;COUNT=4"),
        utc(2026, 1, 2, 6),
        None,
        utc(2026, 1, 2, 6),
    ),
    (
        RRuleSchedule("DTSTART:20260101T120000Z RRULE:FREQ=DAILY", timezone="Europe/Berlin"),
        utc(2026, 1, 1),
        utc(2026, 1, 1, 12),
        None,
    ),
    (
        RRuleSchedule("FREQ=DAILY;BYHOUR=9", timezone="America/New_York"),
        utc(2026, 7, 1),
        utc(2026, 7, 1, 13),
        utc(2026, 6, 30, 13),
    ),
]


@pytest.mark.parametrize(("schedule", "at", "expected_next", "expected_latest"), CASES)
def test_next_and_latest(schedule, at, expected_next, expected_latest):
    assert schedule.next_after(at) == expected_next
    assert schedule.latest_at_or_before(at) == expected_latest
    for result in (schedule.next_after(at), schedule.latest_at_or_before(at)):
        assert result is None or result.tzinfo is UTC


def test_latest_is_inclusive_and_next_is_strict():
    cron = CronSchedule("0 * * * *")
    assert cron.latest_at_or_before(utc(2026, 1, 1, 10)) == utc(2026, 1, 1, 10)
    assert cron.next_after(utc(2026, 1, 1, 10)) == utc(2026, 1, 1, 11)


def test_accepts_any_aware_timezone_as_input():
    at = datetime(2026, 1, 1, 10, 30, tzinfo=BERLIN)  # 09:30 UTC
    assert CronSchedule("0 * * * *").next_after(at) == utc(2026, 1, 1, 10)


def test_interval_far_from_anchor_is_arithmetic():
    schedule = IntervalSchedule(1, anchor_date=utc(2020, 1, 1))
    assert schedule.next_after(utc(2090, 1, 1, 0, 0, 0)) == utc(2090, 1, 1, 0, 0, 1)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (CronSchedule("0 * * * *"), {"cron": "0 * * * *", "timezone": "UTC"}),
        (
            CronSchedule("0 9 1 * 1", day_or=False),
            {"cron": "0 9 1 * 1", "timezone": "UTC", "day_or": False},
        ),
        (
            IntervalSchedule(60),
            {"interval": 60.0, "anchor_date": "2020-01-01T00:00:00+00:00", "timezone": "UTC"},
        ),
        (
            IntervalSchedule(90, timezone="Europe/Berlin"),
            {
                "interval": 90.0,
                "anchor_date": "2020-01-01T00:00:00+01:00",
                "timezone": "Europe/Berlin",
            },
        ),
        (RRuleSchedule("FREQ=DAILY"), {"rrule": "FREQ=DAILY", "timezone": "UTC"}),
    ],
)
def test_to_dict_round_trips(schedule, expected):
    assert schedule.to_dict() == expected
    assert schedule_from_dict(schedule.to_dict()) == schedule


def test_describe():
    assert CronSchedule("0 * * * *").describe() == "cron '0 * * * *' (UTC)"
    assert IntervalSchedule(60).describe() == "every 60s"
    assert RRuleSchedule("FREQ=DAILY").describe() == "rrule 'FREQ=DAILY' (UTC)"


def test_prefect_aliases_take_the_first_argument_positionally():
    assert Cron("0 * * * *", timezone="America/New_York") == CronSchedule(
        cron="0 * * * *", timezone="America/New_York"
    )
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    assert Interval(timedelta(minutes=10), anchor_date=anchor, timezone="UTC") == (
        IntervalSchedule(600, anchor, "UTC")
    )
    assert RRule("FREQ=DAILY", timezone="UTC") == RRuleSchedule(rrule="FREQ=DAILY")


# --- DST --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (utc(2026, 3, 29), [utc(2026, 3, 29, 1, 0)]),  # 02:30 missing → 03:00 CEST
        (utc(2026, 10, 25), [utc(2026, 10, 25, 0, 30)]),  # 02:30 twice → first (CEST)
        (utc(2026, 7, 1), [utc(2026, 7, 1, 0, 30)]),
    ],
)
@pytest.mark.parametrize(
    "schedule",
    [
        CronSchedule("30 2 * * *", timezone="Europe/Berlin"),
        RRuleSchedule("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", timezone="Europe/Berlin"),
    ],
)
def test_berlin_0230_fires_once_per_day_across_dst(schedule, day, expected):
    start = day - timedelta(hours=2)  # 00:00 local, roughly
    assert fire_times([schedule], start, start + timedelta(days=1)) == expected
    assert schedule.latest_at_or_before(expected[0] + timedelta(hours=1)) == expected[0]
    assert schedule.next_after(expected[0] - timedelta(seconds=1)) == expected[0]


def test_hourly_cron_fires_every_utc_hour_across_fall_back():
    times = fire_times(
        [CronSchedule("0 * * * *", timezone="Europe/Berlin")],
        utc(2026, 10, 24, 22, 30),
        utc(2026, 10, 25, 3, 30),
    )
    assert times == [utc(2026, 10, 24, 23) + timedelta(hours=h) for h in range(5)]
    assert local_times(times, BERLIN)[1:4] == [
        "2026-10-25 02:00+0200",
        "2026-10-25 02:00+0100",
        "2026-10-25 03:00+0100",
    ]


def test_hourly_cron_across_spring_forward_skips_nothing_real():
    times = fire_times(
        [CronSchedule("0 * * * *", timezone="Europe/Berlin")],
        utc(2026, 3, 28, 23, 30),
        utc(2026, 3, 29, 2, 30),
    )
    assert times == [utc(2026, 3, 29, 0), utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)]
    assert local_times(times, BERLIN)[1] == "2026-03-29 03:00+0200"


def test_every_20_minutes_across_both_berlin_transitions():
    cron = CronSchedule("*/20 * * * *", timezone="Europe/Berlin")
    spring = fire_times([cron], utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30))
    # 02:00, 02:20, 02:40 do not exist and all land on 03:00 CEST, once.
    assert spring == [utc(2026, 3, 29, 0, 40), utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 20)]
    fall = fire_times([cron], utc(2026, 10, 24, 23, 50), utc(2026, 10, 25, 2, 10))
    assert fall == [utc(2026, 10, 25, 0) + timedelta(minutes=20 * k) for k in range(7)]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # 2026-03-08: 02:00 EST → 03:00 EDT, 02:30 does not exist.
        (utc(2026, 3, 8), [utc(2026, 3, 8, 7, 0)]),
        # 2026-11-01: 02:00 EDT → 01:00 EST, 01:30 happens twice; first is EDT.
        (utc(2026, 11, 1), [utc(2026, 11, 1, 6, 30)]),
    ],
)
def test_new_york_daily_cron_across_dst(start, expected):
    schedule = CronSchedule("30 2 * * *", timezone="America/New_York")
    if start.month == 11:
        schedule = CronSchedule("30 1 * * *", timezone="America/New_York")
        expected = [utc(2026, 11, 1, 5, 30)]
    assert fire_times([schedule], start, start + timedelta(days=1)) == expected


def test_daily_interval_keeps_berlin_wall_clock_across_dst():
    schedule = IntervalSchedule(
        timedelta(days=1), anchor_date=datetime(2026, 3, 20, 9), timezone="Europe/Berlin"
    )
    times = fire_times([schedule], utc(2026, 3, 26), utc(2026, 11, 1), limit=300)
    assert {t.astimezone(BERLIN).strftime("%H:%M") for t in times} == {"09:00"}
    assert len(times) == 220
    assert times[:4] == [
        utc(2026, 3, 26, 8),
        utc(2026, 3, 27, 8),
        utc(2026, 3, 28, 8),
        utc(2026, 3, 29, 7),
    ]
    assert times[-1] == utc(2026, 10, 31, 8)


def test_sub_day_interval_is_absolute_across_dst():
    schedule = IntervalSchedule(
        timedelta(hours=12), anchor_date=datetime(2026, 3, 20, 9), timezone="Europe/Berlin"
    )
    times = fire_times([schedule], utc(2026, 3, 28), utc(2026, 3, 30))
    assert times == [
        utc(2026, 3, 28, 8),
        utc(2026, 3, 28, 20),
        utc(2026, 3, 29, 8),
        utc(2026, 3, 29, 20),
    ]


# --- merging ----------------------------------------------------------------------------------


def test_fire_times_merges_and_deduplicates():
    schedules = [CronSchedule("*/30 * * * *"), IntervalSchedule(900), RRuleSchedule("FREQ=HOURLY")]
    times = fire_times(schedules, utc(2026, 1, 1), utc(2026, 1, 1, 1))
    assert times == [utc(2026, 1, 1) + timedelta(minutes=15 * k) for k in range(1, 5)]
    assert fire_times(schedules, utc(2026, 1, 1), utc(2026, 1, 1, 1), limit=2) == times[:2]
    assert count_fires(schedules, utc(2026, 1, 1), utc(2026, 1, 2), cap=10) == 10
    assert count_fires(schedules, utc(2026, 1, 1), utc(2026, 1, 1, 1), cap=10) == 4
    assert next_fire(schedules, utc(2026, 1, 1, 0, 20)) == utc(2026, 1, 1, 0, 30)
    assert latest_fire(schedules, utc(2026, 1, 1, 0, 20)) == utc(2026, 1, 1, 0, 15)
    assert next_fire([], utc(2026, 1, 1)) is None
    assert latest_fire([], utc(2026, 1, 1)) is None


def test_finite_rrule_runs_out():
    schedule = RRuleSchedule("DTSTART:20260101T000000 RRULE:FREQ=DAILY;COUNT=2")
    assert schedule.next_after(utc(2026, 1, 2)) is None
    assert schedule.latest_at_or_before(utc(2025, 12, 31)) is None
    assert fire_times([schedule], utc(2025, 1, 1), utc(2027, 1, 1)) == [
        utc(2026, 1, 1),
        utc(2026, 1, 2),
    ]


# --- properties -------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]


@st.composite
def cron_schedules(draw) -> CronSchedule:
    minute = draw(st.sampled_from(["*", "0", "30", "*/15", "5,45", "10-20/5"]))
    hour = draw(st.sampled_from(["*", "2", "*/3", "1-3", "0,12", "9"]))
    day = draw(st.sampled_from(["*", "1", "15", "*/10"]))
    month = draw(st.sampled_from(["*", "*", "3,10", "1-6"]))
    weekday = draw(st.sampled_from(["*", "*", "MON", "1-5", "SUN"]))
    return CronSchedule(
        f"{minute} {hour} {day} {month} {weekday}",
        timezone=draw(st.sampled_from(ZONES)),
        day_or=draw(st.booleans()),
    )


@st.composite
def interval_schedules(draw) -> IntervalSchedule:
    seconds = draw(st.sampled_from([45, 600, 1800.5, 3600, 5400, 86400, 2 * 86400, 7 * 86400]))
    anchor = draw(st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2028, 1, 1)))
    return IntervalSchedule(seconds, anchor_date=anchor, timezone=draw(st.sampled_from(ZONES)))


@st.composite
def rrule_schedules(draw) -> RRuleSchedule:
    rule = draw(
        st.sampled_from(
            [
                "FREQ=DAILY;BYHOUR=2,9;BYMINUTE=30",
                "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=1,2,3",
                "FREQ=MONTHLY;BYMONTHDAY=1,15;BYHOUR=2",
                "FREQ=DAILY;INTERVAL=3;BYHOUR=0,2",
            ]
        )
    )
    dtstart = draw(st.sampled_from(["", "DTSTART:20250101T000000\n"]))
    return RRuleSchedule(dtstart + rule, timezone=draw(st.sampled_from(ZONES)))


schedules_st = st.lists(
    st.one_of(cron_schedules(), interval_schedules(), rrule_schedules()), min_size=1, max_size=3
)
# DST transitions (UTC) of the zones above, so many examples straddle a gap or a fold.
TRANSITIONS = [
    utc(2025, 3, 30, 1),
    utc(2025, 10, 26, 1),
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2025, 3, 9, 7),
    utc(2025, 11, 2, 6),
    utc(2025, 4, 5, 15),
    utc(2025, 10, 4, 15, 30),
]
starts = st.one_of(
    st.datetimes(
        min_value=datetime(2025, 1, 1),
        max_value=datetime(2027, 12, 1),
        timezones=st.sampled_from([UTC, BERLIN, NEW_YORK]),
    ),
    st.builds(
        lambda t, d: t + d,
        st.sampled_from(TRANSITIONS),
        st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(hours=6)),
    ),
)
windows = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4))


@settings(deadline=None, max_examples=200)
@given(schedules=schedules_st, start=starts, window=windows, data=st.data())
def test_fire_times_agree_with_next_and_latest(schedules, start, window, data):
    # Arithmetic in UTC: aware datetimes of one zone add in wall time, and a start in a
    # DST gap (02:59 on spring-forward day) plus one second would go back an hour.
    absolute = start.astimezone(UTC)
    end = absolute + window
    times = fire_times(schedules, start, end, limit=200)
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    assert all(start < t <= end and t.tzinfo is UTC for t in times)
    first = next_fire(schedules, start)
    if first is not None and first <= end:
        assert times[0] == first
    else:
        assert times == []
    for a, b in zip(times, times[1:], strict=False):
        assert next_fire(schedules, a) == b
    if len(times) < 200:
        assert count_fires(schedules, start, end, cap=1000) == len(times)
        before = latest_fire(schedules, start)
        for _ in range(3):
            probe = absolute + data.draw(windows.filter(lambda w: w <= window))
            inside = [t for t in times if t <= probe]
            assert latest_fire(schedules, probe) == (max(inside) if inside else before)


@settings(deadline=None, max_examples=200)
@given(schedule=st.one_of(cron_schedules(), interval_schedules(), rrule_schedules()), at=starts)
def test_next_and_latest_bracket_any_instant(schedule, at):
    latest, nxt = schedule.latest_at_or_before(at), schedule.next_after(at)
    if latest is not None:
        assert latest <= at
        assert schedule.next_after(latest - timedelta(microseconds=1)) == latest
        assert nxt is None or schedule.next_after(latest) == nxt
    if nxt is not None:
        assert nxt > at
        assert schedule.latest_at_or_before(nxt) == nxt


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: CronSchedule("61 * * * *"),
            "cron: '61 * * * *' is not a valid cron expression: minute must be 0-59",
        ),
        (
            lambda: CronSchedule("0 25 * * *"),
            "cron: '0 25 * * *' is not a valid cron expression: hour must be 0-23",
        ),
        (lambda: CronSchedule("0 0 * * FOO"), "weekday must be 0-7 or SUN-SAT"),
        (lambda: CronSchedule("0 0 30 2 *"), "cron: '0 0 30 2 *' is not a valid cron expression"),
        (lambda: CronSchedule("* * *"), "cron: '* * *' has 3 fields"),
        (lambda: CronSchedule("@reboot"), "cron: '@reboot' is not a known nickname"),
        (lambda: CronSchedule(5), "cron: must be a string"),
        (
            lambda: CronSchedule("0 * * * * 30"),
            "cron: '0 * * * * 30' has 6 fields; dockyard reads 5-field cron (minute hour day month "
            "weekday). To schedule by seconds pass seconds=True (config: seconds: true)",
        ),
        (lambda: CronSchedule("0 * * * * 61", seconds=True), "second must be 0-59"),
        (lambda: IntervalSchedule(0), "interval: must be a positive number of seconds"),
        (lambda: IntervalSchedule(-5), "interval: must be a positive number of seconds"),
        (lambda: IntervalSchedule(timedelta(0)), "interval: must be a positive number"),
        (lambda: IntervalSchedule(float("nan")), "interval: must be a positive number"),
        (lambda: IntervalSchedule(True), "interval: must be a positive number"),
        (lambda: IntervalSchedule(60, anchor_date="yesterday"), "anchor_date: 'yesterday' is not"),
        (
            lambda: RRuleSchedule("FREQ=SOMETIMES"),
            "rrule: 'FREQ=SOMETIMES' is not a valid rrule: invalid 'FREQ': SOMETIMES",
        ),
        (lambda: RRuleSchedule("DTSTART:2026 RRULE:FREQ=DAILY"), "rrule: 'DTSTART:2026"),
        (
            lambda: CronSchedule("* * * * *", timezone="Mars/Olympus"),
            "timezone: unknown timezone 'Mars/Olympus'",
        ),
        (lambda: IntervalSchedule(60, timezone="Nowhere"), "timezone: unknown timezone"),
        (lambda: RRuleSchedule("FREQ=DAILY", timezone="Nowhere"), "timezone: unknown timezone"),
    ],
)
def test_invalid_schedules_name_the_field(build, message):
    with pytest.raises(ScheduleError) as info:
        build()
    assert message in str(info.value)


def test_six_fields_accepted_with_seconds():
    schedule = CronSchedule("*/10 * * * * 15", seconds=True)
    assert schedule.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 0, 15)
    assert schedule_from_dict({"cron": "*/10 * * * * 15", "seconds": True}) == schedule


@pytest.mark.parametrize(
    "call",
    [
        lambda: CronSchedule("* * * * *").next_after(datetime(2026, 1, 1)),
        lambda: CronSchedule("* * * * *").latest_at_or_before(datetime(2026, 1, 1)),
        lambda: IntervalSchedule(60).next_after(datetime(2026, 1, 1)),
        lambda: RRuleSchedule("FREQ=DAILY").latest_at_or_before(datetime(2026, 1, 1)),
        lambda: fire_times([], datetime(2026, 1, 1), utc(2026, 1, 2)),
        lambda: next_fire([], datetime(2026, 1, 1)),
        lambda: latest_fire([], datetime(2026, 1, 1)),
    ],
)
def test_naive_datetimes_are_refused(call):
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


def test_naive_anchor_is_read_in_the_schedule_timezone():
    schedule = IntervalSchedule(
        3600, anchor_date=datetime(2026, 1, 1, 0, 30), timezone="Europe/Berlin"
    )
    assert schedule.anchor_date == datetime(2026, 1, 1, 0, 30, tzinfo=BERLIN)
    assert schedule.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 30)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cron": "* * * * *", "every": 5}, "deployments[0].schedules[1]: unknown key 'every'"),
        (
            {"timezone": "UTC"},
            "deployments[0].schedules[1]: give exactly one of cron, interval, rrule",
        ),
        (
            {"cron": "* * * * *", "interval": 5},
            "deployments[0].schedules[1]: give exactly one of cron, interval, rrule",
        ),
        ({"cron": "61 * * * *"}, "deployments[0].schedules[1].cron: '61 * * * *' is not a valid"),
        ({"interval": -1}, "deployments[0].schedules[1].interval: must be a positive number"),
        ({"rrule": "FREQ=X"}, "deployments[0].schedules[1].rrule: 'FREQ=X' is not a valid rrule"),
        (
            {"cron": "* * * * *", "timezone": "Nope"},
            "deployments[0].schedules[1].timezone: unknown timezone 'Nope'",
        ),
        (
            {"cron": "* * * * *", "anchor_date": "2026-01-01"},
            "deployments[0].schedules[1].anchor_date: only applies to interval schedules",
        ),
        (
            {"interval": 5, "seconds": True},
            "deployments[0].schedules[1].seconds: only applies to cron schedules",
        ),
        (
            {"cron": "* * * * *", "day_or": "no"},
            "deployments[0].schedules[1].day_or: must be true or false",
        ),
        (["cron"], "deployments[0].schedules[1]: must be a mapping"),
    ],
)
def test_schedule_from_dict_errors_carry_the_path(data, message):
    with pytest.raises(ScheduleError) as info:
        schedule_from_dict(data, path="deployments[0].schedules[1]")
    assert str(info.value).startswith(message)


def test_schedule_from_dict_builds_each_kind():
    assert schedule_from_dict({"cron": "0 * * * *", "timezone": "Europe/Berlin"}) == (
        CronSchedule("0 * * * *", "Europe/Berlin")
    )
    interval = schedule_from_dict({"interval": 30, "anchor_date": "2026-01-01T00:00:00+00:00"})
    assert interval == IntervalSchedule(30, utc(2026, 1, 1))
    assert schedule_from_dict({"rrule": "FREQ=DAILY"}) == RRuleSchedule("FREQ=DAILY")


# --- make_schedules ---------------------------------------------------------------------------


def test_make_schedules_prefect_arguments():
    assert make_schedules() == []
    assert make_schedules(interval=60) == [IntervalSchedule(60)]
    assert make_schedules(interval=[60, timedelta(hours=1)], timezone="Europe/Berlin") == [
        IntervalSchedule(60, timezone="Europe/Berlin"),
        IntervalSchedule(3600, timezone="Europe/Berlin"),
    ]
    assert make_schedules(interval=60, anchor_date=utc(2026, 1, 1)) == [
        IntervalSchedule(60, utc(2026, 1, 1))
    ]
    assert make_schedules(cron="0 * * * *", timezone="America/New_York") == [
        CronSchedule("0 * * * *", "America/New_York")
    ]
    assert make_schedules(cron=("0 * * * *", "30 2 * * *")) == [
        CronSchedule("0 * * * *"),
        CronSchedule("30 2 * * *"),
    ]
    assert make_schedules(rrule="FREQ=DAILY") == [RRuleSchedule("FREQ=DAILY")]
    assert make_schedules(
        schedules=[CronSchedule("0 * * * *"), {"interval": 60}], timezone="Europe/Berlin"
    ) == [CronSchedule("0 * * * *"), IntervalSchedule(60, timezone="Europe/Berlin")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"cron": "* * * * *", "interval": 60},
            "give only one of interval, cron, rrule, schedule, schedules (got interval, cron)",
        ),
        ({"rrule": "FREQ=DAILY", "schedules": []}, "give only one of interval, cron, rrule"),
        ({"cron": "* * * * *", "anchor_date": utc(2026, 1, 1)}, "anchor_date: only applies"),
        (
            {"schedules": [{"cron": "* * * * *"}, {"interval": 0}]},
            "schedules[1].interval: must be a positive number of seconds",
        ),
        ({"schedules": ["0 * * * *"]}, "schedules[0]: expected a schedule or a mapping"),
        ({"cron": "0 * * * * *"}, "cron: '0 * * * * *' has 6 fields"),
    ],
)
def test_make_schedules_errors(kwargs, message):
    with pytest.raises(ScheduleError) as info:
        make_schedules(**kwargs)
    assert str(info.value).startswith(message)
