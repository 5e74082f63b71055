"""Stage progress of `mlkube demo` and `mlkube local up`: a bar on a terminal, numbered lines elsewhere."""

from __future__ import annotations

import io

import pytest

from mlkube.local import progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_without_a_terminal_each_line_is_numbered_by_its_stage_and_has_no_control_characters():
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(("data", "training", "rollout"), out=out, tty=False, clock=clock)
    shown.line("data", "wrote penguins.csv")
    shown.line("training", "first: Running, trials 1/4")
    shown.note("  $ mlkube feedback import")
    shown.line("data", "a late word about data")  # an earlier stage does not move the count back
    shown.finish("done in 3 s")
    assert out.getvalue().splitlines() == [
        "[1/3] wrote penguins.csv",
        "[2/3] first: Running, trials 1/4",
        "[2/3]   $ mlkube feedback import",
        "[2/3] a late word about data",
        "[3/3] done in 3 s",
    ]
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_on_a_terminal_lines_scroll_above_a_bar_redrawn_in_place():
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(("data", "training", "rollout", "recovered"), out=out, tty=True, clock=clock)
    shown.line("data", "wrote penguins.csv")
    clock.now += 72
    shown.line("training", "first: Running")
    screen = out.getvalue()
    assert screen.endswith(progress.ERASE + "first: Running\n[" + "#" * 12 + "." * 12 + "] 2/4 training · 1m12s")
    assert screen.count("\n") == 2  # the bar itself never ends a line while work goes on
    shown.finish("done")
    assert out.getvalue().endswith("[" + "#" * 24 + "] 4/4 recovered · 1m12s\ndone\n")


def test_stages_are_required():
    with pytest.raises(ValueError, match="stages"):
        progress.Progress((), out=io.StringIO())


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.9, "59s"), (72, "1m12s"), (3725, "1h2m")])
def test_elapsed(seconds, text):
    assert progress.elapsed(seconds) == text
