"""Invalid configuration is reported by variable name, without echoing the value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sharinghub.cli import main
from sharinghub.runtime.settings import Settings, describe_invalid, env_names


def test_each_invalid_setting_is_named_by_its_variable_and_its_value_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHARINGHUB_BATCH_MAX_RECORDS", "0")
    monkeypatch.setenv("SHARINGHUB_LANE", "secret-lane-value")
    with pytest.raises(ValidationError) as caught:
        Settings()
    lines = describe_invalid(caught.value)
    assert len(lines) == 2
    assert lines[0].startswith("SHARINGHUB_BATCH_MAX_RECORDS: ")
    assert lines[1].startswith("SHARINGHUB_LANE: ")
    assert not any("secret-lane-value" in line for line in lines)


def test_aliased_settings_name_every_variable_that_sets_them() -> None:
    assert env_names("database_url") == ["DATABASE_URL", "SHARINGHUB_DATABASE_URL"]
    assert env_names("partitions") == ["SHARINGHUB_PARTITIONS"]


def test_the_cli_exits_2_with_the_variable_named_instead_of_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHARINGHUB_PARTITIONS", "-3")
    assert main(["run", "consent"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err
    assert "SHARINGHUB_PARTITIONS: Input should be greater than or equal to 1" in err
    assert "Traceback" not in err
