"""Out-of-range command-line numbers stop the command before it starts anything."""

from __future__ import annotations

import argparse

import pytest

from sharinghub.cli import main
from sharinghub.tools.arg_types import at_least, seconds, tcp_port
from sharinghub.tools.bench_cli import scaling_processes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--requests", "0"], "argument --requests: must be ≥ 1, got 0"),
        (["bench", "--rates", "200", "-5"], "argument --rates: must be ≥ 1, got -5"),
        (["bench", "--rate-seconds", "0"], "argument --rate-seconds: must be > 0 seconds"),
        (["bench", "--rate-seconds", "inf"], "not a finite number of seconds: 'inf'"),
        (["bench", "--narrative-words", "0"], "argument --narrative-words: must be ≥ 1"),
        (["bench", "--directives", "many"], "argument --directives: not a whole number"),
        (["bench", "--partitions", "0"], "argument --partitions: must be ≥ 1, got 0"),
        (["bench", "--soak", "-1"], "argument --soak: must be ≥ 0 seconds, got -1"),
        (["bench", "--soak-rate", "0"], "argument --soak-rate: must be ≥ 1, got 0"),
        (["bench", "--idle-seconds", "-2"], "argument --idle-seconds: must be ≥ 0 seconds"),
        (["bench", "--tracing-repeats", "0"], "argument --tracing-repeats: must be ≥ 1"),
        (["bench", "--scaling-processes", "-1"], "argument --scaling-processes: must be ≥ 0"),
        (["bench", "--scaling-repeats", "0"], "argument --scaling-repeats: must be ≥ 1"),
        (["up", "--processes", "0"], "argument --processes: must be ≥ 1, got 0"),
        (["up", "--console-port", "70000"], "a TCP port is 1–65535, got 70000"),
        (["demo", "--timeout", "-3"], "argument --timeout: must be > 0 seconds, got -3"),
        (["governance", "serve", "--port", "0"], "argument --port: must be ≥ 1, got 0"),
    ],
)
def test_a_bad_number_is_a_usage_error_naming_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_bench_refuses_more_processes_than_partitions_before_starting_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "--processes", "4", "--partitions", "3", "--out", "unused"]) == 2
    captured = capsys.readouterr()
    assert "--processes 4 is more than --partitions 3" in captured.err
    assert "measuring" not in captured.out  # nothing was started


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--scaling-processes", "4", "--partitions", "3"],
            "--scaling-processes 4 is more than --partitions 3",
        ),
        (["--scaling-processes", "1"], "--scaling-processes 1 is the --processes of the run"),
        (
            ["--processes", "2", "--scaling-processes", "2"],
            "--scaling-processes 2 is the --processes of the run",
        ),
        (
            ["--soak", "60", "--soak-only", "--scaling-processes", "2"],
            "--scaling-processes has no phase to run with --soak-only",
        ),
    ],
)
def test_bench_refuses_a_scaling_phase_that_cannot_compare_before_starting_anything(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *argv, "--out", "unused"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "measuring" not in captured.out


def test_bench_refuses_soak_only_without_a_soak(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--soak-only", "--out", "unused"]) == 2
    captured = capsys.readouterr()
    assert "error: --soak-only needs --soak SECONDS" in captured.err
    assert "soak for" not in captured.out


@pytest.mark.parametrize(
    ("options", "compared_with"),
    [
        ({}, 2),  # a full run compares one process per stage with two
        ({"quick": True}, 0),  # --quick skips it
        ({"soak_only": True}, 0),
        ({"processes": 2}, 0),  # nothing to compare a larger layout with by default
        ({"quick": True, "scaling_processes": 3}, 3),  # unless asked for
        ({"scaling_processes": 0}, 0),
        ({"partitions": 1}, 0),  # one partition: a second process would have nothing to read
    ],
)
def test_the_scaling_phase_runs_by_default_only_in_a_full_run_with_one_process(
    options: dict[str, object], compared_with: int
) -> None:
    args = argparse.Namespace(
        **{
            "processes": 1,
            "partitions": 3,
            "quick": False,
            "soak_only": False,
            "scaling_processes": None,
            **options,
        }
    )
    assert scaling_processes(args) == compared_with


def test_up_refuses_more_processes_than_the_configured_partitions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHARINGHUB_PARTITIONS", "2")
    assert main(["up", "--processes", "3"]) == 2
    captured = capsys.readouterr()
    assert "--processes 3 is more than the 2 partitions per topic" in captured.err
    assert "starting sharinghub" not in captured.out


def test_the_types_accept_their_bounds() -> None:
    assert at_least(0)("0") == 0
    assert at_least(1)("7") == 7
    assert seconds(zero_ok=True)("0") == 0.0
    assert seconds()("0.5") == 0.5
    assert tcp_port("65535") == 65535
    with pytest.raises(argparse.ArgumentTypeError):
        seconds()("nan")
