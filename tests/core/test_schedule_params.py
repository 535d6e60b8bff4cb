"""Schedules with parameters, ``active`` and ``slug``: construction, config form, planning.

Pure: tables over schedules, the planner and deployments; no clock, no store.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest

from dockyard.api import Flow
from dockyard.core.deployments import Deployment
from dockyard.core.planning import (
    AdvanceCursor,
    CancelRuns,
    DeploymentView,
    RunSlot,
    SkipSlots,
    next_wakeup,
    plan,
)
from dockyard.core.policies import CatchupPolicy, OverlapPolicy
from dockyard.core.records import slot_key
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
    upcoming,
)
from dockyard.errors import ParameterError, ScheduleError, UsageError
from dockyard.execution.loading import load_flow
from tests.helpers import FLOWS

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def every_minute(**options: object) -> IntervalSchedule:
    return IntervalSchedule(60, anchor_date=T0, **options)  # type: ignore[arg-type]


def view(schedules, **kw) -> DeploymentView:
    base = dict(name="f/d", schedules=tuple(schedules), paused=False, cursor=T0)
    base.update(kw)
    return DeploymentView(**base)  # type: ignore[arg-type]


def runs(decisions) -> list[tuple[datetime, dict[str, object], str]]:
    return [
        (d.scheduled_at, dict(d.parameters), d.trigger) for d in decisions if isinstance(d, RunSlot)
    ]


# --- the schedule objects ---------------------------------------------------------------------


KINDS = [
    pytest.param(lambda **o: Cron("0 * * * *", **o), id="cron"),
    pytest.param(lambda **o: Interval(3600, **o), id="interval"),
    pytest.param(lambda **o: RRule("FREQ=HOURLY", **o), id="rrule"),
]


@pytest.mark.parametrize("make", KINDS)
def test_every_kind_takes_parameters_active_and_slug_and_round_trips(make):
    schedule = make(parameters={"day": "monday", "n": (1, 2)}, active=False, slug="eu")

    data = schedule.to_dict()

    assert (data["parameters"], data["active"], data["slug"]) == (
        {"day": "monday", "n": [1, 2]},  # JSON values: the tuple is a list
        False,
        "eu",
    )
    assert schedule_from_dict(json.loads(json.dumps(data))) == schedule


@pytest.mark.parametrize("make", KINDS)
def test_defaults_are_left_out_of_the_config_form(make):
    schedule = make()
    assert (schedule.active, dict(schedule.parameters), schedule.slug) == (True, {}, None)
    assert not {"active", "parameters", "slug"} & set(schedule.to_dict())


def test_prefect_names_and_timezone_keywords():
    cron = Cron("0 9 * * *", timezone="Europe/Berlin", day_or=False, parameters={"a": 1})
    interval = Interval(60, timezone="Europe/Berlin", slug="x")
    rrule = RRule("FREQ=DAILY", timezone="Europe/Berlin", active=False)

    assert isinstance(cron, CronSchedule) and cron.timezone == "Europe/Berlin"
    assert isinstance(interval, IntervalSchedule) and interval.timezone == "Europe/Berlin"
    assert isinstance(rrule, RRuleSchedule) and rrule.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"parameters": [1, 2]}, "parameters: must be a mapping of names to values, got [1, 2]"),
        ({"parameters": {1: "x"}}, "parameters: names must be strings, got 1"),
        ({"parameters": {"x": float("nan")}}, "parameters: must be JSON values"),
        ({"parameters": {"x": object()}}, "parameters: must be JSON values"),
        ({"slug": ""}, "slug: '' is not allowed: it is empty"),
        ({"slug": "a/b"}, "slug: 'a/b' is not allowed: it contains '/'"),
        ({"slug": 5}, "slug: 5 is not allowed: not a string"),
        ({"active": "no"}, "active: must be true or false, got 'no'"),
        ({"active": 0}, "active: must be true or false, got 0"),
    ],
)
@pytest.mark.parametrize("make", KINDS)
def test_bad_options_are_one_line_errors_naming_the_field(make, options, message):
    with pytest.raises(ScheduleError) as info:
        make(**options)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"cron": "* * * * *", "parameters": "day=1"},
            "schedules[2].parameters: must be a mapping",
        ),
        ({"interval": 60, "slug": ""}, "schedules[2].slug: '' is not allowed"),
        ({"rrule": "FREQ=DAILY", "active": "yes"}, "schedules[2].active: must be true or false"),
        ({"cron": "* * * * *", "slugg": "x"}, "schedules[2]: unknown key 'slugg' (allowed: "),
    ],
)
def test_config_form_errors_name_the_path(data, message):
    with pytest.raises(ScheduleError) as info:
        schedule_from_dict(data, path="schedules[2]")
    assert str(info.value).startswith(message)


def test_unknown_key_error_lists_the_common_keys_in_a_stable_order():
    with pytest.raises(ScheduleError) as info:
        schedule_from_dict({"cron": "* * * * *", "bogus": 1})
    assert str(info.value).endswith("active, parameters, slug)")


def test_slot_variant_is_none_without_parameters_and_follows_the_parameters():
    a = Cron("0 * * * *", parameters={"x": 1, "y": 2})
    same = Interval(60, parameters={"y": 2, "x": 1}, slug="other")
    different = Cron("0 * * * *", parameters={"x": 2, "y": 2})

    assert Cron("0 * * * *").slot_variant is None
    assert Cron("0 * * * *", parameters={}).slot_variant is None
    assert a.slot_variant == same.slot_variant
    assert a.slot_variant != different.slot_variant
    assert a.slot_variant is not None and a.slot_variant.startswith("params=")


def test_slot_key_is_unchanged_without_a_variant_and_distinct_with_one():
    when = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    # Exactly the key earlier versions stored: their state files keep matching.
    assert slot_key("etl/hourly", when) == "etl/hourly:2026-01-01T12:00:00.000000Z"
    assert slot_key("etl/hourly", when, None) == "etl/hourly:2026-01-01T12:00:00.000000Z"
    assert slot_key("etl/hourly", when, "params=ab") == (
        "etl/hourly:2026-01-01T12:00:00.000000Z#params=ab"
    )


# --- fire times leave inactive schedules out ------------------------------------------------


def test_inactive_schedules_have_no_fire_times():
    on = every_minute()
    off = IntervalSchedule(30, anchor_date=T0, active=False)

    assert off.next_after(T0) == at(0, 30)  # the schedule itself still answers
    assert next_fire([on, off], T0) == at(1)
    assert latest_fire([on, off], at(1, 40)) == at(1)
    assert fire_times([on, off], T0, at(2)) == [at(1), at(2)]
    assert count_fires([on, off], T0, at(2), 100) == 2
    assert upcoming([on, off], T0, 2) == [at(1), at(2)]
    assert next_fire([off], T0) is None


# --- make_schedules and Deployment ------------------------------------------------------------


def test_schedule_singular_is_one_schedule_object_or_mapping():
    cron = Cron("0 * * * *", parameters={"x": 1})

    assert make_schedules(schedule=cron) == [cron]
    assert make_schedules(schedule={"interval": 60, "slug": "m"}, timezone="Europe/Berlin") == [
        Interval(60, timezone="Europe/Berlin", slug="m")
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"schedule": Cron("* * * * *"), "schedules": [Cron("0 * * * *")]},
            "give only one of interval, cron, rrule, schedule, schedules (got schedule, schedules)",
        ),
        (
            {"schedule": Cron("* * * * *"), "cron": "0 * * * *"},
            "give only one of interval, cron, rrule, schedule, schedules (got cron, schedule)",
        ),
        ({"schedule": "0 * * * *"}, "schedule: expected a schedule such as Cron('0 * * * *')"),
        ({"schedule": 5}, "schedule: expected a schedule or a mapping, got 5"),
        ({"schedules": Cron("* * * * *")}, "schedules: expected a list of schedules"),
        (
            {"schedules": [Cron("* * * * *", slug="a"), Interval(60), Interval(90, slug="a")]},
            "schedules[2].slug: 'a' is also the slug of schedules[0]; give each schedule",
        ),
    ],
)
def test_schedule_argument_errors(kwargs, message):
    with pytest.raises(UsageError) as info:
        make_schedules(**kwargs)
    assert str(info.value).startswith(message)


def spec_with(schedules: list[dict[str, object]]) -> dict[str, object]:
    return {
        "name": "d",
        "flow_name": "f",
        "entrypoint": "flows.py:f",
        "base_dir": "/srv",
        "schedules": schedules,
        "parameters": {"name": "base"},
    }


def test_a_deployment_spec_keeps_schedule_parameters_through_json():
    deployment = Deployment.from_spec(
        spec_with(
            [
                {"cron": "0 * * * *", "parameters": {"name": "eu"}, "slug": "eu"},
                {"interval": 60, "active": False},
                {"rrule": "FREQ=DAILY"},
            ]
        )
    )

    again = Deployment.from_spec(json.loads(json.dumps(deployment.to_spec())))

    assert again == deployment
    assert [dict(s.parameters) for s in again.schedules] == [{"name": "eu"}, {}, {}]
    assert [s.active for s in again.schedules] == [True, False, True]
    assert [s.slug for s in again.schedules] == ["eu", None, None]
    assert again.slot_parameters(again.schedules[0].parameters) == {"name": "eu"}


def test_a_spec_with_a_slug_twice_is_refused():
    twice = [{"cron": "0 * * * *", "slug": "x"}, {"interval": 60, "slug": "x"}]
    with pytest.raises(ScheduleError, match=r"^schedules\[1\]\.slug: 'x' is also the slug"):
        Deployment.from_spec(spec_with(twice))


@pytest.fixture
def hello() -> Flow:
    flow = load_flow("behaviours.py:hello", FLOWS)  # hello(name: str = "world", count: int = 1)
    assert isinstance(flow, Flow)
    return flow


def test_to_deployment_takes_one_schedule_and_coerces_its_parameters(hello):
    deployment = hello.to_deployment(
        "d", schedule=Cron("0 * * * *", parameters={"count": "3"}), parameters={"name": "x"}
    )

    [schedule] = deployment.schedules
    assert dict(schedule.parameters) == {"count": 3}  # checked like the defaults: "3" → 3
    assert deployment.slot_parameters(schedule.parameters) == {"name": "x", "count": 3}
    assert deployment.options["schedules"] == [schedule.to_dict()]  # made again the same


def test_to_deployment_refuses_schedule_with_schedules(hello):
    with pytest.raises(UsageError, match="give only one of .* \\(got schedule, schedules\\)"):
        hello.to_deployment("d", schedule=Cron("0 * * * *"), schedules=[Interval(60)])


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"count": "many"}, "schedules[1].parameters: count: Input should be a valid integer"),
        ({"colour": "red"}, "schedules[1].parameters: colour: "),
    ],
)
def test_a_bad_schedule_parameter_fails_at_load_naming_the_schedule(hello, parameters, message):
    schedules = [Interval(60), Cron("0 * * * *", parameters=parameters)]
    with pytest.raises(ParameterError) as info:
        hello.to_deployment("d", schedules=schedules)
    assert str(info.value).startswith(message)
    assert "'hello'" in str(info.value)


def test_schedule_parameters_are_not_checked_without_enforce_parameter_schema(hello):
    schedule = Cron("0 * * * *", parameters={"count": "many"})
    deployment = hello.to_deployment("d", schedule=schedule, enforce_parameter_schema=False)
    assert dict(deployment.schedules[0].parameters) == {"count": "many"}


# --- planning -------------------------------------------------------------------------------


def test_schedules_with_different_parameters_at_one_instant_are_two_runs():
    eu = every_minute(parameters={"region": "eu"}, slug="eu")
    us = every_minute(parameters={"region": "us"}, slug="us")

    decisions = plan(at(1, 1), [view([eu, us])], started_at=T0).decisions

    assert runs(decisions) == [
        (at(1), {"region": "eu"}, "schedule"),
        (at(1), {"region": "us"}, "schedule"),
    ]
    slots = [d for d in decisions if isinstance(d, RunSlot)]
    assert [s.variant for s in slots] == [eu.slot_variant, us.slot_variant]
    assert len({s.variant for s in slots}) == 2


@pytest.mark.parametrize(
    "schedules",
    [
        pytest.param([every_minute(), CronSchedule("* * * * *")], id="no-parameters"),
        pytest.param(
            [every_minute(parameters={"r": "eu"}), Cron("* * * * *", parameters={"r": "eu"})],
            id="equal-parameters",
        ),
    ],
)
def test_schedules_with_equal_parameters_at_one_instant_are_one_run(schedules):
    decisions = plan(at(1, 1), [view(schedules)], started_at=T0).decisions

    [slot] = [d for d in decisions if isinstance(d, RunSlot)]
    assert slot.scheduled_at == at(1)
    assert slot.variant == schedules[0].slot_variant


def test_a_slot_without_parameters_is_the_plain_slot_of_today():
    decisions = plan(at(1, 1), [view([every_minute()])], started_at=T0).decisions
    assert [d for d in decisions if isinstance(d, RunSlot)] == [RunSlot("f/d", at(1), "schedule")]


def test_each_schedule_gives_its_parameters_to_its_own_slots_only():
    hourly_eu = IntervalSchedule(120, anchor_date=T0, parameters={"region": "eu"})
    plain = IntervalSchedule(180, anchor_date=T0)

    decisions = plan(at(6, 1), [view([hourly_eu, plain])], started_at=T0, misfire_grace_seconds=400)

    assert runs(decisions.decisions) == [
        (at(2), {"region": "eu"}, "schedule"),
        (at(3), {}, "schedule"),
        (at(4), {"region": "eu"}, "schedule"),
        (at(6), {"region": "eu"}, "schedule"),
        (at(6), {}, "schedule"),
    ]


def test_an_inactive_schedule_never_fires_and_only_moves_the_cursor():
    off = every_minute(active=False, parameters={"x": 1})

    decisions = plan(at(5, 1), [view([off])], started_at=T0).decisions

    assert decisions == [AdvanceCursor("f/d", at(5, 1))]
    assert next_wakeup(at(5, 1), [view([off])]) is None


def test_an_inactive_schedule_is_not_missed_while_down():
    on = IntervalSchedule(600, anchor_date=T0)  # at minute 10
    off = every_minute(active=False)
    now = at(10, 30)  # down from T0: only the active schedule's slot counts

    decisions = plan(now, [view([on, off], catchup=CatchupPolicy.NONE)], started_at=now).decisions

    assert decisions == [
        SkipSlots("f/d", 1, "downtime", at(10)),
        AdvanceCursor("f/d", now),
    ]


def test_paused_counts_the_runs_each_stream_would_have_made():
    eu = every_minute(parameters={"r": "eu"})
    us = every_minute(parameters={"r": "us"})
    plain = every_minute()
    again = CronSchedule("* * * * *")  # same instants as plain: no more runs

    decisions = plan(at(3, 1), [view([eu, us, plain, again], paused=True)], started_at=T0)

    assert decisions.decisions == [
        SkipSlots("f/d", 9, "paused", at(1)),
        AdvanceCursor("f/d", at(3, 1)),
    ]


def test_catchup_latest_runs_the_newest_missed_slot_of_each_stream():
    eu = every_minute(parameters={"r": "eu"})
    us = IntervalSchedule(120, anchor_date=T0, parameters={"r": "us"})
    now = at(10, 40)

    decisions = plan(now, [view([eu, us])], started_at=now).decisions

    assert runs(decisions) == [(at(10), {"r": "eu"}, "catchup"), (at(10), {"r": "us"}, "catchup")]
    # 10 + 5 missed, 2 caught up: one downtime decision for both streams.
    assert [d for d in decisions if isinstance(d, SkipSlots)] == [
        SkipSlots("f/d", 13, "downtime", at(10))
    ]


@pytest.mark.parametrize(
    ("active_runs", "expected"),
    [
        ((), [(at(1), {"r": "eu"}, "schedule"), (at(1), {"r": "us"}, "schedule")]),
        (("r1",), []),
    ],
)
def test_overlap_skip_is_judged_per_instant(active_runs, expected):
    eu = every_minute(parameters={"r": "eu"})
    us = every_minute(parameters={"r": "us"})
    v = view([eu, us], overlap=OverlapPolicy.SKIP, active_runs=active_runs)

    decisions = plan(at(1, 1), [v], started_at=T0).decisions

    assert runs(decisions) == expected
    skipped = sum(d.count for d in decisions if isinstance(d, SkipSlots))
    assert skipped == 2 - len(expected)


def test_overlap_skip_still_skips_a_later_instant_in_the_same_tick():
    eu = every_minute(parameters={"r": "eu"})
    us = every_minute(parameters={"r": "us"})
    v = view([eu, us], overlap=OverlapPolicy.SKIP)

    decisions = plan(at(2, 5), [v], started_at=T0, misfire_grace_seconds=90).decisions

    assert [t for t, _, _ in runs(decisions)] == [at(1), at(1)]
    assert [d for d in decisions if isinstance(d, SkipSlots)] == [
        SkipSlots("f/d", 2, "overlap", at(2))
    ]


def test_cancel_previous_cancels_once_for_both_runs_of_an_instant():
    eu = every_minute(parameters={"r": "eu"})
    us = every_minute(parameters={"r": "us"})
    v = view([eu, us], overlap=OverlapPolicy.CANCEL_PREVIOUS, active_runs=("r1",))

    decisions = plan(at(1, 1), [v], started_at=T0).decisions

    assert [type(d) for d in decisions] == [CancelRuns, RunSlot, RunSlot, AdvanceCursor]
