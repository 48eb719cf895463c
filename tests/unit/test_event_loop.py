"""The event loop a hub process runs on (`SHARINGHUB_EVENT_LOOP`)."""

from __future__ import annotations

import asyncio
import sys

import pytest
from pydantic import ValidationError

from sharinghub.cli import main
from sharinghub.runtime import event_loop
from sharinghub.runtime.settings import Settings, describe_invalid


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


async def _named() -> str:
    return event_loop.running_loop_name()


@pytest.mark.parametrize("choice", ["auto", "uvloop"])
def test_auto_and_uvloop_run_on_uvloop_where_it_is_installed(choice: event_loop.LoopChoice) -> None:
    assert event_loop.run(_loop_module(), choice).startswith("uvloop")
    assert event_loop.run(_named(), choice) == "uvloop"
    assert event_loop.loop_name(choice) == "uvloop"


def test_asyncio_runs_on_asyncios_own_loop() -> None:
    assert event_loop.run(_loop_module(), "asyncio").startswith("asyncio")
    assert event_loop.run(_named(), "asyncio") == "asyncio"
    assert event_loop.loop_name("asyncio") == "asyncio"


def test_the_coroutines_result_and_exception_come_back() -> None:
    async def fails() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        event_loop.run(fails(), "uvloop")


def test_without_uvloop_auto_falls_back_and_uvloop_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert event_loop.run(_named(), "auto") == "asyncio"
    coro = _named()
    with pytest.raises(event_loop.EventLoopUnavailable, match="SHARINGHUB_EVENT_LOOP=uvloop"):
        event_loop.run(coro, "uvloop")
    assert coro.cr_frame is None  # closed, not left to warn that it was never awaited


def test_a_service_asked_for_a_missing_uvloop_exits_2_before_starting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    monkeypatch.setenv("SHARINGHUB_EVENT_LOOP", "uvloop")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    assert main(["run", "consent"]) == 2
    err = capsys.readouterr().err
    assert "uvloop is not installed" in err
    assert "Traceback" not in err


def test_up_refuses_a_missing_uvloop_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    monkeypatch.setenv("SHARINGHUB_EVENT_LOOP", "uvloop")
    assert main(["up"]) == 2
    captured = capsys.readouterr()
    assert "uvloop is not installed" in captured.err
    assert "starting sharinghub" not in captured.out


def test_an_unknown_loop_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARINGHUB_EVENT_LOOP", "trio")
    with pytest.raises(ValidationError) as invalid:
        Settings()
    [line] = describe_invalid(invalid.value)
    assert line.startswith("SHARINGHUB_EVENT_LOOP:")
    assert "'auto', 'uvloop' or 'asyncio'" in line
