"""A time budget per verified item.

Everything an item does — translating the DAG to SymPy, running the emitted
code and SymPy's reference at sample points, simplifying for a proof — runs
inside one `Budget`.  A phase runs through `budget.run(work)`: if the budget
runs out during it, `run` returns `(False, None)` and the item reports what
it had done so far ("not proved in the time limit" with its comparisons).

In the main thread an interval timer (SIGALRM) interrupts the work with
`TimeLimitExceeded`, a BaseException so that no `except Exception` inside
SymPy swallows it; the timer keeps firing every 50 ms until `run` has caught
it, and a tick outside `run` does nothing.  A tick that lands where Python
cannot raise (a `__del__`, a garbage-collector callback) is "unraisable":
while a timer is armed the unraisable hook drops those, quietly, because the
next tick interrupts the work anyway.  The numeric comparison at one point
runs `uninterrupted()`: ticks are dropped there, because mpmath's conversion
of a float catches every exception (a bare `except:` in `from_float`) and
returns nan, so a tick landing in it would turn a number into nan silently
(an emitted function at 50 digits then "raises math range error": fuzz
seeds data:2700048847 and data:2700058071, under load only); the loops
between points check the deadline.  A point still running `GRACE` seconds
past the deadline is interrupted all the same (emitted code that never
returns).  Where no timer is available (another thread, another platform, a timer
already in use) the budget is only checked between steps, and work that
cannot be stopped midway (a SymPy proof) is not started at all: the numeric
path, whose single steps are bounded, still runs.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager


class TimeLimitExceeded(BaseException):
    """The item's budget ran out."""


_armed: "Budget | None" = None  # the budget whose timer is running
GRACE = 1.0  # seconds past the deadline that an uninterrupted() block may run on


def _interrupt(signum, frame):
    """Interrupt only work inside `Budget.run`, which catches it: a tick
    anywhere else (between phases, while the item is being reported) does
    nothing, so the exception never escapes a verification."""
    if _armed is not None and _armed.running and not _armed.expired and not (
            _armed.shielded and _armed.remaining() > -GRACE):
        raise TimeLimitExceeded()


def _dropping_time_limits(previous):
    """An unraisable hook that ignores ticks and hands anything else on."""
    def hook(unraisable):
        if not isinstance(unraisable.exc_value, TimeLimitExceeded):
            previous(unraisable)
    return hook


def _timer_available() -> bool:
    if not hasattr(signal, "setitimer") or \
            threading.current_thread() is not threading.main_thread():
        return False
    if signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0):
        return False  # someone else's timer is running; do not disturb it
    return signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None, _interrupt)


class Budget:
    """`seconds` of work from now; see the module docstring."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = seconds <= 0
        self.interruptible = False  # set while a timer guards this budget
        self.running = 0  # depth of run() calls: the only place a tick interrupts
        self.shielded = 0  # depth of uninterrupted() blocks, where ticks are dropped

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def left(self) -> bool:
        """True while there is time; once out, stays out."""
        if not self.expired and self.remaining() <= 0:
            self.expired = True
        return not self.expired

    def run(self, work, *, needs_interrupt: bool = False):
        """`(True, work())` if it finishes in time, else `(False, None)`.
        With `needs_interrupt`, work that only a timer can stop is skipped
        when there is no timer."""
        if not self.left() or (needs_interrupt and not self.interruptible):
            return False, None
        depth = self.running
        try:
            self.running = depth + 1
            try:
                value = work()
            finally:
                self.running = depth
            return True, value
        except TimeLimitExceeded:
            self.expired, self.running = True, depth
            return False, None
        except RecursionError:
            self.running = depth
            return False, None


@contextmanager
def budget(seconds: float):
    """A `Budget` for the block, with a timer when one is available.  Our
    handler stays installed afterwards (it does nothing while no budget is
    armed), so a SIGALRM still pending when the block ends is harmless."""
    global _armed
    b = Budget(seconds)
    if b.expired or _armed is not None or not _timer_available():
        yield b
        return
    signal.signal(signal.SIGALRM, _interrupt)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _dropping_time_limits(previous_hook)
    _armed, b.interruptible = b, True
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
        yield b
    except TimeLimitExceeded:  # only in the instant a run() is leaving
        b.expired = True
    finally:
        # Disarm before stopping the timer: a tick already on its way then
        # does nothing, instead of raising out of this block.
        _armed, b.interruptible = None, False
        signal.setitimer(signal.ITIMER_REAL, 0.0, 0.0)
        sys.unraisablehook = previous_hook


@contextmanager
def uninterrupted():
    """Ticks of the armed budget are dropped in the block, up to GRACE
    seconds past its deadline (see the module docstring): for the numeric
    work at one point, whose caller checks `Budget.left()` before the next."""
    b = _armed
    if b is None:
        yield
        return
    b.shielded += 1
    try:
        yield
    finally:
        b.shielded -= 1
