"""Child processes that end with the process that started them, even one killed with SIGKILL.

`up`, `demo` and `bench` stop their broker and services on Ctrl-C, SIGTERM and SIGHUP; a
SIGKILL (the OOM killer, `kill -9`, a CI job timeout) gives them no chance to. On Linux the
kernel can send each child a signal of its own when its parent dies (PR_SET_PDEATHSIG);
elsewhere the children are left as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


@functools.cache  # find_library runs a subprocess (ldconfig); once per process is enough
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


def end_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen`: the child gets SIGTERM once this process dies.

    None where the platform has no such signal (then pass nothing). The kernel ties the signal
    to the *thread* that forks, so spawn from a thread that lives as long as the children (the
    hub spawns from the main thread).
    """
    prctl = _prctl()  # resolved before the fork: the child only makes the call
    if prctl is None:
        return None
    parent = os.getpid()

    def arrange() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the call took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange
