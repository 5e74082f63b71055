"""Stage progress of a long local command (``mlkube demo``, ``mlkube local up``).

A command names its stages up front and reports lines against them. On a terminal the last
line is a bar redrawn in place (``[#######.......] 4/9 training · 1m12s``) and every reported
line scrolls above it; anywhere else (a pipe, a CI log) each line is printed once, prefixed with
its stage's number (``[4/9] ...``), with no control characters. A stage can only move forward:
a line about an earlier stage (the monitor speaking again during retraining) keeps the bar where
it is.

Must not: decide what a stage is; the command does.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

ERASE = "\r\x1b[K"
WIDTH = 24


class Progress:
    """Reports lines against ``stages`` on ``out`` (see the module docstring)."""

    def __init__(
        self,
        stages: Sequence[str],
        *,
        out: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not stages:
            raise ValueError("stages: name at least one stage")
        self.stages = tuple(stages)
        self.out = out if out is not None else sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.clock = clock
        self.started = clock()
        self.current = 0
        """Stages begun so far (0: none yet)."""
        self._bar_shown = False

    def line(self, stage: str, text: str) -> None:
        """Report ``text`` under ``stage``, moving the bar to it when it lies ahead."""
        if stage in self.stages:
            self.current = max(self.current, self.stages.index(stage) + 1)
        if self.tty:
            self.out.write(ERASE + text + "\n" + self.bar())
            self._bar_shown = True
        else:
            self.out.write(f"[{self.current}/{len(self.stages)}] {text}\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """Report ``text`` under the current stage (a command's output, a detail)."""
        self.line("", text)

    def finish(self, text: str) -> None:
        """All stages done: the full bar (terminal) or a last numbered line, then ``text``."""
        self.current = len(self.stages)
        if self.tty:
            self.out.write(ERASE + self.bar() + "\n" + text + "\n")
        else:
            self.out.write(f"[{self.current}/{len(self.stages)}] {text}\n")
        self._bar_shown = False
        self.out.flush()

    def bar(self) -> str:
        """``[#####.......] 3/9 training · 42s``: the stages begun, the current one, the time so far."""
        total = len(self.stages)
        filled = round(WIDTH * self.current / total)
        name = self.stages[self.current - 1] if self.current else "starting"
        return f"[{'#' * filled}{'.' * (WIDTH - filled)}] {self.current}/{total} {name} · {elapsed(self.clock() - self.started)}"


def elapsed(seconds: float) -> str:
    """``42s``, ``1m12s``, ``1h3m``."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60}m"
