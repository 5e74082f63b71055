"""`kubectl mlkube get project`: the tree a user reads, rendered from the API's objects."""

from __future__ import annotations

import datetime

import pytest
from plugin_cases import NOW, canary, project, training, version, view

from mlkube.api import kinds
from mlkube.plugin import tree

EXPECTED = """\
penguins  MLProject  Ready  namespace ml  1d
├── champion     v2  f1=0.9814  promotion manual
├── versions
│   ├── v3  f1=0.9851  eligible      approval Approved  Eligible                        served by penguins-prod  30m
│   ├── v2  f1=0.9814  eligible      approval Approved  Champion    aliases production  served by penguins-prod  30m
│   └── v1  f1=0.7101  not eligible  approval Pending   Registered                                               1h
│       └── fails f1 >= 0.95 (measured 0.7101)
├── deployments
│   └── penguins-prod  Canary  Progressing  tracks champion  split v2=90,v3=10  step 1/2  verdict Passing (120 requests)  1m30s
│       └── monitor penguins-drift  Drifting  v2  drift share 0.33  top bill_length_mm, bill_depth_mm  1h
└── trainings
    └── nightly  Running  tuning  5/20 trials  best 0.9712  eta 6m  5m
"""


def test_a_canary_shows_champion_versions_split_step_verdict_monitor_and_running_training():
    assert tree.render(view(), now=NOW) == EXPECTED


def test_colours_only_when_asked_and_the_text_is_the_same_underneath():
    coloured = tree.render(view(), now=NOW, colour=True)
    assert "\x1b[" not in tree.render(view(), now=NOW)
    assert "\x1b[32mChampion\x1b[0m" in coloured and "\x1b[31mDrifting\x1b[0m" in coloured
    assert "\x1b[33mapproval Pending\x1b[0m" in coloured
    stripped = coloured
    for code in ("\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[2m", "\x1b[1m", "\x1b[0m"):
        stripped = stripped.replace(code, "")
    assert stripped == EXPECTED


def test_only_ages_move_with_the_clock():
    later = tree.render(view(), now=NOW + datetime.timedelta(hours=3)).splitlines()
    now = EXPECTED.splitlines()
    assert [line.rsplit("  ", 1)[0] for line in later if "eta" not in line] == [
        line.rsplit("  ", 1)[0] for line in now if "eta" not in line
    ]
    assert later[0].endswith("1d3h") and later[3].endswith("3h30m")


def test_a_new_project_says_what_is_missing():
    text = tree.render(tree.View(project=project(champion=None, policy="auto")), now=NOW)
    assert text.splitlines()[1:] == [
        "├── champion     none yet      promotion auto",
        "├── versions     none",
        "├── deployments  none",
        "└── trainings    none running",
    ]


def test_a_rolled_back_deployment_says_why_and_finished_trainings_are_not_listed():
    rolled_back = canary(
        phase="RolledBack",
        candidateVersion=None,
        currentStep=None,
        traffic=[{"version": 2, "role": "stable", "percent": 100}],
        trafficSummary="v2=100",
        analysis={"requests": 80, "verdict": "Failing", "failedChecks": ["errorRate 0.31 > 0.05"]},
        rolledBackVersion=3,
        message="Version 3 rolled back: analysis failed: errorRate 0.31 > 0.05",
    )
    text = tree.render(tree.View(project=project(), deployments=[rolled_back], trainings=[training("first", "Failed")]), now=NOW)
    lines = text.splitlines()
    assert lines[4] == (
        "│   └── penguins-prod  Canary  RolledBack  tracks champion  split v2=100  verdict Failing (80 requests)  1m30s"
    )
    assert lines[5] == "│       └── message Version 3 rolled back: analysis failed: errorRate 0.31 > 0.05"
    assert lines[-1] == "└── trainings    none running"


def test_shadow_blue_green_and_pinned_deployments():
    shadow = canary(
        currentStep=None,
        traffic=[{"version": 2, "role": "stable", "percent": 100}, {"version": 3, "role": "shadow", "percent": 50}],
        analysis=None,
    )
    shadow["spec"]["strategy"] = {"type": "Shadow"}
    shadow["spec"]["model"] = {"version": 3}
    line = tree.render(tree.View(project=project(), deployments=[shadow]), now=NOW).splitlines()[4]
    assert line == "│   └── penguins-prod  Shadow  Progressing  pins v3  split v2=100,v3=[50]  candidate v3  verdict -  1m30s"


def test_a_training_before_its_first_trial_has_no_eta_and_a_pending_one_no_progress():
    lines = tree.render(
        tree.View(
            project=project(),
            trainings=[training("queued", None), training("loading", "Running", total=10, started="2026-12-05T11:59:00Z")],
        ),
        now=NOW,
    ).splitlines()
    assert lines[-3:] == [
        "└── trainings",
        "    ├── loading  Running  tuning  0/10 trials  best 0.9712  5m",
        "    └── queued   Pending" + " " * 36 + "5m",  # ages aligned
    ]


def test_a_status_written_by_another_operator_version_does_not_break_the_tree():
    odd = version(4, "f1=0.99", phase="Champion")
    odd["status"]["phase"] = "SomethingNew"
    text = tree.render(tree.View(project=project(), versions=[odd]), now=NOW)
    assert "v4  -  -  approval Pending  Registered" in text


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (192, "3m12s"),
        (660, "11m"),
        (3600, "1h"),
        (7500, "2h5m"),
        (86400 * 4 + 3600 * 3, "4d3h"),
    ],
)
def test_durations_read_like_kubectl_ages(seconds, shown):
    assert tree.duration(seconds) == shown


def test_eta_from_the_pace_of_the_trials():
    running = training("t", "Running", done=4, total=10, started="2026-12-05T11:58:00Z")
    status = kinds.TRAININGJOB.parse_status(running["status"])
    assert tree.eta(status, NOW) == "eta 3m"  # 30 s a trial, 6 to go
    assert tree.eta(status, NOW - datetime.timedelta(minutes=2)) == "eta 0s"
