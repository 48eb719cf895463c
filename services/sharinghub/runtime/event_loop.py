"""Which asyncio event loop a hub process runs on (`SHARINGHUB_EVENT_LOOP`).

uvloop (libuv, compiled) runs the loop, its callbacks and the socket transports the Kafka
client reads and writes through in compiled code, where asyncio's default loop runs them in
Python: 19–29 % of a stage process's samples at 50 requests/s were asyncio's own Python code
(see docs/performance.md for what uvloop changed). `auto` takes uvloop where it
is installed and asyncio's loop otherwise; `uvloop` refuses to start without it. The bench's
relay and harness run on the same loop as the hub they are compared with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")
LoopChoice = Literal["auto", "uvloop", "asyncio"]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class EventLoopUnavailable(RuntimeError):
    """uvloop was asked for and cannot be imported."""


def loop_factory(choice: LoopChoice) -> LoopFactory | None:
    """What creates the loop for `choice`; None means asyncio's default loop."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise EventLoopUnavailable(
                "SHARINGHUB_EVENT_LOOP=uvloop but uvloop is not installed "
                "(pip install uvloop, or set SHARINGHUB_EVENT_LOOP=auto)"
            ) from None
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def loop_name(choice: LoopChoice) -> Literal["uvloop", "asyncio"]:
    """The loop `choice` gives here: "uvloop" or "asyncio"."""
    return "asyncio" if loop_factory(choice) is None else "uvloop"


def running_loop_name() -> Literal["uvloop", "asyncio"]:
    """The loop this coroutine runs on: "uvloop" or "asyncio"."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.partition(".")[0] == "uvloop" else "asyncio"


def run(main: Coroutine[Any, Any, T], choice: LoopChoice) -> T:
    """`asyncio.run(main)` on the loop `choice` gives."""
    try:
        factory = loop_factory(choice)
    except EventLoopUnavailable:
        main.close()  # never awaited: close it rather than leave a warning behind
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
