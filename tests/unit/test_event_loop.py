"""The event loop a hub process runs on (`SHARINGHUB_EVENT_LOOP`)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

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


@pytest.fixture
def uvloop_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """uvloop asked for and not importable; the hub's state would go to the returned folder."""
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    monkeypatch.setenv("SHARINGHUB_EVENT_LOOP", "uvloop")
    state = tmp_path / "state"
    monkeypatch.setenv("SHARINGHUB_DATA_DIR", str(state))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{state / 'hub.db'}")
    return state


@pytest.mark.timeout(60)  # were the check gone, `up` would start a hub and wait
@pytest.mark.parametrize(
    "argv",
    [["run", "consent"], ["up"], ["bench", "--quick", "--out"]],
    ids=["run", "up", "bench"],
)
def test_a_missing_uvloop_asked_for_stops_the_command_before_it_starts_anything(
    argv: list[str],
    uvloop_missing: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # `run` needs one
    out = uvloop_missing / "bench-out"
    assert main([*argv, str(out)] if argv[0] == "bench" else argv) == 2
    captured = capsys.readouterr()
    assert "uvloop is not installed" in captured.err
    assert "Traceback" not in captured.err
    assert "starting sharinghub" not in captured.out
    assert not uvloop_missing.exists()  # no database, keys, logs or bench results


def test_an_unknown_loop_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARINGHUB_EVENT_LOOP", "trio")
    with pytest.raises(ValidationError) as invalid:
        Settings()
    [line] = describe_invalid(invalid.value)
    assert line.startswith("SHARINGHUB_EVENT_LOOP:")
    assert "'auto', 'uvloop' or 'asyncio'" in line
