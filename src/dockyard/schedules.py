"""Prefect-compatible module path: ``from dockyard.schedules import Cron``."""

from dockyard.core.schedules import (
    Cron,
    CronSchedule,
    Interval,
    IntervalSchedule,
    RRule,
    RRuleSchedule,
    Schedule,
)

__all__ = [
    "Cron",
    "CronSchedule",
    "Interval",
    "IntervalSchedule",
    "RRule",
    "RRuleSchedule",
    "Schedule",
]
