"""Progress on long work: one status line on stderr for any stage that runs
longer than about a second (stage name, items done, elapsed time).

Work reports through `report(stage, done, total)`, which costs a global
lookup when nobody listens, so any stage of the compiler can call it in its
loop.  `reporting()` listens (the command line turns it on when stderr is a
terminal, or as `--progress`/`--no-progress` say); a small thread redraws
the line, so a stage that reports nothing still shows its elapsed time, and
a stage that ends within the delay prints nothing at all.

Hand-written rather than tqdm or rich: the whole need is one redrawn line
with a delay, a few dozen lines, and neither library would save any of them
while adding a dependency for every user.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

DELAY = 1.0  # seconds a stage runs before it is shown
INTERVAL = 0.2  # seconds between redraws on a terminal
LOG_INTERVAL = 5.0  # seconds between lines elsewhere (a log file, CI), where \r cannot redraw

_active: "Reporter | None" = None


def report(stage: str, done: int | None = None, total: int | None = None,
           unit: str = "items") -> None:
    """`stage` is under way with `done` of `total` `unit` finished (either may
    be unknown).  A new stage name ends the previous stage."""
    reporter = _active
    if reporter is not None:
        reporter.update(stage, done, total, unit)


def finish(stage: str) -> None:
    """`stage` is over (its line, if shown, gets its final time)."""
    reporter = _active
    if reporter is not None:
        reporter.end(stage)


@contextlib.contextmanager
def stage(name: str, unit: str = "items"):
    """`with progress.stage("lowering"):` reports the stage while the block runs."""
    report(name, None, None, unit)
    try:
        yield
    finally:
        finish(name)


@contextlib.contextmanager
def stages():
    """`with progress.stages() as report:` gives `report` to work that names
    its own stages as it goes (the compiler pipeline's `report=`), and ends
    whichever stage is still shown when the block ends."""
    try:
        yield report
    finally:
        reporter = _active
        if reporter is not None and reporter.stage is not None:
            reporter.end(reporter.stage)


@contextlib.contextmanager
def reporting(enabled: bool | None = None, stream=None, delay: float = DELAY):
    """Show progress while the block runs: always (True), never (False), or
    when `stream` (stderr) is a terminal (None)."""
    global _active
    stream = stream if stream is not None else sys.stderr
    if enabled is None:
        enabled = _is_terminal(stream)
    if not enabled or _active is not None:
        yield None
        return
    reporter = _active = Reporter(stream, delay)
    try:
        yield reporter
    finally:
        _active = None
        reporter.close()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Reporter:
    """Draws the current stage's line; a daemon thread keeps it fresh."""

    def __init__(self, stream, delay: float):
        self.stream = stream
        self.delay = delay
        self.lock = threading.Lock()
        self.stage: str | None = None
        self.done = self.total = None
        self.unit = "items"
        self.started = 0.0
        self.shown = False
        self.width = 0
        self.terminal = _is_terminal(stream)
        self.last_line = 0.0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="exprgrad-progress", daemon=True)
        self.thread.start()

    def update(self, stage: str, done, total, unit: str) -> None:
        with self.lock:
            if stage != self.stage:
                self._end_line()
                self.stage, self.started, self.shown = stage, time.monotonic(), False
            self.done, self.total, self.unit = done, total, unit

    def end(self, stage: str) -> None:
        with self.lock:
            if stage == self.stage:
                self._end_line()
                self.stage = None

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        with self.lock:
            self._end_line()
            self.stage = None

    def _run(self) -> None:
        while not self.stopped.wait(INTERVAL):
            with self.lock:
                now = time.monotonic()
                if self.stage is None or now - self.started < self.delay:
                    continue
                if self.terminal or now - self.last_line >= LOG_INTERVAL:
                    self._draw()

    def _draw(self) -> None:
        """Redraw the line on a terminal; elsewhere write it as a line of its own."""
        text = self.line()
        if self.terminal:
            self.stream.write("\r" + text.ljust(self.width))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.width, self.shown, self.last_line = len(text), True, time.monotonic()

    def line(self) -> str:
        """`lowering: 12,000 / 40,000 nodes, 3.2 s`"""
        count = ""
        if self.done is not None:
            count = f" {self.done:,}" + (f" / {self.total:,}" if self.total is not None else "")
            count = f"{count} {self.unit},"
        return f"exprgrad {self.stage}:{count} {time.monotonic() - self.started:.1f} s"

    def _end_line(self) -> None:
        """The stage's final line (with its whole time), if it was shown at all."""
        if self.shown:
            self._draw()
            if self.terminal:
                self.stream.write("\n")
                self.stream.flush()
        self.shown, self.width = False, 0
