"""Cron ticks for scheduled retraining: which tick is due, and the next one. Pure."""

from __future__ import annotations

import datetime

import croniter


def is_valid(expression: str) -> bool:
    """Whether ``expression`` is a five-field cron expression croniter accepts."""
    return len(expression.split()) == 5 and croniter.croniter.is_valid(expression)


def due_tick(
    expression: str, *, last: datetime.datetime | None, since: datetime.datetime, now: datetime.datetime
) -> datetime.datetime | None:
    """The latest tick in ``(max(last, since), now]``, or None. Missed ticks collapse into the latest."""
    start = max(last, since) if last else since
    previous = croniter.croniter(expression, now).get_prev(datetime.datetime)
    return previous if previous > start else None


def next_tick(expression: str, *, after: datetime.datetime) -> datetime.datetime:
    """The first tick after ``after``."""
    return croniter.croniter(expression, after).get_next(datetime.datetime)


def run_name(project: str, tick: datetime.datetime) -> str:
    """The TrainingJob of one tick: deterministic, so a tick can never start two runs."""
    return f"{project}-sched-{tick.strftime('%Y%m%d%H%M')}"
