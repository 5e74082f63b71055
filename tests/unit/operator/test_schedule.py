"""Cron ticks: one run per tick, missed ticks collapse, deterministic run names."""

import datetime

from mlkube.control.policy import schedule

T = datetime.datetime(2026, 11, 24, 10, 0, 30, tzinfo=datetime.UTC)


def test_due_tick_every_minute():
    created = T - datetime.timedelta(minutes=5)
    tick = schedule.due_tick("* * * * *", last=None, since=created, now=T)
    assert tick == T.replace(second=0)
    assert schedule.due_tick("* * * * *", last=tick, since=created, now=T + datetime.timedelta(seconds=20)) is None
    assert schedule.due_tick(
        "* * * * *", last=tick, since=created, now=T + datetime.timedelta(seconds=40)
    ) == tick + datetime.timedelta(minutes=1)


def test_no_tick_before_the_project_existed():
    assert schedule.due_tick("0 3 * * *", last=None, since=T, now=T + datetime.timedelta(hours=1)) is None


def test_missed_ticks_collapse_into_the_latest():
    last = T.replace(second=0) - datetime.timedelta(minutes=30)
    assert schedule.due_tick("* * * * *", last=last, since=last, now=T) == T.replace(second=0)


def test_run_names_are_deterministic_per_tick():
    assert schedule.run_name("churn", T) == "churn-sched-202611241000"
    assert schedule.next_tick("0 * * * *", after=T) == T.replace(minute=0, second=0) + datetime.timedelta(hours=1)
    assert schedule.is_valid("*/5 * * * *") and not schedule.is_valid("* * *") and not schedule.is_valid("61 * * * *")
