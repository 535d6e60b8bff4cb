"""Scheduling decisions as a pure function of (state, now): tables, no clock."""

from datetime import UTC, datetime, timedelta

import pytest

from dockyard.core.deployments import CatchupPolicy, OverlapPolicy
from dockyard.core.planning import (
    AdvanceCursor,
    CancelRuns,
    DeploymentView,
    QueuedRun,
    RunSlot,
    SkipSlots,
    next_wakeup,
    plan,
    select_runs_to_start,
)
from dockyard.core.schedules import CronSchedule, IntervalSchedule

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
EVERY_MIN = (IntervalSchedule(60, anchor_date=T0),)


def view(**kw):
    base = dict(name="f/d", schedules=EVERY_MIN, paused=False, cursor=T0)
    base.update(kw)
    return DeploymentView(**base)


def at(minutes=0, seconds=0):
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def kinds(decisions, kind):
    return [d for d in decisions if isinstance(d, kind)]


def test_new_deployment_starts_its_cursor_now_and_runs_nothing():
    decisions = plan(at(5), [view(cursor=None)], started_at=at(5)).decisions
    assert decisions == [AdvanceCursor("f/d", at(5))]


def test_slot_due_now_runs_once_and_cursor_moves():
    decisions = plan(at(1, 0.2), [view()], started_at=T0).decisions
    assert kinds(decisions, RunSlot) == [RunSlot("f/d", at(1), "schedule")]
    assert kinds(decisions, AdvanceCursor) == [AdvanceCursor("f/d", at(1, 0.2))]


def test_nothing_due_means_no_decisions_and_no_cursor_write():
    assert plan(at(0, 30), [view()], started_at=T0).decisions == []


def test_two_slots_in_one_late_tick_both_run_when_within_grace():
    decisions = plan(at(2, 5), [view()], started_at=T0, misfire_grace_seconds=90).decisions
    assert [d.scheduled_at for d in kinds(decisions, RunSlot)] == [at(1), at(2)]


@pytest.mark.parametrize(
    ("policy", "window", "expected_runs", "expected_skipped"),
    [
        (CatchupPolicy.LATEST, 3600, [at(10)], 9),
        (CatchupPolicy.LATEST, 30, [], 10),  # newest missed slot is older than the window
        (CatchupPolicy.NONE, 3600, [], 10),
        (CatchupPolicy.ALL, 3600, [at(m) for m in range(8, 11)], 7),  # catchup_max=3
    ],
)
def test_missed_slots_follow_the_catchup_policy(policy, window, expected_runs, expected_skipped):
    # Down from T0 to 10:40 later: slots at minutes 1..10 were missed.
    now = at(10, 40)
    v = view(catchup=policy, catchup_window_seconds=window, catchup_max=3)
    decisions = plan(now, [v], started_at=now).decisions
    runs = kinds(decisions, RunSlot)
    assert [r.scheduled_at for r in runs] == expected_runs
    assert all(r.trigger == "catchup" for r in runs)
    skipped = kinds(decisions, SkipSlots)
    assert sum(s.count for s in skipped) == expected_skipped
    assert all(s.reason == "downtime" for s in skipped)
    assert kinds(decisions, AdvanceCursor) == [AdvanceCursor("f/d", now)]


@pytest.mark.parametrize("policy", list(CatchupPolicy))
def test_a_slot_another_replica_serves_is_due_not_downtime_for_a_replica_just_started(policy):
    # Another replica has served the deployment since T0 and advanced the cursor to
    # minute 1; this one starts at 2:05, just after the slot at minute 2 fell due.
    now = at(2, 5)
    v = view(cursor=at(1), catchup=policy, served_since=T0)
    decisions = plan(now, [v], started_at=now).decisions
    assert kinds(decisions, RunSlot) == [RunSlot("f/d", at(2), "schedule")]
    assert kinds(decisions, SkipSlots) == []
    # With no replica serving it, the same slot was downtime for the policy to decide.
    alone = plan(now, [view(cursor=at(1), catchup=policy)], started_at=now).decisions
    expected = [] if policy is CatchupPolicy.NONE else [RunSlot("f/d", at(2), "catchup")]
    assert kinds(alone, RunSlot) == expected


def test_paused_deployment_skips_with_reason_paused_and_moves_cursor():
    decisions = plan(at(3, 1), [view(paused=True)], started_at=T0).decisions
    assert kinds(decisions, RunSlot) == []
    assert kinds(decisions, SkipSlots) == [SkipSlots("f/d", 3, "paused", at(1))]
    assert kinds(decisions, AdvanceCursor) == [AdvanceCursor("f/d", at(3, 1))]


@pytest.mark.parametrize(
    ("policy", "runs", "cancels", "skips"),
    [
        (OverlapPolicy.ALLOW, 1, 0, 0),
        (OverlapPolicy.SKIP, 0, 0, 1),
        (OverlapPolicy.CANCEL_PREVIOUS, 1, 1, 0),
    ],
)
def test_overlap_policy_when_a_run_is_active(policy, runs, cancels, skips):
    v = view(overlap=policy, active_runs=("run-1",))
    decisions = plan(at(1, 1), [v], started_at=T0).decisions
    assert len(kinds(decisions, RunSlot)) == runs
    cancel = kinds(decisions, CancelRuns)
    assert len(cancel) == cancels
    if cancel:
        assert cancel[0].run_ids == ("run-1",)
        assert decisions.index(cancel[0]) < decisions.index(kinds(decisions, RunSlot)[0])
    skipped = kinds(decisions, SkipSlots)
    assert [s.reason for s in skipped] == ["overlap"] * skips


def test_overlap_skip_without_active_run_runs_first_of_two_due_slots_only():
    v = view(overlap=OverlapPolicy.SKIP)
    decisions = plan(at(2, 1), [v], started_at=T0, misfire_grace_seconds=300).decisions
    assert [r.scheduled_at for r in kinds(decisions, RunSlot)] == [at(1)]
    assert kinds(decisions, SkipSlots)[0].count == 1


def test_planning_is_per_deployment():
    a = view(name="a/x")
    b = view(name="b/y", paused=True)
    decisions = plan(at(1, 1), [a, b], started_at=T0).decisions
    assert {d.deployment for d in kinds(decisions, RunSlot)} == {"a/x"}
    assert {d.deployment for d in kinds(decisions, SkipSlots)} == {"b/y"}


def test_next_wakeup_is_the_earliest_slot_of_active_deployments():
    hourly = view(name="h/x", schedules=(CronSchedule("0 * * * *"),))
    paused = view(name="p/x", paused=True, schedules=(IntervalSchedule(1, anchor_date=T0),))
    assert next_wakeup(at(0, 10), [view(), hourly, paused]) == at(1)
    assert next_wakeup(at(0, 10), [paused]) is None


def test_huge_backlog_is_counted_not_enumerated():
    every_second = (IntervalSchedule(1, anchor_date=T0),)
    now = T0 + timedelta(days=30)
    v = view(schedules=every_second, catchup=CatchupPolicy.LATEST)
    decisions = plan(now, [v], started_at=now).decisions
    assert [r.scheduled_at for r in kinds(decisions, RunSlot)] == [now]
    assert kinds(decisions, SkipSlots)[0].count >= 100_000 - 1


@pytest.mark.parametrize(
    ("limit", "caps", "running", "expected"),
    [
        (None, {}, {}, ["r1", "r2", "r3", "r4"]),
        (2, {}, {}, ["r1", "r2"]),
        (3, {}, {"a": 2}, ["r1"]),
        (10, {"a": 1}, {}, ["r1", "r3", "r4"]),  # r2 waits behind a's cap; b's runs go
        (10, {"a": 1}, {"a": 1}, ["r3", "r4"]),
        (0, {}, {"a": 50}, ["r1", "r2", "r3", "r4"]),  # 0 = no process limit
    ],
)
def test_select_runs_to_start_respects_limits_in_order(limit, caps, running, expected):
    queue = [QueuedRun("r1", "a"), QueuedRun("r2", "a"), QueuedRun("r3", "b"), QueuedRun("r4", "b")]
    chosen = select_runs_to_start(queue, running, limit=limit, concurrency_limits=caps)
    assert chosen == expected
