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
import signal
import threading

__all__ = ["Terminated", "signals_as_exceptions"]


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
