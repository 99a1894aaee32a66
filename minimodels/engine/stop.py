"""Ctrl-C (SIGINT) and SIGTERM ask a training loop to stop after the step it is in, instead of killing it mid-step:
the loop then writes a checkpoint and says how to continue (``Interrupted``)."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def stop_requests():
    """Yields a list that holds the signal's name once one arrived."""
    asked: list[str] = []
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, lambda num, _: asked.append(signal.Signals(num).name))
                    for sig in (signal.SIGINT, signal.SIGTERM)}
    else:  # signal handlers can only be set from the main thread (e.g. not inside a notebook's worker)
        previous = {}
    try:
        yield asked
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
