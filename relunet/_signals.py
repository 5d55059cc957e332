"""SIGTERM and SIGHUP as exceptions, so that ``finally`` blocks remove temporary files.

Python turns Ctrl-C (SIGINT) into :class:`KeyboardInterrupt`, which unwinds the stack: the
``finally`` of :func:`relunet.data.atomic_path` removes its temporary file and the previous
output stays as it was.  SIGTERM (``kill``, a job scheduler's time limit, ``docker stop``) and
SIGHUP (a closed terminal) kill the process where it stands instead, leaving half-written
hidden temporary files behind.  Inside :func:`signals_as_exceptions` they raise
:class:`Terminated`, which unwinds the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

__all__ = ["Terminated", "signals_as_exceptions", "hold", "release"]


class Terminated(BaseException):  # noqa: N818 - named like KeyboardInterrupt, its sibling
    """The process received ``signum``; a BaseException, like KeyboardInterrupt, so that
    ``except Exception`` handlers do not swallow it."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = int(signum)

    def __str__(self):
        return f"terminated by {signal.Signals(self.signum).name}"


@contextlib.contextmanager
def signals_as_exceptions(names=("SIGTERM", "SIGHUP")):
    """Raise :class:`Terminated` on the signals ``names`` while the block runs.

    Only in the main thread (the only one Python runs signal handlers in), and only for
    signals whose handler is the default: an ignored SIGHUP (``nohup``) stays ignored, and a
    handler the caller installed is left alone.  The previous handlers are restored after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    previous = {}
    try:
        for name in names:
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
                previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class _Held:
    __slots__ = ("previous", "pending")

    def __init__(self):
        self.previous, self.pending = {}, []


def hold(names=("SIGINT", "SIGTERM", "SIGHUP")):
    """Hold the signals ``names`` until :func:`release`: for creating a temporary file and
    entering the ``try`` that removes it, with no signal in between.

    A held signal is recorded by a stand-in handler and acted on by :func:`release`, which the
    caller calls as the first thing inside its ``try``.  (Not ``pthread_sigmask``: a signal
    blocked in the main thread is delivered to another thread instead, a BLAS or numba worker,
    and Python then runs the main thread's handler at once all the same.)  Only in the main
    thread, and only for signals with a Python handler or the default action; an ignored signal
    stays ignored.  Returns a token for :func:`release`, or None where nothing is held.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    held = _Held()

    def stand_in(signum, frame):
        held.pending.append(signum)

    for name in names:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        old = signal.getsignal(signum)
        if old is signal.SIG_IGN or old is None:
            continue
        held.previous[signum] = signal.signal(signum, stand_in)
    return held


def release(held):
    """Restore the handlers :func:`hold` replaced, then act on each signal that arrived
    meanwhile as its handler would have (raise KeyboardInterrupt or :class:`Terminated`, or
    the default action).  Safe to call twice, and with None."""
    if held is None:
        return
    previous, pending = held.previous, held.pending
    held.previous, held.pending = {}, []
    for signum, old in previous.items():
        signal.signal(signum, old)
    for signum in dict.fromkeys(pending):
        old = previous[signum]
        if callable(old):
            old(signum, None)
        elif old is signal.SIG_DFL:
            os.kill(os.getpid(), signum)
