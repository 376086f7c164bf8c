"""A per-item time limit for SymPy work.

`simplify` can run for minutes on an innocent-looking difference.  A proof
attempt therefore runs under `time_limit(seconds)`: in the main thread an
interval timer (SIGALRM) interrupts it with `TimeLimitExceeded`, a
BaseException so that no `except Exception` inside SymPy swallows it, and the
timer keeps firing every 50 ms until the block has been left.  Where no timer
is available (another thread, another platform, a timer already in use) the
block does not run at all: `attempt` returns False and the caller takes the
numeric path, which is always bounded.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class TimeLimitExceeded(BaseException):
    """The symbolic attempt ran out of time."""


_active = False


def _interrupt(signum, frame):
    if _active:
        raise TimeLimitExceeded()


def _timer_available() -> bool:
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return False
    if signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0):
        return False  # someone else's timer is running; do not disturb it
    return signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None, _interrupt)


@contextmanager
def _alarm(seconds: float):
    """Our handler stays installed afterwards (it does nothing while no limit
    is active), so a SIGALRM still pending when the block ends is harmless."""
    global _active
    signal.signal(signal.SIGALRM, _interrupt)
    _active = True
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0, 0.0)
        _active = False


def attempt(function, seconds: float):
    """`(True, function())` if it finishes within `seconds`, else `(False, None)`."""
    if seconds <= 0 or not _timer_available():
        return False, None
    try:
        with _alarm(seconds):
            return True, function()
    except (TimeLimitExceeded, RecursionError):
        return False, None
